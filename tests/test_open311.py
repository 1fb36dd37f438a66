"""Open311 GeoReport v2 (/open311/v2) against a real hub database."""

from datetime import datetime, timedelta, timezone

import pytest

from hub.db import open_db
from hub.tickets import open311_keys, tickets
from hub.web import create_app
from protocol.clock import iso

from .test_tickets import file, report

API = "/open311/v2"


@pytest.fixture
def db(tmp_path):
    database = open_db(tmp_path / "hub.db")
    open311_keys.add_key(database, "k-123", "city-app")
    database["zones"].insert_all([
        {"zone": "ward-3", "name": "Ward 3", "building": "B2", "floor": "3", "lat": 31.20,
         "lon": 121.40},
        {"zone": "icu", "name": "ICU", "building": "B1", "floor": "2", "lat": 31.21,
         "lon": 121.45}])
    yield database
    database.close()


@pytest.fixture
def client(tmp_path, db):
    return create_app({"TESTING": True, "HUB_DB": str(tmp_path / "hub.db"),
                       "SITE": "test"}).test_client()


def assert_error(response, code, text):
    assert response.status_code == code
    assert response.content_type.startswith("application/json")
    [error] = response.get_json()
    assert error["code"] == code and text in error["description"], error


def post(client, **fields):
    form = {"api_key": "k-123", "service_code": "hygiene", "description": "spill",
            "lat": "31.2001", "long": "121.4001"}
    form.update(fields)
    return client.post(f"{API}/requests.json",
                       data={k: v for k, v in form.items() if v is not None})


def test_services_list(client):
    services = client.get(f"{API}/services.json").get_json()
    assert [s["service_code"] for s in services] == [
        "facilities", "hygiene", "queue", "safety", "service", "signage"]
    safety = next(s for s in services if s["service_code"] == "safety")
    assert safety == {"service_code": "safety", "service_name": "Safety hazard",
                      "description": safety["description"], "metadata": False,
                      "type": "realtime", "keywords": safety["keywords"], "group": "Safety"}
    assert safety["description"] and "fire" in safety["keywords"]


def test_service_definition_and_unknown_code(client):
    assert client.get(f"{API}/services/hygiene.json").get_json() == {
        "service_code": "hygiene", "attributes": []}
    assert_error(client.get(f"{API}/services/parking.json"), 404, "parking")


def test_json_only_and_errors_everywhere_in_spec_format(client):
    for path in ("/services.xml", "/services/hygiene.xml", "/requests.xml", "/requests/1.xml"):
        assert_error(client.get(API + path), 400, "json only")
    assert_error(client.post(f"{API}/requests.xml", data={"api_key": "k-123"}), 400, "json only")
    assert_error(client.get(f"{API}/nothing-here"), 404, "")
    assert_error(client.delete(f"{API}/services.json"), 405, "")


def test_post_creates_a_routed_ticket(client, db):
    r = post(client, description="wet floor near lift")
    assert r.status_code == 200
    [answer] = r.get_json()
    assert set(answer) == {"service_request_id", "service_notice", "account_id"}
    ticket = tickets.get_ticket(db, int(answer["service_request_id"]), detail=True)
    assert (ticket["category"], ticket["zone"], ticket["department"], ticket["source"],
            ticket["note"], ticket["state"]) == (
        "hygiene", "ward-3", "environmental_services", "open311", "wet floor near lift", "new")
    assert ticket["reports"][0]["staff_id"] == "311:city-app"
    assert "environmental_services" in answer["service_notice"]


def test_post_by_address_and_duplicate_notice(client, db):
    [first] = post(client, lat=None, long=None, address_string="ICU",
                   service_code="safety").get_json()
    assert tickets.get_ticket(db, int(first["service_request_id"]))["zone"] == "icu"
    [again] = post(client, service_code="safety", lat="31.2101", long="121.4499").get_json()
    assert again["service_request_id"] == first["service_request_id"]
    assert "Already reported" in again["service_notice"]
    [free_text] = post(client, lat=None, long=None, address_string="Car park B").get_json()
    assert tickets.get_ticket(db, int(free_text["service_request_id"]))["zone"] == "Car park B"


