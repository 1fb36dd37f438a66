"""Run every bench/bench_*.py, then write the report of all their figures.

    .venv/bin/python bench/run_all.py            # run them all, then report
    .venv/bin/python bench/run_all.py --report   # only rebuild the report

Each benchmark writes one or more bench/results/<name>.json (its figure, its
naive peer and its physical limit, all measured in the same run of that
script). The report puts them side by side: bench/results/latest.json (every
result, the machine, the time) and bench/results/latest.md (a Markdown table
the README links to). A result not refreshed by this run is marked stale.
"""

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
REPORTS = ("latest.json", "latest.md")

sys.path.insert(0, str(HERE))
from _common import machine  # noqa: E402


def run(script: Path) -> bool:
    print(f"--- {script.name}", flush=True)
    done = subprocess.run([sys.executable, str(script)], cwd=HERE.parent,
                          stdout=subprocess.DEVNULL)
    if done.returncode:
        print(f"!!! {script.name} failed with exit code {done.returncode}", flush=True)
    return done.returncode == 0


def ratios(result: dict) -> tuple[str, str]:
    """How the figure compares with its peer and its limit, said so that a
    bigger number is better for the figure."""
    value, peer, limit = result["value"], result["peer"]["value"], result["limit"]["value"]
    if result["higher_is_better"]:
        vs_peer = f"{value / peer:.1f}× the peer" if peer else "–"
        vs_limit = f"{value / limit:.0%} of the limit" if limit else "–"
    else:
        vs_peer = f"{peer / value:.1f}× faster than the peer" if value else "–"
        vs_limit = f"{value / limit:.1f}× the limit" if limit else "–"
    return vs_peer, vs_limit


def collect(since: str | None) -> list[dict]:
    results = []
    for path in sorted(RESULTS.glob("*.json")):
        if path.name in REPORTS:
            continue
        result = json.loads(path.read_text())
        result["stale"] = since is not None and result.get("ts", "") < since
        results.append(result)
    return results


def markdown(results: list[dict], ts: str) -> str:
    lines = [f"# Benchmarks ({ts})", "",
             f"Machine: {machine()}. Each figure's peer and limit were measured in the same "
             "run of its benchmark; `make bench` runs them all.", "",
             "| figure | value | peer | limit | vs peer | vs limit |",
             "|---|---|---|---|---|---|"]
    for r in results:
        vs_peer, vs_limit = ratios(r)
        stale = " (stale)" if r["stale"] else ""
        lines.append(
            f"| {r['name']}{stale} | {r['value']:,.2f} {r['unit']} "
            f"| {r['peer']['name']}: {r['peer']['value']:,.2f} "
            f"| {r['limit']['name']}: {r['limit']['value']:,.2f} | {vs_peer} | {vs_limit} |")
    return "\n".join(lines) + "\n"


def report(since: str | None) -> list[dict]:
    ts = datetime.now(timezone.utc).isoformat(timespec="seconds")
    results = collect(since)
    (RESULTS / "latest.json").write_text(json.dumps(
        {"machine": machine(), "ts": ts, "results": results}, indent=2) + "\n")
    (RESULTS / "latest.md").write_text(markdown(results, ts))
    return results


def main(argv: list[str]) -> int:
    if "--report" in argv:
        results = report(None)
        print((RESULTS / "latest.md").read_text())
        return 0
    started = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    passed = {script: run(script) for script in sorted(HERE.glob("bench_*.py"))}
    results = report(started)
    print()
    print((RESULTS / "latest.md").read_text())
    failed = [script.stem for script, ok in passed.items() if not ok]
    if failed:
        print(f"FAILED: {', '.join(failed)}")
    return 1 if failed or any(r["stale"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
