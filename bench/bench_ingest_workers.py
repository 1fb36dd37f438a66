"""Ingest throughput with 1, 2 and 4 workers (``rounds-hub ingest --workers N``,
an MQTT v5 shared subscription) into one hub database, SQLite's file and a
PostgreSQL database (a throwaway cluster of Debian's server, durable: fsync
on, as tests/pg.py starts it), end to end.

A real Mosquitto, run as a site runs it (user names as client ids, the
generated ACL); the supervisor and its workers as real processes. Once every
worker has subscribed, two nodes publish a backlog of 500-record envelopes
(QoS 1) as fast as the broker takes them; the figure is records/s from the
first publish until the hub database holds every record (polled every 50 ms
over a separate connection).

value: SQLite, 2 workers (ingest_workers_2) and 4 workers (ingest_workers_4);
       PostgreSQL, 1, 2 and 4 workers (ingest_pg_workers_1, _2, _4).
peer:  SQLite, 1 worker (its single writer), same backlog, same run.
limit: the broker alone: the same envelopes to N shared-subscription members
       that only count them and acknowledge, no database (N = the value's).

    .venv/bin/python bench/bench_ingest_workers.py [--records 200000]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import ROOT, Broker, mixed_records, write_result

from hub.db import open_db
from hub.sql import is_dsn
from protocol import topics
from protocol.records import make_envelope
from provisioning.broker import ingest_worker_user
from runtime.mqttclient import make_client
from tests.pg import PostgresCluster
from tests.support import wait_for

SITE, NODES, GROUP, BATCH = "bench", ("n1", "n2"), "rounds-ingest-bench", 500
MAX_WORKERS = 4
PASSWORDS = {"hub": "hub-secret", "n1": "n1-secret", "n2": "n2-secret",
             **{ingest_worker_user("hub", i): f"w{i}-secret"
                for i in range(2, MAX_WORKERS + 1)}}
TABLES = ("checkins", "presence", "occupancy")


def site_broker(directory: Path) -> Broker:
    """The hub, its extra ingest workers and two nodes, user names as client ids."""
    return Broker(directory, PASSWORDS, username_as_clientid=True)


def envelopes(records: int) -> list[tuple[str, bytes]]:
    """(topic, payload) of every batch, the nodes taking turns."""
    rows = mixed_records(records)
    out = []
    for k, start in enumerate(range(0, records, BATCH)):
        node = NODES[k % len(NODES)]
        out.append((topics.node_up(SITE, node, "batch"),
                    make_envelope(node, rows[start:start + BATCH])))
    return out


def publish_all(broker: Broker, batches) -> None:
    """Each node publishes its batches on its own connection, QoS 1, all in flight."""
    def run(node):
        client = make_client(f"bench-{node}", broker.settings(node))
        client.max_inflight_messages_set(1000)
        client.connect(broker.settings(node).host, broker.port)
        client.loop_start()
        infos = [client.publish(topic, payload, qos=1) for topic, payload in batches
                 if f"/node/{node}/" in topic]
        for info in infos:
            info.wait_for_publish(120)
        client.loop_stop()
        client.disconnect()

    threads = [threading.Thread(target=run, args=(node,)) for node in NODES]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def stored(target) -> int:
    db = open_db(target, migrate=False)
    try:
        return sum(db.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES)
    finally:
        db.close()


def run_workers(tmp: Path, workers: int, batches, records: int, pg=None) -> float:
    """records/s with ``workers`` ingest processes, from a fresh broker and
    database: a SQLite file, or a new database on the cluster ``pg``."""
    run_dir = tmp / f"{'pg' if pg else 'sqlite'}-workers-{workers}"
    (run_dir / "hub").mkdir(parents=True)
    db_path = pg.create_database() if pg else run_dir / "hub" / "hub.db"
    open_db(db_path).close()
    database = {"db": str(db_path)}
    if is_dsn(db_path):
        database["photos_dir"] = str(run_dir / "photos")
    with site_broker(run_dir / "broker") as broker:
        config = run_dir / "hub" / "hub.json"
        config.write_text(json.dumps({
            "site": SITE, **database,
            "mqtt": {"host": "127.0.0.1", "port": broker.port, "username": "hub",
                     "password": PASSWORDS["hub"], "share_group": GROUP,
                     "workers": [{"username": ingest_worker_user("hub", i),
                                  "password": PASSWORDS[ingest_worker_user("hub", i)]}
                                 for i in range(2, MAX_WORKERS + 1)]}}))
        log = run_dir / "ingest.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "hub.cli", "--config", str(config), "ingest",
                 "--workers", str(workers)], stdout=out, stderr=out, cwd=ROOT,
                env=dict(os.environ, PYTHONPATH=str(ROOT)))
        try:
            wait_for(lambda: log.read_text(errors="replace").count("subscribed to ") >= workers,
                     timeout=60, message=f"{workers} workers subscribed")
            start = time.perf_counter()
            publish_all(broker, batches)
            wait_for(lambda: stored(db_path) >= records, timeout=600, interval=0.05,
                     message=f"{records} records stored")
            elapsed = time.perf_counter() - start
        finally:
            proc.terminate()
            proc.wait(60)
    if stored(db_path) != records:
        raise RuntimeError(f"{stored(db_path)} records stored, expected {records}")
    return records / elapsed


def run_broker_only(tmp: Path, members: int, batches, records: int) -> float:
    """records/s through the broker to ``members`` shared-subscription members that
    only count and acknowledge (no database): the MQTT part's ceiling here."""
    with site_broker(tmp / f"broker-only-{members}") as broker:
        counted, lock, done = [0], threading.Lock(), threading.Event()
        clients = []
        for i in range(1, members + 1):
            user = "hub" if i == 1 else ingest_worker_user("hub", i)
            client = make_client(f"count-{i}", broker.settings(user))
            subscribed = threading.Event()

            def on_message(client, userdata, message):
                with lock:
                    counted[0] += BATCH
                    if counted[0] >= records:
                        done.set()

            client.on_message = on_message
            client.on_subscribe = lambda *args, ev=subscribed: ev.set()
            client.on_connect = lambda c, *args: c.subscribe(
                topics.shared_nodes_up(SITE, GROUP), qos=1)
            client.connect(broker.settings(user).host, broker.port)
            client.loop_start()
            if not subscribed.wait(10):
                raise TimeoutError(f"counting member {i} did not subscribe")
            clients.append(client)
        start = time.perf_counter()
        publish_all(broker, batches)
        if not done.wait(120):
            raise TimeoutError(f"only {counted[0]} of {records} records counted")
        elapsed = time.perf_counter() - start
        for client in clients:
            client.loop_stop()
            client.disconnect()
    return records / elapsed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=200_000)
    args = parser.parse_args()
    records = args.records - args.records % BATCH
    batches = envelopes(records)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rates = {n: run_workers(tmp, n, batches, records) for n in (1, 2, MAX_WORKERS)}
        with PostgresCluster(tmp / "pg") as cluster:
            pg_rates = {n: run_workers(tmp, n, batches, records, cluster)
                        for n in (1, 2, MAX_WORKERS)}
        limits = {n: run_broker_only(tmp, n, batches, records) for n in (1, 2, MAX_WORKERS)}
    label = f"{records:,} records in 500-record envelopes from 2 nodes"
    broker_alone = ("the broker alone: {n} shared-subscription member(s) that only count "
                    "and ack, no database")
    for n in (2, MAX_WORKERS):
        write_result(f"ingest_workers_{n}", "records/s", rates[n], True,
                     (f"1 worker, {label}, one SQLite hub database", rates[1]),
                     (broker_alone.format(n=n), limits[n]))
    for n in (1, 2, MAX_WORKERS):
        write_result(f"ingest_pg_workers_{n}", "records/s", pg_rates[n], True,
                     (f"SQLite's single writer (1 worker), {label}", rates[1]),
                     (broker_alone.format(n=n), limits[n]))


if __name__ == "__main__":
    main()
