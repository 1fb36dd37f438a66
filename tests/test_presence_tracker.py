"""The presence tracker with an injected clock, on a real SQLite node database:
intervals (open, refresh, away, hostapd leave, new interval), presence
check-ins (once per person and event, shared with the portal), releases,
occupancy per minute, restarts, and the privacy of unbound devices."""

import re
from datetime import datetime, timezone

import pytest

from edge.checkins import checkin_in_transaction
from edge.db import immediate
from edge.db import open_db
from edge.outbox import Outbox
from edge.presence.hostapd import Gone
from edge.presence.parse import Sighting
from edge.presence.tracker import Tracker
from edge.state import NodeState
from protocol.clock import iso
from protocol.pins import device_id, hash_pin
from protocol.records import validate

SECRET = bytes.fromhex("5e" * 32)
ZONE = "hall-a"
BOUND, OTHER_BOUND = "a6:3f:0c:11:7e:42", "6e:21:9a:d0:33:05"
UNBOUND = ["fa:16:3e:00:00:%02x" % i for i in range(1, 6)]
T0 = 1_764_000_000.0  # a minute boundary (2025-11-24T16:00:00Z)
assert T0 % 60 == 0


def at(ts: float) -> str:
    return iso(datetime.fromtimestamp(ts, timezone.utc))


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def setup_db(path, events=(), t0=T0):
    db = open_db(path)
    state = NodeState(db)
    state.put("roster", {"version": "1", "staff": [
        {"staff_id": "D001", "name": "Dr. Li", "department": "cardiology",
         "pin_hash": hash_pin("2468")},
        {"staff_id": "N002", "name": "Nurse Wang", "department": "nursing",
         "pin_hash": hash_pin("1357")}],
        "bindings": [{"device": device_id(SECRET, BOUND), "staff_id": "D001"},
                     {"device": device_id(SECRET, OTHER_BOUND), "staff_id": "N002"}]})
    state.put("config", {"version": "1", "node": "n1", "zone": ZONE, "events": list(events)})
    db.close()


def event(eid, start, end, t0=T0):
    return {"id": eid, "title": eid, "kind": "lecture", "zones": [ZONE],
            "start": at(t0 + start), "end": at(t0 + end), "credit_hours": 1,
            "min_presence": 0.75}


class World:
    """A tracker on a node database with a clock the test moves."""

    def __init__(self, tmp_path, events=(), t0=T0, **kwargs):
        self.path = tmp_path / "node.db"
        setup_db(self.path, events, t0)
        self.clock = Clock(t0)
        self.outbox = Outbox(self.path)
        self.tracker = Tracker(self.outbox, SECRET, "fallback", clock=self.clock, **kwargs)
        self.copies: dict[str, list[dict]] = {}  # record id -> every copy queued, in order
        self._seen_seqs: set[int] = set()

    def see(self, mac, kind="arp", ts=None):
        self.tracker.handle(Sighting(mac, kind, self.clock.now if ts is None else ts))
        self._collect()

    def gone(self, mac):
        self.tracker.handle(Gone(mac, self.clock.now))
        self._collect()

    def advance(self, seconds, step=1.0, see=()):
        """Move the clock ``seconds`` forward in ``step``s, ticking (and seeing
        ``see`` at every step)."""
        end = self.clock.now + seconds
        while self.clock.now < end - 1e-9:
            self.clock.now = min(end, self.clock.now + step)
            for mac in see:
                self.see(mac)
            self.tracker.tick()
            self._collect()

    def _collect(self):
        for item in self.outbox.pending(10_000):
            if item.seq not in self._seen_seqs:
                self._seen_seqs.add(item.seq)
                record = validate(item.record)
                self.copies.setdefault(record["id"], []).append(record)

    def records(self, type_):
        return [copies[-1] for copies in self.copies.values() if copies[-1]["type"] == type_]

    def presence_copies(self):
        return [copies for copies in self.copies.values() if copies[0]["type"] == "presence"]

    def rows(self, sql, *args):
        return self.outbox.conn.execute(sql, args).fetchall()


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    yield w
    w.outbox.close()


