"""Run every bench/bench_*.py, then print one line per result file.

    .venv/bin/python bench/run_all.py
"""

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def run(script: Path) -> bool:
    print(f"--- {script.name}", flush=True)
    done = subprocess.run([sys.executable, str(script)], cwd=HERE.parent,
                          stdout=subprocess.DEVNULL)
    if done.returncode:
        print(f"!!! {script.name} failed with exit code {done.returncode}", flush=True)
    return done.returncode == 0


def summary(result: dict) -> str:
    value, peer, limit = result["value"], result["peer"]["value"], result["limit"]["value"]
    unit = result["unit"]
    if result["higher_is_better"]:
        vs_peer = f"{value / peer:.1f}x the peer" if peer else "peer 0"
        vs_limit = f"{value / limit:.0%} of the limit" if limit else "limit 0"
    else:
        vs_peer = f"{peer / value:.1f}x faster than the peer" if value else "value 0"
        vs_limit = f"{value / limit:.1f}x the limit" if limit else "limit 0"
    return (f"{result['name']}: {value:,.2f} {unit} | peer {peer:,.2f} | limit {limit:,.2f}"
            f" | {vs_peer}, {vs_limit}")


def main() -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    passed = {script: run(script) for script in scripts}
    print()
    for script, ok in passed.items():
        path = RESULTS / (script.stem.removeprefix("bench_") + ".json")
        if ok and path.exists():
            print(summary(json.loads(path.read_text())))
        else:
            print(f"{script.stem}: FAILED, no fresh result")
    return 0 if all(passed.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
