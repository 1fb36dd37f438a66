"""Open311 GeoReport v2 (/open311/v2) against a real hub database."""

import hashlib
import io
import json
import time
from datetime import datetime, timedelta, timezone
from xml.etree import ElementTree

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from PIL import Image

from hub.config import load_hub_config
from hub.ingest import photos
from hub.tickets import open311_keys, tickets
from hub.web import open311
from protocol.clock import iso
from runtime.settings import ConfigError

from .hubweb import make_app, signed_in
from .test_tickets import T0, file, report

API = "/open311/v2"
KEY = "k-123"


@pytest.fixture
def db(hub_db):
    database = hub_db  # closed by hub_db
    open311_keys.add_key(database, KEY, "city-app")
    database["zones"].insert_all([
        {"zone": "ward-3", "name": "Ward 3", "building": "B2", "floor": "3", "lat": 31.20,
         "lon": 121.40},
        {"zone": "icu", "name": "ICU", "building": "B1", "floor": "2", "lat": 31.21,
         "lon": 121.45},
        {"zone": "lobby", "name": "Main lobby"}])
    yield database


def make(location, tmp_path, **config):
    """The hub app on the test's database (``hub_location``), photos in tmp_path."""
    return make_app(location, **{"SITE": "test", "PHOTOS_DIR": str(tmp_path / "photos"),
                                 **config})


@pytest.fixture
def app(hub_location, tmp_path, db):
    return make(hub_location, tmp_path)


@pytest.fixture
def client(app):
    return app.test_client()


def assert_error(response, code, text):
    assert response.status_code == code
    assert response.content_type.startswith("application/json")
    [error] = response.get_json()
    assert error["code"] == code and text in error["description"], error


def assert_xml_error(response, code, text):
    assert response.status_code == code
    assert response.content_type == "text/xml; charset=utf-8"
    root = ElementTree.fromstring(response.get_data())
    assert root.tag == "errors" and [e.tag for e in root] == ["error"]
    assert [c.tag for c in root[0]] == ["code", "description"]
    assert root[0].find("code").text == str(code)
    assert text in root[0].find("description").text, root[0].find("description").text


def post(client, fmt="json", **fields):
    form = {"api_key": KEY, "service_code": "hygiene", "description": "spill",
            "lat": "31.2001", "long": "121.4001"}
    form.update(fields)
    return client.post(f"{API}/requests.{fmt}",
                       data={k: v for k, v in form.items() if v is not None})


def read(client, path, **query):
    """A GET as the key holder "city-app"."""
    return client.get(API + path, query_string={"api_key": KEY, **query})


def minutes_since_t0() -> float:
    """Minutes from the ticket tests' T0 to now: filed reports at ``report(m)``
    with m near this are recent, so the 90-day default shows them."""
    return (datetime.now(timezone.utc) - T0).total_seconds() / 60


# -- services ------------------------------------------------------------------

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


def test_other_formats_and_errors_everywhere_in_spec_format(client):
    for path in ("/services.csv", "/services/hygiene.html", "/requests.yaml", "/requests/1.txt"):
        assert_error(client.get(API + path, query_string={"api_key": KEY}), 400,
                     "use .json or .xml")
    assert_error(client.post(f"{API}/requests.csv", data={"api_key": KEY}), 400, ".xml")
    assert_error(client.get(f"{API}/nothing-here"), 404, "")
    assert_error(client.delete(f"{API}/services.json"), 405, "")
    assert_xml_error(client.delete(f"{API}/services.xml"), 405, "")


# -- writing -------------------------------------------------------------------

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
    assert_xml_error(post(client, "xml", **fields), code, text)
    assert db.conn.execute("SELECT count(*) FROM tickets").fetchone() == (0,)


# -- reading -------------------------------------------------------------------

def test_get_requests_fields_and_filters(client, db):
    now = datetime.now(timezone.utc)
    offset = minutes_since_t0()
    a, b = file(db, report(offset - 60, zone="ward-3", lat=31.2, lon=121.4, note="bins"),
                report(offset - 50, zone="icu", category="safety"), minute=offset)
    [old] = file(db, report(offset - 100 * 24 * 60, zone="ward-3"), minute=offset)
    tickets.transition(db, b, "rejected", "H001", "not our building")

    body = read(client, "/requests.json").get_json()
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
                client.get(f"{API}/requests.json?api_key={KEY}&{query}").get_json()]

    assert ids("status=open") == [a]
    assert ids("status=closed") == [b]
    assert ids("status=open,closed") == [b, a]
    assert ids("service_code=safety") == [b]
    assert ids(f"service_request_id={old},{a}") == [a, old]  # ids ignore the date default
    start = iso(now - timedelta(days=200)).replace("Z", "%2B00:00")
    assert ids(f"start_date={start}") == [b, a, old]
    assert ids(f"end_date={iso(now - timedelta(minutes=55))}") == [a, old]
    assert_error(read(client, "/requests.json", status="pending"), 400, "status")
    assert_error(read(client, "/requests.json", start_date="yesterday"), 400, "start_date")
    assert_error(read(client, "/requests.json", start_date="2026-11-24T08:00:00"), 400,
                 "time zone")


