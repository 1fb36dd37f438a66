"""A 500-person lecture compressed in time (reduced: 60 phones), against the
real node and hub processes; the hub's attendance must match the script.

    phone ns                               node ns                          root ns
    eth0 + one macvlan per phone <-veth-> wlan0 10.42.0.1/22                Mosquitto
    tests/load/phones.py: udhcpc, the      dnsmasq (the rendered hall       rounds-hub ingest
    portal over HTTP from each phone's     config), rounds-edge portal      rounds-edge sync
    address, ARP now and then while        (gunicorn), rounds-edge          hub.db
    in the room                            presence (kernel BPF filter)

The office has scheduled the lecture at the hub; it reaches the node in the
retained config. Phones arrive over ``WINDOW`` seconds around the start, get
a lease, open the portal and tap (or, first-timers, bind with staff number
and PIN; visitors' phones only look), and stay until after the end, except
10 % who leave early and go silent: ``presence.away_after`` closes their
intervals. Some people expected by department never come. Everything flows
node -> Mosquitto -> ingest -> hub database, and ``attendance_report`` at the
event's end must give exactly the scripted present, partial and absent sets.

The script's margins are wide on purpose (the last arrival still has
``DURATION - WINDOW/4`` seconds in the room against ``0.75 * DURATION``
required; leavers are gone before ``0.45 * DURATION``), so the outcome does
not depend on a second of scheduling jitter.
"""

import json
import random
import time
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone

import pytest

from edge.outbox import Outbox
from hub.attendance.attendance import attendance_report, set_expected
from hub.db import open_db as open_hub_db
from protocol.clock import iso
from protocol.pins import device_id, hash_pin
from provisioning.nodeconfig import render_node

from ..conftest import SITE, hub_config
from ..netns import Process, missing_tools, namespaces, veth, wait_until
from ..scale import report, scaled
from .conftest import ROOT, python_argv, python_env, rows

PHONES = scaled(60, 500)
WINDOW = scaled(20.0, 120.0)     # seconds over which the phones arrive
DURATION = scaled(40.0, 300.0)   # the lecture
AWAY = scaled(5, 15)             # presence.away_after on the node (300 in production)
HEARTBEAT = 1.5                  # seconds between a phone's ARP requests while in the room
BUCKET = 5                       # presence.minute: seconds per occupancy count
SETUP = scaled(10.0, 15.0)       # from scheduling at the hub to the first arrival
MIN_PRESENCE = 0.75

pytestmark = [pytest.mark.load, pytest.mark.timeout(scaled(300, 1500))]

SECRET_HEX = "1ec7" * 16
SECRET = bytes.fromhex(SECRET_HEX)
PIN = "2468"
NODE_IP = "10.42.0.1"
ZONE = "hall-a"
EVENT = "lecture-1"
EXPECTED_DEPARTMENT = "internal_medicine"


@pytest.fixture(scope="module", autouse=True)
def tools():
    missing = missing_tools("ip", "dnsmasq", "busybox", "curl")
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: `make test` installs it")


# --- the script ----------------------------------------------------------------------


