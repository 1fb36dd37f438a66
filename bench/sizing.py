"""How big a hub database grows: bytes per stored record of each kind,
measured on a real hub database on each backend (tables and their indexes:
SQLite's ``dbstat``; PostgreSQL's ``pg_total_relation_size``, which counts
TOAST too, in a throwaway cluster of Debian's server), then a year of a
5,000-staff, 200-node hospital from those figures and the volumes in VOLUMES
(assumptions, written out in docs/scaling.md) with the default retention
(hub/retention.py).

    .venv/bin/python bench/sizing.py [--records 50000] [--backends sqlite,postgresql]

Writes bench/results/sizing/hub_db_size.json (SQLite) and
hub_db_size_postgresql.json (not speed figures: run_all.py does not run it
and the speed report does not list them).
"""

import argparse
import json
import random
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from _common import NODE, RESULTS, SITE, checkin, occupancy, presence

from hub.db import is_postgresql, open_db
from hub.ingest import store
from hub.retention import KINDS
from protocol import topics
from protocol.clock import iso
from protocol.records import make_envelope
from tests.pg import PostgresCluster, find_bindir

BATCH = 500
TOPIC = topics.node_up(SITE, NODE, "batch")
TABLES = {"checkin": "checkins", "presence": "presence", "occupancy": "occupancy"}
MAKERS = {"checkin": checkin, "presence": presence, "occupancy": occupancy}
STAFF, NODES = 5_000, 200
# Records a year (see docs/scaling.md for the reasoning behind each).
VOLUMES = {
    # two lectures or trainings a week per person, 50 weeks
    "checkin": STAFF * 2 * 50,
    # a bound phone's interval per zone it passes: ~8 a working day, 250 days
    "presence": STAFF * 8 * 250,
    # every node counts every minute, day and night
    "occupancy": NODES * 60 * 24 * 365,
}


def table_bytes(db, table: str) -> int:
    """Pages of ``table`` and of every index on it."""
    if is_postgresql(db):
        db.conn.execute(f"VACUUM {table}")  # settles the free-space and visibility maps
        return db.conn.execute("SELECT pg_total_relation_size(?::regclass)",
                               (table,)).fetchone()[0]
    names = [table] + [row[0] for row in db.conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?", (table,))]
    marks = ", ".join("?" * len(names))
    return db.conn.execute(f"SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name IN ({marks})",
                           names).fetchone()[0]


def bytes_per_record(target, kind: str, n: int) -> float:
    """``target``: a hub database path or DSN, fresh for this kind."""
    db = open_db(target)
    rng = random.Random(7)
    records = [MAKERS[kind](rng, i) for i in range(n)]
    before = table_bytes(db, TABLES[kind])
    for start in range(0, n, BATCH):
        envelope = make_envelope(NODE, records[start:start + BATCH])
        store.ingest_batch(db, TOPIC, NODE, envelope)
    stored = db.conn.execute(f"SELECT count(*) FROM {TABLES[kind]}").fetchone()[0]
    if stored != n:
        raise RuntimeError(f"{kind}: {stored} stored, expected {n}")
    size = (table_bytes(db, TABLES[kind]) - before) / n
    db.close()
    return size


def kept_days(kind: str) -> float:
    """Days of ``kind`` a database holds in steady state under the default retention."""
    key = {"presence": "presence_days", "occupancy": "occupancy_days",
           "checkin": "attendance_days"}[kind]
    days = next(k.default for k in KINDS if k.key == key)
    return 365.0 if days is None else float(days)


def year(per_record: dict[str, float], records: int, backend: str) -> dict:
    rows = {}
    for kind, per in per_record.items():
        per_year = VOLUMES[kind]
        held = per_year * min(kept_days(kind), 365.0) / 365.0
        rows[kind] = {"bytes_per_record": round(per, 1), "records_per_year": per_year,
                      "kept_days": kept_days(kind),
                      "mb_after_a_year": round(held * per / 1e6, 1)}
    return {"backend": backend, "staff": STAFF, "nodes": NODES, "measured_with": records,
            "kinds": rows, "total_mb_after_a_year":
                round(sum(r["mb_after_a_year"] for r in rows.values()), 1),
            "ts": iso(datetime.now(timezone.utc))}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    out = RESULTS / "sizing"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for backend in args.backends.split(","):
            if backend == "sqlite":
                measured = {kind: bytes_per_record(tmp / f"{kind}.db", kind, args.records)
                            for kind in TABLES}
                name = "hub_db_size.json"
            elif backend == "postgresql":
                with PostgresCluster(tmp / "pg", bindir=find_bindir()) as cluster:
                    measured = {kind: bytes_per_record(cluster.create_database(kind), kind,
                                                       args.records) for kind in TABLES}
                name = "hub_db_size_postgresql.json"
            else:
                raise SystemExit(f"unknown backend {backend!r} (sqlite, postgresql)")
            result = year(measured, args.records, backend)
            (out / name).write_text(json.dumps(result, indent=2) + "\n")
            print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