def test_get_one_request(client, db):
    [answer] = post(client).get_json()
    rid = answer["service_request_id"]
    [one] = read(client, f"/requests/{rid}.json").get_json()
    assert (one["service_request_id"], one["status"], one["service_code"]) == (
        rid, "open", "hygiene")
    assert_error(read(client, "/requests/9999.json"), 404, "9999")
    assert_error(read(client, "/requests/abc.json"), 404, "abc")


# 1. a node's ticket is placed at its zone ----------------------------------------

def test_a_node_ticket_without_coordinates_has_its_zones(client, db):
    offset = minutes_since_t0()
    ward, lobby, own = file(
        db, report(offset - 3, zone="ward-3", category="hygiene"),
        report(offset - 2, zone="lobby", category="safety"),
        report(offset - 1, zone="icu", category="queue", lat=31.3, lon=121.5), minute=offset)
    placed = {r["service_request_id"]: (r["lat"], r["long"])
              for r in read(client, "/requests.json").get_json()}
    assert placed == {ward: (31.20, 121.40),   # the zone's coordinates
                      lobby: (None, None),     # a zone without any: still unknown
                      own: (31.3, 121.5)}      # the report's own point wins


# 2. updated_datetime never precedes requested_datetime ------------------------------

def test_updated_datetime_is_never_before_requested_datetime(client, db):
    offset = minutes_since_t0()
    # the photo's taken_at is 20 minutes after the hub filed the ticket
    [late] = file(db, report(offset + 20, zone="ward-3"), minute=offset)
    assert tickets.get_ticket(db, int(late))["updated_at"] < tickets.get_ticket(
        db, int(late))["reported_at"]  # what the database holds
    [shown] = read(client, f"/requests/{late}.json").get_json()
    assert shown["updated_datetime"] == shown["requested_datetime"] == iso(
        T0 + timedelta(minutes=offset + 20))
    tickets.transition(db, late, "rejected", "H001", "later still")
    [moved] = read(client, f"/requests/{late}.json").get_json()
    assert moved["updated_datetime"] == shown["requested_datetime"]  # still not before it


# 3. XML, with the same fields as JSON -------------------------------------------------

def xml_items(response, root: str, item: str) -> list[dict]:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type == "text/xml; charset=utf-8"
    assert response.get_data().startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    tree = ElementTree.fromstring(response.get_data())
    assert tree.tag == root and {child.tag for child in tree} <= {item}
    return [{field.tag: field.text for field in element} for element in tree]


