"""Attendance per event x staff (hub.attendance) on a real SQLite file.

Records reach the database the way ingest writes them: validated against the
protocol, then ``hub.ingest.store.write_batch``. The event runs 09:00-10:00 in
Shanghai (01:00-02:00 UTC) and lasts 60 minutes, min_presence 0.75 (45 min).
"""

import hashlib
import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from hub.attendance import attendance
from hub.attendance.attendance import (attendance_report, event_attendance, expected_staff, get_expected,
                            list_events, merge_intervals, set_expected)
from hub.ingest.store import write_batch
from protocol.clock import iso
from protocol.records import validate

T0 = datetime(2025, 3, 10, 1, 0, tzinfo=timezone.utc)  # 09:00 in the hospital
AFTER = T0 + timedelta(hours=3)  # the event is over


def at(minute: float) -> datetime:
    return T0 + timedelta(minutes=minute)


def ts(minute: float) -> str:
    return iso(at(minute))


def device_of(name: str) -> str:
    """A stand-in for a phone's MAC HMAC: 16 hex characters."""
    return hashlib.sha256(name.encode()).hexdigest()[:16]


def presence(staff_id, first, last, closed=True, zone="hall-a", device=None, rid=None):
    return {"id": rid or str(uuid.uuid4()), "type": "presence", "ts": ts(last),
            "device": device or device_of(staff_id), "staff_id": staff_id, "zone": zone,
            "first_seen": ts(first), "last_seen": ts(last), "closed": closed}


def checkin(staff_id, minute, method="presence", event_id="ev", zone="hall-a"):
    return {"id": str(uuid.uuid4()), "type": "checkin", "ts": ts(minute), "staff_id": staff_id,
            "event_id": event_id, "zone": zone, "method": method,
            "device": device_of(staff_id) if method == "presence" else None}


def binding(device, staff_id, minute=-60 * 24):
    return {"id": str(uuid.uuid4()), "type": "binding", "ts": ts(minute), "device": device,
            "staff_id": staff_id}


def occupancy(zone, minute, devices):
    return {"id": str(uuid.uuid4()), "type": "occupancy", "ts": ts(minute + 1), "zone": zone,
            "minute": ts(minute), "devices": devices}


def ingest(db, *records, node="hall-a-1"):
    """What hub.ingest does with a batch of good records."""
    good = [validate(r) for r in records]
    write_batch(db, f"rounds/v1/test/node/{node}/up/batch", node, good, [])


def add_event(db, event_id="ev", zones=("hall-a",), start=0, end=60, title="Hand hygiene",
              **extra):
    db["events"].insert({"id": event_id, "title": title, "kind": "lecture",
                         "zones": json.dumps(list(zones)), "start": ts(start), "end": ts(end),
                         **extra})


def add_staff(db, staff_id, name, department="Nursing"):
    db["staff"].insert({"staff_id": staff_id, "name": name, "department": department})


@pytest.fixture
def db(hub_db):
    database = hub_db  # closed by hub_db
    add_event(database)
    yield database


def rows_by_id(db, now=AFTER, event_id="ev"):
    return {r["staff_id"]: r for r in event_attendance(db, event_id, now=now)}


# --- the three statuses -----------------------------------------------------------


def test_late_and_early_is_partial_whole_time_is_present_never_seen_is_absent(db):
    add_staff(db, "N1", "Li Na")
    add_staff(db, "N2", "Wang Wei")
    add_staff(db, "N3", "Zhang Min")
    add_staff(db, "C1", "Chen Jie", department="Cardiology")  # not expected, never seen
    set_expected(db, "ev", departments=["Nursing"])
    ingest(db,
           checkin("N1", 12), presence("N1", 12, 45),  # late 12, leaves 15 early
           checkin("N2", -2), presence("N2", -5, 65))  # the whole lecture

    report = attendance_report(db, "ev", now=AFTER)

    assert report["counts"] == {"present": 1, "partial": 1, "absent": 1, "expected": 3,
                                "now": None}
    rows = report["attendance"]
    assert [(r["staff_id"], r["status"]) for r in rows] == [
        ("N2", "present"), ("N1", "partial"), ("N3", "absent")]
    late, whole, absent = rows[1], rows[0], rows[2]
    assert (late["dwell_minutes"], late["late_minutes"], late["early_leave_minutes"]) == (
        33.0, 12.0, 15.0)
    assert (late["first_seen"], late["last_seen"]) == (ts(12), ts(45))
    assert (whole["dwell_minutes"], whole["late_minutes"], whole["early_leave_minutes"]) == (
        60.0, 0.0, 0.0)
    assert whole["checked_in_at"] == ts(-2) and whole["method"] == "presence"
    assert whole["node"] == "hall-a-1" and whole["name"] == "Wang Wei"
    assert absent == {
        "staff_id": "N3", "name": "Zhang Min", "department": "Nursing", "status": "absent",
        "checked_in_at": None, "method": None, "node": None, "first_seen": None,
        "last_seen": None, "dwell_minutes": 0.0, "late_minutes": None,
        "early_leave_minutes": None, "expected": True, "registered": False,
        "walk_in": False, "now": None}
    assert all(r["expected"] for r in rows)


