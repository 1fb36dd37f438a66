"""Scheduling events on the dashboard and the API, against a real SQLite file,
and the live attendance page: forms with CSRF, validation, audit, the node's
schedule, the fragment the page polls, roles."""

import json
import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from hub import audit
from hub.attendance.attendance import get_expected
from hub.ingest.downlink import node_config_document
from hub.sql import dialect_of
from protocol.clock import iso

from .hubweb import csrf_token, office_session, post_json, signed_in
from .test_attendance import add_event as add_lecture
from .test_attendance import checkin, ingest

TZ = ZoneInfo("Asia/Shanghai")


def seed(database) -> None:
    """Two zones with a node each, a department, four people."""
    with database.conn:
        database["zones"].insert_all([
            {"zone": "hall-a", "name": "Lecture hall A", "campus": "Main",
             "building": "Teaching", "floor": "2"},
            {"zone": "ward-3e", "name": "Ward 3 East", "campus": "Main",
             "building": "Inpatient", "floor": "3"}])
        database["nodes"].insert_all([{"node": "hall-a-1", "zone": "hall-a"},
                                      {"node": "ward-3e-1", "zone": "ward-3e"}])
        database["departments"].insert({"department": "nursing", "name": "Nursing"})
        database["staff"].insert_all([
            {"staff_id": "N1", "name": "Li Na", "department": "nursing"},
            {"staff_id": "N2", "name": "Wang Wei", "department": "nursing"},
            {"staff_id": "C1", "name": "Chen Jie", "department": "cardiology"},
            {"staff_id": "P1", "name": "Sun Na", "department": "pharmacy"}])


@pytest.fixture
def db(hub_db):
    seed(hub_db)
    return hub_db


@pytest.fixture
def client(hub_app, db):
    """The office reading English messages, whatever the catalogue holds."""
    return signed_in(hub_app, db, "office", lang="en")


@pytest.fixture(scope="module")
def refusing(tmp_path_factory):
    """One hub and office session for the tests in which nothing is saved."""
    with office_session(tmp_path_factory.mktemp("refusals"), seed) as session:
        yield session


def tomorrow() -> date:
    return datetime.now(TZ).date() + timedelta(days=1)


def form(**overrides) -> dict:
    day = tomorrow().isoformat()
    return {"title": "Hand hygiene", "kind": "lecture", "zones": ["hall-a"],
            "start": f"{day}T09:00", "end": f"{day}T10:30", "departments": ["nursing"],
            "staff": "C1, P1", "credit_hours": "1.5", "min_presence": "0.8", **overrides}


def post_form(client, path: str, fields: dict):
    return client.post(path, data={"csrf_token": csrf_token(client, path), **fields})


def changes(db) -> list[dict]:
    return [e for e in reversed(audit.entries(db)) if e["action"] not in ("login", "logout")]


def local(day: date, hour: int, minute: int = 0) -> str:
    return iso(datetime(day.year, day.month, day.day, hour, minute, tzinfo=TZ))


# --- creating through the form -------------------------------------------------------------


def test_event_made_on_the_form_is_in_the_api_and_the_nodes_schedule(client, db):
    page = client.get("/events/new").get_data(as_text=True)
    assert 'name="zones"' in page and "Lecture hall A" in page and "Nursing" in page

    response = post_form(client, "/events/new", form())

    assert response.status_code == 303 and response.headers["Location"] == "/events/"
    day = tomorrow()
    event_id = f"{day:%Y%m%d}-hand-hygiene"
    [listed] = client.get("/api/v1/events").get_json()
    assert {k: listed[k] for k in ("id", "title", "kind", "zones", "start", "end",
                                   "credit_hours", "min_presence")} == {
        "id": event_id, "title": "Hand hygiene", "kind": "lecture", "zones": ["hall-a"],
        "start": local(day, 9), "end": local(day, 10, 30), "credit_hours": 1.5,
        "min_presence": 0.8}
    assert listed["expected"] == 4  # N1, N2 (nursing) + C1 + P1
    assert get_expected(db, event_id) == {"departments": ["nursing"], "staff": ["C1", "P1"]}

    schedule = node_config_document(db, "hall-a-1")["events"]
    assert [(e["id"], e["start"], e["end"]) for e in schedule] == [
        (event_id, local(day, 9), local(day, 10, 30))]
    assert node_config_document(db, "ward-3e-1")["events"] == []  # another zone

    [entry] = changes(db)
    assert (entry["who"], entry["action"], entry["target"]) == (
        "office-user", "event.create", f"event:{event_id}")
    assert entry["detail"]["departments"] == ["nursing"]
    assert entry["detail"]["staff"] == ["C1", "P1"]
    assert entry["detail"]["start"] == local(day, 9)

    index = client.get("/events/").get_data(as_text=True)
    assert day.isoformat() in index and "Hand hygiene" in index and "09:00" in index
    assert f'href="/events/{event_id}"' in index and "Lecture hall A" in index


