"""PostgreSQL's raw ceiling for the hub's ingest pattern on this machine
(groundwork for issue 16), beside SQLite's in the same run.

The hub stores each 500-record batch from a node in one transaction: INSERT
... ON CONFLICT (id) DO NOTHING into ``checkins``, ``presence`` and
``occupancy``. This measures only that, with no JSON, no validation and no
MQTT: pre-built tuples of bench/_common.py's mixed records (60 % check-ins,
30 % presence, 10 % occupancy), 500 a batch, one transaction a batch, into
tables shaped like the hub's (columns, types, primary keys and indexes read
from a database that hub/db.py's migrations made; TEXT ids with the C
collation, as SQLite compares them).

PostgreSQL 15 (Debian's, the newest under /usr/lib/postgresql), a throwaway
cluster from tests/pg.py: stock settings, so fsync on and synchronous_commit
on, the durable figure. Two ways to send a batch, each with 1, 2 and 4
writer processes (each its own connection, its share of the batches):
- executemany: one ``executemany`` of the INSERT per table (psycopg 3 sends
  it pipelined: one round trip per table, not per row);
- copy: COPY the batch into a temp table per table (ON COMMIT DELETE ROWS),
  then one INSERT ... SELECT ... ON CONFLICT (id) DO NOTHING per table.
SQLite: the same records, bench_ingest.py's raw path (one writer: SQLite has
one), with the same ON CONFLICT clause, on hub.db.ingest_writer's set-up (WAL,
synchronous=FULL, checkpoints in a background thread).

Every run writes the same records into a fresh database (PostgreSQL: right
after a CHECKPOINT, so each run starts from the same state. A run writes
~60 MB of WAL, far below max_wal_size, so PostgreSQL writes its table pages
back at a later checkpoint, outside the figure; SQLite's background
checkpointer copies its WAL back during the run, inside it); the runs of a round
take turns (a round is SQLite, then every PostgreSQL variant), and each
figure is the median over ``--rounds``, since the disk's speed here varies
from minute to minute. Also reported: the writers' own CPU per batch and the
WAL written per record. Writes bench/results/sizing/pg_ceiling.json (not
bench/results/*.json: this is a sizing figure, not a speed-report result).

    .venv/bin/python bench/pg_ceiling.py [--records 100000] [--rounds 5]
"""

import argparse
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from _common import NODE, RESULTS, machine, mixed_records

from hub.db import ingest_writer
from protocol.clock import iso, now_iso
from tests.pg import PostgresCluster, find_bindir

BATCH = 500
WRITERS = (1, 2, 4)
METHODS = ("executemany", "copy")
TABLES = {"checkin": "checkins", "presence": "presence", "occupancy": "occupancy"}
OUT = RESULTS / "sizing" / "pg_ceiling.json"
PG_TYPES = {"TEXT": "text", "INTEGER": "integer", "REAL": "double precision"}


# --- the hub's tables, from its own migrations ---

def hub_schema(sqlite_conn) -> dict:
    """table -> (columns [(name, TYPE, not null)], indexes [(name, [columns])]),
    primary key first, as hub/db.py's migrations leave them."""
    schema = {}
    for table in TABLES.values():
        columns = [(name, kind, bool(notnull) or bool(pk))
                   for _, name, kind, notnull, _, pk
                   in sqlite_conn.execute(f"PRAGMA table_info({table})")]
        indexes = [(name, [r[2] for r in sqlite_conn.execute(f"PRAGMA index_info({name})")])
                   for _, name, _, origin, _ in sqlite_conn.execute(f"PRAGMA index_list({table})")
                   if origin == "c"]
        schema[table] = (columns, indexes)
    return schema


def pg_ddl(schema: dict) -> list[str]:
    statements = []
    for table, (columns, indexes) in schema.items():
        cols = [f"{name} {PG_TYPES[kind]}{' NOT NULL' if notnull else ''}"
                for name, kind, notnull in columns]
        statements.append(f"CREATE TABLE {table} ({', '.join(cols)}, PRIMARY KEY (id))")
        statements += [f"CREATE INDEX {name} ON {table} ({', '.join(cols)})"
                       for name, cols in indexes]
    return statements