def test_an_interval_beyond_the_event_is_clipped_to_it(db):
    ingest(db, checkin("S1", 0), presence("S1", -40, 100))

    row = rows_by_id(db)["S1"]

    assert (row["first_seen"], row["last_seen"]) == (ts(0), ts(60))
    assert row["dwell_minutes"] == 60.0
    assert row["late_minutes"] == 0.0 and row["early_leave_minutes"] == 0.0


def test_two_nodes_of_one_hall_at_overlapping_times_are_not_double_counted(db):
    ingest(db, checkin("S1", 0), presence("S1", 0, 20), presence("S1", 40, 50), node="hall-a-1")
    ingest(db, presence("S1", 10, 30), node="hall-a-2")  # the other side of the hall

    row = rows_by_id(db)["S1"]

    assert row["dwell_minutes"] == 40.0  # 0-30 and 40-50, not 20 + 20 + 10
    assert row["status"] == "partial"  # 40 < 45
    assert (row["first_seen"], row["last_seen"]) == (ts(0), ts(50))
    assert row["early_leave_minutes"] == 10.0


def test_overlap_across_nodes_still_reaches_present(db):
    ingest(db, checkin("S1", 0), presence("S1", 0, 40), node="hall-a-1")
    ingest(db, presence("S1", 30, 55), node="hall-a-2")

    row = rows_by_id(db)["S1"]

    assert (row["dwell_minutes"], row["status"], row["early_leave_minutes"]) == (
        55.0, "present", 0.0)


def test_an_interval_that_ends_before_it_starts_adds_nothing(db):
    # A node clock that jumped back mid-interval: last_seen < first_seen.
    ingest(db, checkin("S1", 0), presence("S1", 0, 30), presence("S1", 55, 10),
           presence("S2", 50, 5))  # S2: nothing but a backwards interval, no check-in

    rows = rows_by_id(db)

    assert rows["S1"]["dwell_minutes"] == 30.0
    assert rows["S1"]["last_seen"] == ts(30)
    assert rows["S1"]["early_leave_minutes"] == 30.0
    assert "S2" not in rows


def test_presence_without_staff_id_is_attributed_through_the_device_binding(db):
    phone, stranger = device_of("phone-of-S7"), device_of("nobody")
    add_staff(db, "S7", "Zhou Xin")
    ingest(db, binding(phone, "S7"))
    ingest(db, checkin("S7", 1), presence(None, 0, 60, device=phone),
           presence(None, 0, 60, device=stranger))  # bound to nobody: nobody's

    rows = event_attendance(db, "ev", now=AFTER)

    assert [(r["staff_id"], r["name"], r["status"], r["dwell_minutes"]) for r in rows] == [
        ("S7", "Zhou Xin", "present", 60.0)]


def test_during_the_event_the_duration_so_far_is_what_counts(db):
    ingest(db, checkin("S1", 0), presence("S1", 0, 28, closed=False),  # still here
           checkin("S2", 0), presence("S2", 0, 15, closed=True))  # left at 09:15

    live = rows_by_id(db, now=at(30))  # 09:30: 0.75 x 30 min = 22.5 min needed
    later = rows_by_id(db, now=AFTER)  # nobody came back

    # S1's interval is open: the phone is still there, so it counts up to now.
    assert (live["S1"]["status"], live["S1"]["dwell_minutes"]) == ("present", 30.0)
    assert live["S1"]["early_leave_minutes"] == 0.0  # open: not left
    assert (live["S2"]["status"], live["S2"]["early_leave_minutes"]) == ("partial", 45.0)
    assert (live["S1"]["now"], live["S2"]["now"]) == ("in_room", "left")
    # Long after, S1's node never refreshed the interval: it ended at its last_seen.
    assert (later["S1"]["status"], later["S1"]["early_leave_minutes"]) == ("partial", 32.0)
    assert later["S1"]["now"] is None and later["S2"]["now"] is None


