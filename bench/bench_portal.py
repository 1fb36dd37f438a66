"""Portal check-in latency under load: 2,000 check-ins from 50 concurrent
phones against the real portal under gunicorn, each phone from its own
loopback address with its own MAC in the lease file, as on a node, with a
hospital's roster of 5,000 staff (every phone bound) in the node's state.
Each phone opens the start page and posts its check-in on one keep-alive
connection, as a phone's browser does.

value: p99 of the one-tap check-in of a bound phone (POST /checkin/tap).
peer:  p99 of the staff-number + PIN check-in (POST /checkin), same load: the
       way without a bound phone, dominated by the scrypt PIN check.
limit: p99 of a gunicorn hello-world with the same workers, same load (the
       same two requests on one connection per phone).
p50s are written beside them in bench/results/portal_p50.json.

portal_visit_p99 / _p50: the whole visit, opening the page (connect + GET)
and the tap, so that no wait hides before the tap: the portal as served
(runtime.gunicorn_worker, a new connection waits until a thread is free),
peer the same portal under gunicorn's stock gthread workers, limit the
hello-world's visit.

    .venv/bin/python bench/bench_portal.py [--checkins 2000] [--warmup 200] [--clients 50]
                                           [--staff 5000]
"""

import argparse
import asyncio
import http.client
import json
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlencode

from _common import ROOT, write_result

from edge.db import open_db
from edge.state import NodeState
from protocol.clock import iso
from protocol.pins import device_id, hash_pin
from runtime.daemon import GUNICORN_WORKER
from tests.support import free_port, wait_for

SECRET = "11" * 32
WORKERS = ["--workers", "2", *GUNICORN_WORKER]  # as rounds-edge portal runs it
STOCK = ["--workers", "2", "--worker-class", "gthread", "--threads", "8"]
HELLO = "def app(environ, start_response):\n" \
        "    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '5')])\n" \
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


def node_env(tmp: Path, phones: int, staff: int) -> dict:
    """The environment of a portal serving ``seed_node``'s node in ``tmp``, its
    clock set by NTP as a node in service (without the flag a node looks for it
    on every request)."""
    config = seed_node(tmp, phones, staff)
    synced = tmp / "timesync-synchronized"
    synced.touch()
    return dict(os.environ, ROUNDS_EDGE_CONFIG=str(config), ROUNDS_TIMESYNC_FLAG=str(synced),
                PYTHONPATH=f"{tmp}{os.pathsep}{ROOT}")


def serve(target: str, env: dict, log, workers=WORKERS) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
                             *workers, target], cwd=ROOT, env=env, stdout=log, stderr=log)
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


class Browser:
    """One phone's HTTP/1.1 keep-alive connection, as its browser keeps one
    for a page and the form posted from it. Spoken by hand over asyncio
    streams: the load generator shares the server's two cores, so it has to
    cost them as little as it can (http.client in threads took about a
    quarter of the machine, and as much from the hello-world limit)."""

    def __init__(self, port: int, source: str):
        self.port, self.source = port, source
        self.reader = self.writer = None

    @classmethod
    async def open(cls, port: int, source: str) -> "Browser":
        browser = cls(port, source)
        await browser._connect()
        return browser

    async def _connect(self):
        self.reader, self.writer = await asyncio.open_connection(
            "127.0.0.1", self.port, local_addr=(self.source, 0))

    async def send(self, method, path, body=b"", cookie=""):
        """(status, header bytes, body bytes, seconds until the whole answer
        was in, including a new connection when the server closed the last)."""
        started = time.perf_counter()
        if self.writer is None:
            await self._connect()
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        if body:
            head += ("Content-Type: application/x-www-form-urlencoded\r\n"
                     f"Content-Length: {len(body)}\r\n")
        if cookie:
            head += f"Cookie: {cookie}\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        header = await self.reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", header)
        data = await self.reader.readexactly(int(length.group(1))) if length else b""
        if re.search(rb"(?i)\r\nconnection: *close", header):
            self.close()
        return int(header[9:12]), header, data, time.perf_counter() - started

    def close(self):
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


async def checkin(port: int, i: int, tap: bool) -> tuple[float, float]:
    """One phone's check-in: open the portal, post the form (on the same
    connection); returns (seconds to connect and get the page, the POST's)."""
    started = time.perf_counter()
    browser = await Browser.open(port, phone(i)[0])
    try:
        _, header, page, _ = await browser.send("GET", "/?lang=en")
        opened = time.perf_counter() - started
        cookie = re.search(rb"(?i)\r\nset-cookie: *([^;\r]+)", header).group(1).decode()
        token = re.search(rb'name="csrf_token" [^>]*value="([^"]+)"', page).group(1).decode()
        form = {"csrf_token": token} if tap else {"csrf_token": token, "staff_id": f"S{i:04d}",
                                                  "pin": "2468"}
        status, _, _, elapsed = await browser.send(
            "POST", "/checkin/tap" if tap else "/checkin", urlencode(form).encode(), cookie)
    finally:
        browser.close()
    if status != 303:
        raise RuntimeError(f"check-in {i} answered {status}")
    return opened, elapsed


