"""Hub durable ingest, records/s: JSON envelopes of 500 records parsed,
validated and committed one transaction per batch by hub.store.ingest_batch,
what `rounds-hub ingest` runs for every batch (clean batches decode in one
compiled msgspec pass: protocol/wire.py), on a real hub database (WAL,
synchronous=FULL). ``--careful`` times the record-by-record path instead
(protocol.records.parse_envelope + hub.store.write_batch), which a batch
takes when anything in it needs a reason or a clock correction.

Peer: one autocommit INSERT per record (a commit per record).
Limit: pre-built tuples, one executemany per table per batch, one transaction
per batch: no JSON, no validation.

    .venv/bin/python bench/bench_ingest.py [--records 100000] [--profile]
"""

import argparse
import cProfile
import json
import pstats
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from _common import NODE, SITE, mixed_records, write_result

from hub.db import open_db
from hub.store import ingest_batch, write_batch
from protocol import topics
from protocol.clock import now_iso
from protocol.records import make_envelope, parse_envelope, validate

BATCH = 500
PEER_RECORDS = 2_000
TOPIC = topics.node_up(SITE, NODE, "batch")
TABLES = {"checkin": "checkins", "presence": "presence", "occupancy": "occupancy"}


def chunks(items, size):
    return [items[i:i + size] for i in range(0, len(items), size)]


def plain_inserts(db) -> dict:
    """type -> (plain INSERT statement, its column names), from the real schema."""
    out = {}
    for kind, table in TABLES.items():
        columns = [row[1] for row in db.conn.execute(f"PRAGMA table_info({table})")]
        sql = (f"INSERT INTO {table} ({', '.join(columns)}) "
               f"VALUES ({', '.join('?' * len(columns))})")
        out[kind] = (sql, columns)
    return out


def as_row(record: dict, columns, received_at: str) -> tuple:
    values = dict(record, node=NODE, received_at=received_at)
    return tuple(values.get(c) for c in columns)


def check_stored(db, expected: int) -> None:
    """Read back through a second connection, so only committed rows count."""
    conn = sqlite3.connect(db.conn.execute("PRAGMA database_list").fetchone()[2])
    try:
        stored = sum(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                     for t in TABLES.values())
    finally:
        conn.close()
    if stored != expected:
        raise RuntimeError(f"{stored} records committed, expected {expected}")


def measure_real(path: Path, records: list[dict], profile: bool, careful: bool) -> float:
    """ingest_batch (or parse_envelope + write_batch) on envelopes of BATCH records."""
    payloads = [make_envelope(NODE, chunk, batch=f"b{i}")
                for i, chunk in enumerate(chunks(records, BATCH))]
    db = open_db(path)
    profiler = cProfile.Profile() if profile else None
    try:
        if profiler:
            profiler.enable()
        start = time.perf_counter()
        for payload in payloads:
            if careful:
                good, bad, _batch, clock = parse_envelope(payload, NODE)
                write_batch(db, TOPIC, NODE, good, bad, clock)
            else:
                ingest_batch(db, TOPIC, NODE, payload)
        elapsed = time.perf_counter() - start
        if profiler:
            profiler.disable()
        check_stored(db, len(records))
    finally:
        db.close()
    if profiler:
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(15)
    return len(records) / elapsed


def measure_naive(path: Path, records: list[dict]) -> float:
    """Each record arrives alone, is parsed and validated, and committed alone."""
    bodies = [json.dumps(r, separators=(",", ":")).encode() for r in records]
    db = open_db(path)
    try:
        inserts = plain_inserts(db)
        # sqlite-utils' connection is in Python's implicit-transaction mode
        # (isolation_level ""), so commit explicitly: one commit per record.
        conn = db.conn
        start = time.perf_counter()
        for body in bodies:
            record = validate(json.loads(body))
            sql, columns = inserts[record["type"]]
            conn.execute(sql, as_row(record, columns, now_iso()))
            conn.commit()
        elapsed = time.perf_counter() - start
        check_stored(db, len(records))
    finally:
        db.close()
    return len(records) / elapsed


def measure_raw(path: Path, records: list[dict]) -> float:
    """Pre-built tuples, one executemany per table per batch, one transaction per batch."""
    db = open_db(path)
    try:
        inserts = plain_inserts(db)
        received_at = now_iso()
        batches = []
        for chunk in chunks(records, BATCH):
            by_kind = {}
            for r in chunk:
                sql, columns = inserts[r["type"]]
                by_kind.setdefault(sql, []).append(as_row(r, columns, received_at))
            batches.append(list(by_kind.items()))
        conn = db.conn
        start = time.perf_counter()
        for batch in batches:
            conn.execute("BEGIN")
            for sql, rows in batch:
                conn.executemany(sql, rows)
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - start
        check_stored(db, len(records))
    finally:
        db.close()
    return len(records) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the real path and print the top functions to stderr")
    parser.add_argument("--careful", action="store_true",
                        help="time the record-by-record path (no result file written)")
    args = parser.parse_args()
    records = mixed_records(args.records)
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        tmp = Path(tmp)
        value = measure_real(tmp / "real" / "hub.db", records, args.profile, args.careful)
        if args.careful:
            print(f"careful path: {value:,.0f} records/s", file=sys.stderr)
            return
        peer = measure_naive(tmp / "naive" / "hub.db", records[:PEER_RECORDS])
        limit = measure_raw(tmp / "raw" / "hub.db", records)
    write_result(
        "ingest", "records/s", value, True,
        (f"naive: each record parsed, validated and INSERTed in its own commit, "
         f"{PEER_RECORDS:,} records", peer),
        (f"raw executemany: pre-built tuples, one transaction per {BATCH}-record batch, "
         f"no JSON or validation", limit),
    )
    print(f"value/peer = {value / peer:.1f}x, value/limit = {value / limit:.2f}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
