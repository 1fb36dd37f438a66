"""Registration (报名) on the hub: settings, register and cancel with places
and a waiting list, concurrent sign-ups (50 people racing for 20 places,
each on its own connection), promotion in order, records from nodes (in
``taken_at`` order, a repeat or a stale one changing nothing, refusals
quarantined), the attendance rows' ``registered`` and ``walk_in``, and a
person's iCal feed of their registered events. Real SQLite files."""

import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from icalendar import Calendar

from hub import audit
from hub.attendance import exports
from hub.attendance.attendance import attendance_report, expected_staff, set_expected
from hub.db import open_db, write_transaction
from hub.ingest import downlink
from hub.ingest.store import write_batch
from hub.schedule import ical, registration, registration_lists
from hub.schedule.registration import RegistrationError
from hub.schedule.zones import Invalid
from protocol.clock import iso
from protocol.records import validate

from .hubweb import make_app

NOW = datetime.now(timezone.utc).replace(microsecond=0)
START = NOW + timedelta(days=2)
TOPIC = "rounds/v1/test/node/n1/up/batch"


def at(minutes: float) -> datetime:
    return NOW + timedelta(minutes=minutes)


def settings(**overrides) -> dict:
    return {"opens_at": at(-60), "closes_at": START, "capacity": 2, **overrides}


@pytest.fixture
def db(hub_db):
    with hub_db.conn:
        hub_db["zones"].insert({"zone": "hall-a", "name": "Lecture hall A"})
        hub_db["nodes"].insert({"node": "n1", "zone": "hall-a"})
        hub_db["departments"].insert_all([{"department": "nursing", "name": "护理部"},
                                          {"department": "cardiology", "name": "心内科"}])
        hub_db["staff"].insert_all(
            [{"staff_id": f"N{n:02d}", "name": f"Nurse {n}", "department": "nursing",
              "role": "staff"} for n in range(1, 61)]
            + [{"staff_id": "C1", "name": "Dr. Chen", "department": "cardiology",
                "role": "staff"},
               {"staff_id": "R1", "name": "Reviewer Wu", "department": "cardiology",
                "role": "dept_reviewer"}])
        hub_db["events"].insert({"id": "ev", "title": "Infection control", "kind": "training",
                                 "zones": '["hall-a"]', "start": iso(START),
                                 "end": iso(START + timedelta(hours=2)), "credit_hours": 2})
    return hub_db


def configure(db, **overrides):
    with write_transaction(db):
        return registration.configure(db, "ev", settings(**overrides), NOW)


def register(db, staff_id, minutes=0.0):
    with write_transaction(db):
        return registration.register(db, "ev", staff_id, at(minutes))


def cancel(db, staff_id, minutes=0.0):
    with write_transaction(db):
        return registration.cancel(db, "ev", staff_id, at(minutes))


def lists(db):
    return ([p["staff_id"] for p in registration_lists.registered(db, "ev")],
            [(p["staff_id"], p["position"]) for p in registration_lists.waiting(db, "ev")])


# -- settings ---------------------------------------------------------------------

def test_settings_are_stored_and_checked(db):
    configure(db, capacity="30", departments=["nursing"], roles=["dept_reviewer"],
              staff=["C1"], required=True)
    stored = registration.get(db, "ev")
    assert stored == {"event_id": "ev", "opens_at": iso(at(-60)), "closes_at": iso(START),
                      "capacity": 30, "departments": ["nursing"], "roles": ["dept_reviewer"],
                      "staff": ["C1"], "required": True}
    with pytest.raises(Invalid) as refused:
        configure(db, opens_at=START, closes_at=at(0), capacity="0", departments=["nope"],
                  roles=["pope"], staff=["X9"])
    assert {p.field for p in refused.value.problems} == {
        "reg_closes", "reg_capacity", "reg_departments", "reg_roles", "reg_staff"}
    with pytest.raises(Invalid) as late:
        configure(db, closes_at=START + timedelta(hours=3))  # after the event's end
    assert [p.field for p in late.value.problems] == ["reg_closes"]
    assert registration.get(db, "ev")["capacity"] == 30  # nothing changed
    with pytest.raises(RegistrationError):
        with write_transaction(db):
            registration.configure(db, "nope", settings())


