"""The dashboard's server time at hospital scale, ms (lower is better).

A hub database with 1,000,000 attendance rows (500,000 presence intervals and
500,000 check-ins over 365 days and 50 zones), 10,000 staff in 40 departments
and 100,000 tickets, built once through ``hub.db.open_db`` (the real schema and
indexes) and cached under /tmp keyed by a hash of that schema. The real Flask
app (``hub.web.create_app``) answers, through its test client, a session signed
in through the login form (office role):

* ``dashboard``: GET /events/<id>, the attendance page of an event that
  expects 2,000 people (8 departments), held mid-year in the busiest zone;
  beside it the same page for such an event on the last day, the live
  fragment the page polls (GET /events/<id>/live) when it exists, and page 2
  of the "present" tab (the page shows at most hub.web.pages.PER_PAGE rows,
  and every response is checked to show a page of rows and counts that cover
  everyone expected);
* ``dashboard_attendance_api``: GET /api/v1/events/<id>/attendance;
* ``dashboard_tickets``: GET /api/v1/tickets?department=<d>&state=new,assigned,in_progress;
* ``dashboard_tickets_page``: GET /tickets/?department=<d> when the board page exists.

value: median of RUNS requests after WARMUP (p95 beside it). peer: the same
request on a copy of the database without the dashboard's indexes. limit: the
bare SQL of the main index lookup (the event's presence rows; the ticket list)
on a fresh connection. The plans of the SQL the code really runs (caught with
a trace callback) are written into the results and must use indexes.

    .venv/bin/python bench/bench_dashboard.py [--runs 30] [--rebuild] [--profile]
"""

import argparse
import cProfile
import hashlib
import json
import os
import pstats
import random
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from _common import RESULTS, machine

from hub.attendance import attendance
from hub.db import open_db
from hub.people import accounts
from hub.tickets import tickets
from hub.web import create_app
from hub.web.pages import PER_PAGE
from protocol.clock import iso

CACHE = Path(tempfile.gettempdir()) / "rounds-bench-dashboard"
BUILD_VERSION = 3  # bump when Builder makes different rows: the cache key changes
SITE = "bench-hospital"
USERNAME, PASSWORD = "bench-office", "bench office password"
TARGET_MS = 100.0
WARMUP = 3
PEER_RUNS = 10

DAYS = 365
DAY0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
HALL = "hall-a"  # the lecture hall: one event a day plus the big ones, two nodes
ZONES = [HALL] + [f"zone-{i:02d}" for i in range(1, 50)]
DEPARTMENTS = [f"dept-{i:02d}" for i in range(40)]
PER_DEPARTMENT = 250
EVENTS_PER_DAY = 6
PRESENCE_ROWS = CHECKIN_ROWS = 500_000
TICKET_ROWS = 100_000
BIG_EVENT, BIG_DAY = "big-mid", 182      # measured: 2,000 expected, day 182 of 365
LATE_EVENT, LATE_DAY = "big-late", 364   # the same on the last day (the live case)
TICKET_DEPARTMENT = "environmental_services"
OPEN_STATES = "new,assigned,in_progress"
# category -> (share of tickets, department), as the seeded routing sends them
CATEGORIES = {"hygiene": (35, "environmental_services"), "facilities": (25, "facilities"),
              "safety": (10, "security"), "signage": (10, "civility_office"),
              "service": (10, "civility_office"), "queue": (10, "civility_office")}
# Indexes the dashboard added or reads by; the peer runs without them.
DASHBOARD_INDEXES = ("tickets_department", "presence_zone_last_first", "checkins_event",
                     "staff_department")
BIG_DEPARTMENTS = DEPARTMENTS[:8]  # what the big events expect: 2,000 people
EXPECTED = len(BIG_DEPARTMENTS) * PER_DEPARTMENT
BIG_TABLES = ("presence", "checkins", "tickets", "staff")
FILTER_STATUS = "present"  # the status tab measured on its page 2 (filtered_page)


# --- the database -----------------------------------------------------------------


