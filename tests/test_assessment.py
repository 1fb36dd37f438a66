"""Assessment (issue 15): progress on a constructed year equals a hand
computation — credit hours and events of some kinds attended (present only),
approved volunteer hours, approved record entries; confirmed only after the
review chain, pending before, nothing once rejected; targets by department
and role; who is behind; per department."""

import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from hub.assessment import items, progress
from hub.assessment.items import ItemError
from protocol.clock import iso

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 7, 2, 4, 0, tzinfo=timezone.utc)  # half the year gone


def at(month, day, hour=2):
    return datetime(2026, month, day, hour, tzinfo=timezone.utc)


@pytest.fixture
def db(hub_db):
    database = hub_db  # closed by hub_db
    with database.conn:
        database["staff"].insert_all([
            {"staff_id": "N1", "name": "N1", "department": "nursing", "role": "staff"},
            {"staff_id": "N2", "name": "N2", "department": "nursing", "role": "staff"},
            {"staff_id": "C1", "name": "C1", "department": "cardiology", "role": "dept_reviewer"}])
        for eid, kind, hours, start in (("t1", "training", 2, at(3, 1)),
                                        ("t2", "training", 1.5, at(5, 10)),
                                        ("l1", "lecture", 1, at(4, 2)),
                                        ("old", "training", 4, datetime(2025, 12, 30, 2,
                                                                         tzinfo=timezone.utc)),
                                        ("future", "training", 3, at(9, 1))):
            database["events"].insert({"id": eid, "title": eid, "kind": kind, "zones": "[]",
                                       "start": iso(start), "end": iso(start + timedelta(hours=1)),
                                       "credit_hours": hours})
        # check-ins where no presence source watched: present (hub/attendance)
        for staff, event in (("N1", "t1"), ("N1", "t2"), ("N1", "l1"), ("N1", "old"),
                             ("N2", "t1"), ("C1", "l1")):
            start = next(r for (r,) in database.conn.execute(
                "SELECT start FROM events WHERE id = ?", (event,)))
            database["checkins"].insert({"id": str(uuid.uuid4()), "node": "n", "ts": start,
                                         "clock_synced": 1, "received_at": start,
                                         "staff_id": staff, "event_id": event, "zone": "hall",
                                         "method": "portal", "device": None})
        # the review chain's verdicts on the system's entries
        for ref, state in (("attendance:t1:N1", "approved"), ("attendance:t2:N1", "rejected"),
                           ("attendance:l1:N1", "approved"), ("attendance:t1:N2", "approved")):
            entry(database, ref.split(":")[2], "attendance", state, source_ref=ref)
        database["tickets"].insert({"id": 1, "report_id": "r", "category": "c", "zone": "z",
                                    "department": "d", "state": "closed", "created_at": iso(NOW),
                                    "reported_at": iso(NOW), "due_at": iso(NOW),
                                    "updated_at": iso(NOW), "staff_id": "N1"})
        for n, (staff, hours, state, decided) in enumerate((
                ("N1", 0.5, "approved", at(2, 1)), ("N1", 1.0, "approved", at(6, 1)),
                ("N1", 2.0, "pending", None), ("N2", 3.0, "approved", at(1, 5)))):
            lid = database["volunteer_ledger"].insert({
                "staff_id": staff, "ticket_id": 1, "report_id": f"r{n}", "hours": hours,
                "state": state, "created_at": iso(at(1, 1)), "decided_by": "office",
                "decided_at": iso(decided) if decided else None}).last_pk
            if staff == "N1" and state == "approved":
                entry(database, staff, "volunteer_hours",
                      "approved" if hours == 0.5 else "pending", source_ref=f"hours:{lid}")
        # a person's own entries
        for kind, state, day in (("good_deed", "approved", "2026-03-03"),
                                 ("good_deed", "pending", "2026-04-04"),
                                 ("thanks_letter", "approved", "2026-05-05"),
                                 ("good_deed", "approved", "2025-11-11"),
                                 ("complaint", "approved", "2026-02-02")):
            entry(database, "N1", kind, state, occurred_on=day, source="self")
        items.save(database, 2026, "training", "继续教育学时", "credit_hours", 6,
                   event_kinds=["training"], targets={"department:cardiology": 3})
        items.save(database, 2026, "sessions", "理论学习次数", "events", 4)
        items.save(database, 2026, "volunteer", "志愿服务时长", "volunteer_hours", 4,
                   targets={"role:dept_reviewer": 1})
        items.save(database, 2026, "deeds", "好人好事", "entries", 2,
                   entry_kinds=["good_deed", "thanks_letter"])
    yield database


