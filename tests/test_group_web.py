"""The group hub's side-by-side page (hub/web/group.py) on a real PostgreSQL
database holding two campuses' schemas (as ``rounds-hub group ingest`` makes
them) and a third campus not heard from yet; a campus's own dashboard, on its
schema, sees its own site only."""

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from hub.cli.main import main as hub_main
from hub.db import open_db
from hub.group.campuses import campus_dsn, ensure
from hub.ingest.store import write_batch
from hub.people import account_admin
from hub.surveys import questionnaires
from hub.web import create_app
from protocol.clock import iso
from runtime.settings import ConfigError

from .hubweb import make_app, signed_in

CAMPUSES = ["campus-a", "campus-b", "campus-c"]  # campus-c: no data yet
NOW = datetime.now(timezone.utc)


def checkin(staff_id: str, event_id: str | None = None, ago=timedelta(hours=1)) -> dict:
    return {"id": str(uuid.uuid4()), "type": "checkin", "ts": iso(NOW - ago),
            "staff_id": staff_id, "event_id": event_id, "zone": "ward-1", "method": "portal",
            "device": None}


DRILL_START, DRILL_END = NOW - timedelta(days=1, hours=2), NOW - timedelta(days=1, hours=1)


def add_drill(db, expected: list[str]) -> None:
    """A fire drill that ended yesterday in ward-1, expecting ``expected``."""
    db.conn.execute(
        'INSERT INTO events (id, title, kind, zones, start, "end") '
        "VALUES ('drill', 'Fire drill', 'training', '[\"ward-1\"]', ?, ?)",
        (iso(DRILL_START), iso(DRILL_END)))
    for staff_id in expected:
        db.conn.execute("INSERT INTO event_expected (event_id, kind, value) "
                        "VALUES ('drill', 'staff', ?)", (staff_id,))


def add_ticket(db, report_id: str, due: datetime) -> None:
    at = iso(NOW - timedelta(days=2))
    db.conn.execute(
        "INSERT INTO tickets (report_id, category, zone, department, state, created_at, "
        "reported_at, due_at, updated_at, staff_id) VALUES (?, 'hygiene', 'ward-1', "
        "'environmental_services', 'new', ?, ?, ?, ?, 'D001')", (report_id, at, at, iso(due), at))


QUESTIONS = [{"id": "overall", "kind": "scale", "label": "总体满意度"}]


def add_response(db, overall: int) -> None:
    """A survey response as ingest stores one (its task is not what is measured here)."""
    at = iso(NOW - timedelta(days=1))
    db.conn.execute(
        "INSERT INTO survey_responses (id, node, ts, received_at, task_id, questionnaire, "
        "version, staff_id, zone, answers, taken_at) VALUES (?, 'n1', ?, ?, 'dec', "
        "'inpatient', 1, 'S001', 'ward-1', ?, ?)",
        (str(uuid.uuid4()), at, at, json.dumps({"overall": overall}), at))


@pytest.fixture
def group(pg_dsn, tmp_path):
    """The group database: its own schema (the group's accounts), campus-a with
    two check-ins, a ticket due tomorrow, two survey answers (5 and 3 of 5) and
    a drill that expected D001 and D002 (D001 checked in to it), campus-b with
    one check-in (the same staff number), an overdue ticket, no survey and a
    drill that expected D001, who did not come."""
    open_db(pg_dsn).close()
    for site, staff, due, answers, came in (
            ("campus-a", ["D001", "D002"], NOW + timedelta(days=1), [5, 3], ["D001"]),
            ("campus-b", ["D001"], NOW - timedelta(hours=3), [], [])):
        db = open_db(ensure(pg_dsn, site), migrate=False)
        try:
            add_drill(db, expected=staff)
            write_batch(db, "t", "n1", [checkin(s) for s in staff] + [
                checkin(s, "drill", NOW - DRILL_START - timedelta(minutes=1)) for s in came], [])
            add_ticket(db, f"r-{site}", due)
            questionnaires.save(db, "inpatient", "住院患者满意度", QUESTIONS, "office")
            for overall in answers:
                add_response(db, overall)
        finally:
            db.close()
    return pg_dsn


def test_the_group_office_sees_the_campuses_side_by_side(group, tmp_path):
    app = make_app(group, GROUP_CAMPUSES=CAMPUSES, PHOTOS_DIR=str(tmp_path / "photos"))
    db = open_db(group, migrate=False)
    try:
        office = signed_in(app, db, "office", lang="en")
        staff = signed_in(app, db, "staff", staff_id="D001")
    finally:
        db.close()
    campuses = office.get("/api/v1/group").get_json()["campuses"]
    assert [c["site"] for c in campuses] == CAMPUSES
    a, b, c = campuses
    assert (a["checkins"], a["tickets_open"], a["tickets_overdue"]) == (3, 1, 0)
    assert (b["checkins"], b["tickets_open"], b["tickets_overdue"]) == (1, 1, 1)
    # 5 of 5 is 100, 3 of 5 is 50 (hub.surveys.results.score): the index is their mean
    assert (a["survey_responses"], a["satisfaction"]) == (2, 75.0)
    assert (b["survey_responses"], b["satisfaction"]) == (0, None)
    # the drills: one of two present at campus-a, the one expected absent at campus-b
    assert a["attendance"] == {"events": 1, "expected": 2, "present": 1, "partial": 0,
                               "rate": 50.0}
    assert b["attendance"] == {"events": 1, "expected": 1, "present": 0, "partial": 0,
                               "rate": 0.0}
    assert a["ready"] and b["ready"] and c == {"site": "campus-c", "ready": False}
    page = office.get("/group/").get_data(as_text=True)
    assert "campus-a" in page and "campus-b" in page and "No data from this campus yet" in page
    assert "50.0 %" in page and "1 of 2 present, 0 partly; 1 events" in page
    assert staff.get("/group/").status_code == 403


