"""Clock jumps on the node, as at boot without network: the wall clock
starts a day behind (a Pi keeps no time while off), is set a day ahead,
then back, and finally NTP sets it, while presence intervals are open and
people check in.

A test cannot move this machine's clock, so the node's clock is injected:
``JumpingClock`` is the true time plus a skew the test changes (a jump),
with the machine's monotonic clock beside it, as on a node. The tracker, the
portal (Flask app on the real node database), the outbox and the sync link
all read it; the "synchronised" flag is a file the test creates
(``ROUNDS_TIMESYNC_FLAG``), as systemd-timesyncd does.

What must hold (issue 8, "Clock jumps on the node"): no negative dwell,
made or stored; no check-in attributed to the wrong day's event; records
made with the clock unset flagged at the hub (``clock_flags``, and
``unsynced_records`` per node) and corrected to within seconds of the
truth; once NTP has set the clock, new records are not flagged.
"""

import json
import re
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from edge.db import open_db as open_node_db
from edge.health import NodeClock, boot_id
from edge.outbox import Outbox
from edge.portal import create_app
from edge.presence.hostapd import Gone
from edge.presence.parse import Sighting
from edge.presence.tracker import Tracker
from edge.state import NodeState
from hub.attendance import attendance
from hub.db import open_db as open_hub_db
from hub.fleet import nodes
from hub.ingest import clockfix, downlink
from hub.ingest.store import write_batch
from hub.web.fleet import OPENAPI
from protocol.clock import iso, parse_iso
from protocol.pins import device_id, hash_pin
from protocol.records import Clock, parse_envelope

from ..conftest import running_ingest, running_sync
from ..scale import report, scaled
from ..support import wait_for

SECRET = bytes.fromhex("c1" * 32)
ZONE = "hall-a"
DAY = timedelta(days=1)
TOLERANCE = timedelta(seconds=3)  # hub time vs the truth: latency and test pacing
ROUNDS = scaled(2, 6)  # sightings per phone between two clock moves
SENSED = scaled(2, 40)  # bound phones the tracker sees (four more tap on the portal)


class JumpingClock(NodeClock):
    """The node's clocks: wall = the true time + ``skew`` (changed by the
    test: a jump), monotonic = this machine's."""

    def __init__(self, skew: timedelta):
        self.skew = skew

    def wall(self) -> float:
        return time.time() + self.skew.total_seconds()

    def monotonic(self) -> float:
        return time.monotonic()


def at(moment: datetime) -> str:
    return iso(moment)


def close(stored: str, truth: float, tolerance=TOLERANCE) -> bool:
    return abs(parse_iso(stored) - datetime.fromtimestamp(truth, timezone.utc)) <= tolerance


# --- the hub alone: what it does with what a jumping node sends ---------------------

@pytest.fixture
def hub(tmp_path):
    db = open_hub_db(tmp_path / "hub.db")
    yield db
    db.close()


def unsynced(kind: str, ts: datetime, mono: float, boot="boot-1", **fields) -> dict:
    """A record a node made at wall time ``ts``, monotonic ``mono``, clock unset."""
    return {"id": str(uuid.uuid4()), "type": kind, "ts": at(ts), "clock_synced": False,
            "boot": boot, "mono": mono, **fields}


def store(hub, records, clock: Clock | None):
    payload = json.dumps({"v": 1, "node": "n1", "records": records,
                          **(clock.head() if clock else {})}).encode()
    good, bad, _, parsed = parse_envelope(payload, "n1")
    assert not bad, bad
    write_batch(hub, "rounds/v1/s/node/n1/up/batch", "n1", good, bad, parsed)