def as_text(value) -> str | None:
    """How a JSON value reads in the XML: null an empty element, booleans lower case."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def same_fields(json_items: list[dict], xml: list[dict]) -> None:
    assert [sorted(i) for i in xml] == [sorted(i) for i in json_items]  # the same fields
    assert xml == [{k: as_text(v) for k, v in i.items()} for i in json_items]


def test_every_endpoint_answers_xml_with_the_fields_of_json(client, db):
    same_fields(client.get(f"{API}/services.json").get_json(),
                xml_items(client.get(f"{API}/services.xml"), "services", "service"))

    definition = client.get(f"{API}/services/hygiene.xml")
    assert definition.status_code == 200
    tree = ElementTree.fromstring(definition.get_data())
    assert (tree.tag, [c.tag for c in tree]) == ("service_definition",
                                                 ["service_code", "attributes"])
    assert tree.find("service_code").text == "hygiene" and len(tree.find("attributes")) == 0

    posted = xml_items(post(client, "xml", description='5 < 6 & "bins" <b>x</b>'),
                       "service_requests", "request")
    assert [list(p) for p in posted] == [["service_request_id", "service_notice", "account_id"]]
    rid = posted[0]["service_request_id"]
    tickets.transition(db, rid, "assigned", "H001", "on it")

    same_fields(read(client, "/requests.json").get_json(),
                xml_items(read(client, "/requests.xml"), "service_requests", "request"))
    [one] = xml_items(read(client, f"/requests/{rid}.xml"), "service_requests", "request")
    assert one["description"] == '5 < 6 & "bins" <b>x</b>'  # escaped, read back as typed
    assert (one["status_notes"], one["media_url"], one["zipcode"]) == ("on it", None, None)
    assert b"<zipcode />" in read(client, f"/requests/{rid}.xml").get_data()

    [odd] = post(client, description="bell\x07 rang\x0b!", service_code="safety").get_json()
    [shown] = xml_items(read(client, f"/requests/{odd['service_request_id']}.xml"),
                        "service_requests", "request")  # XML 1.0 has no such characters
    assert shown["description"] == "bell\ufffd rang\ufffd!"


def test_errors_of_xml_requests_are_xml(client):
    assert_xml_error(client.get(f"{API}/services/parking.xml"), 404, "parking")
    assert_xml_error(read(client, "/requests/9999.xml"), 404, "9999")
    assert_xml_error(read(client, "/requests.xml", status="pending"), 400, "status")
    assert_xml_error(client.get(f"{API}/requests.xml"), 403, "api_key")
    assert_xml_error(post(client, "xml", description="x\x01y", api_key="k-<&>"), 403,
                     "api_key")


# 4. media_url: a signed, expiring link to the safe photo -------------------------------

def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 40, 40)).save(out, "JPEG")
    return out.getvalue()


def stored_photo(db, tmp_path) -> tuple[str, bytes]:
    """A photo as ingest keeps it: the file in the hub's photos directory and its row."""
    payload = jpeg()
    photo = photos.verify(payload, hashlib.sha256(payload).hexdigest())
    with db.conn:
        photos.record(db, photo, len(payload),
                      photos.store(tmp_path / "photos", photo.sha256, payload))
    return photo.sha256, payload


def signed_earlier(app, sha: str, seconds: int) -> str:
    """The token the hub would have put in a media_url ``seconds`` ago."""

    class Earlier(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - seconds

    return URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=open311.MEDIA_SALT,
                                  signer=Earlier).dumps(sha)


def test_media_url_fetches_the_first_photo_through_a_signed_link(app, client, db, tmp_path):
    digest, payload = stored_photo(db, tmp_path)
    offset = minutes_since_t0()
    with_photo, without = file(db, report(offset - 2, zone="ward-3", photos=[digest]),
                               report(offset - 1, zone="icu", category="safety"),
                               minute=offset)
    urls = {r["service_request_id"]: r["media_url"]
            for r in read(client, "/requests.json").get_json()}
    assert urls[without] is None
    url = urls[with_photo]
    assert url.startswith(f"http://localhost{API}/media/") and url.endswith(".jpg")
    assert digest not in url  # the link names no photo: only its signature lets it in

    photo = app.test_client().get(url)  # any client, no key, no session
    assert photo.status_code == 200 and photo.mimetype == "image/jpeg"
    assert photo.get_data() == payload
    [in_xml] = xml_items(read(client, f"/requests/{with_photo}.xml"), "service_requests",
                         "request")
    assert in_xml["media_url"].startswith(f"http://localhost{API}/media/")


def test_media_links_expire_and_forged_ones_are_refused(app, client, db, tmp_path,
                                                        hub_location):
    digest, payload = stored_photo(db, tmp_path)
    two_minutes_old = f"{API}/media/{signed_earlier(app, digest, 120)}.jpg"
    assert client.get(two_minutes_old).get_data() == payload  # within the default hour
    short = make(hub_location, tmp_path, SECRET_KEY=app.config["SECRET_KEY"],
                 OPEN311={"media_url_seconds": 60}).test_client()
    assert_error(short.get(two_minutes_old), 403, "expired")
    hour_old = f"{API}/media/{signed_earlier(app, digest, 3700)}.jpg"
    assert_error(client.get(hour_old), 403, "expired")

    token = signed_earlier(app, digest, 0)
    forged = ("A" if token[0] != "A" else "B") + token[1:]  # another photo, same signature
    assert_error(client.get(f"{API}/media/{forged}.jpg"), 403, "invalid")
    other_key = URLSafeTimedSerializer("another hub's key", salt=open311.MEDIA_SALT)
    assert_error(client.get(f"{API}/media/{other_key.dumps(digest)}.jpg"), 403, "invalid")
    assert_error(client.get(f"{API}/media/{digest}.jpg"), 403, "invalid")  # a bare sha
    unknown = signed_earlier(app, hashlib.sha256(b"never sent").hexdigest(), 0)
    assert_error(client.get(f"{API}/media/{unknown}.jpg"), 404, "photo")


