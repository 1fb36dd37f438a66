"""Hub durable ingest, records/s: JSON envelopes of 500 records through the
real hub.ingest.Ingest minus the network (``Ingest.handle``: JSON and
validation, clean batches in one compiled msgspec pass, protocol/wire.py;
each batch stored in its own transaction, then acknowledged) on its own
connection (hub.db.ingest_writer) to a real hub database (WAL,
synchronous=FULL).

Peer: one autocommit INSERT per record (a commit per record), SQLite's
default checkpointing.
Limit: pre-built tuples, one executemany per table per batch, one transaction
per batch, no JSON and no validation, on the ingest writer's own storage
set-up (hub.db.ingest_writer: page cache, checkpoints in the background).

The real path and the limit run batch by batch in turn on one database (the
limit with records of its own), since a commit's fsync time on a shared disk
varies from minute to minute; each figure is the median of ``--rounds`` runs.

    .venv/bin/python bench/bench_ingest.py [--records 100000] [--rounds 3] [--profile]
"""

import argparse
import cProfile
import json
import pstats
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import NODE, SITE, mixed_records, write_result

from hub.db import ingest_writer, open_db
from hub.ingest.subscriber import Ingest
from protocol import topics
from protocol.clock import now_iso
from protocol.records import make_envelope, validate
from runtime.settings import MqttSettings

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


def measure_real_and_raw(tmp: Path, records: list[dict], others: list[dict],
                         profile: bool) -> tuple[float, float]:
    """The real path and the limit on one database, batch by batch in turn, so
    both see the same disk, WAL and checkpointer at the same moments (the
    limit writes ``others``, records of the same mix with other ids).

    Real: what Ingest's message callback does for each batch, ``Ingest.handle``
    (read, check, store in one transaction, ack to the node), then the PUBACK;
    the client is not connected, so paho keeps the acks and nothing is sent.
    Limit: pre-built tuples, one executemany per table, one transaction per
    batch, on the same connection."""
    payloads = [make_envelope(NODE, chunk, batch=f"b{i}")
                for i, chunk in enumerate(chunks(records, BATCH))]
    ingest = Ingest(site=SITE, db_path=tmp / "hub.db",
                    mqtt=MqttSettings(host="127.0.0.1", port=1))
    profiler = cProfile.Profile() if profile else None
    real_time = raw_time = 0.0
    with ingest_writer(tmp / "hub.db") as ingest.db:
        inserts = plain_inserts(ingest.db)
        received_at = now_iso()
        raw_batches = []
        for chunk in chunks(others, BATCH):
            by_kind = {}
            for r in chunk:
                sql, columns = inserts[r["type"]]
                by_kind.setdefault(sql, []).append(as_row(r, columns, received_at))
            raw_batches.append(list(by_kind.items()))
        conn = ingest.db.conn
        for mid, (payload, raw_batch) in enumerate(zip(payloads, raw_batches), 1):
            if profiler:
                profiler.enable()
            start = time.perf_counter()
            ingest.handle(TOPIC, payload)
            ingest.client.ack(mid, 1)
            middle = time.perf_counter()
            if profiler:
                profiler.disable()
            conn.execute("BEGIN")
            for sql, rows in raw_batch:
                conn.executemany(sql, rows)
            conn.execute("COMMIT")
            real_time += middle - start
            raw_time += time.perf_counter() - middle
        check_stored(ingest.db, len(records) + len(others))
    if profiler:
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(15)
    return len(records) / real_time, len(others) / raw_time


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the real path and print the top functions to stderr")
    args = parser.parse_args()
    records, others = mixed_records(args.records), mixed_records(args.records, seed=7)
    values, peers, limits = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        for n in range(args.rounds):
            tmp_round = Path(tmp) / str(n)
            tmp_round.mkdir()
            value, limit = measure_real_and_raw(tmp_round, records, others, args.profile)
            values.append(value)
            limits.append(limit)
            peers.append(measure_naive(tmp_round / "naive.db", records[:PEER_RECORDS]))
            print(f"round {n + 1}: {values[-1]:,.0f} records/s, limit {limits[-1]:,.0f}, "
                  f"peer {peers[-1]:,.0f}", file=sys.stderr)
    value, peer, limit = map(statistics.median, (values, peers, limits))
    write_result(
        "ingest", "records/s", value, True,
        (f"naive: each record parsed, validated and INSERTed in its own commit, "
         f"{PEER_RECORDS:,} records", peer),
        (f"raw executemany: pre-built tuples, one transaction per {BATCH}-record batch, "
         f"no JSON or validation, the ingest writer's storage set-up", limit),
    )
    print(f"value/peer = {value / peer:.1f}x, value/limit = {value / limit:.2f} "
          f"(medians of {args.rounds} rounds)", file=sys.stderr)


if __name__ == "__main__":
    main()