async def hello(port: int, i: int, tap: bool) -> tuple[float, float]:
    """The same two requests on one connection, to the hello-world."""
    started = time.perf_counter()
    browser = await Browser.open(port, phone(i)[0])
    try:
        await browser.send("GET", "/?lang=en")
        opened = time.perf_counter() - started
        return opened, (await browser.send("POST", "/checkin/tap", b"csrf_token=x"))[3]
    finally:
        browser.close()


PROCESSES = 2  # load-generator processes, one per core


def _load_share(fn, port, indexes, tap, concurrency, out) -> None:
    """One load-generator process: ``concurrency`` phones at a time over its ``indexes``."""
    latencies, errors = [], []
    work = iter(indexes)

    async def client():
        for i in work:
            try:
                latencies.append(await fn(port, i, tap))
            except (OSError, RuntimeError, AttributeError, asyncio.IncompleteReadError) as exc:
                errors.append(repr(exc))
                return

    async def run():
        await asyncio.gather(*(client() for _ in range(concurrency)))

    asyncio.run(run())
    out.put((latencies, errors))


def load(fn, port, phones: range, clients, tap=True) -> list[tuple[float, float]]:
    """A call of ``fn`` for each of ``phones``, ``clients`` at a time, spread
    over PROCESSES processes; their (open, tap) latencies."""
    out = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=_load_share, args=(
        fn, port, phones[k::PROCESSES], tap, clients // PROCESSES, out))
        for k in range(PROCESSES)]
    for w in workers:
        w.start()
    results = [out.get(timeout=300) for _ in workers]
    for w in workers:
        w.join()
    errors = [e for _, errs in results for e in errs]
    if errors:
        raise RuntimeError(f"{len(errors)} clients failed, first: {errors[0]}")
    return [x for lats, _ in results for x in lats]


def server_cpu(pid: int) -> float:
    """CPU seconds (user + system) of gunicorn's master and workers so far."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    total = 0
    for p in [pid, *map(int, children)]:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def percentile(sorted_values, p) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(p / 100 * len(sorted_values)))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkins", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200,
                        help="check-ins of other phones first, not measured (each worker "
                             "parses the roster and compiles its templates once)")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--staff", type=int, default=5000)
    args = parser.parse_args()
    n, clients = args.checkins, args.clients
    runs, cpu_ms = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "hello").mkdir()
        (tmp / "hello" / "hello_app.py").write_text(HELLO)
        log = open(tmp / "servers.log", "ab")
        for name, target, workers, tap in (
                ("tap", "edge.portal:create_app()", WORKERS, True),
                ("pin", "edge.portal:create_app()", WORKERS, False),
                ("hello", "hello_app:app", WORKERS, True),
                ("stock", "edge.portal:create_app()", STOCK, True)):
            (tmp / name).mkdir(exist_ok=True)
            env = node_env(tmp / name, n + args.warmup, args.staff)
            proc, port = serve(target, env, log, workers)
            try:
                fn = hello if name == "hello" else checkin
                load(fn, port, range(n, n + args.warmup), clients, tap)
                before = server_cpu(proc.pid)
                runs[name] = load(fn, port, range(n), clients, tap)
                cpu_ms[name] = (server_cpu(proc.pid) - before) / n * 1000
            finally:
                proc.terminate()
                proc.wait(10)
    print("server CPU per check-in (ms): " + ", ".join(f"{k} {v:.2f}" for k, v in cpu_ms.items()))
    taps = {name: sorted(t for _, t in v) for name, v in runs.items()}
    opens = {name: sorted(o for o, _ in v) for name, v in runs.items()}
    visits = {name: sorted(o + t for o, t in v) for name, v in runs.items()}
    for name in runs:
        print(f"{name}: open p50 {percentile(opens[name], 50) * 1000:.1f} ms, "
              f"p99 {percentile(opens[name], 99) * 1000:.1f} ms; tap p50 "
              f"{percentile(taps[name], 50) * 1000:.1f}, p99 {percentile(taps[name], 99) * 1000:.1f}")
    label = (f"{n} check-ins from {clients} concurrent phones (keep-alive, {PROCESSES}"
             f" client processes, after {args.warmup} not measured), roster of "
             f"{max(n + args.warmup, args.staff):,} staff, gunicorn "
             f"{' '.join(WORKERS)}")
    for p in (99, 50):
        ms = {name: percentile(v, p) * 1000 for name, v in taps.items()}
        write_result(f"portal_p{p}", "ms", ms["tap"], False,
                     (f"staff number + PIN check-in (scrypt), p{p}, {label}", ms["pin"]),
                     (f"gunicorn hello-world, p{p}, same load", ms["hello"]))
        ms = {name: percentile(v, p) * 1000 for name, v in visits.items()}
        write_result(f"portal_visit_p{p}", "ms", ms["tap"], False,
                     (f"the same visits (open the page + tap), p{p}, portal under gunicorn's "
                      f"stock {' '.join(STOCK)}", ms["stock"]),
                     (f"gunicorn hello-world's visits, p{p}, same load", ms["hello"]))


if __name__ == "__main__":
    main()