def build_batches(records: list[dict], schema: dict) -> list[list[tuple[str, list]]]:
    """Per 500-record batch: [(table, rows)], rows as tuples in column order
    (booleans as 0/1, as the hub stores them)."""
    received_at = now_iso()
    names = {t: [c[0] for c in columns] for t, (columns, _) in schema.items()}
    batches = []
    for i in range(0, len(records), BATCH):
        by_table = {}
        for r in records[i:i + BATCH]:
            table = TABLES[r["type"]]
            values = dict(r, node=NODE, received_at=received_at)
            row = tuple(int(v) if isinstance(v, bool) else v
                        for v in (values.get(c) for c in names[table]))
            by_table.setdefault(table, []).append(row)
        batches.append(list(by_table.items()))
    return batches


# --- SQLite: bench_ingest.py's raw path ---

def run_sqlite(path: Path, schema: dict, batches) -> float:
    with ingest_writer(path) as db:
        conn = db.conn
        sql = {t: f"INSERT INTO {t} ({', '.join(c[0] for c in cols)}) "
                  f"VALUES ({', '.join('?' * len(cols))}) ON CONFLICT(id) DO NOTHING"
               for t, (cols, _) in schema.items()}
        start = time.perf_counter()
        for batch in batches:
            conn.execute("BEGIN")
            for table, rows in batch:
                conn.executemany(sql[table], rows)
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - start
        stored = sum(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in schema)
    return stored / elapsed


# --- PostgreSQL ---

def _writer(dsn, method, schema, batches, ready, go, out) -> None:
    """One writer process: its batches, each one transaction; reports
    (start, end) on the machine's monotonic clock and its CPU seconds."""
    import psycopg
    names = {t: ", ".join(c[0] for c in cols) for t, (cols, _) in schema.items()}
    insert = {t: f"INSERT INTO {t} ({names[t]}) VALUES "
                 f"({', '.join(['%s'] * len(cols))}) ON CONFLICT (id) DO NOTHING"
              for t, (cols, _) in schema.items()}
    with psycopg.connect(dsn, autocommit=True) as conn:
        if method == "copy":
            for t in schema:
                conn.execute(f"CREATE TEMP TABLE stage_{t} (LIKE {t}) ON COMMIT DELETE ROWS")
        ready.put(True)
        go.wait()
        start, cpu = time.monotonic(), time.process_time()
        with conn.cursor() as cur:
            for batch in batches:
                with conn.transaction():
                    for table, rows in batch:
                        if method == "executemany":
                            cur.executemany(insert[table], rows)
                        else:
                            with cur.copy(f"COPY stage_{table} ({names[table]}) "
                                          f"FROM STDIN") as copy:
                                for row in rows:
                                    copy.write_row(row)
                            cur.execute(f"INSERT INTO {table} ({names[table]}) "
                                        f"SELECT {names[table]} FROM stage_{table} "
                                        f"ON CONFLICT (id) DO NOTHING")
        out.put((start, time.monotonic(), time.process_time() - cpu))


def run_pg(cluster: PostgresCluster, name: str, schema: dict, batches, method: str,
           writers: int) -> tuple[float, float, float]:
    """(records/s, the writers' own CPU ms per batch, WAL bytes per record)."""
    import psycopg
    dsn = cluster.create_database(name)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for statement in pg_ddl(schema):
                conn.execute(statement)
            conn.execute("CHECKPOINT")  # every run starts from the same state
        ctx = multiprocessing.get_context("fork")  # the batches are inherited, not pickled
        ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
        procs = [ctx.Process(target=_writer, args=(dsn, method, schema, batches[k::writers],
                                                   ready, go, out))
                 for k in range(writers)]
        for p in procs:
            p.start()
        try:
            for _ in procs:
                ready.get(timeout=60)
            wal_before = _wal_lsn(dsn)
            go.set()
            spans = [out.get(timeout=300) for _ in procs]
            wal = _wal_lsn(dsn) - wal_before
        finally:
            for p in procs:
                p.join(timeout=30)
                if p.is_alive():
                    p.kill()
        if any(p.exitcode for p in procs):
            raise RuntimeError(f"a writer failed: exit codes {[p.exitcode for p in procs]}")
        with psycopg.connect(dsn) as conn:
            stored = sum(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                         for t in schema)
        expected = sum(len(rows) for batch in batches for _, rows in batch)
        if stored != expected:
            raise RuntimeError(f"{stored} records committed, expected {expected}")
        wall = max(end for _, end, _ in spans) - min(start for start, _, _ in spans)
        return (stored / wall, 1000 * sum(cpu for _, _, cpu in spans) / len(batches),
                wal / stored)
    finally:
        cluster.drop_database(name)