def stamp(seconds: float) -> str:
    """Wire timestamp (protocol.clock.iso) of ``seconds`` after DAY0, fast."""
    return (DAY0 + timedelta(seconds=seconds)).isoformat(timespec="milliseconds")[:-6] + "Z"


class Builder:
    """Rows for every table, generated from one seed, inserted by executemany."""

    def __init__(self, seed: int = 20251124):
        self.rng = random.Random(seed)
        self.staff = [f"S{i:05d}" for i in range(1, len(DEPARTMENTS) * PER_DEPARTMENT + 1)]
        self.department_of = {s: DEPARTMENTS[i // PER_DEPARTMENT] for i, s in enumerate(self.staff)}
        self.device_of = {s: f"{self.rng.getrandbits(64):016x}" for s in self.staff}
        self.members = {d: [s for s in self.staff if self.department_of[s] == d]
                        for d in DEPARTMENTS}
        self.events, self.expected, self.checkins, self.presence = [], [], [], []

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def node(self, zone: str) -> str:
        return f"{zone}-{self.rng.randint(1, 2)}" if zone == HALL else f"{zone}-1"

    def add_checkin(self, staff, event_id, zone, at: float) -> None:
        method = "presence" if self.rng.random() < 0.4 else "portal"
        self.checkins.append((self.uid(), self.node(zone), stamp(at), 1, stamp(at + 3), staff,
                              event_id, zone, method, self.device_of[staff]))

    def add_presence(self, staff, zone, first: float, last: float, node=None) -> None:
        named = staff if self.rng.random() < 0.67 else None  # else attributed by device
        self.presence.append((self.uid(), node or self.node(zone), stamp(last), 1,
                              stamp(last + 5), self.device_of[staff], named, zone,
                              stamp(first), stamp(last), 1))

    def add_event(self, event_id, zone, start: float, hours: float, departments, rate) -> None:
        end = start + hours * 3600
        self.events.append((event_id, f"Lecture {event_id}", "lecture", json.dumps([zone]),
                            stamp(start), stamp(end), hours, 0.75))
        self.expected += [(event_id, "department", d) for d in departments]
        invited = [s for d in departments for s in self.members[d]]
        people = [s for s in invited if self.rng.random() < rate]
        people += self.rng.sample(self.staff, max(5, len(invited) // 20))  # not on the list
        rng = self.rng
        for staff in people:
            self.add_checkin(staff, event_id, zone, start + rng.uniform(-600, 1200))
            if rng.random() < 0.12:  # checked in twice (portal, then by presence)
                self.add_checkin(staff, event_id, zone, start + rng.uniform(0, 1800))
            if rng.random() < 0.25:
                continue  # phone not bound or not seen
            first, last = start + rng.uniform(-600, 900), end + rng.uniform(-1500, 600)
            spans = [(first, last)]
            if rng.random() < 0.2:  # left for a while and came back
                gap = rng.uniform(first, last)
                spans = [(first, gap), (gap + rng.uniform(300, 900), last)]
            for lo, hi in spans:
                self.add_presence(staff, zone, lo, max(lo, hi))
                if zone == HALL and rng.random() < 0.4:  # both hall nodes saw the phone
                    self.add_presence(staff, zone, lo + 20, max(lo, hi) - 20,
                                      node=f"{HALL}-2")

    def generate(self) -> None:
        rng = self.rng
        for day in range(DAYS):
            for k in range(EVENTS_PER_DAY):
                zone = HALL if k == 0 else rng.choice(ZONES[1:])
                start = day * 86400 + k * 5400  # local 08:00, 09:30, ... (UTC+8)
                self.add_event(f"ev-{day:03d}-{k}", zone, start, rng.choice((1, 1.5)),
                               [rng.choice(DEPARTMENTS)], 0.78)
        for event_id, day in ((BIG_EVENT, BIG_DAY), (LATE_EVENT, LATE_DAY)):
            self.add_event(event_id, HALL, day * 86400 + 5 * 3600, 2, BIG_DEPARTMENTS, 0.9)
        while len(self.checkins) < CHECKIN_ROWS:  # walk-ins outside any event
            self.add_checkin(rng.choice(self.staff), None, rng.choice(ZONES),
                             rng.uniform(0, DAYS * 86400))
        while len(self.presence) < PRESENCE_ROWS:  # staff on the wards all day
            first = rng.uniform(0, DAYS * 86400)
            self.add_presence(rng.choice(self.staff), rng.choice(ZONES), first,
                              first + rng.expovariate(1 / 5400))

    def ticket_rows(self) -> list[tuple]:
        rng, rows = self.rng, []
        names = list(CATEGORIES)
        weights = [CATEGORIES[c][0] for c in names]
        for category in rng.choices(names, weights, k=TICKET_ROWS):
            at = rng.uniform(0, DAYS * 86400)
            age_days = DAYS - at / 86400
            p_open = 0.8 if age_days < 3 else 0.3 if age_days < 30 else 0.01
            state = rng.choice(("new", "assigned", "in_progress") if rng.random() < p_open
                               else ("resolved", "closed", "rejected"))
            rows.append((self.uid(), category, rng.choice(ZONES), CATEGORIES[category][1],
                         state, stamp(at + 2), stamp(at), stamp(at + 8 * 3600),
                         stamp(at + 3600), rng.choice(self.staff), "a report note",
                         json.dumps([hashlib.sha256(str(at).encode()).hexdigest()])))
        return rows

    def insert(self, db) -> None:
        conn = db.conn
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO zones (zone, name) VALUES (?, ?)",
                         [(z, z.title()) for z in ZONES])
        conn.executemany("INSERT INTO departments (department, name) VALUES (?, ?)",
                         [(d, d.title()) for d in DEPARTMENTS])
        conn.executemany("INSERT INTO staff (staff_id, name, department) VALUES (?, ?, ?)",
                         [(s, f"Staff {s}", self.department_of[s]) for s in self.staff])
        conn.executemany("INSERT INTO devices (device, staff_id, bound_at) VALUES (?, ?, ?)",
                         [(d, s, stamp(0)) for s, d in self.device_of.items()])
        conn.executemany("INSERT INTO nodes (node, zone, state) VALUES (?, ?, 'online')",
                         [(f"{z}-1", z) for z in ZONES] + [(f"{HALL}-2", HALL)])
        conn.executemany('INSERT INTO events (id, title, kind, zones, start, "end", '
                         "credit_hours, min_presence) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         self.events)
        conn.executemany("INSERT INTO event_expected (event_id, kind, value) VALUES (?, ?, ?)",
                         self.expected)
        conn.executemany("INSERT INTO checkins (id, node, ts, clock_synced, received_at, "
                         "staff_id, event_id, zone, method, device) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", self.checkins)
        conn.executemany("INSERT INTO presence (id, node, ts, clock_synced, received_at, "
                         "device, staff_id, zone, first_seen, last_seen, closed) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", self.presence)
        minutes = [(self.uid(), f"{HALL}-1", stamp(m * 60), 1, stamp(m * 60), HALL,
                    stamp(m * 60), self.rng.randrange(0, 300))
                   for day in (*range(BIG_DAY - 3, BIG_DAY + 4), *range(LATE_DAY - 6, DAYS))
                   for m in range(day * 1440, (day + 1) * 1440)]
        conn.executemany("INSERT INTO occupancy (id, node, ts, clock_synced, received_at, "
                         "zone, minute, devices) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", minutes)
        conn.executemany("INSERT INTO tickets (report_id, category, zone, department, state, "
                         "created_at, reported_at, due_at, updated_at, staff_id, note, photos) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", self.ticket_rows())
        accounts.create(db, USERNAME, "office", PASSWORD)
        conn.execute("COMMIT")


def schema_hash() -> str:
    """Hash of the schema the migrations make (tables, indexes) and of the data sizes."""
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-schema-") as tmp:
        db = open_db(Path(tmp) / "hub.db")
        schema = [tuple(r) for r in db.conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
            "ORDER BY type, name")]
        db.close()
    sizes = (DAYS, len(ZONES), len(DEPARTMENTS), PER_DEPARTMENT, EVENTS_PER_DAY,
             PRESENCE_ROWS, CHECKIN_ROWS, TICKET_ROWS, BIG_DAY, LATE_DAY, BUILD_VERSION)
    return hashlib.sha256(repr((schema, sizes)).encode()).hexdigest()[:16]


def cached_database(rebuild: bool) -> Path:
    """The built database for this schema, built (~1 min) when missing."""
    key = schema_hash()
    path = CACHE / key / "hub.db"
    if path.exists() and not rebuild:
        print(f"using cached {path}", file=sys.stderr)
        return path
    if CACHE.exists():  # databases of other schemas are stale
        for old in CACHE.iterdir():
            shutil.rmtree(old)
    building = CACHE / f"{key}.building"
    building.mkdir(parents=True)
    start = time.perf_counter()
    builder = Builder()
    builder.generate()
    db = open_db(building / "hub.db")
    db.conn.execute("PRAGMA synchronous = OFF")  # this connection only: a scratch build
    db.conn.execute("PRAGMA cache_size = -400000")
    builder.insert(db)
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    building.rename(CACHE / key)
    print(f"built {path} in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return path


def without_dashboard_indexes(source: Path, directory: Path) -> Path:
    """A copy of ``source`` with the dashboard's indexes dropped (the peer)."""
    directory.mkdir(parents=True)
    path = directory / "hub.db"
    shutil.copyfile(source, path)
    db = open_db(path, migrate=False)
    present = {r[0] for r in db.conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    for name in DASHBOARD_INDEXES:
        if name in present:
            db.conn.execute(f"DROP INDEX {name}")
    db.close()
    return path


# --- measuring --------------------------------------------------------------------


def signed_in_client(db_path: Path):
    app = create_app({"HUB_DB": str(db_path), "SITE": SITE, "TESTING": True})
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
    response = client.post("/login", data={"username": USERNAME, "password": PASSWORD,
                                           "csrf_token": token})
    if response.status_code != 303:
        raise RuntimeError(f"sign-in failed: {response.status_code}")
    return app, client


def has_endpoint(app, endpoint: str) -> bool:
    return endpoint in app.view_functions


class Timing:
    """Per-request wall and CPU milliseconds of one URL. The wall time is the
    figure; the CPU time of this process tells how much of it was waiting for
    the CPU when other work shares the machine."""

    def __init__(self, client, url: str, runs: int, check):
        self.url, self.wall, self.cpu = url, [], []
        for i in range(WARMUP + runs):
            wall, cpu = time.perf_counter(), time.process_time()
            response = client.get(url)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            if response.status_code != 200:
                raise RuntimeError(f"GET {url}: {response.status_code}")
            check(response)
            if i >= WARMUP:
                self.wall.append(wall * 1000)
                self.cpu.append(cpu * 1000)

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    def summary(self) -> dict:
        return {"request": f"GET {self.url}", "median": round(self.median, 3),
                "p95": round(p95(self.wall), 3),
                "cpu_median": round(statistics.median(self.cpu), 3), "runs": len(self.wall)}


def p95(times: list[float]) -> float:
    """Nearest-rank 95th percentile."""
    ordered = sorted(times)
    return ordered[max(0, -(-len(ordered) * 95 // 100) - 1)]


def traced_selects(db_path: Path, work) -> list[str]:
    """The SELECT statements ``work(db)`` runs, with their parameters bound."""
    db = open_db(db_path, migrate=False)
    seen = []
    db.conn.set_trace_callback(seen.append)
    try:
        work(db)
    finally:
        db.conn.set_trace_callback(None)
        db.close()
    return [s for s in seen if s.lstrip().upper().startswith(("SELECT", "WITH"))]


def query_ms(db_path: Path, sql: str, runs: int) -> float:
    """Median ms to run ``sql`` and fetch every row, each time on a fresh connection."""
    times = []
    for _ in range(runs + 1):
        conn = sqlite3.connect(db_path)
        start = time.perf_counter()
        conn.execute(sql).fetchall()
        times.append((time.perf_counter() - start) * 1000)
        conn.close()
    return statistics.median(times[1:])


def plan(db_path: Path, sql: str) -> list[str]:
    conn = sqlite3.connect(db_path)
    try:
        return [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql)]
    finally:
        conn.close()


def check_plan(sql: str, lines: list[str]) -> None:
    """Fail unless the plan reads by an index and scans none of the big tables."""
    aliases = {t: t for t in BIG_TABLES}
    for table in BIG_TABLES:  # "FROM presence p", "JOIN staff s"
        for word in sql.replace("\n", " ").split(f" {table} ")[1:]:
            alias = word.split()[0] if word.split() else ""
            if alias.isidentifier() and alias.upper() not in ("WHERE", "ON", "JOIN", "LEFT"):
                aliases[alias] = table
    scans = [line for line in lines if line.startswith("SCAN ")
             and line.split()[1] in aliases]
    if scans or not any(("USING INDEX" in line or "USING COVERING INDEX" in line
                         or "USING PRIMARY KEY" in line) for line in lines):
        raise AssertionError(f"query does not use an index: {lines}\n{sql}")


def explain(db_path: Path, statements: list[str]) -> list[dict]:
    out = []
    for sql in statements:
        lines = plan(db_path, sql)
        check_plan(sql, lines)
        out.append({"sql": " ".join(sql.split()), "plan": lines})
    return out


# --- results ----------------------------------------------------------------------


def write(name: str, timing: Timing, peer: tuple, limit: tuple, **extra) -> dict:
    """bench/results/<name>.json: the DESIGN.md fields, then the detail."""
    result = {
        "name": name, "unit": "ms", "value": round(timing.median, 3),
        "higher_is_better": False,
        "peer": {"name": peer[0], "value": round(peer[1], 3)},
        "limit": {"name": limit[0], "value": round(limit[1], 3)},
        "machine": machine(), "ts": iso(datetime.now(timezone.utc)),
        **timing.summary(), "target_ms": TARGET_MS,
        "load_average": [round(x, 2) for x in os.getloadavg()], **extra,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"{name}: median {result['median']:.1f} ms, p95 {result['p95']:.1f} ms, "
          f"cpu {result['cpu_median']:.1f} ms | peer {peer[1]:.1f} ms | "
          f"limit {limit[1]:.2f} ms", file=sys.stderr)
    return result


def attendance_check(event_id: str, status: str | None = None):
    """The API must list everyone expected. A page or fragment shows one page
    of rows (``hub.web.pages.PER_PAGE``, all of ``status`` when given) of the
    event's people, and status counts that cover everyone expected."""
    def check(response):
        if response.is_json:
            rows = len(response.get_json()["attendance"])
            if rows < EXPECTED:
                raise RuntimeError(f"{rows} attendance rows, expected >= {EXPECTED}")
            return
        html = response.get_data(as_text=True)
        rows = html.count('<tr class="row-')
        if not 0 < rows <= PER_PAGE or "<td>S0" not in html:
            raise RuntimeError(f"the page of {event_id} shows {rows} rows of staff")
        if status is not None and html.count(f'<tr class="row-{status}">') != rows:
            raise RuntimeError(f"the page of {event_id} shows rows other than {status}")
        counts = [re.search(rf'status-{s}"><strong class="count">(\d+)<', html)
                  for s in attendance.STATUSES]
        if not all(counts) or sum(int(m.group(1)) for m in counts) < EXPECTED:
            raise RuntimeError(f"the page of {event_id} does not count everyone expected")
    return check


def tickets_check(response):
    """The API lists only the department's tickets; the board page shows some."""
    if not response.is_json:
        if 'id="ticket-' not in response.get_data(as_text=True):
            raise RuntimeError("the tickets board shows no ticket")
        return
    found = response.get_json()
    if not found or any(t["department"] != TICKET_DEPARTMENT for t in found):
        raise RuntimeError("the ticket list is empty or holds other departments")


def profile_requests(client, url: str, runs: int = 10) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(runs):
        client.get(url)
    profiler.disable()
    print(f"--- cProfile of {runs} x GET {url}", file=sys.stderr)
    pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(30)
    pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(20)


PEER_NAME = f"the same request without the indexes {', '.join(DASHBOARD_INDEXES)}"


def measure_attendance(db_path, client, peer_client, runs: int, profile: bool) -> None:
    """The event page, its live fragment and the attendance API, for BIG_EVENT."""
    statements = traced_selects(db_path, lambda db: attendance.attendance_report(db, BIG_EVENT))
    plans = explain(db_path, statements)
    main_sql = next(s for s in statements if "FROM presence p" in s)
    limit = ("bare SQL: the event's presence rows (hub.attendance._presence: zone and "
             "time window), fresh connection", query_ms(db_path, main_sql, runs))
    common = {
        "plans": plans,
        "queries_ms": [{"sql": p["sql"][:100], "ms": round(query_ms(db_path, s, 5), 2)}
                       for p, s in zip(plans, statements)],
        "data": {"presence": PRESENCE_ROWS, "checkins": CHECKIN_ROWS, "tickets": TICKET_ROWS,
                 "expected_attendees": EXPECTED,
                 "event": f"{BIG_EVENT}: day {BIG_DAY} of {DAYS}, zone {HALL}"},
    }
    check = attendance_check(BIG_EVENT)
    page_url = f"/events/{BIG_EVENT}"
    if profile:
        profile_requests(client, page_url)
    page = Timing(client, page_url, runs, check)
    peer = Timing(peer_client, page_url, PEER_RUNS, check).median
    extra = {"latest_event": Timing(client, f"/events/{LATE_EVENT}", runs,
                                    attendance_check(LATE_EVENT)).summary()}
    if has_endpoint(client.application, "pages.event_live"):  # what the page polls
        extra["live_fragment"] = Timing(client, f"{page_url}/live", runs, check).summary()
    extra["filtered_page"] = Timing(client, f"{page_url}?status={FILTER_STATUS}&page=2", runs,
                                    attendance_check(BIG_EVENT, FILTER_STATUS)).summary()
    write("dashboard", page, (PEER_NAME, peer), limit, **extra, **common)
    api_url = f"/api/v1/events/{BIG_EVENT}/attendance"
    api = Timing(client, api_url, runs, check)
    peer = Timing(peer_client, api_url, PEER_RUNS, check).median
    write("dashboard_attendance_api", api, (PEER_NAME, peer), limit, **common)


def measure_tickets(db_path, client, peer_client, runs: int) -> None:
    """The board's list of one department's open tickets: the API and the page."""
    filters = {"department": TICKET_DEPARTMENT, "state": OPEN_STATES.split(",")}
    statements = traced_selects(db_path, lambda db: tickets.list_tickets(db, **filters))
    plans = explain(db_path, statements)
    limit = ("bare SQL: hub.tickets.list_tickets' SELECT, fresh connection",
             query_ms(db_path, statements[0], runs))
    page_url = f"/tickets/?department={TICKET_DEPARTMENT}"
    page = {"request": f"GET {page_url}",
            "skipped": "the endpoint tickets.index does not exist yet"}
    if has_endpoint(client.application, "tickets.index"):
        timing = Timing(client, page_url, runs, tickets_check)
        peer = Timing(peer_client, page_url, PEER_RUNS, tickets_check).median
        page = write("dashboard_tickets_page", timing, (PEER_NAME, peer), limit, plans=plans)
        page = {k: page[k] for k in ("request", "median", "p95", "cpu_median")}
    api_url = f"/api/v1/tickets?department={TICKET_DEPARTMENT}&state={OPEN_STATES}"
    api = Timing(client, api_url, runs, tickets_check)
    peer = Timing(peer_client, api_url, PEER_RUNS, tickets_check).median
    write("dashboard_tickets", api, (PEER_NAME, peer), limit, plans=plans, tickets_page=page)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached database")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile 10 requests of the attendance page (to stderr)")
    args = parser.parse_args()
    db_path = cached_database(args.rebuild)
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        peer_path = without_dashboard_indexes(db_path, Path(tmp) / "peer")
        _app, client = signed_in_client(db_path)
        _peer_app, peer_client = signed_in_client(peer_path)
        measure_attendance(db_path, client, peer_client, args.runs, args.profile)
        measure_tickets(db_path, client, peer_client, args.runs)


if __name__ == "__main__":
    main()
