"""The hub web app against a real SQLite file: JSON API and dashboard pages."""

import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from hub.db import open_db
from hub.web import create_app
from protocol.clock import iso, now_iso
from protocol.settings import ConfigError

TZ = ZoneInfo("Asia/Shanghai")


def local(day: date, hour: int, minute: int = 0) -> str:
    """The wire timestamp of a wall-clock time in the hospital's zone."""
    return iso(datetime(day.year, day.month, day.day, hour, minute, tzinfo=TZ))


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "hub.db"


@pytest.fixture
def db(db_path):
    database = open_db(db_path)
    yield database
    database.close()


@pytest.fixture
def app(db_path, db):
    return create_app({"TESTING": True, "HUB_DB": str(db_path), "SITE": "general-hospital"})


@pytest.fixture
def client(app):
    return app.test_client()


def add_event(db, event_id, title, start, end, zones=("hall-a",), **extra):
    db["events"].insert(
        {"id": event_id, "title": title, "kind": "lecture", "zones": json.dumps(list(zones)),
         "start": start, "end": end, **extra}
    )


_seq = iter(range(1_000_000))


def add_checkin(db, event_id, staff_id, ts, method="portal", node="node-hall-a"):
    db["checkins"].insert(
        {"id": f"chk-{next(_seq)}", "node": node, "ts": ts, "received_at": now_iso(),
         "staff_id": staff_id, "event_id": event_id, "zone": "hall-a", "method": method}
    )


def add_staff(db, staff_id, name, department="Cardiology"):
    db["staff"].insert({"staff_id": staff_id, "name": name, "department": department})


# --- health -----------------------------------------------------------------


def test_health_counts_nodes_and_quarantine(client, db):
    for node in [
        {"node": "n1", "state": "online"},
        {"node": "n2", "state": "online"},
        {"node": "n3", "state": "offline"},
        {"node": "n4"},  # registered, never reported: offline
        {"node": "n5", "state": "online", "revoked": 1},  # revoked: not counted
    ]:
        db["nodes"].insert(node)
    db["quarantine"].insert(
        {"received_at": now_iso(), "topic": "rounds/v1/x", "reason": "bad json", "payload": b"{"}
    )

    response = client.get("/api/v1/health")

    assert response.status_code == 200
    assert response.get_json() == {
        "ok": True, "site": "general-hospital", "db": "ok",
        "nodes": {"online": 2, "offline": 2}, "quarantine": 1,
    }


def test_health_reports_an_unusable_database(tmp_path):
    app = create_app({"TESTING": True, "HUB_DB": str(tmp_path), "SITE": "s"})  # a directory

    response = app.test_client().get("/api/v1/health")

    assert response.status_code == 503
    assert response.get_json() == {"ok": False, "site": "s", "db": "error"}


# --- events -----------------------------------------------------------------


def test_events_lists_events_with_distinct_checked_in_counts(client, db):
    day = date(2025, 3, 10)
    add_event(db, "ev-1", "Hand hygiene", local(day, 9), local(day, 10),
              zones=("hall-a", "ward-3"), credit_hours=1.5, min_presence=0.5)
    add_event(db, "ev-2", "Fire safety", local(day, 14), local(day, 15))
    add_checkin(db, "ev-1", "S1", local(day, 9, 1))
    add_checkin(db, "ev-1", "S1", local(day, 9, 2), method="presence")  # same person again
    add_checkin(db, "ev-1", "S2", local(day, 9, 3))
    add_checkin(db, None, "S3", local(day, 9, 4))  # no event: counts nowhere

    events = client.get("/api/v1/events").get_json()

    assert [e["id"] for e in events] == ["ev-1", "ev-2"]
    assert events[0] == {
        "id": "ev-1", "title": "Hand hygiene", "kind": "lecture", "zones": ["hall-a", "ward-3"],
        "start": local(day, 9), "end": local(day, 10), "credit_hours": 1.5,
        "min_presence": 0.5, "checked_in": 2,
    }
    assert events[1]["checked_in"] == 0


def test_events_date_filter_uses_the_hospital_time_zone(client, db):
    day = date(2025, 3, 10)
    # 01:00 in Shanghai on the 10th is still the 9th in UTC.
    add_event(db, "early", "Early round", local(day, 1), local(day, 2))
    add_event(db, "before", "Day before", local(day - timedelta(days=1), 22),
              local(day - timedelta(days=1), 23))
    add_event(db, "after", "Day after", local(day + timedelta(days=1), 0, 30),
              local(day + timedelta(days=1), 1))

    on_day = client.get("/api/v1/events?date=2025-03-10").get_json()
    day_before = client.get("/api/v1/events?date=2025-03-09").get_json()

    assert [e["id"] for e in on_day] == ["early"]
    assert [e["id"] for e in day_before] == ["before"]


def test_events_rejects_a_malformed_date_with_json(client):
    response = client.get("/api/v1/events?date=10/03/2025")

    assert response.status_code == 400
    assert "error" in response.get_json()


# --- attendance -------------------------------------------------------------


