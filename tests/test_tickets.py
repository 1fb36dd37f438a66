"""Tickets from reports on a real hub database: routing, due times, states and
history, duplicates, volunteer hours, ticket states for the node, the API."""

import hashlib
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from hub.ingest.store import write_batch
from hub.tickets import hours, tickets
from hub.tickets.errors import NotFound
from protocol.clock import iso
from protocol.records import validate

from .hubweb import post_json, signed_in

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=timezone.utc)


def at(minutes: float) -> str:
    return iso(T0 + timedelta(minutes=minutes))


def sha(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def report(minute=0, category="hygiene", zone="ward-3", staff_id="N001", photos=(),
           note="spill by bed 4", report_id=None, **extra):
    record = {"id": str(uuid.uuid4()), "type": "report", "ts": at(minute),
              "report_id": report_id or str(uuid.uuid4()), "staff_id": staff_id,
              "category": category, "note": note, "zone": zone, "photos": list(photos),
              "taken_at": at(minute), **extra}
    return validate(record)


def ingest(db, *records, node="ward-3-1"):
    write_batch(db, f"rounds/v1/test/node/{node}/up/batch", node, list(records), [])


def add_photo(db, name: str, dhash: str | None = None) -> str:
    digest = sha(name)
    db["photos"].insert({"sha256": digest, "size": 1000, "path": f"/photos/{digest}.jpg",
                         "received_at": at(0), "dhash": dhash})
    return digest


def materialize(db, minute=1) -> list[str]:
    with db.atomic():
        return tickets.materialize(db, now=T0 + timedelta(minutes=minute))


def file(db, *records, minute=1, node="ward-3-1") -> list[str]:
    ingest(db, *records, node=node)
    return materialize(db, minute)


def ticket_of(db, report_id):
    row = db.conn.execute("SELECT ticket_id, duplicate FROM ticket_reports WHERE report_id = ?",
                          (report_id,)).fetchone()
    return row and (str(row[0]), bool(row[1]))


@pytest.fixture
def db(hub_db):
    database = hub_db  # closed by hub_db
    yield database


# -- routing and due times ---------------------------------------------------

def test_routing_the_most_specific_rule_wins_else_the_civility_office(db):
    tickets.add_rule(db, "facilities", "ward_maintenance", zone="ward-3")
    tickets.add_rule(db, "facilities", "estates")  # newer, but less specific
    tickets.add_rule(db, "service", "nursing_dept")
    [zone_rule] = file(db, report(category="facilities", zone="ward-3"))
    [category_rule] = file(db, report(category="facilities", zone="icu"))
    [cat_only] = file(db, report(category="service", zone="ward-3"))
    [fallback] = file(db, report(category="queue", zone="ward-3"))
    [unknown] = file(db, report(category="parking", zone="lobby"))
    department = {t: tickets.get_ticket(db, t)["department"]
                  for t in (zone_rule, category_rule, cat_only, fallback, unknown)}
    assert department == {zone_rule: "ward_maintenance", category_rule: "estates",
                          cat_only: "nursing_dept", fallback: "civility_office",
                          unknown: "civility_office"}


def test_due_time_by_category(db):
    ids = file(db, report(category="safety", zone="a"), report(category="hygiene", zone="b"),
               report(category="signage", zone="c"), report(category="parking", zone="d"),
               minute=10)
    due = {tickets.get_ticket(db, t)["category"]: tickets.get_ticket(db, t)["due_at"]
           for t in ids}
    assert due == {"safety": at(10 + 4 * 60), "hygiene": at(10 + 8 * 60),
                   "signage": at(10 + 48 * 60), "parking": at(10 + 48 * 60)}


def test_a_new_ticket_has_its_report_fields_and_a_creation_history_row(db):
    r = report(lat=31.2, lon=121.4, note="wet floor")
    [tid] = file(db, r, minute=2)
    ticket = tickets.get_ticket(db, tid, detail=True)
    assert (ticket["state"], ticket["report_id"], ticket["staff_id"], ticket["reporters"],
            ticket["lat"], ticket["lon"], ticket["note"], ticket["reported_at"],
            ticket["created_at"]) == ("new", r["report_id"], "N001", 1, 31.2, 121.4,
                                      "wet floor", at(0), at(2))
    assert [(h["who"], h["from_state"], h["to_state"]) for h in ticket["history"]] == [
        ("system", None, "new")]
    assert materialize(db, 3) == []  # materialized once


# -- waiting for photos --------------------------------------------------------

def test_a_report_waits_for_its_missing_photo(db):
    first = add_photo(db, "p1")
    missing = sha("p2")
    r = report(photos=[first, missing])
    assert file(db, r) == []
    assert ticket_of(db, r["report_id"]) is None
    assert tickets.reports_for_node(db, "ward-3-1", now=T0) == [
        {"report_id": r["report_id"], "ticket_id": None, "state": "waiting", "duplicate": False}]
    add_photo(db, "p2")
    [tid] = materialize(db, 5)
    assert tickets.get_ticket(db, tid)["photos"] == [first, missing]


# -- state machine -------------------------------------------------------------

def test_states_move_along_the_machine_and_every_move_is_in_history(db):
    [tid] = file(db, report())
    for step, state in enumerate(("assigned", "in_progress", "resolved", "closed")):
        tickets.transition(db, tid, state, "H001", f"step {step}",
                           now=T0 + timedelta(hours=step + 1))
    ticket = tickets.get_ticket(db, tid, detail=True)
    assert ticket["state"] == "closed" and not ticket["open"]
    assert [(h["from_state"], h["to_state"], h["who"], h["comment"]) for h in
            ticket["history"]] == [
        (None, "new", "system", f"created from report {ticket['report_id']}"),
        ("new", "assigned", "H001", "step 0"), ("assigned", "in_progress", "H001", "step 1"),
        ("in_progress", "resolved", "H001", "step 2"), ("resolved", "closed", "H001", "step 3")]
    assert ticket["updated_at"] == iso(T0 + timedelta(hours=4))


@pytest.mark.parametrize("path, bad", [
    ((), "in_progress"), ((), "resolved"), ((), "closed"),
    (("assigned",), "new"), (("assigned",), "closed"),
    (("assigned", "in_progress", "resolved"), "rejected"),
    (("assigned", "in_progress", "resolved", "closed"), "new"),
    (("rejected",), "assigned"), ((), "done"),
])
def test_invalid_moves_are_refused_and_change_nothing(db, path, bad):
    [tid] = file(db, report())
    for state in path:
        tickets.transition(db, tid, state, "H001")
    before = tickets.get_ticket(db, tid, detail=True)
    with pytest.raises(ValueError, match=bad):
        tickets.transition(db, tid, bad, "H001")
    assert tickets.get_ticket(db, tid, detail=True) == before


@pytest.mark.parametrize("path", [(), ("assigned",), ("assigned", "in_progress")])
def test_rejected_from_new_assigned_or_in_progress(db, path):
    [tid] = file(db, report())
    for state in path:
        tickets.transition(db, tid, state, "H001")
    assert tickets.transition(db, tid, "rejected", "H001", "not a problem")["state"] == "rejected"


def test_unknown_ticket(db):
    with pytest.raises(NotFound):
        tickets.transition(db, 999, "assigned", "H001")


# -- duplicates ----------------------------------------------------------------

def test_same_zone_and_category_within_30_minutes_attaches(db):
    original = report(0, staff_id="N001")
    [tid] = file(db, original)
    dup1, dup2 = report(29, staff_id="N002"), report(20, staff_id="N003")
    same_person = report(25, staff_id="N001")
    assert file(db, dup1, dup2, same_person, minute=31) == []
    for r in (dup1, dup2, same_person):
        assert ticket_of(db, r["report_id"]) == (tid, True)
    ticket = tickets.get_ticket(db, tid, detail=True)
    assert ticket["reporters"] == 3  # distinct people
    assert [(r["staff_id"], r["duplicate"]) for r in ticket["reports"]][0] == ("N001", False)
    assert len(ticket["reports"]) == 4
    assert len(tickets.list_tickets(db)) == 1


def test_other_zone_category_or_after_30_minutes_opens_a_new_ticket(db):
    [tid] = file(db, report(0))
    new = file(db, report(31), report(5, zone="ward-4"), report(5, category="safety"),
               minute=40)
    assert len(new) == 3 and tid not in new


def test_a_closed_or_rejected_ticket_takes_no_duplicates(db):
    [first] = file(db, report(0))
    for state in ("assigned", "in_progress", "resolved"):
        tickets.transition(db, first, state, "H001")
    [second] = file(db, report(5))
    assert second != first
    tickets.transition(db, second, "rejected", "H001")
    [third] = file(db, report(10))
    assert third not in (first, second)


def test_a_nearly_identical_photo_attaches_in_any_zone(db):
    base = 0x9F3A_5C71_2B8E_64D0
    near = base ^ 0x8000_0400_0020_0103  # 6 bits differ: the limit
    far = base ^ 0x007F_0000_0000_0000  # 7 bits differ (13 from near)
    mine = add_photo(db, "a", f"{base:016x}")
    [tid] = file(db, report(0, zone="ward-3", photos=[mine]))
    close = report(120, zone="corridor-2", category="safety", staff_id="N002",
                   photos=[add_photo(db, "b", f"{near:016x}")])
    distant = report(120, zone="corridor-2", category="hygiene", staff_id="N003",
                     photos=[add_photo(db, "c", f"{far:016x}")])
    [other] = file(db, close, distant, minute=121)
    assert ticket_of(db, close["report_id"]) == (tid, True)
    assert ticket_of(db, distant["report_id"]) == (other, False)
    assert tickets.get_ticket(db, tid, detail=True)["reports"][1]["matched_by"] == "photo"
    assert tickets.hamming(f"{base:016x}", f"{near:016x}") == 6


def test_featureless_photo_hashes_do_not_match_each_other(db):
    [tid] = file(db, report(0, photos=[add_photo(db, "black1", "0000000000000000")]))
    [other] = file(db, report(120, zone="x", photos=[add_photo(db, "black2", "0000000000000001")]),
                   minute=121)
    assert other != tid


def test_no_photo_match_against_a_closed_ticket(db):
    h = "9f3a5c712b8e64d0"
    [tid] = file(db, report(0, photos=[add_photo(db, "a", h)]))
    tickets.transition(db, tid, "rejected", "H001")
    [other] = file(db, report(120, zone="x", photos=[add_photo(db, "b", h)]), minute=121)
    assert other != tid


# -- volunteer hours -----------------------------------------------------------

def test_acceptance_credits_the_reporter_and_not_zero_credit_duplicates(db):
    original = report(0, staff_id="N001")
    dup = report(5, staff_id="N002")
    [tid] = file(db, original, dup)
    assert hours.entries(db) == []  # nothing before acceptance
    tickets.transition(db, tid, "assigned", "H001", now=T0 + timedelta(hours=1))
    [entry] = hours.entries(db)
    assert (entry["staff_id"], entry["hours"], entry["state"], entry["ticket_id"],
            entry["report_id"]) == ("N001", 0.5, "pending", int(tid), original["report_id"])
    assert hours.totals(db, "N001") == [
        {"staff_id": "N001", "approved": 0, "pending": 0.5, "rejected": 0}]
    assert hours.totals(db, "N002") == [
        {"staff_id": "N002", "approved": 0, "pending": 0, "rejected": 0}]


def test_duplicate_credit_from_settings_also_for_late_duplicates(db):
    db.conn.execute("UPDATE category_settings SET credit_hours = 1.0, "
                    "duplicate_credit_hours = 0.25 WHERE category = 'hygiene'")
    [tid] = file(db, report(0, staff_id="N001"), report(2, staff_id="N002"))
    tickets.transition(db, tid, "assigned", "H001")
    file(db, report(10, staff_id="N003"), report(11, staff_id="N001"), minute=12)
    got = sorted((e["staff_id"], e["hours"]) for e in hours.entries(db))
    assert got == [("N001", 1.0), ("N002", 0.25), ("N003", 0.25)]


def test_approve_reject_and_totals(db):
    a = file(db, report(0, staff_id="N001"))[0]
    b = file(db, report(0, zone="ward-4", staff_id="N001"))[0]
    c = file(db, report(0, zone="ward-5", staff_id="N002"))[0]
    for t in (a, b, c):
        tickets.transition(db, t, "assigned", "H001")
    ea, eb, ec = (hours.entries(db, state="pending")[::-1])
    assert hours.decide(db, ea["id"], True, "R001")["state"] == "approved"
    decided = hours.decide(db, eb["id"], False, "R001", now=T0)
    assert (decided["state"], decided["decided_by"], decided["decided_at"]) == (
        "rejected", "R001", at(0))
    with pytest.raises(ValueError, match="already approved"):
        hours.decide(db, ea["id"], False, "R002")
    with pytest.raises(NotFound):
        hours.decide(db, 999, True, "R001")
    assert hours.totals(db) == [
        {"staff_id": "N001", "approved": 0.5, "pending": 0, "rejected": 0.5},
        {"staff_id": "N002", "approved": 0, "pending": 0.5, "rejected": 0}]
    assert ec["staff_id"] == "N002"


def test_rejecting_a_ticket_rejects_its_pending_hours(db):
    [tid] = file(db, report())
    tickets.transition(db, tid, "assigned", "H001")
    tickets.transition(db, tid, "rejected", "H002", "duplicate of paper report")
    [entry] = hours.entries(db)
    assert (entry["state"], entry["decided_by"]) == ("rejected", "H002")


# -- the node's view -----------------------------------------------------------

def test_reports_for_node_show_ticket_state_and_duplicates(db):
    original, dup = report(0, staff_id="N001"), report(3, staff_id="N002")
    old = report(-60 * 24 * 31, zone="old")
    file(db, original, dup, old)
    tid, _ = ticket_of(db, original["report_id"])
    ingest(db, report(1, zone="elsewhere"), node="other-node")
    materialize(db, 2)
    tickets.transition(db, tid, "assigned", "H001")
    assert tickets.reports_for_node(db, "ward-3-1", now=T0 + timedelta(hours=1)) == [
        {"report_id": dup["report_id"], "ticket_id": tid, "state": "assigned",
         "duplicate": True},
        {"report_id": original["report_id"], "ticket_id": tid, "state": "assigned",
         "duplicate": False}]


# -- the JSON API ----------------------------------------------------------------

@pytest.fixture
def client(hub_app, db):
    return signed_in(hub_app, db, "office", username="H001")


def test_api_tickets_list_filter_detail_and_transition(db, client):
    tickets.add_rule(db, "hygiene", "cleaning", zone="ward-3")
    [a] = file(db, report(0, staff_id="N001"), report(2, staff_id="N002"))
    [b] = file(db, report(0, category="safety", zone="icu"))
    assert {t["id"] for t in client.get("/api/v1/tickets").get_json()} == {int(a), int(b)}
    assert [t["id"] for t in client.get("/api/v1/tickets?department=cleaning").get_json()] == [
        int(a)]
    assert [t["id"] for t in client.get("/api/v1/tickets?category=safety&zone=icu")
            .get_json()] == [int(b)]
    assert client.get("/api/v1/tickets?state=assigned").get_json() == []
    assert client.get("/api/v1/tickets?state=bogus").status_code == 400

    detail = client.get(f"/api/v1/tickets/{a}").get_json()
    assert detail["reporters"] == 2 and len(detail["reports"]) == 2
    assert detail["history"][0]["to_state"] == "new"

    r = post_json(client, f"/api/v1/tickets/{a}/transition",
                  {"to": "assigned", "comment": "on it"})
    assert r.status_code == 200 and r.get_json()["state"] == "assigned"
    assert r.get_json()["history"][-1] == {"at": r.get_json()["updated_at"], "who": "H001",
                                           "from_state": "new", "to_state": "assigned",
                                           "comment": "on it"}
    assert [t["id"] for t in client.get("/api/v1/tickets?state=assigned,new").get_json()
            ] == [int(b), int(a)]
    conflict = post_json(client, f"/api/v1/tickets/{a}/transition", {"to": "closed"})
    assert conflict.status_code == 409 and "from assigned to closed" in conflict.get_json()["error"]
    assert post_json(client, f"/api/v1/tickets/{a}/transition", {"to": "x"}
                       ).status_code == 400
    assert post_json(client, f"/api/v1/tickets/{a}/transition", {"to": "in_progress",
                                                                 "comment": 7}
                     ).status_code == 400
    assert post_json(client, "/api/v1/tickets/999/transition", {"to": "assigned"}
                       ).status_code == 404
    assert client.get("/api/v1/tickets/999").get_json() == {"error": "unknown ticket: 999"}


def test_api_hours_and_decision(db, client):
    [tid] = file(db, report(staff_id="N001"))
    post_json(client, f"/api/v1/tickets/{tid}/transition", {"to": "assigned"})
    body = client.get("/api/v1/hours?staff_id=N001").get_json()
    assert body["totals"] == [{"staff_id": "N001", "approved": 0, "pending": 0.5,
                               "rejected": 0}]
    [entry] = body["entries"]
    r = post_json(client, f"/api/v1/hours/{entry['id']}/decision", {"approve": True})
    assert r.status_code == 200 and r.get_json()["state"] == "approved"
    assert client.get("/api/v1/hours").get_json()["totals"] == [
        {"staff_id": "N001", "approved": 0.5, "pending": 0, "rejected": 0}]
    assert post_json(client, f"/api/v1/hours/{entry['id']}/decision", {"approve": False}).status_code == 409
    assert post_json(client, f"/api/v1/hours/{entry['id']}/decision", {"approve": "yes"}).status_code == 400
    assert post_json(client, "/api/v1/hours/999/decision", {"approve": True}).status_code == 404
    assert client.get("/api/v1/hours?state=nope").status_code == 400


def test_a_report_whose_photo_never_comes_becomes_a_ticket_after_the_nodes_spool_limit(db):
    """The node drops a photo it could not send in 30 days (edge/retention.py);
    the hub stops waiting for it a day later."""
    first, missing = add_photo(db, "p1"), sha("lost")
    r = report(photos=[first, missing])
    assert file(db, r) == []
    with db.atomic():
        db.conn.execute("UPDATE reports SET received_at = ? WHERE report_id = ?",
                        (at(0), r["report_id"]))
    assert materialize(db, 30 * 24 * 60) == []  # 30 days: still waiting
    [tid] = materialize(db, 31 * 24 * 60 + 1)
    assert tickets.get_ticket(db, tid)["photos"] == [first]