def test_bound_phone_opens_one_interval_and_refreshes_it_at_most_every_minute(world):
    world.see(BOUND)
    [copies] = world.presence_copies()
    first = copies[0]
    assert first["device"] == device_id(SECRET, BOUND) and first["staff_id"] == "D001"
    assert first["zone"] == ZONE and first["closed"] is False
    assert first["first_seen"] == first["last_seen"] == at(T0)
    world.advance(180, step=5, see=[BOUND])  # seen every 5 s for 3 minutes
    [copies] = world.presence_copies()
    assert {c["id"] for c in copies} == {first["id"]}
    assert 3 <= len(copies) <= 4, [c["last_seen"] for c in copies]  # not one per sighting
    sent_at = [datetime.fromisoformat(c["ts"][:-1]).timestamp() for c in copies]
    assert all(b - a >= 60 - 1e-6 for a, b in zip(sent_at, sent_at[1:]))
    assert copies[-1]["last_seen"] >= at(T0 + 120) and not copies[-1]["closed"]
    assert all(c["first_seen"] == at(T0) for c in copies)


def test_away_after_300_s_of_silence_closes_the_interval_with_the_same_id(world):
    world.see(BOUND)
    world.advance(30, step=10, see=[BOUND])  # last seen at T0 + 30
    rid = world.presence_copies()[0][0]["id"]
    world.advance(299)  # T0 + 329: 299 s of silence
    assert not world.records("presence")[0]["closed"]
    assert world.rows("SELECT count(*) FROM presence_open")[0][0] == 1
    world.advance(1)
    [closed] = world.records("presence")
    assert closed["id"] == rid and closed["closed"] is True
    assert closed["first_seen"] == at(T0) and closed["last_seen"] == at(T0 + 30)
    assert world.rows("SELECT count(*) FROM presence_open")[0][0] == 0
    copies = world.presence_copies()[0]
    assert [c["closed"] for c in copies].count(True) == 1 and copies[-1]["closed"]
    world.advance(600)
    assert len(world.presence_copies()[0]) == len(copies), "closed once, never again"


def test_a_sighting_after_leaving_opens_a_new_interval(world):
    world.see(BOUND)
    world.advance(400)
    world.see(BOUND)
    intervals = world.presence_copies()
    assert len(intervals) == 2 and intervals[0][0]["id"] != intervals[1][0]["id"]
    assert intervals[0][-1]["closed"] and not intervals[1][-1]["closed"]
    assert intervals[1][0]["first_seen"] == at(T0 + 400)


def test_away_after_is_configurable(tmp_path):
    w = World(tmp_path, away_after=120)
    w.see(BOUND)
    w.advance(119)
    assert not w.records("presence")[0]["closed"]
    w.advance(1)
    assert w.records("presence")[0]["closed"]
    w.outbox.close()


def test_hostapd_disconnect_closes_at_once_and_late_frames_do_not_reopen(world):
    world.see(BOUND)
    world.advance(50, step=10, see=[BOUND])
    world.gone(BOUND)
    [closed] = world.records("presence")
    assert closed["closed"] and closed["last_seen"] == at(T0 + 50)
    world.see(BOUND, ts=T0 + 49.5)  # a frame from before the disconnect, read late
    assert len(world.presence_copies()) == 1
    world.advance(20)
    world.see(BOUND, kind="hostapd-connected")  # back again: a new interval
    assert len(world.presence_copies()) == 2
    world.gone(UNBOUND[0])  # an unbound device leaving: nothing at all
    assert len(world.presence_copies()) == 2


def test_bound_phone_is_released_from_the_captive_portal(world):
    world.see(BOUND)
    [(mac, until)] = world.rows("SELECT mac, until FROM released")
    assert mac == BOUND and until == at(T0 + 43200)
    world.advance(120, step=10, see=[BOUND])  # refreshes extend the release
    assert world.rows("SELECT until FROM released")[0][0] >= at(T0 + 43200 + 60)


def test_exactly_one_presence_checkin_per_person_and_event(tmp_path):
    w = World(tmp_path, events=[event("ev1", 600, 3600), event("ev2", 4000, 7000)])
    w.see(BOUND)  # 10 min before ev1: inside the 30 min early window
    w.see(OTHER_BOUND)
    for mac in UNBOUND:
        w.see(mac)
    w.advance(600, step=20, see=[BOUND])
    w.advance(700)  # away: the interval closes ...
    w.advance(1200, step=30, see=[BOUND])  # ... and a new one opens, still during ev1
    checkins = w.records("checkin")
    assert sorted((c["staff_id"], c["event_id"]) for c in checkins) == [
        ("D001", "ev1"), ("N002", "ev1")]
    mine = next(c for c in checkins if c["staff_id"] == "D001")
    assert mine["method"] == "presence" and mine["zone"] == ZONE
    assert mine["device"] == device_id(SECRET, BOUND) and mine["ts"] == at(T0)
    assert len(w.copies[mine["id"]]) == 1
    w.clock.now = T0 + 4100  # ev2
    w.see(BOUND)
    assert sorted(c["event_id"] for c in w.records("checkin") if c["staff_id"] == "D001") == [
        "ev1", "ev2"]
    w.outbox.close()