def test_a_second_event_of_the_same_title_and_day_gets_its_own_id(client, db):
    post_form(client, "/events/new", form())
    post_form(client, "/events/new", form(title="手卫生 Hand hygiene!"))
    post_form(client, "/events/new", form(title="手卫生"))

    day = f"{tomorrow():%Y%m%d}"
    assert [r[0] for r in db.conn.execute(
        f"SELECT id FROM events ORDER BY {dialect_of(db).insertion_order}")] == [
        f"{day}-hand-hygiene", f"{day}-hand-hygiene-2", f"{day}-event"]


@pytest.mark.parametrize("overrides, message", [
    ({"end": f"{tomorrow().isoformat()}T08:00"}, "The end must be after the start"),
    ({"zones": ["hall-a", "roof"]}, "Unknown zone: roof"),
    ({"zones": []}, "Choose at least one zone"),
    ({"staff": "C1 X99，X98"}, "Unknown staff number: X99, X98"),
    ({"departments": ["nursing", "astronomy"]}, "Unknown department: astronomy"),
    ({"credit_hours": "25"}, "Credit hours must be a number from 0 to 24"),
    ({"credit_hours": "lots"}, "Credit hours must be a number from 0 to 24"),
    ({"min_presence": "1.5"}, "Minimum presence must be a number from 0 to 1"),
    ({"title": "  "}, "A title of 1 to 200 characters is required"),
    ({"kind": "party"}, "The kind must be one of"),
    ({"start": "tomorrow morning"}, "Write the time as YYYY-MM-DD HH:MM"),
    ({"end": ""}, "The end date and time are required"),
])
def test_bad_event_is_refused_with_the_reason_and_nothing_saved(refusing, overrides, message):
    db, client = refusing
    response = post_form(client, "/events/new", form(**overrides))

    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message in page
    assert db["events"].count == 0 and db["event_expected"].count == 0
    assert changes(db) == []
    if "title" not in overrides:
        assert 'value="Hand hygiene"' in page  # what was typed is kept


def test_every_problem_is_reported_at_once(refusing):
    db, client = refusing
    response = post_form(client, "/events/new", form(zones=["roof"], staff="X1",
                                                     credit_hours="-1"))

    page = response.get_data(as_text=True)
    assert response.status_code == 400 and db["events"].count == 0
    for message in ("Unknown zone: roof", "Unknown staff number: X1",
                    "Credit hours must be a number from 0 to 24"):
        assert message in page


# --- editing and deleting --------------------------------------------------------------------


