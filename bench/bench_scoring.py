"""Live scoring burst (issue 14): the scenario of tests/load/test_contest_burst.py
as a benchmark, through the real processes a hall node and the hub run:
``rounds-edge portal`` (gunicorn, 2 workers x 8 threads), ``rounds-edge sync``,
Mosquitto (the generated config) and ``rounds-hub ingest``, all with their
default settings, on one machine.

300 phones (3 of them judges), each from its own loopback address with its
own cookies, as unknown devices: the 297 others check in with staff number +
PIN; then everyone signs in for scoring; then the office opens one act and
the burst starts: each phone opens /score, sends its score, reads the page
after it, and 46 send a second score. The phones are spread over client
processes (like bench_portal.py), so the load generator's own GIL does not
add to the figures.

scoring_p99 (ms): p99 of the portal's answer to POST /score during the burst.
  peer:  p99 of POST /checkin (staff number + PIN, scrypt) of the same
         phones, same run, same concurrency.
  limit: p99 of a gunicorn hello-world served with the portal's gunicorn
         flags, the same requests per phone from the same client processes.
scoring_screen (ms): from the last score answered to the hub's
  big-screen JSON (/api/v1/events/<id>/contest, polled every 50 ms) showing
  every latest score, equal to the hand computation of the rule.
  peer:  the same for the check-ins of the same run: from the last check-in
         answered to the hub holding all of them.
  limit: the broker: one QoS 1 envelope holding the burst's score records,
         from the node's MQTT user through Mosquitto to a subscriber as the
         hub's user that only counts it, no database; median of 20.
p50s go beside them in the JSON's printout (stderr).

    .venv/bin/python bench/bench_scoring.py [--clients 50]
"""

import argparse
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

from _common import NODE, ROOT, SITE, Broker, free_port, wait_for, write_result

from edge.db import open_db as open_node_db
from hub.contests import acts
from protocol import topics
from protocol.clock import iso
from protocol.ids import record_id
from protocol.records import join_envelope
from runtime.daemon import GUNICORN_WORKER, die_with_parent
from runtime.mqttclient import make_client
from tests.hubweb import make_app, signed_in
from tests.load.test_contest_burst import (
    ACT, ACT_SECONDS, EVENT, OUTSIDER, PHONES, Phone, act_open_on_node, cast, hand_computation,
    matches, node_config, node_ready, portal_up, screen_row, seed_hub, source,
)
from tests.load.conftest import rows

THREADS_PER_PROCESS = 5
POLL = 0.05
# As runtime.daemon.exec_gunicorn serves the portal.
GUNICORN = ["--workers", "2", *GUNICORN_WORKER, "--access-logfile", "-"]
HELLO = "def app(environ, start_response):\n" \
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n" \
        "    return [b'hello']\n"


# --- the client processes ---------------------------------------------------------------


def _phase(name: str, arg, phones: dict, share: list) -> list:
    """One phase for this process's phones, THREADS_PER_PROCESS at a time;
    returns (seconds, done_at) of each POST that phase measures."""

    def run(item):
        i, spec = item
        phone = phones[i]
        if name == "checkin":
            if spec["judge"]:
                return []
            answer = phone.check_in()
            return [(answer.seconds, answer.done_at)]
        if name == "signin":
            posted, page = phone.sign_in()
            phone.expect(page, 200, b"Score the acts", what="after sign-in")
            return [(posted.seconds, posted.done_at)]
        if name == "score":
            return [(a.seconds, a.done_at) for a in phone.score_all(ACT, spec["values"])]
        if name == "hello":
            port, requests = arg
            hello = Phone(port, phone.address, phone.staff_id)
            return [(a.seconds, a.done_at) for a in (
                hello.expect(hello.request("GET", "/"), 200, b"hello", what="hello")
                for _ in range(requests(spec)))]
        raise ValueError(name)

    with ThreadPoolExecutor(THREADS_PER_PROCESS) as pool:
        return [x for got in pool.map(run, share) for x in got]


def _client(conn, port: int, share: list) -> None:
    phones = {i: Phone(port, source(i), spec["staff_id"]) for i, spec in share}
    while True:
        command = conn.recv()
        if command is None:
            return
        try:
            conn.send(("ok", _phase(*command, phones, share)))
        except Exception as exc:  # noqa: BLE001 - reported by the parent
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


def requests_in_burst(spec: dict) -> int:
    """What a phone sends in the burst: GET /score, then POST + GET per score."""
    return 1 + 2 * len(spec["values"])


