"""Portal check-in latency under load: 500 check-ins from 50 concurrent
phones against the real portal under gunicorn, each phone from its own
loopback address with its own MAC in the lease file, as on a node, with a
hospital's roster of 5,000 staff (every phone bound) in the node's state.

value: p99 of the one-tap check-in of a bound phone (POST /checkin/tap).
peer:  p99 of the staff-number + PIN check-in (POST /checkin), same load: the
       way without a bound phone, dominated by the scrypt PIN check.
limit: p99 of a gunicorn hello-world with the same workers, same load.
p50s are written beside them in bench/results/portal_p50.json.

    .venv/bin/python bench/bench_portal.py [--checkins 500] [--clients 50] [--staff 5000]
"""

import argparse
import http.client
import json
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlencode

from _common import ROOT, write_result

from edge.db import open_db
from edge.state import NodeState
from protocol.clock import iso
from protocol.pins import device_id, hash_pin
from tests.support import free_port, wait_for

SECRET = "11" * 32
WORKERS = ["--workers", "2", "--worker-class", "gthread", "--threads", "8"]
HELLO = "def app(environ, start_response):\n" \
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n" \
        "    return [b'hello']\n"


def phone(i: int) -> tuple[str, str]:
    """(loopback source address, MAC) of phone ``i``."""
    return f"127.0.{1 + i // 250}.{1 + i % 250}", f"02:00:00:00:{i // 256:02x}:{i % 256:02x}"


def seed_node(tmp: Path, phones: int, staff: int = 0) -> Path:
    """A node whose roster has ``max(phones, staff)`` people, each with a bound phone."""
    phones = max(phones, staff)
    db = open_db(tmp / "node.db")
    pin_hash = hash_pin("2468")
    now = datetime.now(timezone.utc)
    staff = [{"staff_id": f"S{i:04d}", "name": f"Staff {i}", "department": "d",
              "pin_hash": pin_hash} for i in range(phones)]
    bindings = [{"device": device_id(bytes.fromhex(SECRET), phone(i)[1]),
                 "staff_id": f"S{i:04d}"} for i in range(phones)]
    NodeState(db).put("roster", {"version": "1", "staff": staff, "bindings": bindings})
    NodeState(db).put("config", {"node": "n1", "zone": "hall-a", "events": [{
        "id": "ev1", "title": "Lecture", "kind": "lecture", "zones": ["hall-a"],
        "start": iso(now - timedelta(minutes=5)), "end": iso(now + timedelta(hours=1)),
        "credit_hours": 1, "min_presence": 0.75}]})
    db.close()
    leases = tmp / "dnsmasq.leases"
    leases.write_text("".join(f"0 {phone(i)[1]} {phone(i)[0]} phone{i} *\n"
                              for i in range(phones)))
    config = tmp / "node.json"
    config.write_text(json.dumps({
        "site": "bench", "node": "n1", "zone": "hall-a", "db": str(tmp / "node.db"),
        "site_secret": SECRET, "mqtt": {},
        "portal": {"url": "http://127.0.0.1/", "leases_file": str(leases)}}))
    return config


def serve(target: str, env: dict, log) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
                             *WORKERS, target], cwd=ROOT, env=env, stdout=log, stderr=log)
    wait_for(lambda: _up(port), timeout=30, message=f"{target} up")
    return proc, port


def _up(port) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/healthz")
        conn.getresponse().read()
        return True
    except OSError:
        return False


def request(port, source, method, path, body=None, cookie=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30,
                                      source_address=(source, 0))
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
    if cookie:
        headers["Cookie"] = cookie
    started = time.perf_counter()
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    elapsed = time.perf_counter() - started
    conn.close()
    return response, data, elapsed