def test_who_may_register(db):
    configure(db, departments=["cardiology"], roles=["dept_reviewer"], staff=["N07"],
              capacity=None)
    assert register(db, "C1") == "registered"  # by department
    assert register(db, "R1") == "registered"  # by department and role
    assert register(db, "N07") == "registered"  # named
    with pytest.raises(RegistrationError) as refused:
        register(db, "N01")
    assert refused.value.code == "not_eligible"
    with pytest.raises(RegistrationError) as unknown:
        register(db, "ZZ")
    assert unknown.value.code == "unknown_staff"
    configure(db, departments=[], roles=[], staff=[], capacity=None)  # everyone
    assert register(db, "N01") == "registered"


def test_the_window_and_the_start(db):
    configure(db, opens_at=at(10), closes_at=at(20))
    for minutes, code in ((5, "not_open"), (20, "closed")):
        with pytest.raises(RegistrationError) as refused:
            register(db, "N01", minutes)
        assert refused.value.code == code
    assert register(db, "N01", 15) == "registered"
    assert register(db, "N01", 30) == "registered"  # already: no error, no change
    with pytest.raises(RegistrationError) as late:
        cancel(db, "N01", (START - NOW).total_seconds() / 60)
    assert late.value.code == "started"
    assert cancel(db, "N01", 60) == {"was": "registered", "promoted": []}  # after close
    with pytest.raises(RegistrationError) as none:
        with write_transaction(db):
            registration.register(db, "ev-none", "N01", NOW)
    assert none.value.code == "unknown_event"


# -- places, the waiting list, promotion --------------------------------------------

def test_full_event_puts_people_on_the_waiting_list_and_promotes_in_order(db):
    configure(db, capacity=2)
    assert [register(db, s, n) for n, s in enumerate(["N01", "N02", "N03", "N04", "N05"])] == [
        "registered", "registered", "waiting", "waiting", "waiting"]
    assert lists(db) == (["N01", "N02"], [("N03", 1), ("N04", 2), ("N05", 3)])
    assert registration.state_of(db, "ev", "N04") == {"state": "waiting", "position": 2}
    assert register(db, "N04", 10) == "waiting"  # idempotent: keeps its place
    assert registration.state_of(db, "ev", "N04")["position"] == 2

    assert cancel(db, "N01", 20) == {"was": "registered", "promoted": ["N03"]}
    assert lists(db) == (["N02", "N03"], [("N04", 1), ("N05", 2)])
    assert cancel(db, "N04", 21) == {"was": "waiting", "promoted": []}  # a waiting place
    assert lists(db) == (["N02", "N03"], [("N05", 1)])
    assert cancel(db, "N04", 22) == {"was": "cancelled", "promoted": []}  # nothing to do

    assert register(db, "N01", 30) == "waiting"  # back, at the end of the queue
    assert lists(db) == (["N02", "N03"], [("N05", 1), ("N01", 2)])
    assert configure(db, capacity=3) == ["N05"]  # a raised capacity promotes
    assert configure(db, capacity=1) == []  # a lowered one takes no place away
    assert lists(db) == (["N02", "N03", "N05"], [("N01", 1)])
    assert cancel(db, "N02", 40)["promoted"] == []  # still over the new capacity
    assert configure(db, capacity=None) == ["N01"]  # no limit: everyone in
    assert lists(db) == (["N03", "N05", "N01"], [])


def test_fifty_people_race_for_twenty_places(db, hub_location):
    configure(db, capacity=20)
    people = [f"N{n:02d}" for n in range(1, 51)]
    barrier = threading.Barrier(len(people))
    answers, errors = {}, []

    def sign_up(staff_id):
        conn = open_db(hub_location, migrate=False)  # a connection of its own
        try:
            barrier.wait()
            with write_transaction(conn):  # BEGIN IMMEDIATE, then the time
                answers[staff_id] = registration.register(conn, "ev", staff_id,
                                                          datetime.now(timezone.utc))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=sign_up, args=(s,)) for s in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(answers.values()).count("registered") == 20
    assert sorted(answers.values()).count("waiting") == 30
    registered, queue = lists(db)
    assert len(registered) == 20 and len(queue) == 30
    assert sorted(registered + [s for s, _ in queue]) == people
    assert [p for _, p in queue] == list(range(1, 31))
    assert {s for s, answer in answers.items() if answer == "registered"} == set(registered)
    # one order: the commit order; every place went before the first waiter came
    rows = db.conn.execute("SELECT staff_id, state FROM registrations WHERE event_id = 'ev' "
                           "ORDER BY queued_at, id").fetchall()
    assert [s for s, state in rows] == registered + [s for s, _ in queue]
    assert [state for _, state in rows] == ["registered"] * 20 + ["waiting"] * 30

    first, second = queue[0][0], queue[1][0]
    assert cancel(db, registered[5], 1)["promoted"] == [first]
    assert cancel(db, registered[0], 2)["promoted"] == [second]
    registered_now, queue_now = lists(db)
    assert registered_now[-2:] == [first, second] and len(registered_now) == 20
    assert queue_now[0] == (queue[2][0], 1) and len(queue_now) == 28