def test_an_office_account_of_one_campus_sees_that_campus_only(group, tmp_path):
    app = make_app(group, GROUP_CAMPUSES=CAMPUSES, PHOTOS_DIR=str(tmp_path / "photos"))
    db = open_db(group, migrate=False)
    try:
        campus_b = signed_in(app, db, "office", lang="en", username="b-office",
                             campus="campus-b")
    finally:
        db.close()
    campuses = campus_b.get("/api/v1/group").get_json()["campuses"]
    assert [c["site"] for c in campuses] == ["campus-b"]
    assert campuses[0]["checkins"] == 1
    page = campus_b.get("/group/").get_data(as_text=True)
    assert "campus-b" in page and "campus-a" not in page


def test_the_admin_limits_an_office_account_to_one_of_the_hubs_campuses(group, tmp_path):
    app = make_app(group, GROUP_CAMPUSES=CAMPUSES, PHOTOS_DIR=str(tmp_path / "photos"))
    db = open_db(group, migrate=False)
    try:
        admin = signed_in(app, db, "admin", lang="en")
    finally:
        db.close()
    form = {"csrf_token": admin.csrf, "username": "c-office", "role": "office",
            "password": "long-enough-1", "campus": "campus-c"}
    assert "every campus" in admin.get("/accounts/").get_data(as_text=True)
    assert admin.post("/accounts/", data=form).status_code == 303
    refused = admin.post("/accounts/", data={**form, "username": "x", "campus": "campus-z"})
    assert refused.status_code == 400
    assert "campus-z is not one of this hub" in refused.get_data(as_text=True)
    refused = admin.post("/accounts/", data={**form, "username": "y",
                                             "role": "committee_reviewer"})
    assert refused.status_code == 400
    assert "only an office account is limited to a campus" in refused.get_data(as_text=True)
    listed = {a["username"]: a["campus"] for a in admin.get("/api/v1/accounts").get_json()}
    assert listed["c-office"] == "campus-c" and listed["admin-user"] is None
    db = open_db(group, migrate=False)
    try:
        events = [row[0] for row in db.conn.execute(
            "SELECT detail FROM audit_log WHERE action = 'account.create'")]
    finally:
        db.close()
    assert any('"campus": "campus-c"' in detail for detail in events)


def test_a_campus_dashboard_sees_its_own_site_only(group, tmp_path):
    """A campus's office works on its campus's schema: the other campus's
    ticket and check-ins are not there to see."""
    app = make_app(campus_dsn(group, "campus-a"), PHOTOS_DIR=str(tmp_path / "photos"))
    db = open_db(campus_dsn(group, "campus-a"), migrate=False)
    try:
        office = signed_in(app, db, "office", lang="en")
    finally:
        db.close()
    listed = office.get("/api/v1/tickets").get_json()
    assert [t["report_id"] for t in listed] == ["r-campus-a"]
    assert office.get("/api/v1/group").get_json() == {"campuses": []}  # not a group hub
    assert "This hub has no campuses" in office.get("/group/").get_data(as_text=True)


def test_a_group_hub_needs_postgresql(tmp_path):
    with pytest.raises(ConfigError, match="postgresql://"):
        create_app({"HUB_DB": str(tmp_path / "hub.db"), "SITE": "g",
                    "GROUP_CAMPUSES": CAMPUSES})


def test_the_group_hubs_config_names_its_campuses(group, tmp_path, monkeypatch):
    """group-hub.json, with the keys README "Hospital group" says to add, is a
    hub config: the dashboard built from it is the group's."""
    config = tmp_path / "group-hub.json"
    config.write_text(json.dumps({
        "mqtt": {"host": "127.0.0.1", "port": 8883, "username": "group-hub"},
        "campuses": CAMPUSES, "db": group, "photos_dir": str(tmp_path / "photos"),
        "site": "city-group", "secret_key": "group-secret"}))
    monkeypatch.setenv("ROUNDS_HUB_CONFIG", str(config))
    app = create_app()
    assert app.config["GROUP_CAMPUSES"] == CAMPUSES and app.config["HUB_DB"] == group


def test_rounds_hub_user_add_limits_an_office_account_to_a_campus(group, tmp_path):
    config = tmp_path / "group-hub.json"
    config.write_text(json.dumps({"campuses": CAMPUSES, "db": group, "site": "city-group",
                                  "secret_key": "group-secret",
                                  "photos_dir": str(tmp_path / "photos")}))

    def add(*args):
        return CliRunner().invoke(hub_main, ["--config", str(config), "user", "add", *args,
                                             "--password-stdin"], input="long-enough-1\n")

    assert add("a-office", "--role", "office", "--campus", "campus-a").exit_code == 0
    refused = add("z-office", "--role", "office", "--campus", "campus-z")
    assert refused.exit_code == 1 and "campus-z is not one of this hub's campuses" in \
        refused.output
    db = open_db(group, migrate=False)
    try:
        assert account_admin.get_account(db, "a-office")["campus"] == "campus-a"
        assert account_admin.get_account(db, "z-office") is None
    finally:
        db.close()