def entry(db, staff, kind, state, *, source_ref=None, occurred_on="2026-03-01",
          source="system"):
    db["record_entries"].insert({"staff_id": staff, "kind": kind, "title": kind,
                                 "occurred_on": occurred_on, "source": source,
                                 "source_ref": source_ref, "state": state, "level": 0,
                                 "created_at": iso(NOW), "updated_at": iso(NOW)})


def test_progress_equals_the_hand_computation(db):
    rows = {s: {r["item"]: r for r in rs} for s, rs in progress.progress(db, 2026, TZ, NOW).items()}
    n1 = rows["N1"]
    # training credit hours: t1 2 (approved), t2 1.5 rejected, "old" was 2025, "future" not yet
    assert (n1["training"]["confirmed"], n1["training"]["pending"], n1["training"]["target"]) \
        == (2.0, 0.0, 6.0)
    # sessions (events of any kind): t1 and l1 approved, t2 rejected
    assert (n1["sessions"]["confirmed"], n1["sessions"]["pending"]) == (2.0, 0.0)
    assert n1["sessions"]["ratio"] == 0.5 and not n1["sessions"]["done"]
    # volunteer hours: 0.5 approved through review, 1.0 still in review; the pending
    # ledger entry (2.0) is not approved hours at all
    assert (n1["volunteer"]["confirmed"], n1["volunteer"]["pending"]) == (0.5, 1.0)
    # deeds: good_deed + thanks_letter approved in 2026 (2), one pending; 2025 and the
    # complaint do not count
    assert (n1["deeds"]["confirmed"], n1["deeds"]["pending"], n1["deeds"]["done"]) == (
        2.0, 1.0, True)
    n2, c1 = rows["N2"], rows["C1"]
    assert (n2["training"]["confirmed"], n2["volunteer"]["pending"]) == (2.0, 3.0)
    # C1: l1 attended but no system entry yet: pending; cardiology's target 3, role's 1
    assert (c1["sessions"]["confirmed"], c1["sessions"]["pending"]) == (0.0, 1.0)
    assert (c1["training"]["target"], c1["volunteer"]["target"]) == (3.0, 1.0)


def test_who_is_behind_and_the_departments(db):
    late = {(r["staff_id"], r["item"]): r for r in progress.behind(db, 2026, TZ, NOW)}
    share = progress.year_gone(2026, TZ, NOW)
    assert 0.49 < share < 0.51
    # N1 training: has 2 of 6, half the year gone -> 3 expected by now
    assert late[("N1", "training")]["expected_by_now"] == round(6 * share, 2)
    assert ("N1", "deeds") not in late  # 3 with the pending one, 1 expected
    assert ("N2", "volunteer") not in late  # 3 (pending review) of 4, 2 expected
    rows = progress.progress(db, 2026, TZ, NOW)
    folded = {(r["department"], r["item"]): r for r in progress.by_department(
        rows, {"N1": "nursing", "N2": "nursing", "C1": "cardiology"})}
    assert folded[("nursing", "deeds")] == {"department": "nursing", "item": "deeds",
                                            "people": 2, "done": 1, "mean_ratio": 0.5}


@pytest.mark.parametrize("kwargs, reason", [
    ({"measure": "smiles"}, "measure"), ({"target": -1}, "0 or more"),
    ({"targets": {"ward:x": 2}}, "department:<code> or role:<role>"),
    ({"item_id": "Bad Id"}, "id"),
])
def test_a_wrong_item_is_refused_with_the_reason(db, kwargs, reason):
    args = {"item_id": "x", "title": "X", "measure": "events", "target": 1, **kwargs}
    with pytest.raises(ItemError, match=reason):
        items.save(db, 2026, args.pop("item_id"), args.pop("title"), args.pop("measure"),
                   args.pop("target"), **args)
