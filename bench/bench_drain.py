"""Node backlog drain, seconds: 100,000 check-ins queued in the node outbox
while no broker runs; then a real Mosquitto, the hub ingest (hub.ingest.Ingest)
and the node sync (edge.sync.NodeSync, default batch_size and window) start,
and the clock runs from the sync's start until the outbox is empty and the hub
database holds every record.

Peer: the same drain with batch_size=1 and window=1 (one record per message,
stop-and-wait), on fewer records, extrapolated.
Limit: the same number of 500-record envelopes published QoS 1 by one paho
client to a subscriber that only counts them: the broker and loopback, no
database on either side.

    .venv/bin/python bench/bench_drain.py [--records 100000] [--profile]
"""

import argparse
import cProfile
import json
import pstats
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import NODE, SITE, Broker, checkin_records, wait_for, write_result

from edge.outbox import Outbox
from edge.sync import NodeSync
from hub.db import open_db
from hub.ingest.subscriber import Ingest
from protocol import topics
from protocol.records import join_envelope
from runtime.mqttclient import make_client

BATCH = 500
# Stop-and-wait currently costs ~90 ms per record here (Nagle's algorithm and
# delayed ACKs: neither paho nor the generated Mosquitto config sets
# TCP_NODELAY), so 2,000 records would take three minutes; 200 take ~18 s.
PEER_RECORDS = 2_000
APPEND_CHUNK = 5_000
POLL = 0.05
DRAIN_TIMEOUT = 90.0


class Profiled:
    """Run ``target`` under cProfile in its own thread when enabled."""

    def __init__(self, enabled: bool):
        self.enabled, self.profiles = enabled, {}

    def wrap(self, name, target):
        if not self.enabled:
            return target

        def run(*args):
            profiler = cProfile.Profile()
            self.profiles[name] = profiler
            profiler.runcall(target, *args)
        return run

    def report(self):
        for name, profiler in self.profiles.items():
            print(f"\n===== profile: {name} thread =====", file=sys.stderr)
            stats = pstats.Stats(profiler, stream=sys.stderr)
            stats.sort_stats("cumulative").print_stats(30)
            stats.sort_stats("tottime").print_stats(15)


def fill_outbox(path: Path, records: list[dict]) -> None:
    outbox = Outbox(path)
    try:
        for i in range(0, len(records), APPEND_CHUNK):
            outbox.append_many(records[i:i + APPEND_CHUNK])
    finally:
        outbox.close()