def test_cancellations_racing_promote_each_waiter_once(db, hub_location):
    configure(db, capacity=10)
    for n in range(1, 21):
        register(db, f"N{n:02d}", n)
    registered, queue = lists(db)
    errors = []

    def leave(staff_id):
        conn = open_db(hub_location, migrate=False)
        try:
            with write_transaction(conn):
                registration.cancel(conn, "ev", staff_id, datetime.now(timezone.utc))
        except Exception as exc:
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=leave, args=(s,)) for s in registered[:5]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    after, waiting_after = lists(db)
    assert after == registered[5:] + [s for s, _ in queue[:5]]
    assert waiting_after == [(s, n) for n, (s, _) in enumerate(queue[5:], 1)]


def test_the_office_overview_and_a_persons_list(db):
    configure(db, capacity=1, departments=["nursing"], required=True)
    register(db, "N01")
    register(db, "N02", 1)
    found = registration_lists.overview(db, "ev")
    assert found["counts"] == {"registered": 1, "waiting": 1}
    assert found["to_register"] == 58  # 60 nurses may, two did
    assert found["waiting"][0]["position"] == 1 and found["waiting"][0]["name"] == "Nurse 2"
    [mine] = registration_lists.for_person(db, "N02", at(2))
    assert (mine["state"], mine["position"], mine["window"], mine["required"],
            mine["can_register"], mine["can_cancel"]) == ("waiting", 1, "open", True, False, True)
    [other] = registration_lists.for_person(db, "N03", at(2))
    assert (other["state"], other["can_register"], other["registered"]) == (None, True, 1)
    assert registration_lists.for_person(db, "C1", at(2)) == []  # may not, not registered
    with write_transaction(db):
        with pytest.raises(Invalid):
            registration.remove(db, "ev")


# -- records from nodes ------------------------------------------------------------

def record(staff_id, action="register", minutes=0.0, event_id="ev"):
    return validate({"id": str(uuid.uuid4()), "type": "registration", "ts": iso(at(minutes)),
                     "event_id": event_id, "staff_id": staff_id, "action": action,
                     "taken_at": iso(at(minutes))})


def test_node_records_apply_in_taken_at_order_and_refusals_are_quarantined(db):
    configure(db, capacity=1, departments=["nursing"])
    batch = [record("N02", minutes=2), record("N01", minutes=1), record("C1", minutes=3),
             record("N03", event_id="nope"), record("N04", minutes=-120)]
    acked = write_batch(db, TOPIC, "n1", batch, [])
    assert sorted(acked) == sorted(r["id"] for r in batch)  # refused ones are durable too
    assert lists(db) == (["N01"], [("N02", 1)])  # N01 took it first, whatever the order sent
    reasons = [r for (r,) in db.conn.execute("SELECT reason FROM quarantine ORDER BY id")]
    assert len(reasons) == 3
    assert any("not open to you" in r and "'C1'" in r for r in reasons)
    assert any("no event" in r and "'nope'" in r for r in reasons)
    assert any("not opened yet" in r and "'N04'" in r for r in reasons)
    logged = audit.entries(db, action="registration.register")
    assert {(e["who"], e["detail"]["state"], e["detail"]["via"]) for e in logged} == {
        ("N01", "registered", "node:n1"), ("N02", "waiting", "node:n1")}
    assert registration_lists.registered(db, "ev")[0]["via"] == "node:n1"


def test_a_repeat_or_a_stale_record_changes_nothing(db):
    configure(db, capacity=None)
    first = record("N01", minutes=1)
    write_batch(db, TOPIC, "n1", [first], [])
    write_batch(db, TOPIC, "n1", [first], [])  # the ack was lost: sent again
    assert lists(db) == (["N01"], [])
    cancel(db, "N01", 5)  # on the hub, later
    write_batch(db, TOPIC, "n1", [first], [])  # a late copy of the older registration
    assert lists(db) == ([], [])
    write_batch(db, TOPIC, "n1", [record("N01", minutes=6)], [])  # a newer one counts
    register_again = lists(db)
    assert register_again == (["N01"], [])
    write_batch(db, TOPIC, "n1", [record("N01", "cancel", minutes=4)], [])  # older than it
    assert lists(db) == (["N01"], [])
    write_batch(db, TOPIC, "n1", [record("N01", "cancel", minutes=7)], [])
    assert lists(db) == ([], [])
    assert db["quarantine"].count == 0