@pytest.mark.parametrize("fields, code, text", [
    ({"api_key": None}, 403, "api_key"),
    ({"api_key": "wrong"}, 403, "api_key"),
    ({"service_code": None}, 400, "service_code is required"),
    ({"service_code": "parking"}, 404, "parking"),
    ({"description": None}, 400, "description is required"),
    ({"lat": None, "long": None}, 400, "location is required"),
    ({"long": None}, 400, "lat and long"),
    ({"lat": "north"}, 400, "lat must be"),
    ({"long": "200"}, 400, "long must be"),
])
def test_post_required_fields(client, db, fields, code, text):
    assert_error(post(client, **fields), code, text)
    assert db.conn.execute("SELECT count(*) FROM tickets").fetchone() == (0,)


def test_get_requests_fields_and_filters(client, db):
    now = datetime.now(timezone.utc)
    T0 = datetime(2026, 11, 24, 8, 0, tzinfo=timezone.utc)
    offset = (now - T0).total_seconds() / 60
    a, b = file(db, report(offset - 60, zone="ward-3", lat=31.2, lon=121.4, note="bins"),
                report(offset - 50, zone="icu", category="safety"), minute=offset)
    [old] = file(db, report(offset - 100 * 24 * 60, zone="ward-3"), minute=offset)
    tickets.transition(db, b, "rejected", "H001", "not our building")

    body = client.get(f"{API}/requests.json").get_json()
    assert [r["service_request_id"] for r in body] == [b, a]  # newest first, last 90 days
    ra = body[1]
    assert ra == {"service_request_id": a, "status": "open", "status_notes": None,
                  "service_name": "Hygiene", "service_code": "hygiene", "description": "bins",
                  "agency_responsible": "environmental_services", "service_notice": None,
                  "requested_datetime": iso(T0 + timedelta(minutes=offset - 60)),
                  "updated_datetime": ra["updated_datetime"],
                  "expected_datetime": ra["expected_datetime"], "address": "Ward 3, B2, 3",
                  "address_id": None, "zipcode": None, "lat": 31.2, "long": 121.4,
                  "media_url": None}
    assert ra["expected_datetime"] > ra["requested_datetime"]
    assert (body[0]["status"], body[0]["status_notes"]) == ("closed", "not our building")

    def ids(query):
        return [r["service_request_id"] for r in
                client.get(f"{API}/requests.json?{query}").get_json()]

    assert ids("status=open") == [a]
    assert ids("status=closed") == [b]
    assert ids("status=open,closed") == [b, a]
    assert ids("service_code=safety") == [b]
    assert ids(f"service_request_id={old},{a}") == [a, old]  # ids ignore the date default
    start = iso(now - timedelta(days=200)).replace("Z", "%2B00:00")
    assert ids(f"start_date={start}") == [b, a, old]
    assert ids(f"end_date={iso(now - timedelta(minutes=55))}") == [a, old]
    assert_error(client.get(f"{API}/requests.json?status=pending"), 400, "status")
    assert_error(client.get(f"{API}/requests.json?start_date=yesterday"), 400, "start_date")
    assert_error(client.get(f"{API}/requests.json?start_date=2026-11-24T08:00:00"), 400,
                 "time zone")


def test_get_one_request(client, db):
    [answer] = post(client).get_json()
    rid = answer["service_request_id"]
    [one] = client.get(f"{API}/requests/{rid}.json").get_json()
    assert (one["service_request_id"], one["status"], one["service_code"]) == (
        rid, "open", "hygiene")
    assert_error(client.get(f"{API}/requests/9999.json"), 404, "9999")
    assert_error(client.get(f"{API}/requests/abc.json"), 404, "abc")