def count(path: Path, table: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


def start_ingest(broker, hub_db: Path, profiled: Profiled):
    worker = Ingest(site=SITE, db_path=hub_db, mqtt=broker.settings("hub"))
    subscribed = threading.Event()
    on_subscribe = worker.client.on_subscribe

    def mark_subscribed(*args):
        on_subscribe(*args)
        subscribed.set()

    worker.client.on_subscribe = mark_subscribed
    thread = threading.Thread(target=profiled.wrap("ingest", worker.run), daemon=True)
    thread.start()
    if not subscribed.wait(10):
        raise TimeoutError("the hub ingest did not subscribe")
    return worker, thread


def start_sync(broker, node_db: Path, profiled: Profiled, **kwargs):
    link = NodeSync(site=SITE, node=NODE, db_path=node_db, mqtt=broker.settings(NODE), **kwargs)
    stop, errors = threading.Event(), []

    def run():
        try:
            profiled.wrap("sync", link.run)(stop)
        except Exception as exc:  # noqa: BLE001 - reported by the caller
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return link, stop, thread, errors


def measure_drain(tmp: Path, records: list[dict], profiled: Profiled, **sync_kwargs) -> float:
    """Seconds from the node sync's start until the outbox is empty and the hub has all."""
    node_db, hub_db = tmp / "node" / "node.db", tmp / "hub" / "hub.db"
    fill_outbox(node_db, records)
    open_db(hub_db).close()  # the real schema, before anyone polls it
    n = len(records)
    with Broker(tmp / "broker") as broker:
        worker, ingest_thread = start_ingest(broker, hub_db, profiled)
        link = stop = sync_thread = None
        try:
            start = time.perf_counter()
            link, stop, sync_thread, errors = start_sync(broker, node_db, profiled, **sync_kwargs)

            def drained():
                if errors:
                    raise errors[0]
                return count(node_db, "outbox") == 0 and count(hub_db, "checkins") == n

            wait_for(drained, DRAIN_TIMEOUT, POLL, f"{n} records to drain")
            elapsed = time.perf_counter() - start
        finally:
            if stop is not None:
                stop.set()
                link.wake.set()
                sync_thread.join(10)
            worker.stop()
            ingest_thread.join(10)
    return elapsed


def measure_broker_limit(tmp: Path, records: list[dict]) -> float:
    """Seconds to carry the same 500-record envelopes QoS 1 through the broker, no databases."""
    bodies = [json.dumps({"id": r["id"], "ts": r["ts"], **r}, separators=(",", ":"))
              for r in records]  # as Outbox.append_many stores them
    payloads = [join_envelope(NODE, bodies[i:i + BATCH], f"b{i}")
                for i in range(0, len(bodies), BATCH)]
    topic = topics.node_up(SITE, NODE, "batch")
    with Broker(tmp / "broker") as broker:
        received, done, subscribed = [0], threading.Event(), threading.Event()

        def on_message(client, userdata, message):
            received[0] += 1
            if received[0] == len(payloads):
                done.set()

        counter = make_client("bench-counter", broker.settings("hub"))
        counter.on_connect = lambda c, *a: c.subscribe(topics.all_nodes_up(SITE), qos=1)
        counter.on_subscribe = lambda *a: subscribed.set()
        counter.on_message = on_message
        publisher = make_client("bench-publisher", broker.settings(NODE))
        try:
            counter.connect(broker.settings("hub").host, broker.port)
            counter.loop_start()
            publisher.connect(broker.settings(NODE).host, broker.port)
            publisher.loop_start()
            if not subscribed.wait(10):
                raise TimeoutError("the counting subscriber did not subscribe")
            wait_for(publisher.is_connected, 10, message="the publisher to connect")
            start = time.perf_counter()
            for payload in payloads:
                publisher.publish(topic, payload, qos=1)
            if not done.wait(DRAIN_TIMEOUT):
                raise TimeoutError(f"only {received[0]} of {len(payloads)} messages arrived")
            elapsed = time.perf_counter() - start
        finally:
            for client in (publisher, counter):
                client.disconnect()
                client.loop_stop()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--peer-records", type=int, default=PEER_RECORDS,
                        help="records drained stop-and-wait for the peer, then extrapolated")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the sync and ingest threads of the main drain")
    args = parser.parse_args()
    n = args.records
    records = checkin_records(n)
    profiled = Profiled(args.profile)
    with tempfile.TemporaryDirectory(prefix="bench-drain-") as tmp:
        tmp = Path(tmp)
        value = measure_drain(tmp / "drain", records, profiled)
        peer_n = min(args.peer_records, n)
        peer = measure_drain(tmp / "peer", records[:peer_n], Profiled(False),
                             batch_size=1, window=1) * n / peer_n
        limit = measure_broker_limit(tmp / "limit", records)
    profiled.report()
    write_result(
        "drain", "seconds", value, False,
        (f"one record per message, stop-and-wait (batch_size=1, window=1; "
         f"extrapolated from {peer_n:,} to {n:,} records)", peer),
        (f"broker/loopback: {-(-n // BATCH)} envelopes of {BATCH} records QoS 1 from one paho "
         f"client to a counting subscriber, no database", limit),
    )
    print(f"peer/value = {peer / value:.1f}x, value/limit = {value / limit:.1f}x",
          file=sys.stderr)


if __name__ == "__main__":
    main()
