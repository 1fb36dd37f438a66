"""Assessment on the dashboard (issue 15): the office sets the year's items,
sees progress per department and who is behind; a reviewer only their
department; a staff member their own progress on /me and in the API."""

import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from hub import audit
from hub.assessment import items
from protocol.clock import iso

from .hubweb import signed_in

YEAR = datetime.now(timezone.utc).year
START = datetime(YEAR, 1, 10, 2, tzinfo=timezone.utc)


@pytest.fixture
def db(hub_db):
    with hub_db.conn:
        hub_db["staff"].insert_all([
            {"staff_id": "N1", "name": "李娜", "department": "environmental_services",
             "role": "staff"},
            {"staff_id": "S1", "name": "Chen", "department": "security", "role": "staff"}])
        hub_db["events"].insert({"id": "t1", "title": "Training", "kind": "training",
                                 "zones": "[]", "start": iso(START),
                                 "end": iso(START + timedelta(hours=1)), "credit_hours": 2})
        hub_db["checkins"].insert({"id": str(uuid.uuid4()), "node": "n", "ts": iso(START),
                                   "clock_synced": 1, "received_at": iso(START),
                                   "staff_id": "N1", "event_id": "t1", "zone": "hall",
                                   "method": "portal", "device": None})
        items.save(hub_db, YEAR, "training", "继续教育学时", "credit_hours", 4,
                   event_kinds=["training"])
    return hub_db


def token(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def test_the_office_sets_items_and_sees_departments_and_who_is_behind(hub_app, db):
    office = signed_in(hub_app, db, "office", lang="en")
    page = office.get(f"/assessment/?year={YEAR}").get_data(as_text=True)
    assert "继续教育学时" in page and 'id="behind"' in page
    answer = office.post("/assessment/items", data={
        "csrf_token": token(page), "year": str(YEAR), "id": "sessions", "title": "学习次数",
        "measure": "events", "target": "3", "targets": "department:security = 1"})
    assert answer.status_code == 303
    saved = items.get(db, YEAR, "sessions")
    assert saved["targets"] == {"department:security": 1.0}
    assert [e["target"] for e in audit.entries(db, action="assessment.item")] == [
        f"assessment:{YEAR}:sessions"]
    bad = office.post("/assessment/items", data={
        "csrf_token": token(page), "year": str(YEAR), "id": "x", "title": "X",
        "measure": "smiles", "target": "1"}, follow_redirects=True)
    assert "The measure must be one of" in bad.get_data(as_text=True)
    body = office.get(f"/api/v1/assessment?year={YEAR}").get_json()
    assert {d["department"] for d in body["departments"]} == {"environmental_services",
                                                              "security"}


def test_a_reviewer_sees_only_their_department(hub_app, db):
    reviewer = signed_in(hub_app, db, "dept_reviewer", lang="en")  # environmental_services
    body = reviewer.get(f"/api/v1/assessment?year={YEAR}").get_json()
    assert {d["department"] for d in body["departments"]} == {"environmental_services"}
    assert all(r["department"] == "environmental_services" for r in body["behind"])
    assert reviewer.post("/assessment/items", data={}).status_code in (400, 403)


def test_a_staff_member_sees_their_own_progress(hub_app, db):
    staff = signed_in(hub_app, db, "staff", staff_id="N1", lang="en")
    page = staff.get("/me").get_data(as_text=True)
    part = page[page.index('id="assessment"'):]
    assert "继续教育学时" in part and "Pending review" in part
    body = staff.get(f"/api/v1/me/assessment?year={YEAR}").get_json()
    [row] = body["rows"]
    # attended, present, but no system entry approved yet: pending
    assert (row["item"], row["confirmed"], row["pending"], row["target"]) == (
        "training", 0, 2, 4)
    assert staff.get("/assessment/").status_code in (302, 403)