def test_the_hub_stores_no_negative_dwell(hub):
    now = datetime.now(timezone.utc)
    backwards = {"id": str(uuid.uuid4()), "type": "presence", "ts": at(now),
                 "device": "0123456789abcdef", "staff_id": "S1", "zone": ZONE,
                 "first_seen": at(now), "last_seen": at(now - timedelta(hours=3)),
                 "closed": False}
    store(hub, [backwards], None)
    first, last = hub.conn.execute("SELECT first_seen, last_seen FROM presence").fetchone()
    assert first == last == backwards["first_seen"]
    assert hub.conn.execute("SELECT record_id, offset_seconds FROM clock_flags").fetchall() == [
        (backwards["id"], None)]
    store(hub, [{**backwards, "last_seen": at(now + timedelta(minutes=20)), "closed": True}], None)
    assert hub.conn.execute("SELECT last_seen FROM presence").fetchone() == (
        at(now + timedelta(minutes=20)),)


def test_the_hub_corrects_across_jumps_by_the_monotonic_clock(hub):
    """Records made at monotonic 100 s and 400 s, with the wall clock a day
    behind, then a day ahead; the batch leaves at monotonic 1000 s."""
    truth = datetime.now(timezone.utc)  # when the batch leaves
    made = {100.0: truth - timedelta(seconds=900), 400.0: truth - timedelta(seconds=600)}
    behind = unsynced("checkin", made[100.0] - DAY, 100.0, staff_id="S1", event_id=None,
                      zone=ZONE, method="portal")
    ahead = unsynced("checkin", made[400.0] + DAY, 400.0, staff_id="S2", event_id=None,
                     zone=ZONE, method="portal")
    other_boot = unsynced("checkin", truth - DAY, 50.0, boot="boot-0", staff_id="S3",
                          event_id=None, zone=ZONE, method="portal")
    # Still unsynchronised when sent (the batch's own wall clock is 3 h off):
    # its true time is the hub's receipt.
    store(hub, [behind, other_boot], Clock(at(truth - timedelta(hours=3)), False, "boot-1",
                                           1000.0))
    # Synchronised since, same boot: the batch's sent_at is the truth.
    store(hub, [ahead], Clock(at(truth), True, "boot-1", 1000.0))
    rows = dict(hub.conn.execute("SELECT staff_id, ts FROM checkins"))
    assert abs(parse_iso(rows["S1"]) - made[100.0]) < TOLERANCE
    assert abs(parse_iso(rows["S2"]) - made[400.0]) < TOLERANCE
    assert rows["S3"] == other_boot["ts"]  # another boot: nothing to go by
    flags = dict(hub.conn.execute("SELECT record_id, offset_seconds FROM clock_flags"))
    assert flags[behind["id"]] == pytest.approx(DAY.total_seconds(), abs=3)
    assert flags[ahead["id"]] == pytest.approx(-DAY.total_seconds(), abs=3)
    assert flags[other_boot["id"]] is None


def test_the_hub_matches_unsynced_checkins_to_the_event_by_corrected_time(hub):
    now = datetime.now(timezone.utc)
    for eid, start in (("ev-yesterday", now - DAY - timedelta(minutes=10)),
                       ("ev-today", now - timedelta(minutes=10))):
        hub["events"].insert({"id": eid, "title": eid, "zones": json.dumps([ZONE]),
                              "start": at(start), "end": at(start + timedelta(hours=1))})
    # The node thought it was yesterday, during yesterday's lecture.
    wrong_day = unsynced("checkin", now - DAY, 500.0, staff_id="S1", event_id="ev-yesterday",
                         zone=ZONE, method="presence")
    lost = unsynced("checkin", now - DAY, 20.0, boot="boot-0", staff_id="S2",
                    event_id="ev-yesterday", zone=ZONE, method="portal")
    # A phone seen by the same node in an earlier boot, its clock a day behind:
    # its interval cannot be corrected, so it counts for no event's attendance.
    seen = unsynced("presence", now - DAY, 30.0, boot="boot-0", device="0123456789abcdef",
                    staff_id="S2", zone=ZONE, first_seen=at(now - DAY - timedelta(minutes=5)),
                    last_seen=at(now - DAY), closed=True)
    store(hub, [wrong_day, lost, seen], Clock(at(now - DAY), False, "boot-1", 500.0))
    assert dict(hub.conn.execute("SELECT staff_id, event_id FROM checkins")) == {
        "S1": "ev-today", "S2": None}
    assert attendance.event_attendance(hub, "ev-yesterday") == []
    assert [r["staff_id"] for r in attendance.event_attendance(hub, "ev-today")] == ["S1"]