def test_late_and_early_leave_have_a_five_minute_grace(db):
    ingest(db, checkin("S1", 4), presence("S1", 4, 56),  # within the grace both ends
           checkin("S2", 7), presence("S2", 7, 53))

    rows = rows_by_id(db)

    assert (rows["S1"]["late_minutes"], rows["S1"]["early_leave_minutes"]) == (0.0, 0.0)
    assert (rows["S2"]["late_minutes"], rows["S2"]["early_leave_minutes"]) == (7.0, 7.0)
    assert rows["S1"]["status"] == rows["S2"]["status"] == "present"


# --- check-in without presence, presence without check-in -------------------------------


def test_a_portal_checkin_is_present_where_no_presence_source_watched(db):
    add_event(db, "ward-talk", zones=("ward-3",))  # ward-3's node does no presence
    ingest(db, checkin("S1", 20, method="portal", event_id="ward-talk", zone="ward-3"))

    [row] = event_attendance(db, "ward-talk", now=AFTER)

    assert (row["status"], row["dwell_minutes"], row["first_seen"]) == ("present", 0.0, None)
    assert row["late_minutes"] == 20.0  # arrival is the check-in when never seen


def test_a_portal_checkin_is_partial_where_a_presence_source_never_saw_the_person(db):
    # hall-a's node counts devices (occupancy): it was watching, and S1 never showed.
    ingest(db, occupancy("hall-a", 10, 12), checkin("S1", 3, method="portal"))

    row = rows_by_id(db)["S1"]

    assert (row["status"], row["method"], row["dwell_minutes"]) == ("partial", "portal", 0.0)


def test_a_portal_checkin_with_enough_presence_is_present(db):
    ingest(db, checkin("S1", 3, method="portal"), presence("S1", 2, 60))

    assert rows_by_id(db)["S1"]["status"] == "present"


def test_seen_without_a_checkin_is_partial_at_most(db):
    ingest(db, presence("S1", 0, 60))

    row = rows_by_id(db)["S1"]

    assert (row["status"], row["dwell_minutes"], row["checked_in_at"]) == ("partial", 60.0, None)


def test_presence_in_other_zones_or_at_other_times_does_not_count(db):
    ingest(db, checkin("S1", 0), presence("S1", 0, 60, zone="ward-3"),
           presence("S1", 70, 90), presence("S1", -50, -10),
           presence("S2", 0, 60, zone="ward-3"))

    rows = rows_by_id(db)

    assert (rows["S1"]["status"], rows["S1"]["dwell_minutes"]) == ("partial", 0.0)
    assert rows["S1"]["first_seen"] is None
    assert "S2" not in rows


def test_an_event_in_two_zones_counts_both(db):
    add_event(db, "big", zones=("hall-a", "hall-b"))
    ingest(db, checkin("S1", 0, event_id="big"), presence("S1", 0, 25),
           presence("S1", 20, 50, zone="hall-b"))

    [row] = event_attendance(db, "big", now=AFTER)

    assert (row["dwell_minutes"], row["status"]) == (50.0, "present")


def test_min_presence_of_the_event_is_used(db):
    add_event(db, "half", min_presence=0.5)  # same hour, same hall, half is enough
    ingest(db, checkin("S1", 0, event_id="half"), checkin("S1", 0), presence("S1", 0, 35))

    assert event_attendance(db, "half", now=AFTER)[0]["status"] == "present"  # 35 >= 30
    assert event_attendance(db, "ev", now=AFTER)[0]["status"] == "partial"  # 35 < 45


# --- expected attendees ---------------------------------------------------------------


