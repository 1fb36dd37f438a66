"""The node portal's check-in flow, against a real SQLite node database.

Also the shared fixtures of the other ``test_portal_*`` files. A test gives the
Flask test client a phone (a MAC) the way the node finds one: a line in a
dnsmasq lease file (``expiry mac ip hostname client-id``) for the client's
address, ``environ_base={"REMOTE_ADDR": PHONE_IP}``.
"""

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
from protocol.pins import device_id, hash_pin
from protocol.records import validate
from runtime.settings import ConfigError

NOW = datetime.now(timezone.utc)
SECRET = bytes.fromhex("5e" * 32)
PORTAL_URL = "http://localhost/"  # the test client's host, so pages are "ours"
PHONE_IP, PHONE_MAC = "10.42.0.23", "a6:3f:0c:11:7e:42"  # a private (random) MAC
OTHER_IP, OTHER_MAC = "10.42.0.57", "6e:21:9a:d0:33:05"
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
def leases(tmp_path):
    """dnsmasq's lease file, in its real format; starts with no phones."""
    path = tmp_path / "dnsmasq.leases"
    path.write_text("")
    return path


def lease(leases_path, ip, mac, hostname="phone"):
    expiry = int((NOW + timedelta(hours=1)).timestamp())
    with open(leases_path, "a") as f:
        f.write(f"{expiry} {mac} {ip} {hostname} 01:{mac}\n")


@pytest.fixture
def arp(tmp_path):
    """The neighbour table in /proc/net/arp's format (header only at first)."""
    path = tmp_path / "arp"
    path.write_text("IP address       HW type     Flags       HW address            "
                    "Mask     Device\n")
    return path


def portal_config(db_path, leases, arp, **extra) -> dict:
    return {"NODE_DB": str(db_path), "NODE_ID": "n1", "ZONE": "fallback-zone",
            "SECRET_KEY": "test-secret", "SITE_SECRET": SECRET, "TESTING": True,
            "LEASES_FILE": str(leases), "ARP_FILE": str(arp), "PORTAL_URL": PORTAL_URL,
            **extra}


@pytest.fixture
def app(db_path, leases, arp):
    return create_app(portal_config(db_path, leases, arp))


@pytest.fixture
def client(app):
    """An unknown device (no MAC behind 127.0.0.1), reading English."""
    c = app.test_client()
    c.get("/?lang=en")
    return c


@pytest.fixture
def phone(app, leases):
    """A phone on the Wi-Fi (its MAC in the lease file), not bound, reading English."""
    lease(leases, PHONE_IP, PHONE_MAC)
    c = app.test_client()
    c.environ_base["REMOTE_ADDR"] = PHONE_IP
    c.get("/?lang=en")
    return c


def device(mac=PHONE_MAC) -> str:
    return device_id(SECRET, mac)


def records(db_path, type_=None):
    outbox = Outbox(db_path)
    try:
        found = [item.record for item in outbox.pending(1000)]
    finally:
        outbox.close()
    return [r for r in found if type_ is None or r["type"] == type_]


def query(db_path, sql, *args):
    db = open_db(db_path)
    try:
        return db.conn.execute(sql, args).fetchall()
    finally:
        db.close()


def put_state(db_path, key, document):
    db = open_db(db_path)
    try:
        NodeState(db).put(key, document)
    finally:
        db.close()


def text(response):
    """The page's text, unescaped, with whitespace runs made single spaces."""
    return " ".join(html.unescape(response.get_data(as_text=True)).split())


def csrf(client, path="/"):
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def check_in(client, staff_id="D001", pin="2468", follow=True):
    return client.post("/checkin", data={"csrf_token": csrf(client), "staff_id": staff_id,
                                         "pin": pin}, follow_redirects=follow)


def test_home_shows_zone_event_and_form(client):
    response = client.get("/")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "hall-a" in page and "Hand hygiene lecture" in page
    assert re.search(r'<form method="post" action="/checkin"', page)
    assert re.search(r'<input[^>]*name="pin"[^>]*type="password"[^>]*inputmode="numeric"', page)
    assert 'action="/bind"' not in page  # no binding for a device the node cannot tell
    assert "<script" not in page  # works without JavaScript


def test_right_pin_queues_one_checkin_and_redirects(client, db_path):
    response = check_in(client, follow=False)
    assert response.status_code == 303
    assert response.headers["Location"] == "/done?lang=en"

    done = client.get("/done")
    assert done.status_code == 200
    assert "Checked in to Hand hygiene lecture, Dr. Li" in text(done)

    [record] = records(db_path)
    validate(record)
    assert record["type"] == "checkin"
    assert (record["staff_id"], record["event_id"], record["zone"], record["method"],
            record["device"]) == ("D001", "ev1", "hall-a", "portal", None)


def test_checkin_by_pin_from_a_known_phone_records_its_device(phone, db_path):
    assert check_in(phone, follow=False).status_code == 303
    [record] = records(db_path)
    assert record["device"] == device() and validate(record)
    assert PHONE_MAC not in json.dumps(record)


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
    assert "4 more wrong PINs and this staff number is locked for 15 minutes" in text(response)
    assert records(db_path) == []


def test_unknown_staff_is_404_without_record(client, db_path):
    response = check_in(client, staff_id="X999")
    assert response.status_code == 404
    assert "Unknown staff number X999 — ask the civility office to add you" in text(response)
    assert records(db_path) == []


def test_staff_number_in_lower_case_is_found(client, db_path):
    put_state(db_path, "roster", {**ROSTER, "staff": [
        {**ROSTER["staff"][0], "staff_id": "A7X"}]})
    assert check_in(client, staff_id="a7x", follow=False).status_code == 303
    assert [r["staff_id"] for r in records(db_path)] == ["A7X"]


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
    assert "This form has expired or did not come from this page" in text(response)
    assert records(db_path) == []
    assert query(db_path, "SELECT count(*) FROM pin_failures") == [(0,)]