def test_attendance_ordered_by_earliest_checkin_with_unknown_staff(client, db):
    day = date(2025, 3, 10)
    add_event(db, "ev-1", "Hand hygiene", local(day, 9), local(day, 10))
    add_event(db, "ev-2", "Other", local(day, 11), local(day, 12))
    add_staff(db, "S1", "Li Na", "Nursing")
    add_staff(db, "S2", "Wang Wei", "Cardiology")
    add_checkin(db, "ev-1", "S1", local(day, 9, 20), method="portal", node="node-b")
    add_checkin(db, "ev-1", "S2", local(day, 9, 10), method="portal", node="node-a")
    # S1 was also seen earlier by presence: that earliest check-in wins.
    add_checkin(db, "ev-1", "S1", local(day, 8, 55), method="presence", node="node-a")
    add_checkin(db, "ev-1", "X9", local(day, 9, 15), method="portal", node="node-a")  # not in roster
    add_checkin(db, "ev-2", "S2", local(day, 8, 0))  # another event: not listed

    response = client.get("/api/v1/events/ev-1/attendance")

    assert response.status_code == 200
    body = response.get_json()
    assert body["event"]["id"] == "ev-1"
    assert body["event"]["checked_in"] == 3
    assert body["attendance"] == [
        {"staff_id": "S1", "name": "Li Na", "department": "Nursing",
         "checked_in_at": local(day, 8, 55), "method": "presence", "node": "node-a"},
        {"staff_id": "S2", "name": "Wang Wei", "department": "Cardiology",
         "checked_in_at": local(day, 9, 10), "method": "portal", "node": "node-a"},
        {"staff_id": "X9", "name": None, "department": None,
         "checked_in_at": local(day, 9, 15), "method": "portal", "node": "node-a"},
    ]


def test_attendance_of_unknown_event_is_404_json(client):
    response = client.get("/api/v1/events/no-such-event/attendance")

    assert response.status_code == 404
    assert response.is_json
    assert "no-such-event" in response.get_json()["error"]


def test_unrouted_api_path_is_404_json_but_pages_stay_html(client):
    api = client.get("/api/v1/nothing-here")
    page = client.get("/nothing-here")

    assert api.status_code == 404 and api.is_json and "error" in api.get_json()
    assert page.status_code == 404 and not page.is_json


def test_api_server_error_is_json_without_details(tmp_path):
    app = create_app({"HUB_DB": str(tmp_path), "SITE": "s"})  # a directory: cannot open

    response = app.test_client().get("/api/v1/events")

    assert response.status_code == 500
    assert response.get_json() == {"error": "internal server error"}


# --- pages --------------------------------------------------------------------


def test_today_page_lists_todays_events_and_who_checked_in(client, db):
    today = datetime.now(TZ).date()
    yesterday = today - timedelta(days=1)
    add_event(db, "ev-today", "Infection control briefing", local(today, 10), local(today, 11))
    add_event(db, "ev-old", "Yesterday's drill", local(yesterday, 10), local(yesterday, 11))
    add_staff(db, "S1", "Zhang Min")
    add_staff(db, "S2", "Chen Jie")
    add_checkin(db, "ev-today", "S1", local(today, 10, 5))
    add_checkin(db, "ev-old", "S2", local(yesterday, 10, 5))

    response = client.get("/")

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Infection control briefing" in page
    assert "Zhang Min" in page
    assert "10:05" in page  # the check-in time, shown in the hospital's zone
    assert "Yesterday's drill" not in page
    assert "Chen Jie" not in page
    assert '<meta http-equiv="refresh" content="10">' in page


def test_event_page_shows_attendance_and_404s_for_unknown(client, db):
    day = date(2025, 3, 10)
    add_event(db, "ev-1", "Hand hygiene", local(day, 9), local(day, 10))
    add_staff(db, "S1", "Li Na")
    add_checkin(db, "ev-1", "S1", local(day, 9, 7), method="presence")

    page = client.get("/events/ev-1").get_data(as_text=True)

    assert "Hand hygiene" in page and "Li Na" in page and "09:07" in page and "presence" in page
    assert client.get("/events/nope").status_code == 404


def test_staff_names_are_escaped_on_the_page(client, db):
    today = datetime.now(TZ).date()
    add_event(db, "ev-1", "Ward round", local(today, 10), local(today, 11))
    add_staff(db, "S1", "<script>alert(1)</script>")
    add_checkin(db, "ev-1", "S1", local(today, 10, 1))

    page = client.get("/").get_data(as_text=True)

    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# --- configuration ------------------------------------------------------------


def test_create_app_reads_the_hub_config_file(tmp_path, monkeypatch):
    config = tmp_path / "hub.json"
    config.write_text(json.dumps({"site": "west-campus", "db": "data/hub.db",
                                  "timezone": "Europe/Berlin", "secret_key": "k"}))
    monkeypatch.setenv("ROUNDS_HUB_CONFIG", str(config))

    app = create_app()

    assert app.config["SITE"] == "west-campus"
    assert app.config["HUB_DB"] == str(tmp_path / "data" / "hub.db")
    assert app.config["TIMEZONE"] == "Europe/Berlin"
    assert app.config["SECRET_KEY"] == "k"
    assert app.test_client().get("/api/v1/health").get_json()["site"] == "west-campus"


def test_create_app_without_config_fails_clearly(monkeypatch):
    monkeypatch.delenv("ROUNDS_HUB_CONFIG", raising=False)

    with pytest.raises(ConfigError, match="ROUNDS_HUB_CONFIG"):
        create_app()