def test_expected_is_the_union_of_departments_and_people(db):
    add_staff(db, "N1", "Li Na", "Nursing")
    add_staff(db, "N2", "Wang Wei", "Nursing")
    add_staff(db, "P1", "Sun Na", "Pharmacy")
    add_staff(db, "C1", "Chen Jie", "Cardiology")

    set_expected(db, "ev", departments=["Nursing"], staff=["P1", "X404"])

    assert get_expected(db, "ev") == {"departments": ["Nursing"], "staff": ["P1", "X404"]}
    assert expected_staff(db, "ev") == {"N1", "N2", "P1", "X404"}
    rows = rows_by_id(db)
    assert set(rows) == {"N1", "N2", "P1", "X404"}
    assert rows["X404"]["name"] is None and rows["X404"]["status"] == "absent"

    set_expected(db, "ev", staff=["C1"])  # replaces, does not add

    assert get_expected(db, "ev") == {"departments": [], "staff": ["C1"]}
    assert expected_staff(db, "ev") == {"C1"}


def test_set_expected_refuses_an_unknown_event_or_an_empty_name(db):
    with pytest.raises(ValueError, match="unknown event"):
        set_expected(db, "nope", departments=["Nursing"])
    with pytest.raises(ValueError):
        set_expected(db, "ev", departments=[" "])
    assert get_expected(db, "ev") == {"departments": [], "staff": []}


def test_unexpected_walk_ins_are_listed_but_not_expected(db):
    add_staff(db, "N1", "Li Na", "Nursing")
    add_staff(db, "C1", "Chen Jie", "Cardiology")
    set_expected(db, "ev", departments=["Nursing"])
    ingest(db, checkin("C1", 0), presence("C1", 0, 60), checkin("N1", 0), presence("N1", 0, 60))

    report = attendance_report(db, "ev", now=AFTER)

    assert report["counts"] == {"present": 2, "partial": 0, "absent": 0, "expected": 1,
                                "now": None}
    assert {r["staff_id"]: r["expected"] for r in report["attendance"]} == {
        "N1": True, "C1": False}


# --- ordering, counts on the event list, helpers ------------------------------------------


def test_rows_are_ordered_present_partial_absent_then_by_checkin_then_name(db):
    for sid, name in [("A", "Zhu Yan"), ("B", "Hu Bin"), ("C", "Ma Jun"), ("D", "Xu Tao"),
                      ("E", "Gao Feng"), ("F", "Wu Hui")]:
        add_staff(db, sid, name)
    set_expected(db, "ev", staff=["E", "F"])
    ingest(db, checkin("A", 2), presence("A", 2, 60), checkin("B", 1), presence("B", 1, 60),
           checkin("C", 3), presence("C", 3, 20), presence("D", 0, 60))

    order = [r["staff_id"] for r in event_attendance(db, "ev", now=AFTER)]

    # present by check-in time, partial with a check-in before one without, absent by name
    assert order == ["B", "A", "C", "D", "E", "F"]


def test_list_events_adds_status_counts(db):
    add_staff(db, "N1", "Li Na")
    add_staff(db, "N2", "Wang Wei")
    set_expected(db, "ev", departments=["Nursing"])
    ingest(db, checkin("N1", 0), presence("N1", 0, 60))

    [event] = list_events(db, now=AFTER)

    assert (event["checked_in"], event["present"], event["partial"], event["absent"],
            event["expected"]) == (1, 1, 0, 1, 2)
    assert "present" not in list_events(db, counts=False)[0]


def test_an_unknown_event_has_no_attendance(db):
    assert event_attendance(db, "nope") == []
    assert attendance_report(db, "nope") is None


def test_merge_intervals():
    a, b, c, d = at(0), at(10), at(20), at(30)
    assert merge_intervals([(c, d), (a, b)]) == [(a, b), (c, d)]
    assert merge_intervals([(a, c), (b, d)]) == [(a, d)]
    assert merge_intervals([(a, d), (b, c)]) == [(a, d)]
    assert merge_intervals([(a, b), (b, c)]) == [(a, c)]
    assert merge_intervals([]) == []


def test_grace_and_default_are_the_documented_ones():
    assert attendance.GRACE == timedelta(minutes=5)
    assert attendance.DEFAULT_MIN_PRESENCE == 0.75


# --- which zones had a presence source -----------------------------------------------------