def test_no_presence_checkin_while_no_event_is_on(world):
    world.see(BOUND)
    world.advance(300, step=30, see=[BOUND])
    assert world.records("checkin") == [] and world.records("presence")
    assert world.rows("SELECT count(*) FROM local_checkins")[0][0] == 0


def test_no_presence_checkin_after_a_checkin_on_the_portal(tmp_path):
    """The dedup is shared: a check-in made on the portal (PIN, tap or bind,
    all through edge.checkins) means presence adds none."""
    w = World(tmp_path, events=[event("ev1", -600, 3000)])
    ev1 = NodeState(w.outbox.db).active_event(datetime.fromtimestamp(T0, timezone.utc))
    with immediate(w.outbox.db):
        created, _ = checkin_in_transaction(w.outbox, "D001", ev1, ZONE,
                                            device_id(SECRET, BOUND), "portal")
    assert created
    w.see(BOUND)
    w.advance(120, step=10, see=[BOUND])
    [checkin] = w.records("checkin")
    assert checkin["method"] == "portal"
    assert w.records("presence"), "presence is still recorded"
    w.outbox.close()


def test_a_portal_tap_after_a_presence_checkin_says_already_checked_in(tmp_path):
    """The other way round, through the real portal app: the tap finds the
    presence check-in and adds nothing."""
    from edge.portal import create_app

    now = datetime.now(timezone.utc).timestamp() // 60 * 60
    w = World(tmp_path, events=[event("ev1", -600, 3000, t0=now)], t0=now)
    w.see(BOUND)
    [presence_checkin] = w.records("checkin")
    leases = tmp_path / "leases"
    leases.write_text(f"{int(now) + 3600} {BOUND} 10.42.0.23 phone 01:{BOUND}\n")
    arp = tmp_path / "arp"
    arp.write_text("IP address HW type Flags HW address Mask Device\n")
    app = create_app({"NODE_DB": str(w.path), "NODE_ID": "n1", "ZONE": ZONE,
                      "SECRET_KEY": "k", "SITE_SECRET": SECRET, "TESTING": True,
                      "LEASES_FILE": str(leases), "ARP_FILE": str(arp),
                      "PORTAL_URL": "http://localhost/"})
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "10.42.0.23"
    page = client.get("/?lang=en").get_data(as_text=True)
    assert "You are checked in" in page and "/checkin/tap" not in page
    # Tap anyway (a form left open from before): "already checked in", no record.
    token = re.search(r'name="csrf_token" value="([^"]+)"',
                      client.get("/bind").get_data(as_text=True)).group(1)
    done = client.post("/checkin/tap", data={"csrf_token": token}, follow_redirects=True)
    assert done.status_code == 200
    w._collect()
    assert w.records("checkin") == [presence_checkin]
    w.outbox.close()


def test_occupancy_counts_distinct_devices_per_minute_and_nothing_else(world):
    # minute 0: the bound phone, three unbound devices (one seen twice)
    world.see(BOUND)
    for mac in UNBOUND[:3] + UNBOUND[:1]:
        world.see(mac)
    world.advance(60)
    # minute 1: one unbound device, many times
    for _ in range(5):
        world.see(UNBOUND[4], kind="dhcp-request")
    world.advance(60)
    # minute 2: nobody
    world.advance(60)
    occupancy = sorted(world.records("occupancy"), key=lambda r: r["minute"])
    assert [(r["minute"], r["devices"], r["zone"]) for r in occupancy] == [
        (at(T0), 4, ZONE), (at(T0 + 60), 1, ZONE), (at(T0 + 120), 0, ZONE)]
    assert {r["type"] for r in world.records("presence")} == {"presence"}
    assert len(world.records("presence")) == 1, "only the bound phone has an interval"
    assert_no_trace_of_unbound(world)


def test_the_first_and_a_partial_minute_are_not_reported(tmp_path):
    w = World(tmp_path, t0=T0 + 25)  # started 25 s into a minute
    w.see(UNBOUND[0])
    w.advance(35 + 60)
    assert [r["minute"] for r in w.records("occupancy")] == [at(T0 + 60)]
    w.outbox.close()


def test_a_clock_jump_reports_one_minute_not_a_run_of_empty_ones(world):
    world.see(UNBOUND[0])
    world.clock.now += 6 * 3600  # NTP set the clock after boot
    world.tracker.tick()
    world._collect()
    assert [(r["minute"], r["devices"]) for r in world.records("occupancy")] == [(at(T0), 1)]