def cast(rng: random.Random) -> dict:
    """Who is who. Phones: regulars (bound, tap), walk-ins from another
    department (bound, not expected), first-timers (bind on the portal) and
    visitors (not staff). People: those of the phones, plus expected staff
    who never come. 10 % of the phones (regulars) leave early."""
    n_visitors = max(3, PHONES // 25)
    n_first = max(3, PHONES // 25)
    n_walk_in = max(2, PHONES // 50)
    n_regular = PHONES - n_visitors - n_first - n_walk_in
    phones = []

    def phone(kind, staff_id):
        i = len(phones)
        phones.append({"name": f"ph{i}", "mac": f"02:4c:00:00:{i >> 8:02x}:{i & 255:02x}",
                       "kind": kind, "staff_id": staff_id, "pin": PIN if staff_id else None,
                       "action": {"regular": "tap", "walk_in": "tap", "first": "bind",
                                  "visitor": "none"}[kind], "leave": None})

    for i in range(n_regular):
        phone("regular", f"IM{i:04d}")
    for i in range(n_first):
        phone("first", f"IM{n_regular + i:04d}")
    for i in range(n_walk_in):
        phone("walk_in", f"SU{i:04d}")
    for _ in range(n_visitors):
        phone("visitor", None)
    leavers = rng.sample([p for p in phones if p["kind"] == "regular"], PHONES // 10)
    absentees = [f"IM{n_regular + n_first + i:04d}" for i in range(PHONES // 10)]
    return {"phones": phones, "leavers": leavers, "absentees": absentees}


def schedule(people: dict, rng: random.Random, start: float) -> None:
    """Arrival and leave times (epoch seconds). Arrivals are evenly spread
    over [start - 3/4 WINDOW, start + 1/4 WINDOW]; first-timers come in the
    first half (their presence starts only after they bound and the node's
    per-bucket identity cache rolled over, up to a bucket later)."""
    first = [p for p in people["phones"] if p["kind"] == "first"]
    others = [p for p in people["phones"] if p["kind"] != "first"]
    rng.shuffle(others)
    half = PHONES // 2 - len(first)
    early = first + others[:half]
    rng.shuffle(early)
    order = early + others[half:]
    t0, step = start - 0.75 * WINDOW, WINDOW / (PHONES - 1)
    for k, p in enumerate(order):
        p["arrive"] = t0 + k * step
    for p in people["leavers"]:
        p["leave"] = start + DURATION * (0.30 + 0.15 * rng.random())


def expectation(people: dict) -> dict:
    attendees = {p["staff_id"] for p in people["phones"] if p["staff_id"]}
    partial = {p["staff_id"] for p in people["leavers"]}
    return {"attendees": attendees, "present": attendees - partial, "partial": partial,
            "absent": set(people["absentees"])}


# --- the hub -------------------------------------------------------------------------


def seed_hub(db_path, people: dict) -> None:
    """Zone, node, roster (one PIN hash for all: scrypt is slow on purpose) and
    the hub's bindings of the phones that are already bound."""
    pin_hash = hash_pin(PIN)
    bound_at = iso(datetime.now(timezone.utc) - timedelta(days=7))
    staff = {p["staff_id"]: p for p in people["phones"] if p["staff_id"]}
    staff.update({sid: None for sid in people["absentees"]})
    db = open_hub_db(db_path)
    try:
        db["zones"].insert({"zone": ZONE, "name": "Lecture hall A", "building": "Teaching"})
        db["nodes"].insert({"node": "n1", "zone": ZONE})
        db["staff"].insert_all([
            {"staff_id": sid, "name": f"Staff {sid}", "pin_hash": pin_hash,
             "department": "surgery" if sid.startswith("SU") else EXPECTED_DEPARTMENT}
            for sid in sorted(staff)])
        db["devices"].insert_all([
            {"device": device_id(SECRET, p["mac"]), "staff_id": p["staff_id"],
             "bound_at": bound_at, "node": "n1"}
            for p in people["phones"] if p["kind"] in ("regular", "walk_in")])
    finally:
        db.close()


def schedule_event(db_path, start: float, end: float) -> None:
    db = open_hub_db(db_path)
    try:
        with db.atomic():
            db["events"].insert({"id": EVENT, "title": "Grand rounds: sepsis", "kind": "lecture",
                                 "zones": json.dumps([ZONE]), "start": iso(_dt(start)),
                                 "end": iso(_dt(end)), "credit_hours": 1.0,
                                 "min_presence": MIN_PRESENCE})
        set_expected(db, EVENT, departments=[EXPECTED_DEPARTMENT])
    finally:
        db.close()


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


# --- the node ------------------------------------------------------------------------


def node_settings(tmp_path, broker) -> dict:
    mqtt = broker.settings("n1")
    leases = str(tmp_path / "dnsmasq.leases")
    return {
        "site": SITE, "node": "n1", "zone": ZONE, "shape": "hall",
        "db": str(tmp_path / "n1" / "node.db"), "site_secret": SECRET_HEX,
        "mqtt": {"host": mqtt.host, "port": mqtt.port, "username": "n1",
                 "password": mqtt.password},
        "wifi": {"interface": "wlan0", "ssid": "Rounds-Staff", "psk": None},
        "network": {"address": f"{NODE_IP}/22", "dhcp_range": ["10.42.0.20", "10.42.3.250"],
                    "lease": "15m", "uplink": "none", "lease_file": leases,
                    "pid_file": str(tmp_path / "dnsmasq.pid")},
        "portal": {"url": f"http://{NODE_IP}:8080/", "bind": f"{NODE_IP}:8080",
                   "leases_file": leases},
        "presence": {"away_after": AWAY, "refresh": 2, "minute": BUCKET},
        "sync": {"ack_timeout": 5},
    }


def node_knows(db_path, key: str):
    found = rows(db_path, "SELECT value FROM kv WHERE key = ?", key)
    return json.loads(found[0][0]) if found else None


def test_lecture_attendance_matches_the_script(tmp_path, broker):
    rng = random.Random(8)
    people = cast(rng)
    expected = expectation(people)
    hub_db = tmp_path / "hub" / "hub.db"
    hub_db.parent.mkdir(parents=True)
    seed_hub(hub_db, people)
    settings = node_settings(tmp_path, broker)
    node_db = settings["db"]
    (tmp_path / "n1").mkdir()
    config = tmp_path / "n1" / "node.json"
    config.write_text(json.dumps(settings))
    render_node(settings, tmp_path / "rendered")

    with ExitStack() as stack:
        phone_ns, node_ns = stack.enter_context(namespaces("phone", "node"))
        veth(node_ns, "wlan0", phone_ns, "eth0")
        node_ns.ip("addr", "add", f"{NODE_IP}/22", "dev", "wlan0")
        # The phones: no IPv6 chatter, and each answers ARP only for its own
        # address (macvlans share one namespace; a phone that left stays silent).
        for path, value in (("ipv6/conf/default/disable_ipv6", "1"),
                            ("ipv6/conf/all/disable_ipv6", "1"),
                            ("ipv4/conf/all/arp_ignore", "1"),
                            ("ipv4/conf/all/arp_announce", "2")):
            phone_ns.write_proc(f"/proc/sys/net/{path}", value)

        def start(name, argv, ns=None) -> Process:
            return stack.enter_context(Process(argv, tmp_path / f"{name}.log", ns=ns,
                                               env=python_env(), cwd=ROOT))

        # The office schedules the lecture; the first phones come SETUP seconds
        # later (any the node is not ready for by then come at once when it is).
        start_at = time.time() + SETUP + 0.75 * WINDOW
        end_at = start_at + DURATION
        schedule_event(hub_db, start_at, end_at)
        schedule(people, rng, start_at)

        start("ingest", python_argv("hub.cli", "--config", hub_config(tmp_path, broker),
                                    "ingest"))
        start("sync", python_argv("edge.cli", "--config", config, "sync"))
        dnsmasq = start("dnsmasq", ["dnsmasq", "--keep-in-foreground",
                                    f"--conf-file={tmp_path / 'rendered' / 'dnsmasq.conf'}"],
                        node_ns)
        portal = start("portal", python_argv("edge.cli", "--config", config, "portal"),
                       node_ns)
        presence = start("presence", python_argv("edge.cli", "--config", config, "presence"),
                         node_ns)

        def alive(*procs):
            for proc in procs:
                assert proc.alive(), f"{proc.argv} exited:\n{proc.output()[-3000:]}"
            return True

        wait_until(lambda: alive(presence) and "presence running" in presence.output(), 30,
                   what="rounds-edge presence")
        wait_until(lambda: alive(portal) and node_ns.run(
            "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2",
            f"http://{NODE_IP}:8080/healthz", check=False).stdout == "200", 30,
            what="the portal under gunicorn")
        wait_until(lambda: node_knows(node_db, "roster") and any(
            e["id"] == EVENT for e in (node_knows(node_db, "config") or {}).get("events", [])),
            30, what="the roster and the lecture in the node's config")
        alive(dnsmasq)

        plan = tmp_path / "plan.json"
        (tmp_path / "phones").mkdir()
        plan.write_text(json.dumps({
            "node_ip": NODE_IP, "portal_port": 8080, "lower": "eth0", "heartbeat": HEARTBEAT,
            "until": end_at + 3, "workdir": str(tmp_path / "phones"),
            "results": str(tmp_path / "phones.json"),
            "phones": [{k: p[k] for k in ("name", "mac", "arrive", "leave", "action",
                                          "staff_id", "pin")} for p in people["phones"]]}))
        hall = start("phones", python_argv("tests.load.phones", plan), phone_ns)
        wait_until(lambda: not hall.alive(), end_at + 3 - time.time() + 60, interval=1,
                   what="the phones' script")
        assert hall.proc.returncode == 0, hall.output()[-3000:]
        alive(portal, presence, dnsmasq)

        # Everyone has gone silent: every interval closes after away_after,
        # and the node's outbox drains to the hub.
        def settled():
            open_ = rows(hub_db, "SELECT count(*) FROM presence WHERE closed = 0")
            return (open_ and open_[0][0] == 0
                    and rows(hub_db, "SELECT count(*) FROM presence")[0][0] > 0
                    and rows(node_db, "SELECT count(*) FROM outbox")[0][0] == 0)

        wait_until(settled, AWAY + 60, interval=0.5,
                   what="every interval closed at the hub and the outbox empty")

    phones = json.loads((tmp_path / "phones.json").read_text())["phones"]
    failed = [p for p in phones if p["error"] or not p["ip"]]
    assert not failed, f"{len(failed)} phones failed, e.g. {failed[:3]}"

    hub = open_hub_db(hub_db)
    try:
        result = attendance_report(hub, EVENT, now=_dt(end_at))
        checkins = list(hub.query("SELECT staff_id, method, device FROM checkins "
                                  "WHERE event_id = ?", [EVENT]))
        hub_devices = {r[0] for r in hub.conn.execute(
            "SELECT device FROM presence UNION SELECT device FROM checkins "
            "WHERE device IS NOT NULL")}
        peak = hub.conn.execute("SELECT max(devices) FROM occupancy WHERE zone = ?",
                                (ZONE,)).fetchone()[0]
        leaver_last_seen = dict(hub.conn.execute(
            "SELECT staff_id, max(last_seen) FROM presence WHERE staff_id IN "
            "(SELECT value FROM json_each(?)) GROUP BY staff_id",
            (json.dumps(sorted(expected["partial"])),)).fetchall())
        quarantined = hub["quarantine"].count
    finally:
        hub.close()

    got = {status: {r["staff_id"] for r in result["attendance"] if r["status"] == status}
           for status in ("present", "partial", "absent")}
    methods = {m: sum(1 for c in checkins if c["method"] == m) for m in ("portal", "presence")}
    outcomes = [p["outcome"] for p in phones]
    arrivals = [p["arrived_at"] for p in phones]
    report("load_lecture", {
        "phones": PHONES, "leases": sum(1 for p in phones if p["ip"]),
        "checked_in": len(checkins), "by_presence": methods["presence"],
        "by_portal": methods["portal"],
        "portal_taps": sum(1 for o in outcomes if o and o.startswith("tapped")),
        "bound_on_portal": outcomes.count("bound and checked in"),
        "present_expected": len(expected["present"]), "present_got": len(got["present"]),
        "partial_expected": len(expected["partial"]), "partial_got": len(got["partial"]),
        "absent_expected": len(expected["absent"]), "absent_got": len(got["absent"]),
        "occupancy_peak": peak, "arrival_spread_s": round(max(arrivals) - min(arrivals), 1),
        "event_s": DURATION, "quarantined": quarantined})

    # One check-in per person who came, however it was made; none for visitors.
    assert sorted(c["staff_id"] for c in checkins) == sorted(expected["attendees"])
    visitor_devices = {device_id(SECRET, p["mac"]) for p in people["phones"]
                       if p["kind"] == "visitor"}
    assert not visitor_devices & hub_devices, "a visitor's phone left a trace at the hub"
    # The attendance, exactly as scripted.
    for status in ("present", "partial", "absent"):
        assert got[status] == expected[status], (
            f"{status}: missing {sorted(expected[status] - got[status])}, "
            f"unexpected {sorted(got[status] - expected[status])}")
    assert {r["staff_id"] for r in result["attendance"] if not r["expected"]} == {
        p["staff_id"] for p in people["phones"] if p["kind"] == "walk_in"}
    # Leavers were last seen around when they left, not at the end.
    for staff_id, last_seen in leaver_last_seen.items():
        assert last_seen < iso(_dt(start_at + 0.5 * DURATION)), (staff_id, last_seen)
    assert set(leaver_last_seen) == expected["partial"]
    # Every phone, visitors too, was in the room together for a whole count.
    assert peak == PHONES
    assert quarantined == 0
    outbox = Outbox(node_db)
    try:
        assert outbox.backlog() == 0
    finally:
        outbox.close()