# 5. who may read requests ---------------------------------------------------------------

def test_reading_requests_needs_an_api_key_or_a_dashboard_session(app, client, db):
    [answer] = post(client, description="patient in bed 4 spilled tea").get_json()
    rid = answer["service_request_id"]
    for path in ("/requests.json", f"/requests/{rid}.json"):
        assert_error(client.get(API + path), 403, "api_key")
        assert_error(client.get(API + path, query_string={"api_key": "guess"}), 403, "api_key")
    assert_xml_error(client.get(f"{API}/requests/{rid}.xml"), 403, "api_key")
    assert client.get(f"{API}/services.json").status_code == 200  # services stay public

    [by_key] = read(client, f"/requests/{rid}.json").get_json()
    assert by_key["description"] == "patient in bed 4 spilled tea"
    office = signed_in(app, db, "office")
    [by_office] = office.get(f"{API}/requests.json").get_json()
    assert by_office["description"] == "patient in bed 4 spilled tea"
    staff = signed_in(app, db, "staff")  # signed in, but no ticket reader on the dashboard
    assert_error(staff.get(f"{API}/requests.json"), 403, "api_key")
    assert office.get(f"{API}/requests.json").headers["Cache-Control"] == "no-store"


def test_a_reviewer_reads_only_their_departments_requests(app, client, db):
    [hygiene] = post(client, description="bins").get_json()  # environmental services
    [other] = post(client, service_code="queue", description="long queue",
                   address_string="ICU", lat=None, long=None).get_json()
    assert tickets.get_ticket(db, int(other["service_request_id"]))["department"] != \
        "environmental_services"
    reviewer = signed_in(app, db, "dept_reviewer")  # of environmental_services
    listed = reviewer.get(f"{API}/requests.json").get_json()
    assert [(r["service_request_id"], r["description"]) for r in listed] == [
        (hygiene["service_request_id"], "bins")]
    assert_error(reviewer.get(f"{API}/requests/{other['service_request_id']}.json"), 404,
                 other["service_request_id"])


def test_public_reading_lists_requests_without_what_staff_wrote(tmp_path, db, hub_location):
    digest, _ = stored_photo(db, tmp_path)
    offset = minutes_since_t0()
    [rid] = file(db, report(offset - 1, zone="ward-3", note="Mr Li, bed 4", photos=[digest]),
                 minute=offset)
    tickets.transition(db, rid, "rejected", "H001", "Mr Li was discharged")
    app = make(hub_location, tmp_path, OPEN311={"public_read": True})
    anonymous = app.test_client()
    [seen] = anonymous.get(f"{API}/requests.json").get_json()
    assert (seen["service_request_id"], seen["status"], seen["address"]) == (
        rid, "closed", "Ward 3, B2, 3")
    assert (seen["description"], seen["status_notes"], seen["media_url"]) == (None, None, None)
    assert anonymous.get(f"{API}/requests/{rid}.json").get_json() == [seen]
    assert b"Mr Li" not in anonymous.get(f"{API}/requests.xml").get_data()

    [keyed] = read(anonymous, f"/requests/{rid}.json").get_json()
    assert (keyed["description"], keyed["status_notes"]) == (
        "Mr Li, bed 4", "Mr Li was discharged")
    assert keyed["media_url"]
    assert_error(anonymous.get(f"{API}/requests.json", query_string={"api_key": "guess"}),
                 403, "api_key")  # a wrong key is an error, not a quiet anonymous read


def test_the_hub_config_open311_section(tmp_path):
    path = tmp_path / "hub.json"
    path.write_text(json.dumps({"site": "s", "db": "hub.db"}))
    assert load_hub_config(path)["open311"] == {"public_read": False, "media_url_seconds": 3600}
    path.write_text(json.dumps({"site": "s", "db": "hub.db",
                                "open311": {"public_read": True, "media_url_seconds": 600}}))
    assert load_hub_config(path)["open311"] == {"public_read": True, "media_url_seconds": 600}
    for wrong in ({"public_read": "yes"}, {"media_url_seconds": 0},
                  {"media_url_seconds": True}, {"public": True}, ["public_read"]):
        path.write_text(json.dumps({"site": "s", "db": "hub.db", "open311": wrong}))
        with pytest.raises(ConfigError, match="open311"):
            load_hub_config(path)