def assert_no_trace_of_unbound(world):
    """No MAC and no HMAC of an unbound device anywhere in the database files."""
    world.outbox.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    blobs = b"".join(p.read_bytes() for p in world.path.parent.glob("node.db*"))
    for mac in UNBOUND:
        for needle in (mac, mac.upper(), mac.replace(":", ""), device_id(SECRET, mac)):
            assert needle.encode() not in blobs, needle
        assert bytes.fromhex(mac.replace(":", "")) not in blobs, mac
    assert device_id(SECRET, BOUND).encode() in blobs, "the check can find what is there"


def test_unbound_devices_leave_no_trace(world):
    for _ in range(3):
        for mac in UNBOUND:
            world.see(mac, kind="dhcp-discover")
        world.advance(200, step=20)
    world.tracker.flush()
    assert world.records("presence") == [] and world.records("checkin") == []
    assert world.rows("SELECT count(*) FROM presence_open")[0][0] == 0
    assert world.rows("SELECT count(*) FROM released")[0][0] == 0
    assert {r["type"] for r in world.records("occupancy")} == {"occupancy"}
    world.see(BOUND)
    assert_no_trace_of_unbound(world)


def test_a_restart_continues_the_open_interval(tmp_path):
    w = World(tmp_path)
    w.see(BOUND)
    w.advance(90, step=10, see=[BOUND])
    w.tracker.flush()  # the clean stop: nothing is closed
    w._collect()
    [copies] = w.presence_copies()
    assert not copies[-1]["closed"] and copies[-1]["last_seen"] == at(T0 + 90)
    w.outbox.close()

    # The new process, 20 s later, sees the phone again: same interval, same id.
    w.outbox = Outbox(w.path)
    w.clock.now += 20
    w.tracker = Tracker(w.outbox, SECRET, "fallback", clock=w.clock)
    w.see(BOUND)
    w.advance(60, step=10, see=[BOUND])
    [copies] = w.presence_copies()
    assert not copies[-1]["closed"] and copies[-1]["first_seen"] == at(T0)
    assert copies[-1]["last_seen"] >= at(T0 + 160)
    w.outbox.close()


def test_after_a_restart_a_silent_device_is_closed_with_its_last_sighting(tmp_path):
    w = World(tmp_path)
    w.see(BOUND)
    w.advance(40, step=10, see=[BOUND])
    w.tracker.flush()
    w.outbox.close()
    w.outbox = Outbox(w.path)
    w.clock.now += 1000  # down for a while
    w.tracker = Tracker(w.outbox, SECRET, "fallback", clock=w.clock)
    w.tracker.tick()
    w._collect()
    [closed] = w.records("presence")
    assert closed["closed"] and closed["last_seen"] == at(T0 + 40)
    w.outbox.close()


def test_a_phone_rebound_to_someone_else_ends_the_first_persons_interval(world):
    world.see(BOUND)
    db = world.outbox.db
    from edge.devices import Devices
    with immediate(db):
        Devices(db, SECRET).bind(device_id(SECRET, BOUND), "N002")
    world.advance(60)  # the per-minute cache is dropped
    world.see(BOUND)
    by_staff = {c[-1]["staff_id"]: c[-1] for c in world.presence_copies()}
    assert by_staff["D001"]["closed"] and not by_staff["N002"]["closed"]


def test_the_zone_falls_back_to_the_node_config(tmp_path):
    path = tmp_path / "node.db"
    setup_db(path)
    db = open_db(path)
    NodeState(db).put("config", {"node": "n1", "events": []})  # the hub named no zone
    db.close()
    outbox = Outbox(path)
    tracker = Tracker(outbox, SECRET, "ward-9", clock=Clock(T0))
    tracker.handle(Sighting(BOUND, "arp", T0))
    assert [i.record["zone"] for i in outbox.pending(10)] == ["ward-9"]
    outbox.close()


def test_a_restarted_tracker_does_not_check_in_again(tmp_path):
    """The once-per-event rule is the database's (local_checkins), not memory's."""
    w = World(tmp_path, events=[event("ev1", -600, 3000)])
    w.see(BOUND)
    w.tracker.flush()
    w.outbox.close()
    w.outbox = Outbox(w.path)
    w.clock.now += 30
    w.tracker = Tracker(w.outbox, SECRET, "fallback", clock=w.clock)
    w.see(BOUND)
    w.advance(60, step=10, see=[BOUND])
    assert [(c["staff_id"], c["method"]) for c in w.records("checkin")] == [("D001", "presence")]
    w.outbox.close()