class Clients:
    """The phones, spread over processes; ``phase`` runs one step on all of them."""

    def __init__(self, port: int, cast_: list[dict], clients: int):
        processes = max(1, clients // THREADS_PER_PROCESS)
        shares = [[(i, cast_[i]) for i in range(k, len(cast_), processes)]
                  for k in range(processes)]
        self.pipes, self.workers = [], []
        for share in shares:
            parent, child = multiprocessing.Pipe()
            worker = multiprocessing.Process(target=_client, args=(child, port, share),
                                             daemon=True)
            worker.start()
            self.pipes.append(parent)
            self.workers.append(worker)

    def phase(self, name: str, arg=None) -> list[tuple[float, float]]:
        for pipe in self.pipes:
            pipe.send((name, arg))
        results = [pipe.recv() for pipe in self.pipes]
        errors = [detail for status, detail in results if status == "error"]
        if errors:
            raise RuntimeError(f"{name}: {len(errors)} client processes failed, first: "
                               f"{errors[0]}")
        return [x for _, got in results for x in got]

    def close(self) -> None:
        for pipe in self.pipes:
            pipe.send(None)
        for worker in self.workers:
            worker.join(10)


class Watch(threading.Thread):
    """Polls ``check`` every POLL seconds until it is true; ``at`` is the wall
    time it first was."""

    def __init__(self, check, timeout: float = 120.0):
        super().__init__(daemon=True)
        self.check, self.timeout, self.at, self.error = check, timeout, None, None

    def run(self):
        deadline = time.monotonic() + self.timeout
        try:
            while time.monotonic() < deadline:
                if self.check():
                    self.at = time.time()
                    return
                time.sleep(POLL)
        except Exception as exc:  # noqa: BLE001 - reported by result()
            self.error = exc

    def result(self, what: str) -> float:
        self.join(self.timeout + 10)
        if self.error:
            raise self.error
        if self.at is None:
            raise TimeoutError(f"timed out waiting for {what}")
        return self.at


def percentile(sorted_values, p) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(p / 100 * len(sorted_values)))]


# --- the processes of node and hub ------------------------------------------------------


def start(argv: list, log, env=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *argv], cwd=ROOT, stdout=log, stderr=log,
                            env=env or dict(os.environ, PYTHONPATH=str(ROOT)),
                            preexec_fn=die_with_parent())


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def burst(tmp: Path, clients: int) -> dict:
    """The whole scenario; returns the measured lists and times."""
    rng = random.Random(14)
    cast_ = cast(rng)
    expected = hand_computation(cast_)
    hub_db = tmp / "hub" / "hub.db"
    hub_db.parent.mkdir(parents=True)
    hub = seed_hub(hub_db, cast_)
    procs = []
    log = open(tmp / "processes.log", "ab")
    with Broker(tmp / "broker") as broker:
        try:
            port = free_port()
            config = node_config(tmp / "n1", SITE, broker.settings(NODE), port)
            node_db = tmp / "n1" / "node.db"
            open_node_db(node_db).close()
            mqtt = broker.settings("hub")
            hub_config = tmp / "hub" / "hub.json"
            hub_config.write_text(json.dumps({
                "site": SITE, "db": str(hub_db),
                "mqtt": {"host": mqtt.host, "port": mqtt.port, "username": mqtt.username,
                         "password": mqtt.password}}))
            procs.append(start(["-m", "hub.cli", "--config", hub_config, "ingest"], log))
            procs.append(start(["-m", "edge.cli", "--config", config, "sync"], log))
            procs.append(start(["-m", "edge.cli", "--config", config, "portal"], log))
            wait_for(lambda: portal_up(port), 30, message="the portal under gunicorn")
            wait_for(lambda: node_ready(node_db, PHONES + 1), 60,
                     message="the roster and the contest in the node's config")

            phones = Clients(port, cast_, clients)
            outsider = Phone(port, source(PHONES), OUTSIDER)
            try:
                audience = sum(1 for p in cast_ if not p["judge"])
                to_hub = Watch(lambda: rows(hub_db, "SELECT count(*) FROM checkins WHERE "
                                                    "event_id = ?", EVENT)[0][0] == audience)
                to_hub.start()
                checkins = phones.phase("checkin")
                checkins_at_hub = to_hub.result("every check-in at the hub")
                phones.phase("signin")
                outsider.expect(outsider.sign_in()[1], 403, b"Check in first",
                                what="outsider's page")

                with hub.conn:
                    acts.open_act(hub, EVENT, ACT, ACT_SECONDS)
                wait_for(lambda: act_open_on_node(node_db), 30,
                         message="the act open on the node")
                screen = signed_in(make_app(hub_db), hub, "office")
                seen = [None]

                def on_screen():
                    seen[0] = screen_row(screen)
                    return matches(seen[0], expected)

                watch = Watch(on_screen)
                watch.start()
                burst_start = time.time()
                refused = threading.Thread(target=lambda: outsider.expect(outsider.request(
                    "POST", "/score", outsider.form(act=ACT, value=8)), 403,
                    b"Check in first", what="outsider's score"))
                refused.start()
                scores = phones.phase("score")
                refused.join()
                screen_at = watch.result(f"the screen to show the hand computation {expected}"
                                         f" (last seen: {seen[0]})")
            finally:
                phones.close()
        finally:
            for proc in reversed(procs):
                stop(proc)
            hub.close()
            log.close()
    last_checkin = max(t for _, t in checkins)
    last_score = max(t for _, t in scores)
    return {"cast": cast_, "checkins": sorted(s for s, _ in checkins),
            "scores": sorted(s for s, _ in scores), "burst_s": last_score - burst_start,
            "checkins_to_hub": checkins_at_hub - last_checkin,
            "scores_to_screen": screen_at - last_score}