def test_token_of_another_session_is_refused(app, client, db_path):
    other = app.test_client()
    token = csrf(other)
    response = client.post("/checkin", data={"csrf_token": token, "staff_id": "D001",
                                             "pin": "2468"})
    assert response.status_code == 400 and records(db_path) == []


def test_sixth_attempt_after_five_wrong_pins_is_429_even_with_right_pin(client, db_path):
    for _ in range(5):
        assert check_in(client, pin="0000").status_code == 401
    response = check_in(client, pin="2468")
    assert response.status_code == 429
    assert "Too many wrong PINs for staff number D001" in text(response)
    wait = int(response.headers["Retry-After"])
    assert 0 < wait <= 15 * 60
    minutes = -(-wait // 60)
    assert re.search(rf"Try again in {minutes} minutes? \(at \d\d:\d\d\)", text(response))
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
    assert 'name="pin"' not in home.get_data(as_text=True)
    response = client.post("/checkin", data={"csrf_token": token, "staff_id": "D001",
                                             "pin": "2468"})
    assert response.status_code == 503
    assert "This node has not received the staff list from the hub yet" in text(response)
    assert records(db_path) == []


def test_no_active_event_records_null_event_once(client, db_path):
    put_state(db_path, "config", {"node": "n1", "zone": "hall-a", "events": []})
    assert "No event right now" in text(client.get("/"))

    response = check_in(client)
    assert response.status_code == 200 and "Checked in at" in text(response)
    assert "already" not in text(response)
    [record] = records(db_path)
    assert record["event_id"] is None and record["zone"] == "hall-a"

    assert "already checked in" in text(check_in(client))
    assert len(records(db_path)) == 1


def test_zone_falls_back_to_provisioned_zone(client, db_path):
    put_state(db_path, "config", {"node": "n1", "events": [EVENT]})
    check_in(client)
    [record] = records(db_path)
    assert record["zone"] == "fallback-zone"


def test_done_without_a_checkin_goes_home(client):
    response = client.get("/done")
    assert response.status_code == 303 and response.headers["Location"] == "/?lang=en"


def test_pages_are_not_cached(client):
    assert client.get("/").headers["Cache-Control"] == "no-store"


def test_unknown_page_is_a_translated_404(client):
    response = client.get("/nope")
    assert response.status_code == 404 and "Page not found" in text(response)


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
    config.write_text(json.dumps({
        "node": "n7", "zone": "ward-3", "db": str(db_path), "site": "demo",
        "site_secret": "ab" * 32,
        "portal": {"url": "http://10.42.0.1/", "leases_file": "/run/l", "arp_file": "/run/a",
                   "release_seconds": 600, "venue_info_url": "https://hospital.example/",
                   "api_url": "https://portal.hospital.example/api/captive"}}))
    monkeypatch.setenv("ROUNDS_EDGE_CONFIG", str(config))
    app = create_app()
    assert app.config["NODE_ID"] == "n7" and app.config["NODE_DB"] == str(db_path)
    assert app.config["SECRET_KEY"] and app.config["SECRET_KEY"] != "ab" * 32
    assert app.config["SITE_SECRET"] == bytes.fromhex("ab" * 32)
    assert (app.config["PORTAL_URL"], app.config["LEASES_FILE"], app.config["ARP_FILE"],
            app.config["RELEASE_SECONDS"], app.config["VENUE_INFO_URL"],
            app.config["API_URL"]) == (
        "http://10.42.0.1/", "/run/l", "/run/a", 600, "https://hospital.example/",
        "https://portal.hospital.example/api/captive")
    response = app.test_client().get("/healthz", headers={"Host": "10.42.0.1"})
    assert response.get_json()["node"] == "n7"


def test_config_file_defaults(tmp_path, db_path, monkeypatch):
    config = tmp_path / "node.json"
    config.write_text(json.dumps({"node": "n7", "db": str(db_path), "site_secret": "ab" * 32}))
    monkeypatch.setenv("ROUNDS_EDGE_CONFIG", str(config))
    app = create_app()
    assert (app.config["LEASES_FILE"], app.config["ARP_FILE"], app.config["RELEASE_SECONDS"],
            app.config["PORTAL_URL"], app.config["API_URL"]) == (
        "/var/lib/misc/dnsmasq.leases", "/proc/net/arp", 43200, None, None)


@pytest.mark.parametrize("change, complaint", [
    ({"site_secret": "not hex"}, "site_secret must be hex"),
    ({"portal": {"url": "10.42.0.1"}}, "PORTAL_URL is not an http(s) URL"),
    ({"portal": {"release_seconds": "soon"}}, "release_seconds"),
])
def test_bad_node_config_fails_clearly(tmp_path, db_path, monkeypatch, change, complaint):
    config = tmp_path / "node.json"
    config.write_text(json.dumps({"node": "n7", "db": str(db_path), "site_secret": "ab" * 32,
                                  **change}))
    monkeypatch.setenv("ROUNDS_EDGE_CONFIG", str(config))
    with pytest.raises(ConfigError, match=re.escape(complaint)):
        create_app()


def test_home_shows_the_zone_by_its_name_when_the_hub_gave_one(client, db_path):
    assert "Lecture hall A" not in text(client.get("/"))
    put_state(db_path, "config", {"node": "n1", "zone": "hall-a", "zone_name": "Lecture hall A",
                                  "events": [EVENT]})
    assert "On now in Lecture hall A" in text(client.get("/"))
