"""The node portal's check-in flow, against a real SQLite node database."""

import html
import json
import re
from datetime import datetime, timedelta, timezone

import pytest

from edge.db import open_db
from edge.outbox import Outbox
from edge.portal import create_app
from edge.state import NodeState
from protocol.clock import iso, parse_iso
from protocol.pins import hash_pin
from protocol.records import validate

NOW = datetime.now(timezone.utc)
ROSTER = {
    "version": 1,
    "staff": [{"staff_id": "D001", "name": "Dr. Li", "department": "cardiology",
               "pin_hash": hash_pin("2468")},
              {"staff_id": "N002", "name": "Nurse Wang", "department": "nursing",
               "pin_hash": hash_pin("1357")}],
    "bindings": [],
}
EVENT = {
    "id": "ev1", "title": "Hand hygiene lecture", "kind": "lecture", "zones": ["hall-a"],
    "start": iso(NOW - timedelta(minutes=10)), "end": iso(NOW + timedelta(minutes=50)),
    "credit_hours": 1, "min_presence": 0.75,
}


@pytest.fixture
def db_path(tmp_path):
    path = tmp_path / "node.db"
    db = open_db(path)
    state = NodeState(db)
    state.put("roster", ROSTER)
    state.put("config", {"node": "n1", "zone": "hall-a", "events": [EVENT]})
    db.close()
    return path