def hello_limit(tmp: Path, cast_: list[dict], clients: int) -> list[float]:
    """p99 material of a gunicorn hello-world under the burst's requests."""
    (tmp / "hello").mkdir()
    (tmp / "hello" / "hello_app.py").write_text(HELLO)
    port = free_port()
    with open(tmp / "hello.log", "ab") as log:
        proc = start(["-m", "gunicorn", "--bind", f"127.0.0.1:{port}", *GUNICORN,
                      "hello_app:app"], log,
                     env=dict(os.environ, PYTHONPATH=f"{tmp / 'hello'}{os.pathsep}{ROOT}"))
        try:
            wait_for(lambda: portal_up(port), 30, message="the hello-world")
            phones = Clients(port, cast_, clients)
            try:
                got = phones.phase("hello", (port, requests_in_burst))
            finally:
                phones.close()
        finally:
            stop(proc)
    return sorted(s for s, _ in got)


def broker_limit(tmp: Path, records: int, rounds: int = 20) -> float:
    """Median seconds for one QoS 1 envelope of ``records`` score records from
    the node's user to a counting subscriber as the hub's user."""
    now = datetime.now(timezone.utc)
    ms = int(now.timestamp() * 1000)
    bodies = [json.dumps({"id": record_id(ms + i), "type": "score", "ts": iso(now),
                          "event_id": EVENT, "act": ACT, "staff_id": f"C{i:04d}",
                          "value": 1 + i % 10, "taken_at": iso(now)}, separators=(",", ":"))
              for i in range(records)]
    payload = join_envelope(NODE, bodies, "b1")
    topic = topics.node_up(SITE, NODE, "batch")
    with Broker(tmp / "limit-broker") as broker:
        arrived, subscribed = threading.Event(), threading.Event()
        counter = make_client("bench-counter", broker.settings("hub"))
        counter.on_connect = lambda c, *a: c.subscribe(topics.all_nodes_up(SITE), qos=1)
        counter.on_subscribe = lambda *a: subscribed.set()
        counter.on_message = lambda *a: arrived.set()
        publisher = make_client("bench-publisher", broker.settings(NODE))
        times = []
        try:
            counter.connect(broker.settings("hub").host, broker.port)
            counter.loop_start()
            publisher.connect(broker.settings(NODE).host, broker.port)
            publisher.loop_start()
            if not subscribed.wait(10):
                raise TimeoutError("the counting subscriber did not subscribe")
            wait_for(publisher.is_connected, 10, message="the publisher to connect")
            for _ in range(rounds):
                arrived.clear()
                started = time.perf_counter()
                publisher.publish(topic, payload, qos=1)
                if not arrived.wait(10):
                    raise TimeoutError("the envelope did not arrive")
                times.append(time.perf_counter() - started)
        finally:
            for client in (publisher, counter):
                client.disconnect()
                client.loop_stop()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50,
                        help="phones talking to the portal at once")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-scoring-") as tmp:
        tmp = Path(tmp)
        run = burst(tmp, args.clients)
        hello = hello_limit(tmp, run["cast"], args.clients)
        broker = broker_limit(tmp, len(run["scores"]))
    scores, checkins = run["scores"], run["checkins"]
    label = (f"{PHONES} phones ({len(scores)} scores, {args.clients} at once over "
             f"{args.clients // THREADS_PER_PROCESS} client processes), portal under gunicorn "
             f"{' '.join(GUNICORN[:-2])}")
    write_result("scoring_p99", "ms", percentile(scores, 99) * 1000, False,
                 (f"POST /checkin (staff number + PIN, scrypt), p99, same phones and run; "
                  f"{label}", percentile(checkins, 99) * 1000),
                 ("gunicorn hello-world, same flags, the burst's requests from the same "
                  "clients, p99", percentile(hello, 99) * 1000))
    write_result("scoring_screen", "ms", run["scores_to_screen"] * 1000, False,
                 (f"check-ins of the same run: last answered -> all {len(checkins)} at the hub "
                  f"(polled every {POLL * 1000:.0f} ms)", run["checkins_to_hub"] * 1000),
                 (f"broker/loopback: one QoS 1 envelope of {len(scores)} score records, node "
                  f"user -> Mosquitto -> hub user, no database, median of 20", broker * 1000))
    print(f"burst: {len(scores)} scores sent in {run['burst_s']:.2f} s; p50 POST /score "
          f"{percentile(scores, 50) * 1000:.0f} ms, POST /checkin "
          f"{percentile(checkins, 50) * 1000:.0f} ms, hello-world "
          f"{percentile(hello, 50) * 1000:.1f} ms", file=sys.stderr)


if __name__ == "__main__":
    main()