def test_a_zone_counts_as_watched_only_by_a_source_during_the_event(db):
    # One ward talk per zone at the same hour, S1 checks in to each by portal
    # and is never seen: partial where a source watched, present where none did.
    for ward in ("ward-1", "ward-2", "ward-3", "ward-4", "ward-5"):
        add_event(db, ward, zones=(ward,))
        ingest(db, checkin("S1", 5, method="portal", event_id=ward, zone=ward))
    ingest(db, presence("S9", -30, 90, zone="ward-1"),  # someone else, across the whole talk
           occupancy("ward-2", 30, 4),
           checkin("S8", 2, event_id="ward-3", zone="ward-3"),  # a presence check-in there
           presence("S9", -50, -10, zone="ward-4"), occupancy("ward-4", 75, 3),  # before, after
           checkin("S8", 2, event_id="ev", zone="ward-5"))  # by presence, to another event

    status = {ward: rows_by_id(db, event_id=ward)["S1"]["status"]
              for ward in ("ward-1", "ward-2", "ward-3", "ward-4", "ward-5")}

    assert status == {
        "ward-1": "partial", "ward-2": "partial", "ward-3": "partial", "ward-4": "present",
        "ward-5": "present"}


# --- while the event is on: where people are now ----------------------------------------


def test_one_minute_in_those_who_came_early_are_in_the_room_not_partial(db):
    """The demo's first screen: phones arrived before the start, their intervals
    open (refreshed a minute ago, before the start); one minute in they are in the
    room and present so far, not "partial, 0 min"."""
    ingest(db, checkin("S1", -8, method="portal"), presence("S1", -10, -1, closed=False),
           checkin("S2", -3), presence("S2", -3, -1, closed=False))

    rows = rows_by_id(db, now=at(1))

    assert {sid: (row["now"], row["status"], row["dwell_minutes"]) for sid, row in rows.items()} \
        == {"S1": ("in_room", "present", 1.0), "S2": ("in_room", "present", 1.0)}


def test_while_on_a_late_arrival_still_in_the_room_is_present_so_far(db):
    ingest(db, checkin("S1", 0.7, method="portal"), presence("S1", 0.7, 1.5, closed=False),
           checkin("S2", 0, method="portal"), presence("S2", 0, 0.3, closed=True))

    rows = rows_by_id(db, now=at(2))  # 1.3 of 2 minutes: short of 0.75 x 2, within grace
    later = rows_by_id(db, now=at(9))  # 8.3 of 9 minutes: 0.75 x (9 - 5) = 3 needed

    assert (rows["S1"]["now"], rows["S1"]["status"]) == ("in_room", "present")
    assert (rows["S2"]["now"], rows["S2"]["status"]) == ("left", "partial")  # no grace out
    assert later["S1"]["status"] == "present"


def test_before_the_start_those_waiting_are_in_the_room(db):
    ingest(db, checkin("S1", -8, method="portal"), presence("S1", -10, -6, closed=False))

    [row] = event_attendance(db, "ev", now=at(-5))

    assert (row["now"], row["status"], row["first_seen"]) == ("in_room", "present", None)


def test_now_says_in_the_room_left_unseen_or_not_arrived(db):
    set_expected(db, "ev", staff=["S1", "S2", "S3", "S4", "S5"])
    ingest(db, occupancy("hall-a", 10, 3),  # hall-a's node watches the room
           checkin("S1", 0), presence("S1", 0, 19, closed=False),
           checkin("S2", 0), presence("S2", 0, 12, closed=True),  # walked out at 09:12
           checkin("S3", 2, method="portal"),  # tapped in, phone never seen
           checkin("S5", 0), presence("S5", 0, 5, closed=False))  # node silent since 09:05

    report = attendance_report(db, "ev", now=at(20))

    now = {row["staff_id"]: row["now"] for row in report["attendance"]}
    assert now == {"S1": "in_room", "S2": "left", "S3": "unseen", "S4": "not_arrived",
                   "S5": "left"}
    assert report["counts"]["now"] == {"in_room": 1, "unseen": 1, "left": 2, "not_arrived": 1}
    assert [row["staff_id"] for row in report["attendance"]][:2] == ["S1", "S3"]


def test_an_open_interval_not_refreshed_for_ten_minutes_ends_at_its_last_seen(db):
    ingest(db, checkin("S1", 0), presence("S1", 0, 30, closed=False))

    fresh = rows_by_id(db, now=at(39))["S1"]
    stale = rows_by_id(db, now=at(41))["S1"]

    assert (fresh["now"], fresh["dwell_minutes"]) == ("in_room", 39.0)
    assert (stale["now"], stale["dwell_minutes"]) == ("left", 30.0)