# --- end to end: a node whose clock jumps -> Mosquitto -> ingest -> hub --------------

SENSED_STAFF = [f"P{i:02d}" for i in range(SENSED)]
TAPPING = ["T1", "T2", "T3", "T4"]  # one tap each: a day behind, ahead, 2 h behind, synced
PHONES = {  # staff -> (MAC, address on the Wi-Fi)
    staff: (f"02:c1:00:00:00:{i:02x}", f"10.42.0.{10 + i}")
    for i, staff in enumerate(SENSED_STAFF + TAPPING)}


def seed_hub(path, now: datetime) -> None:
    db = open_hub_db(path)
    db["zones"].insert({"zone": ZONE, "name": "Lecture hall A"})
    db["nodes"].insert({"node": "n1", "zone": ZONE})
    db["staff"].insert_all({"staff_id": s, "name": f"Staff {s}", "department": "nursing",
                            "pin_hash": hash_pin("2468")} for s in PHONES)
    db["devices"].insert_all({"device": device_id(SECRET, mac), "staff_id": s,
                              "bound_at": at(now - 3 * DAY), "node": "n1"}
                             for s, (mac, _) in PHONES.items())
    for eid, start in (("ev-yesterday", now - DAY - timedelta(minutes=30)),
                       ("ev-today", now - timedelta(minutes=10)),
                       ("ev-tomorrow", now + DAY - timedelta(minutes=30))):
        db["events"].insert({"id": eid, "title": eid, "kind": "lecture",
                             "zones": json.dumps([ZONE]), "start": at(start),
                             "end": at(start + timedelta(hours=2))})
    db.close()


class Node:
    """The node offline, as at boot: its database holding the hub's roster
    and schedule from before, the tracker and the portal on one clock."""

    def __init__(self, tmp_path, hub_db_path, clock: JumpingClock, now: datetime):
        self.path = tmp_path / "n1" / "node.db"
        self.path.parent.mkdir(parents=True)
        hub = open_hub_db(hub_db_path)
        node = open_node_db(self.path)
        NodeState(node).put("roster", downlink.roster_document(hub))
        NodeState(node).put("config", downlink.node_config_document(hub, "n1", now))
        node.close()
        hub.close()
        self.clock = clock
        self.outbox = Outbox(self.path, clock)
        self.tracker = Tracker(self.outbox, SECRET, ZONE, refresh=1.0, clock=clock.wall,
                               monotonic=clock.monotonic)
        leases = tmp_path / "n1" / "leases"
        expiry = int((now + 3 * DAY).timestamp())
        leases.write_text("".join(f"{expiry} {mac} {ip} phone *\n"
                                  for mac, ip in PHONES.values()))
        (tmp_path / "n1" / "arp").write_text("IP address HW type Flags HW address Mask Device\n")
        self.app = create_app({
            "NODE_DB": str(self.path), "NODE_ID": "n1", "ZONE": ZONE, "SECRET_KEY": "k",
            "SITE_SECRET": SECRET, "TESTING": True, "LEASES_FILE": str(leases),
            "ARP_FILE": str(tmp_path / "n1" / "arp"), "PORTAL_URL": "http://localhost/",
            "CLOCK": clock})
        self.truth: dict[str, float] = {}          # check-in record id -> true time made
        self.first: dict[str, float] = {}          # interval id -> true first sighting
        self.last: dict[str, float] = {}           # interval id -> true last sighting

    def see(self, staff: str) -> None:
        mac = PHONES[staff][0]
        truth = time.time()
        self.tracker.handle(Sighting(mac, "arp", self.clock.wall()))
        row = self.rows("SELECT p.record_id FROM presence_open p WHERE p.staff_id = ?", staff)
        self.first.setdefault(row[0][0], truth)
        self.last[row[0][0]] = truth
        self._note_checkins()

    def leave(self, staff: str) -> None:
        [(interval,)] = self.rows("SELECT record_id FROM presence_open WHERE staff_id = ?", staff)
        self.last[interval] = time.time()
        self.tracker.handle(Gone(PHONES[staff][0], self.clock.wall()))

    def tap(self, staff: str) -> str:
        """One tap on the portal from ``staff``'s bound phone; the page's text."""
        client = self.app.test_client()
        client.environ_base["REMOTE_ADDR"] = PHONES[staff][1]
        page = client.get("/?lang=en").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        done = client.post("/checkin/tap", data={"csrf_token": token}, follow_redirects=True)
        assert done.status_code == 200
        self._note_checkins()
        return " ".join(done.get_data(as_text=True).split())

    def _note_checkins(self) -> None:
        for (record_id,) in self.rows("SELECT record_id FROM local_checkins"):
            self.truth.setdefault(record_id, time.time())

    def rows(self, sql, *args):
        return self.outbox.conn.execute(sql, args).fetchall()

    def queued(self) -> list[dict]:
        return [json.loads(body) for (body,) in self.rows("SELECT body FROM outbox")]

    def active_event(self):
        """What a node that trusted its wall clock would call the event on now."""
        return NodeState(self.outbox.db).active_event(self.clock.now())