def test_edit_keeps_the_id_and_replaces_who_is_expected(client, db):
    post_form(client, "/events/new", form())
    [event_id] = [r[0] for r in db.conn.execute("SELECT id FROM events")]
    page = client.get(f"/events/{event_id}/edit").get_data(as_text=True)
    assert f'value="{tomorrow().isoformat()}T09:00"' in page and "C1, P1" in page

    response = post_form(client, f"/events/{event_id}/edit",
                         form(title="Hand hygiene (moved)", zones=["hall-a", "ward-3e"],
                              departments=[], staff="N1", start=f"{tomorrow()}T14:00",
                              end=f"{tomorrow()}T15:00"))

    assert response.status_code == 303
    row = db["events"].get(event_id)
    assert (row["title"], json.loads(row["zones"]), row["start"]) == (
        "Hand hygiene (moved)", ["hall-a", "ward-3e"], local(tomorrow(), 14))
    assert get_expected(db, event_id) == {"departments": [], "staff": ["N1"]}
    assert [e["id"] for e in node_config_document(db, "ward-3e-1")["events"]] == [event_id]
    assert [(e["action"], e["target"]) for e in changes(db)] == [
        ("event.create", f"event:{event_id}"), ("event.update", f"event:{event_id}")]
    assert changes(db)[1]["detail"]["staff"] == ["N1"]

    bad = post_form(client, f"/events/{event_id}/edit", form(staff="nobody"))
    assert bad.status_code == 400 and "Unknown staff number: nobody" in bad.get_data(
        as_text=True)
    assert get_expected(db, event_id) == {"departments": [], "staff": ["N1"]}
    assert client.get("/events/nope/edit").status_code == 404


def test_delete_needs_confirmation_and_refuses_attended_events(client, db):
    post_form(client, "/events/new", form())
    post_form(client, "/events/new", form(title="Fire drill"))
    hygiene, drill = [r[0] for r in db.conn.execute(
        f"SELECT id FROM events ORDER BY {dialect_of(db).insertion_order}")]
    ingest(db, {**checkin("N1", 0, method="portal"), "event_id": drill})
    token = csrf_token(client, f"/events/{hygiene}/edit")

    unconfirmed = client.post(f"/events/{hygiene}/delete", data={"csrf_token": token})
    attended = client.post(f"/events/{drill}/delete", data={"csrf_token": token,
                                                            "confirm": "yes"})
    assert db["events"].count == 2
    deleted = client.post(f"/events/{hygiene}/delete", data={"csrf_token": token,
                                                             "confirm": "yes"})

    assert unconfirmed.status_code == attended.status_code == deleted.status_code == 303
    assert [r[0] for r in db.conn.execute("SELECT id FROM events")] == [drill]
    assert db.conn.execute("SELECT count(*) FROM event_expected WHERE event_id = ?",
                           (hygiene,)).fetchone()[0] == 0
    assert changes(db)[-1]["action"] == "event.delete"
    assert "cannot be deleted" in client.get(f"/events/{drill}/edit").get_data(as_text=True)


# --- the API --------------------------------------------------------------------------------


def test_events_api_creates_reads_and_updates(client, db):
    body = {"title": "CPR refresher", "kind": "training", "zones": ["ward-3e"],
            "start": "2025-03-10T14:00:00+08:00", "end": "2025-03-10T15:00:00Z",
            "credit_hours": 2, "expected": {"departments": ["nursing"], "staff": ["P1"]}}

    created = post_json(client, "/api/v1/events", {**body, "id": "cpr-2025"})
    fetched = client.get("/api/v1/events/cpr-2025")
    taken = post_json(client, "/api/v1/events", {**body, "id": "cpr-2025"})
    generated = post_json(client, "/api/v1/events", body)
    updated = client.put("/api/v1/events/cpr-2025", json={"title": "CPR", "credit_hours": 3},
                         headers={"X-CSRFToken": client.csrf})
    bad = client.put("/api/v1/events/cpr-2025", json={"end": "2025-03-10T05:00:00Z",
                                                      "zones": ["moon"]},
                     headers={"X-CSRFToken": client.csrf})
    naive = post_json(client, "/api/v1/events", {**body, "start": "2025-03-10T14:00:00"})

    assert created.status_code == 201 and created.headers["Location"] == "/api/v1/events/cpr-2025"
    assert created.get_json() == fetched.get_json() == {
        "id": "cpr-2025", "title": "CPR refresher", "kind": "training", "zones": ["ward-3e"],
        "start": "2025-03-10T06:00:00.000Z", "end": "2025-03-10T15:00:00.000Z",
        "credit_hours": 2.0, "min_presence": 0.75, "checked_in": 0,
        "expected": {"departments": ["nursing"], "staff": ["P1"]}}
    assert taken.status_code == 409
    assert generated.status_code == 201 and generated.get_json()["id"] == "20250310-cpr-refresher"
    assert updated.status_code == 200
    assert (updated.get_json()["title"], updated.get_json()["credit_hours"]) == ("CPR", 3.0)
    assert updated.get_json()["expected"] == {"departments": ["nursing"], "staff": ["P1"]}
    assert bad.status_code == 400 and set(bad.get_json()["errors"]) == {"end", "zones"}
    assert naive.status_code == 400 and "offset" in naive.get_json()["errors"]["start"]
    assert db["events"].get("cpr-2025")["title"] == "CPR"
    assert client.get("/api/v1/events/nope").status_code == 404
    assert client.put("/api/v1/events/nope", json={},
                      headers={"X-CSRFToken": client.csrf}).status_code == 404
    assert [e["action"] for e in changes(db)] == ["event.create", "event.create",
                                                  "event.update"]


