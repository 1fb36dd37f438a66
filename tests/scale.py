"""How big the fault and load suites run: reduced in ``make test`` (CI's
budget), full with ``make faults`` / ``make load`` (ROUNDS_SCALE=full).
Full runs write their counts to reliability/<suite>.json."""

import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

FULL = os.environ.get("ROUNDS_SCALE") == "full"
RESULTS = Path(__file__).resolve().parent.parent / "reliability"


def scaled(reduced, full):
    return full if FULL else reduced


def report(suite: str, counts: dict) -> None:
    """Print the counts; on a full run also keep them for the README."""
    print(f"\n[{suite}] " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    if FULL:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"{suite}.json").write_text(json.dumps({
            "suite": suite, "counts": counts, "scale": "full",
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
            "ts": datetime.now(timezone.utc).isoformat(timespec="seconds")}, indent=2) + "\n")