def no_negative_dwell(records) -> bool:
    return all(r["last_seen"] >= r["first_seen"] for r in records if r["type"] == "presence")


def test_a_jumping_node_clock_reaches_the_hub_flagged_and_corrected(
        tmp_path, broker, hub_db_path, monkeypatch):
    flag = tmp_path / "timesync" / "synchronized"
    flag.parent.mkdir()
    monkeypatch.setenv("ROUNDS_TIMESYNC_FLAG", str(flag))  # the flag file absent: unset
    now = datetime.now(timezone.utc)
    seed_hub(hub_db_path, now)
    clock = JumpingClock(-DAY)  # booted believing it is yesterday, same hour
    node = Node(tmp_path, hub_db_path, clock, now)
    sensed = SENSED_STAFF

    # 1. A day behind: a node trusting its clock would be in yesterday's lecture.
    assert node.active_event()["id"] == "ev-yesterday"
    for _ in range(ROUNDS):
        for staff in sensed:
            node.see(staff)
        time.sleep(0.5)
    assert "clock is not set yet" in node.tap("T1")
    # 2. Set a day ahead (by hand, wrongly), intervals still open: tomorrow's.
    clock.skew = DAY
    assert node.active_event()["id"] == "ev-tomorrow"
    node.tracker.tick()
    for _ in range(ROUNDS):
        for staff in sensed:
            node.see(staff)
        time.sleep(0.5)
    node.tap("T2")
    # 3. And back, two hours behind the truth.
    clock.skew = -timedelta(hours=2)
    node.tracker.tick()
    for staff in sensed:
        node.see(staff)
    node.tap("T3")
    made_unsynced = node.queued()
    assert made_unsynced and all(r.get("clock_synced") is False and r["boot"] == boot_id()
                                 and "mono" in r for r in made_unsynced)
    assert no_negative_dwell(made_unsynced)
    checkins = [r for r in made_unsynced if r["type"] == "checkin"]
    assert {r["staff_id"] for r in checkins} == set(sensed) | {"T1", "T2", "T3"}
    assert {r["event_id"] for r in checkins} == {None}, "checked in to an event by a wrong clock"
    assert node.tracker.counts["clock_jumps"] == 2

    with running_ingest(broker, hub_db_path, downlink_interval=0.5), \
            running_sync(broker, node.path, clock=clock):
        # 4. The network is back before NTP: batches leave still unsynchronised.
        wait_for(lambda: node.rows("SELECT count(*) FROM outbox")[0][0] == 0, timeout=30,
                 message="the unsynchronised records at the hub")
        # 5. NTP sets the clock (a jump of two hours forward): not flagged from now on.
        clock.skew = timedelta(0)
        flag.touch()
        node.tracker.tick()
        time.sleep(0.5)
        for staff in sensed:
            node.see(staff)
        assert "Checked in to ev-today" in node.tap("T4")
        time.sleep(0.5)
        for staff in sensed:
            node.see(staff)
            node.leave(staff)
        node.tracker.tick()
        wait_for(lambda: node.rows("SELECT count(*) FROM outbox")[0][0] == 0, timeout=30,
                 message="everything at the hub")
    assert node.tracker.counts["clock_jumps"] == 3

    hub = open_hub_db(hub_db_path)
    try:
        flags = dict(hub.conn.execute("SELECT record_id, offset_seconds FROM clock_flags"))
        unsynced_ids = {r["id"] for r in made_unsynced}
        assert unsynced_ids <= set(flags), "records made with the clock unset not flagged"
        assert all(flags[i] is not None for i in unsynced_ids), "flagged but not corrected"
        synced_ids = set(node.truth) - unsynced_ids  # the check-ins made after NTP
        assert len(synced_ids) == SENSED + 1 and not synced_ids & set(flags)
        # Presence: never negative, and each interval within seconds of the truth.
        intervals = hub.conn.execute("SELECT id, first_seen, last_seen, closed "
                                     "FROM presence").fetchall()
        assert {i for i, *_ in intervals} == set(node.first)
        for rid, first, last, closed in intervals:
            assert last >= first and closed == 1
            assert close(first, node.first[rid]), (rid, first)
            assert close(last, node.last[rid]), (rid, last)
        # Check-ins: all in today's event, at their true time.
        checkins = hub.conn.execute("SELECT id, staff_id, ts, event_id, clock_synced "
                                    "FROM checkins").fetchall()
        assert {e for _, _, _, e, _ in checkins} == {"ev-today"}
        assert {s for _, s, *_ in checkins} == set(PHONES)
        for rid, staff, ts, _, synced in checkins:
            assert close(ts, node.truth[rid]), (staff, ts)
            assert synced == (0 if rid in unsynced_ids else None)
        # Attendance: nobody in yesterday's or tomorrow's lecture; today's sees
        # the sensed phones for a few seconds, never less than nothing.
        for other in ("ev-yesterday", "ev-tomorrow"):
            assert attendance.event_attendance(hub, other) == []
        rows = {r["staff_id"]: r for r in attendance.event_attendance(hub, "ev-today")}
        assert set(rows) == set(PHONES)
        for staff in sensed:
            assert rows[staff]["first_seen"] and 0 <= rows[staff]["dwell_minutes"] < 1
        # The node's count at the hub: in the fleet and as the API's schema says.
        fleet = {n["node"]: n for n in nodes.fleet(hub)}
        assert fleet["n1"]["unsynced_records"] == len(flags) == clockfix.unsynced_counts(
            hub, now - DAY)["n1"]["flagged"]
        jsonschema = pytest.importorskip("jsonschema")
        jsonschema.validate(fleet["n1"], OPENAPI["schemas"]["Node"])
        worst = max(abs((parse_iso(ts) - datetime.fromtimestamp(node.truth[rid], timezone.utc))
                        .total_seconds()) for rid, _, ts, _, _ in checkins)
    finally:
        hub.close()
    report("faults_clock_jumps", {"jumps": node.tracker.counts["clock_jumps"],
                           "records_unsynced": len(unsynced_ids),
                           "flagged_at_hub": len(flags),
                           "corrected": sum(v is not None for v in flags.values()),
                           "records_synced_flagged": len(synced_ids & set(flags)),
                           "intervals": len(intervals), "checkins": len(checkins),
                           "wrong_day_checkins": sum(e != "ev-today" for *_, e, _ in checkins),
                           "worst_checkin_error_s": round(worst, 2)})