# --- live attendance ---------------------------------------------------------------------------


def test_live_fragment_shows_a_check_in_as_it_arrives(client, db):
    add_lecture(db)  # "ev", 09:00-10:00 on 2025-03-10 in hall-a

    page = client.get("/events/ev").get_data(as_text=True)
    before = client.get("/events/ev/live")
    ingest(db, checkin("N1", 3, method="portal"))
    after = client.get("/events/ev/live")

    assert '<noscript><meta http-equiv="refresh" content="15"></noscript>' in page
    assert 'data-src="/events/ev/live"' in page and "setInterval(refresh, 5000)" in page
    assert before.status_code == 200 and before.headers["Cache-Control"] == "no-store"
    assert "<html" not in before.get_data(as_text=True)  # a fragment, not a page
    first, then = before.get_data(as_text=True), after.get_data(as_text=True)
    assert "Nobody has checked in yet." in first and "Li Na" not in first
    assert '<strong class="count">0</strong> present' in first
    assert '<strong class="count">1</strong> present' in then and "Li Na" in then
    assert '<strong class="count">1</strong> checked in' in then
    assert "09:03" in then  # the check-in, hospital time
    assert re.search(r'Last updated <time datetime="[^"]+">\d\d:\d\d:\d\d</time>', then)
    assert client.get("/events/nope/live").status_code == 404


def test_today_page_keeps_its_refresh_and_says_when_it_was_read(client, db):
    today = datetime.now(TZ).date()
    db["events"].insert({"id": "now", "title": "Ward round", "kind": "meeting",
                         "zones": json.dumps(["ward-3e"]), "start": local(today, 0, 5),
                         "end": local(today, 23, 55)})

    page = client.get("/").get_data(as_text=True)

    assert '<meta http-equiv="refresh" content="10">' in page
    assert "Ward round" in page and "Ward 3 East" in page and 'href="/events/now"' in page
    assert "Last updated" in page


# --- roles --------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["dept_reviewer", "staff"])
def test_only_office_and_admin_schedule_and_watch(hub_app, db, role):
    add_lecture(db)
    other = signed_in(hub_app, db, role)

    for path in ("/events/", "/events/new", "/events/ev/edit", "/events/ev",
                 "/events/ev/live", "/api/v1/events/ev"):
        assert other.get(path).status_code == 403, path
    assert other.post("/events/new", data={"csrf_token": other.csrf, **form()}).status_code \
        == 403
    assert other.post("/events/ev/delete", data={"csrf_token": other.csrf,
                                                 "confirm": "yes"}).status_code == 403
    assert post_json(other, "/api/v1/events", {"title": "x"}).status_code == 403
    assert db["events"].count == 1


def test_admin_schedules_too(hub_app, db):
    admin = signed_in(hub_app, db, "admin")

    assert admin.get("/events/").status_code == 200
    assert post_form(admin, "/events/new", form()).status_code == 303
    assert db["events"].count == 1