def checkin(port: int, i: int, tap: bool) -> float:
    """One phone's check-in: open the portal, post the form; returns the POST's latency."""
    source = phone(i)[0]
    response, page, _ = request(port, source, "GET", "/?lang=en")
    cookie = response.getheader("Set-Cookie", "").split(";")[0]
    token = re.search(rb'name="csrf_token" [^>]*value="([^"]+)"', page).group(1).decode()
    form = {"csrf_token": token} if tap else {"csrf_token": token, "staff_id": f"S{i:04d}",
                                              "pin": "2468"}
    response, _, elapsed = request(port, source, "POST", "/checkin/tap" if tap else "/checkin",
                                   urlencode(form), cookie)
    if response.status != 303:
        raise RuntimeError(f"check-in {i} answered {response.status}")
    return elapsed


def hello(port: int, i: int, tap: bool) -> float:
    return request(port, phone(i)[0], "GET", "/")[2]


THREADS_PER_PROCESS = 5


def _load_share(fn, port, indexes, tap, out) -> None:
    """One client process: its phones, THREADS_PER_PROCESS at a time."""
    latencies, errors, lock = [], [], threading.Lock()
    work = iter(indexes)

    def client():
        while True:
            with lock:
                i = next(work, None)
            if i is None:
                return
            try:
                elapsed = fn(port, i, tap)
            except (OSError, RuntimeError, AttributeError) as exc:
                errors.append(repr(exc))
                return
            with lock:
                latencies.append(elapsed)

    threads = [threading.Thread(target=client) for _ in range(THREADS_PER_PROCESS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((latencies, errors))


def load(fn, port, total, clients, tap=True) -> list[float]:
    """``total`` calls of ``fn`` from ``clients`` concurrent clients, spread over
    processes so that the load generator's own GIL does not add to the figures."""
    processes = max(1, clients // THREADS_PER_PROCESS)
    out = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=_load_share,
                                       args=(fn, port, range(k, total, processes), tap, out))
               for k in range(processes)]
    for w in workers:
        w.start()
    results = [out.get(timeout=300) for _ in workers]
    for w in workers:
        w.join()
    errors = [e for _, errs in results for e in errs]
    if errors:
        raise RuntimeError(f"{len(errors)} clients failed, first: {errors[0]}")
    return sorted(x for lats, _ in results for x in lats)


def percentile(sorted_values, p) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(p / 100 * len(sorted_values)))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkins", type=int, default=500)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--staff", type=int, default=5000)
    args = parser.parse_args()
    n, clients = args.checkins, args.clients
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "tap").mkdir(), (tmp / "pin").mkdir(), (tmp / "hello").mkdir()
        (tmp / "hello" / "hello_app.py").write_text(HELLO)
        log = open(tmp / "servers.log", "ab")
        runs = {}
        for name, target, tap in (("tap", "edge.portal:create_app()", True),
                                  ("pin", "edge.portal:create_app()", False),
                                  ("hello", "hello_app:app", True)):
            env = dict(os.environ, ROUNDS_EDGE_CONFIG=str(seed_node(tmp / name, n, args.staff)),
                       PYTHONPATH=f"{tmp / name}{os.pathsep}{ROOT}")
            proc, port = serve(target, env, log)
            try:
                runs[name] = load(hello if name == "hello" else checkin, port, n, clients, tap)
            finally:
                proc.terminate()
                proc.wait(10)
    ms = {name: (percentile(v, 50) * 1000, percentile(v, 99) * 1000) for name, v in runs.items()}
    label = (f"{n} check-ins from {clients} concurrent phones ({clients // THREADS_PER_PROCESS}"
             f" client processes), roster of {max(n, args.staff):,} staff, gunicorn "
             f"{' '.join(WORKERS)}")
    write_result("portal_p99", "ms", ms["tap"][1], False,
                 (f"staff number + PIN check-in (scrypt), p99, {label}", ms["pin"][1]),
                 ("gunicorn hello-world, p99, same load", ms["hello"][1]))
    write_result("portal_p50", "ms", ms["tap"][0], False,
                 (f"staff number + PIN check-in (scrypt), p50, {label}", ms["pin"][0]),
                 ("gunicorn hello-world, p50, same load", ms["hello"][0]))


if __name__ == "__main__":
    main()