def test_the_node_config_carries_each_events_registration(db):
    configure(db, capacity=1, roles=["dept_reviewer"], staff=["N05"])
    register(db, "N05")
    register(db, "R1", 1)
    config = downlink.node_config_document(db, "n1", at(2))
    [event] = config["registrations"]
    assert event == {"event_id": "ev", "title": "Infection control", "kind": "training",
                     "start": iso(START), "end": iso(START + timedelta(hours=2)),
                     "places": ["Lecture hall A"], "opens_at": iso(at(-60)),
                     "closes_at": iso(START), "capacity": 1, "required": False,
                     "who": {"departments": [], "staff": ["N05", "R1"]},
                     "registered": ["N05"], "waiting": ["R1"]}
    cancel(db, "N05", 3)
    assert downlink.node_config_document(db, "n1", at(4))["version"] != config["version"]


# -- attendance and the feed ---------------------------------------------------------

def test_registered_people_are_expected_and_walk_ins_are_marked(db):
    configure(db, capacity=2)
    register(db, "N01")
    register(db, "N02", 1)
    register(db, "N03", 2)  # waiting: not expected
    set_expected(db, "ev", staff=["C1"])
    assert expected_staff(db, "ev") == {"C1", "N01", "N02"}
    with db.conn:
        for staff_id in ("N01", "N09"):
            db["checkins"].insert({"id": str(uuid.uuid4()), "node": "n1", "ts": iso(START),
                                   "received_at": iso(START), "staff_id": staff_id,
                                   "event_id": "ev", "zone": "hall-a", "method": "portal"})
    report = attendance_report(db, "ev", now=START + timedelta(hours=3))
    rows = {r["staff_id"]: r for r in report["attendance"]}
    assert {s: (r["status"], r["expected"], r["registered"], r["walk_in"])
            for s, r in rows.items()} == {
        "N01": ("present", True, True, False), "N02": ("absent", True, True, False),
        "C1": ("absent", True, False, False), "N09": ("present", False, False, True)}
    assert report["registration"] == {"registered": 2, "registered_absent": 1, "walk_ins": 1}


def test_a_persons_feed_has_the_events_they_registered_for(db, hub_location, tmp_path):
    configure(db, capacity=1)
    with db.conn:
        db["events"].insert({"id": "other", "title": "Fire drill", "kind": "meeting",
                             "zones": '["hall-a"]', "start": iso(START),
                             "end": iso(START + timedelta(hours=1))})
    register(db, "N01")
    register(db, "N02", 1)  # waiting: not in the feed
    assert [e["id"] for e in ical.feed_events(db, "person", "N01")] == ["ev"]
    assert ical.feed_events(db, "person", "N02") == []
    app = make_app(hub_location, SECRET_KEY="feed-test-secret", PHOTOS_DIR=str(tmp_path))
    token = ical.feed_token("feed-test-secret", "person", "N01")
    client = app.test_client()  # no sign-in
    response = client.get(f"/calendar/person/N01.ics?token={token}")
    assert response.status_code == 200 and response.mimetype == "text/calendar"
    calendar = Calendar.from_ical(response.get_data())
    assert [str(e["SUMMARY"]) for e in calendar.walk("VEVENT")] == ["Infection control"]
    assert "Nurse 1" in str(calendar["X-WR-CALNAME"])
    assert client.get("/calendar/person/N02.ics?token=" + token).status_code == 404
    assert client.get("/calendar/person/N01.ics").status_code == 404
    assert client.get("/calendar/person/ZZ.ics?token=" + ical.feed_token(
        "feed-test-secret", "person", "ZZ")).status_code == 404


def test_a_registered_person_who_stays_away_has_the_event_in_their_record(db):
    """Registered but absent: the event is in the person's record and export."""
    configure(db, capacity=None)
    register(db, "N01")
    after = START + timedelta(hours=3)
    record = exports.person_record(db, "N01", now=after)
    assert [(r["event_id"], r["status"]) for r in record["attendance"]] == [("ev", "absent")]
    assert exports.person_record(db, "N02", now=after)["attendance"] == []