@pytest.fixture
def app(db_path):
    return create_app({"NODE_DB": str(db_path), "NODE_ID": "n1", "ZONE": "fallback-zone",
                       "SECRET_KEY": "test-secret", "TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()


def records(db_path):
    outbox = Outbox(db_path)
    try:
        return [item.record for item in outbox.pending(100)]
    finally:
        outbox.close()


def text(response):
    return html.unescape(response.get_data(as_text=True))


def csrf(client):
    page = client.get("/").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def check_in(client, staff_id="D001", pin="2468", follow=True):
    return client.post("/checkin", data={"csrf_token": csrf(client), "staff_id": staff_id,
                                         "pin": pin}, follow_redirects=follow)


def test_home_shows_zone_event_and_form(client):
    response = client.get("/")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "hall-a" in page and "Hand hygiene lecture" in page
    assert re.search(r'<input[^>]*name="pin"[^>]*type="password"[^>]*inputmode="numeric"', page)
    assert "<script" not in page  # works without JavaScript


def test_right_pin_queues_one_checkin_and_redirects(client, db_path):
    response = check_in(client, follow=False)
    assert response.status_code == 303 and response.headers["Location"].endswith("/done")

    done = client.get("/done")
    assert done.status_code == 200
    assert "Checked in to Hand hygiene lecture, Dr. Li" in text(done)

    [record] = records(db_path)
    validate(record)
    assert record["type"] == "checkin"
    assert (record["staff_id"], record["event_id"], record["zone"], record["method"],
            record["device"]) == ("D001", "ev1", "hall-a", "portal", None)


def test_second_checkin_to_same_event_makes_no_second_record(client, db_path):
    check_in(client)
    [first] = records(db_path)
    response = check_in(client)
    assert response.status_code == 200
    hhmm = parse_iso(first["ts"]).astimezone().strftime("%H:%M")
    assert f"already checked in at {hhmm}" in text(response)
    assert records(db_path) == [first]


def test_wrong_pin_is_401_without_record(client, db_path):
    response = check_in(client, pin="1111")
    assert response.status_code == 401
    assert "Wrong PIN for staff number D001" in text(response)
    assert records(db_path) == []


def test_unknown_staff_is_404_without_record(client, db_path):
    response = check_in(client, staff_id="X999")
    assert response.status_code == 404
    assert "Unknown staff number X999 — ask the civility office to add you" in text(response)
    assert records(db_path) == []


def test_user_input_is_escaped(client):
    response = check_in(client, staff_id="<b>x</b>")
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page


@pytest.mark.parametrize("staff_id, pin, reason", [
    ("", "2468", "staff number"), ("D001", "", "PIN"), ("  ", " ", "staff number and PIN"),
])
def test_empty_fields_are_400_with_reason(client, db_path, staff_id, pin, reason):
    response = check_in(client, staff_id=staff_id, pin=pin)
    assert response.status_code == 400
    assert f"Please enter your {reason}." in text(response)
    assert records(db_path) == []


@pytest.mark.parametrize("token", [None, "forged-token"])
def test_post_without_right_csrf_token_is_400(client, db_path, token):
    csrf(client)  # the session has a token; the form does not carry it
    data = {"staff_id": "D001", "pin": "2468"}
    if token:
        data["csrf_token"] = token
    response = client.post("/checkin", data=data)
    assert response.status_code == 400
    assert records(db_path) == []


def test_sixth_attempt_after_five_wrong_pins_is_429_even_with_right_pin(client, db_path):
    for _ in range(5):
        assert check_in(client, pin="0000").status_code == 401
    response = check_in(client, pin="2468")
    assert response.status_code == 429
    assert "Too many wrong PINs for staff number D001" in text(response)
    assert 0 < int(response.headers["Retry-After"]) <= 15 * 60
    assert records(db_path) == []


def test_right_pin_between_failures_does_not_count_as_failure(client, db_path):
    for _ in range(4):
        assert check_in(client, pin="0000").status_code == 401
    assert check_in(client, follow=False).status_code == 303
    assert check_in(client, pin="0000").status_code == 401  # 5th failure, still allowed
    assert check_in(client, pin="0000").status_code == 429


def test_failures_older_than_15_minutes_do_not_count(client, db_path):
    db = open_db(db_path)
    old = iso(datetime.now(timezone.utc) - timedelta(minutes=16))
    with db.atomic():
        for _ in range(5):
            db.conn.execute("INSERT INTO pin_failures (staff_id, ts) VALUES (?, ?)", ("D001", old))
    db.close()
    assert check_in(client, follow=False).status_code == 303
    assert len(records(db_path)) == 1


def test_lock_is_per_staff_number(client, db_path):
    for _ in range(5):
        check_in(client, pin="0000")
    assert check_in(client, staff_id="N002", pin="1357", follow=False).status_code == 303
    assert [r["staff_id"] for r in records(db_path)] == ["N002"]


def test_no_roster_is_503(client, db_path):
    token = csrf(client)  # the form is hidden once the roster is gone
    db = open_db(db_path)
    with db.atomic():
        db.conn.execute("DELETE FROM kv WHERE key = 'roster'")
    db.close()
    home = client.get("/")
    assert "has not received the staff list" in text(home)
    response = client.post("/checkin", data={"csrf_token": token, "staff_id": "D001",
                                             "pin": "2468"})
    assert response.status_code == 503
    assert "This node has not received the staff list from the hub yet" in text(response)
    assert records(db_path) == []


def test_no_active_event_records_null_event_once(client, db_path):
    db = open_db(db_path)
    NodeState(db).put("config", {"node": "n1", "zone": "hall-a", "events": []})
    db.close()
    assert "No event right now" in text(client.get("/"))

    response = check_in(client)
    assert response.status_code == 200 and "Checked in at" in text(response)
    assert "already" not in text(response)
    [record] = records(db_path)
    assert record["event_id"] is None and record["zone"] == "hall-a"

    assert "already checked in" in text(check_in(client))
    assert len(records(db_path)) == 1


def test_zone_falls_back_to_provisioned_zone(client, db_path):
    db = open_db(db_path)
    NodeState(db).put("config", {"node": "n1", "events": [EVENT]})
    db.close()
    check_in(client)
    [record] = records(db_path)
    assert record["zone"] == "fallback-zone"


def test_done_without_a_checkin_goes_home(client):
    response = client.get("/done")
    assert response.status_code == 303 and response.headers["Location"].endswith("/")


def test_healthz(client, db_path):
    body = client.get("/healthz").get_json()
    assert body == {"ok": True, "node": "n1", "zone": "hall-a", "backlog": 0, "roster": 1}
    check_in(client)
    assert client.get("/healthz").get_json()["backlog"] == 1


def test_healthz_roster_null_before_first_sync(client, db_path):
    db = open_db(db_path)
    with db.atomic():
        db.conn.execute("DELETE FROM kv WHERE key = 'roster'")
    db.close()
    assert client.get("/healthz").get_json()["roster"] is None


def test_create_app_from_node_config_file(tmp_path, db_path, monkeypatch):
    config = tmp_path / "node.json"
    config.write_text(json.dumps({"node": "n7", "zone": "ward-3", "db": str(db_path),
                                  "site": "demo", "site_secret": "s3cret"}))
    monkeypatch.setenv("ROUNDS_EDGE_CONFIG", str(config))
    app = create_app()
    assert app.config["NODE_ID"] == "n7" and app.config["NODE_DB"] == str(db_path)
    assert app.config["SECRET_KEY"] and app.config["SECRET_KEY"] != "s3cret"
    assert app.test_client().get("/healthz").get_json()["node"] == "n7"


def test_home_shows_the_zone_by_its_name_when_the_hub_gave_one(client, db_path):
    assert "Lecture hall A" not in text(client.get("/"))
    db = open_db(db_path)
    NodeState(db).put("config", {"node": "n1", "zone": "hall-a", "zone_name": "Lecture hall A",
                                 "events": [EVENT]})
    db.close()
    assert "On now in Lecture hall A" in " ".join(text(client.get("/")).split())