def _wal_lsn(dsn: str) -> int:
    import psycopg
    with psycopg.connect(dsn) as conn:
        return int(conn.execute("SELECT pg_current_wal_lsn() - '0/0'").fetchone()[0])


def pg_settings(cluster: PostgresCluster) -> dict:
    import psycopg
    with psycopg.connect(cluster.dsn()) as conn:
        settings = dict(conn.execute(
            "SELECT name, current_setting(name) FROM pg_settings WHERE name IN "
            "('fsync', 'synchronous_commit', 'wal_sync_method', 'full_page_writes', "
            "'shared_buffers', 'max_wal_size', 'commit_delay')").fetchall())
        settings["version"] = conn.execute("SHOW server_version").fetchone()[0]
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000,
                        help="records per run (split between the writers)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    began = time.monotonic()
    records = mixed_records(args.records, seed=11)
    figures = {"sqlite": []} | {f"{m}/{w}": [] for m in METHODS for w in WRITERS}
    client_cpu = {f"{m}/{w}": [] for m in METHODS for w in WRITERS}
    wal = {f"{m}/{w}": [] for m in METHODS for w in WRITERS}
    with tempfile.TemporaryDirectory(prefix="bench-pg-") as tmp:
        tmp = Path(tmp)
        with ingest_writer(tmp / "schema.db") as db:
            schema = hub_schema(db.conn)
        batches = build_batches(records, schema)
        with PostgresCluster(tmp / "pg", bindir=find_bindir()) as cluster:
            settings = pg_settings(cluster)
            for n in range(args.rounds):
                figures["sqlite"].append(run_sqlite(tmp / f"sqlite-{n}.db", schema, batches))
                for method in METHODS:
                    for writers in WRITERS:
                        rate, cpu, wal_bytes = run_pg(cluster, f"r{n}_{method}_{writers}",
                                                      schema, batches, method, writers)
                        figures[f"{method}/{writers}"].append(rate)
                        client_cpu[f"{method}/{writers}"].append(cpu)
                        wal[f"{method}/{writers}"].append(wal_bytes)
                print(f"round {n + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}"
                                                     for k, v in figures.items()),
                      file=sys.stderr)

    def figure(key):
        out = {"records_per_s": round(statistics.median(figures[key])),
               "rounds": [round(v) for v in figures[key]]}
        if key in client_cpu:
            out["client_cpu_ms_per_batch"] = round(statistics.median(client_cpu[key]), 2)
            out["wal_bytes_per_record"] = round(statistics.median(wal[key]))
        return out

    result = {
        "name": "pg_ceiling",
        "unit": "records/s",
        "what": "raw ingest ceiling: pre-built tuples of mixed checkin/presence/occupancy "
                f"records, {BATCH}-record batches, one transaction per batch, INSERT ... "
                "ON CONFLICT (id) DO NOTHING into tables shaped like the hub's; "
                "fresh database per run; median of rounds",
        "records_per_run": args.records,
        "rounds": args.rounds,
        "sqlite": {"how": "bench_ingest.py's raw path: one executemany per table per "
                          "batch, one writer, hub.db.ingest_writer (WAL, synchronous=FULL)",
                   **figure("sqlite")},
        "postgresql": {
            "settings": settings,
            "executemany": {str(w): figure(f"executemany/{w}") for w in WRITERS},
            "copy": {str(w): figure(f"copy/{w}") for w in WRITERS},
            "how": {"executemany": "one psycopg executemany (pipelined) of the INSERT per "
                                   "table per batch",
                    "copy": "COPY into a temp table (ON COMMIT DELETE ROWS) per table, then "
                            "INSERT ... SELECT ... ON CONFLICT (id) DO NOTHING",
                    "writers": "1, 2, 4 processes, each its own connection and share of "
                               "the batches; records/s over the wall time of all of them",
                    "client_cpu_ms_per_batch": "the writer processes' own CPU time (psycopg "
                                               "and Python) per batch, all writers summed",
                    "wal_bytes_per_record": "WAL written during the run per record stored"},
        },
        "machine": machine(),
        "seconds": round(time.monotonic() - began, 1),
        "ts": iso(datetime.now(timezone.utc)),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
