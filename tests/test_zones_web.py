"""Zones and floor plans on the dashboard and the API, against a real SQLite
file: forms with CSRF, the polygon, SVG sanitizing, JSON outlines, roles."""

import io
import json
from xml.etree import ElementTree

import pytest

from hub.schedule import floor_plans

from .hubweb import csrf_token, office_session, post_json, signed_in

SVG = "http://www.w3.org/2000/svg"
PLAN_CSP = "default-src 'none'; style-src 'unsafe-inline'"
OUTLINE = {"width": 1000, "height": 600,
           "outline": [[0, 0], [1000, 0], [1000, 600], [0, 600]],
           "shapes": [{"type": "rect", "x": 400, "y": 50, "width": 80, "height": 60,
                       "label": "Lift & stairs"},
                      {"type": "polygon", "points": [[50, 50], [300, 50], [300, 250]],
                       "label": "Ward <3>"},
                      {"type": "polyline", "points": [[0, 300], [1000, 300]]},
                      {"type": "text", "x": 500, "y": 580, "text": "Main entrance"}]}
EVIL_SVG = b"""<?xml version="1.0"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"
     viewBox="0 0 800 400" onload="alert('svg')">
  <script>alert('script')</script>
  <g id="walls" onclick="alert('g')" class="x"
     style="fill:red;background:url(http://evil.example/x)">
    <rect x="10" y="10" width="100" height="50" fill="#eee" stroke="black"
          onmouseover="alert('rect')" style="stroke-width:2;fill:url(#p)"/>
    <text x="20" y="30" font-size="12" style="font-weight:bold; cursor:pointer"
    >Ward 3 &amp; <tspan>lift</tspan></text>
  </g>
  <foreignObject width="100" height="100"><body xmlns="http://www.w3.org/1999/xhtml">
    <script>alert('fo')</script><iframe src="javascript:alert(1)"/></body></foreignObject>
  <a xlink:href="javascript:alert('a')"><circle cx="5" cy="5" r="5"/></a>
  <image xlink:href="http://evil.example/track.png" width="10" height="10"/>
  <use href="http://evil.example/sprite.svg#x"/>
  <path d="M0 0 L10 10" xlink:href="http://evil.example/" fill="url(http://evil.example/f)"/>
  <style>@import url(http://evil.example/css);</style>
  tail text kept
</svg>"""


@pytest.fixture
def db(hub_db):
    return hub_db


@pytest.fixture
def client(hub_app, db):
    """The office reading English messages, whatever the catalogue holds."""
    return signed_in(hub_app, db, "office", lang="en")


@pytest.fixture(scope="module")
def refusing(tmp_path_factory):
    """One hub and office session for the tests in which nothing is saved."""
    with office_session(tmp_path_factory.mktemp("refusals")) as session:
        yield session


@pytest.fixture(scope="module")
def planned(tmp_path_factory):
    """Like ``refusing``, with the floor plan of Main / Teaching / 2 (OUTLINE)."""
    with office_session(tmp_path_factory.mktemp("planned")) as (database, client):
        assert upload(client, json.dumps(OUTLINE).encode(), "plan.json").status_code == 303
        yield database, client


def upload(client, data: bytes, filename: str, campus="Main", building="Teaching", floor="2"):
    token = csrf_token(client, "/zones/plans/upload")
    return client.post("/zones/plans/upload", data={
        "csrf_token": token, "campus": campus, "building": building, "floor": floor,
        "plan": (io.BytesIO(data), filename)}, content_type="multipart/form-data")


def post_form(client, path: str, fields: dict):
    return client.post(path, data={"csrf_token": csrf_token(client, path), **fields})


def audit_actions(db) -> list[tuple]:
    return [(row[0], row[1]) for row in db.conn.execute(
        "SELECT action, target FROM audit_log WHERE action NOT IN ('login', 'logout') "
        "ORDER BY id")]


def zone_fields(**overrides) -> dict:
    return {"zone": "hall-a", "name": "Lecture hall A", "campus": "Main",
            "building": "Teaching", "floor": "2", "lat": "", "lon": "", "polygon": "",
            **overrides}


# --- zones through the forms ------------------------------------------------------------


def test_zone_created_then_drawn_on_its_floor_plan(client, db):
    assert upload(client, json.dumps(OUTLINE).encode(), "teaching-2.json").status_code == 303
    created = post_form(client, "/zones/new", zone_fields(lat="31.2", lon="121.45"))
    assert created.status_code == 303 and created.headers["Location"] == "/zones/"

    page = client.get("/zones/hall-a/edit").get_data(as_text=True)
    plan_id = db.conn.execute("SELECT id FROM floor_plans").fetchone()[0]
    assert f'href="/zones/plans/{plan_id}.svg"' in page  # the editor shows the plan
    assert 'viewBox="0 0 1000 600"' in page and 'name="polygon"' in page

    polygon = [[10, 10], [300, 10.5], [300, 200], [10, 200]]
    saved = post_form(client, "/zones/hall-a/edit",
                      zone_fields(name="Hall A (renamed)", lat="31.2", lon="121.45",
                                  polygon=json.dumps(polygon)))

    assert saved.status_code == 303
    row = db["zones"].get("hall-a")
    assert row["name"] == "Hall A (renamed)" and (row["lat"], row["lon"]) == (31.2, 121.45)
    assert json.loads(row["polygon"]) == polygon
    assert audit_actions(db) == [("floor_plan.upload", f"floor_plan:{plan_id}"),
                                 ("zone.create", "zone:hall-a"), ("zone.update", "zone:hall-a")]
    listed = client.get("/api/v1/zones").get_json()
    assert listed == [{"zone": "hall-a", "name": "Hall A (renamed)", "campus": "Main",
                       "building": "Teaching", "floor": "2", "lat": 31.2, "lon": 121.45,
                       "polygon": polygon, "floor_plan_id": plan_id}]
    index = client.get("/zones/").get_data(as_text=True)
    assert "Hall A (renamed)" in index and "4 points" in index and "Teaching" in index


def test_clearing_the_polygon_text_removes_it(client, db):
    upload(client, json.dumps(OUTLINE).encode(), "plan.json")
    post_form(client, "/zones/new", zone_fields(polygon="[[1,1],[2,1],[2,2]]"))
    assert db["zones"].get("hall-a")["polygon"] is not None

    assert post_form(client, "/zones/hall-a/edit", zone_fields(polygon="")).status_code == 303
    assert db["zones"].get("hall-a")["polygon"] is None


@pytest.mark.parametrize("fields, message", [
    ({"zone": "Hall A!"}, "The zone id must be 1-64 lowercase letters"),
    ({"name": ""}, "The name is required"),
    ({"name": "x" * 101}, "Text of at most 100 characters"),
    ({"lat": "91", "lon": "120"}, "Latitude must be a number from -90 to 90"),
    ({"lat": "30", "lon": ""}, "Give both latitude and longitude"),
    ({"polygon": "[[0,0],[10,0]]"}, "The polygon needs 3 to 200 points"),
    ({"polygon": "[[0,0],[1001,0],[0,10]]"}, "within the plan (0-1000 x 0-600)"),
    ({"polygon": "[[0,0],[true,0],[0,10]]"}, "within the plan"),
    ({"polygon": "not json"}, "The polygon must be JSON"),
])
def test_bad_zone_is_refused_with_the_reason_and_nothing_saved(planned, fields, message):
    db, client = planned
    before = audit_actions(db)

    response = post_form(client, "/zones/new", zone_fields(**fields))

    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message in page
    assert db["zones"].count == 0 and audit_actions(db) == before
    assert 'value="Main"' in page  # what was typed is kept


def test_polygon_needs_a_floor_plan_and_ids_are_unique(client, db):
    no_plan = post_form(client, "/zones/new", zone_fields(polygon="[[0,0],[5,0],[0,5]]"))
    assert no_plan.status_code == 400 and "no floor plan" in no_plan.get_data(as_text=True)

    assert post_form(client, "/zones/new", zone_fields()).status_code == 303
    again = post_form(client, "/zones/new", zone_fields(name="Another"))
    assert again.status_code == 400 and "A zone hall-a already exists" in again.get_data(
        as_text=True)
    assert client.get("/zones/nowhere/edit").status_code == 404


# --- the API ---------------------------------------------------------------------------------


def test_zones_api_creates_updates_and_lists_plans(client, db):
    upload(client, json.dumps(OUTLINE).encode(), "plan.json")

    created = post_json(client, "/api/v1/zones", {"zone": "ward-3e", "name": "Ward 3 East",
                                                  "campus": "Main", "building": "Teaching",
                                                  "floor": "2"})
    duplicate = post_json(client, "/api/v1/zones", {"zone": "ward-3e", "name": "Again"})
    bad = post_json(client, "/api/v1/zones", {"zone": "x", "name": "", "lat": 100})
    updated = client.put("/api/v1/zones/ward-3e", json={"polygon": [[0, 0], [50, 0], [50, 40]]},
                         headers={"X-CSRFToken": client.csrf})
    outside = client.put("/api/v1/zones/ward-3e", json={"polygon": [[0, 0], [5000, 0], [5, 5]]},
                         headers={"X-CSRFToken": client.csrf})
    missing = client.put("/api/v1/zones/nowhere", json={"name": "x"},
                         headers={"X-CSRFToken": client.csrf})
    plans = client.get("/api/v1/floor-plans").get_json()

    assert created.status_code == 201 and created.headers["Location"] == "/api/v1/zones/ward-3e"
    assert created.get_json()["floor_plan_id"] == plans[0]["id"]
    assert duplicate.status_code == 409
    assert bad.status_code == 400 and set(bad.get_json()["errors"]) == {"name", "lat"}
    assert updated.status_code == 200
    assert updated.get_json()["polygon"] == [[0, 0], [50, 0], [50, 40]]
    assert updated.get_json()["name"] == "Ward 3 East"  # left out: kept
    assert outside.status_code == 400 and "polygon" in outside.get_json()["errors"]
    assert missing.status_code == 404
    assert plans == [{"id": plans[0]["id"], "campus": "Main", "building": "Teaching",
                      "floor": "2", "kind": "json", "width": 1000.0, "height": 600.0,
                      "updated_at": plans[0]["updated_at"],
                      "url": f"/zones/plans/{plans[0]['id']}.svg"}]
    assert [a for a, _ in audit_actions(db)] == ["floor_plan.upload", "zone.create",
                                                 "zone.update"]


# --- floor plans: SVG sanitizing ---------------------------------------------------------------


def test_uploaded_svg_keeps_the_drawing_and_loses_everything_active(client, db):
    response = upload(client, EVIL_SVG, "plan.svg")
    assert response.status_code == 303
    plan_id = db.conn.execute("SELECT id FROM floor_plans").fetchone()[0]

    served = client.get(f"/zones/plans/{plan_id}.svg")

    assert served.status_code == 200
    assert served.mimetype == "image/svg+xml"
    assert served.headers["Content-Security-Policy"] == PLAN_CSP
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    body = served.get_data(as_text=True)
    for bad in ("script", "alert", "onload", "onclick", "onmouseover", "foreignObject",
                "iframe", "javascript", "evil.example", "href", "url(", "@import", "<style",
                "<image", "<use", "class="):
        assert bad not in body, bad
    root = ElementTree.fromstring(body)
    assert root.tag == f"{{{SVG}}}svg" and root.get("viewBox") == "0 0 800 400"
    rect = root.find(f"{{{SVG}}}g/{{{SVG}}}rect")
    assert rect.get("fill") == "#eee" and rect.get("stroke") == "black"
    # A style with url() goes whole; elsewhere only presentation properties stay.
    assert rect.get("style") is None and root.find(f"{{{SVG}}}g").get("style") is None
    text = root.find(f"{{{SVG}}}g/{{{SVG}}}text")
    assert text.get("style") == "font-weight:bold" and text.get("font-size") == "12"
    assert "".join(text.itertext()) == "Ward 3 & lift"
    assert "tail text kept" in body
    assert db["floor_plans"].get(plan_id)["width"] == 800.0


@pytest.mark.parametrize("data, status, reason", [
    (b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x "boom">]>'
     b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><text>&x;</text></svg>',
     400, "DOCTYPE or entities"),
    (b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
     b'"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">'
     b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"/>', 400, "DOCTYPE"),
    (b'<!DOCTYPE lolz [<!ENTITY a "aaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
     b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">&b;</svg>', 400, "DOCTYPE"),
    (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><text>&ext;</text></svg>',
     400, "not well-formed"),
    (b'<html><body><script>alert(1)</script></body></html>', 400, "not an SVG drawing"),
    (b'<svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>', 400, "needs a viewBox"),
    (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><rect>', 400,
     "not well-formed"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", 400, "not well-formed"),
    (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">' + b" " * (1024 * 1024)
     + b"</svg>", 413, "larger than 1 MB"),
])
def test_unsafe_or_unusable_plans_are_refused_with_a_reason(refusing, data, status, reason):
    db, client = refusing
    response = upload(client, data, "plan.svg")

    assert response.status_code == status
    assert reason in response.get_data(as_text=True)
    assert db["floor_plans"].count == 0
    assert audit_actions(db) == []


def test_svg_box_moves_to_the_origin_and_pixel_sizes_are_read():
    shifted, width, height = floor_plans.sanitize_svg(
        b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="100 50 400 300">'
        b'<rect x="100" y="50" width="10" height="10"/></svg>')
    sized = floor_plans.sanitize_svg(b'<svg width="640px" height="480"><circle r="3"/></svg>')

    root = ElementTree.fromstring(shifted)
    assert (width, height) == (400.0, 300.0)
    assert root.get("viewBox") == "0 0 400 300"
    assert root.find(f"{{{SVG}}}g").get("transform") == "translate(-100 -50)"
    assert sized[1:] == (640.0, 480.0)
    assert ElementTree.fromstring(sized[0]).find(f"{{{SVG}}}circle") is not None


def test_json_outline_is_drawn_as_svg(client, db):
    assert upload(client, json.dumps(OUTLINE).encode(), "plan.json").status_code == 303
    plan = db.conn.execute("SELECT id, kind, width, height FROM floor_plans").fetchone()

    served = client.get(f"/zones/plans/{plan[0]}.svg")

    assert plan[1:] == ("json", 1000.0, 600.0)
    assert served.headers["Content-Security-Policy"] == PLAN_CSP
    root = ElementTree.fromstring(served.get_data())
    assert root.get("viewBox") == "0 0 1000 600"
    polygons = root.findall(f"{{{SVG}}}polygon")
    assert polygons[0].get("points") == "0,0 1000,0 1000,600 0,600"
    assert polygons[1].get("points") == "50,50 300,50 300,250"
    assert root.find(f"{{{SVG}}}polyline").get("points") == "0,300 1000,300"
    texts = ["".join(t.itertext()) for t in root.findall(f"{{{SVG}}}text")]
    assert texts == ["Lift & stairs", "Ward <3>", "Main entrance"]


@pytest.mark.parametrize("outline, reason", [
    ({"width": 100, "height": 100}, "needs an outline or shapes"),
    ({"width": 0, "height": 100, "outline": [[0, 0], [1, 0], [1, 1]]}, "width and height"),
    ({"width": 100, "height": 100, "outline": [[0, 0], [101, 0], [1, 1]]}, "outline has a point"),
    ({"width": 100, "height": 100, "shapes": [{"type": "circle"}]}, "type must be polygon"),
    ({"width": 100, "height": 100, "shapes": [{"type": "rect", "x": 90, "y": 0, "width": 20,
                                               "height": 5}]}, "within the plan"),
    ([1, 2, 3], "is an object"),
])
def test_bad_outline_is_refused(refusing, outline, reason):
    db, client = refusing
    response = upload(client, json.dumps(outline).encode(), "plan.json")

    assert response.status_code == 400
    assert reason in response.get_data(as_text=True)
    assert db["floor_plans"].count == 0


def test_a_second_upload_replaces_the_floors_plan_in_place(client, db):
    upload(client, json.dumps(OUTLINE).encode(), "plan.json")
    first = db.conn.execute("SELECT id FROM floor_plans").fetchone()[0]

    upload(client, b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 50 40"/>', "p.svg")

    assert db.conn.execute("SELECT id, kind, width FROM floor_plans").fetchall() == [
        (first, "svg", 50.0)]
    missing_floor = upload(client, json.dumps(OUTLINE).encode(), "plan.json", floor="")
    assert missing_floor.status_code == 400 and "The floor is required" in missing_floor.get_data(
        as_text=True)


# --- roles ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["dept_reviewer", "staff"])
def test_only_office_and_admin_manage_zones(hub_app, db, role):
    with db.conn:
        plan = db["floor_plans"].insert({"campus": "Main", "building": "T", "floor": "1",
                                         "kind": "json", "content": json.dumps(OUTLINE),
                                         "width": 1000, "height": 600,
                                         "updated_at": "2025-03-10T00:00:00.000Z"}).last_pk
        db["zones"].insert({"zone": "hall-a", "name": "Hall A"})
    other = signed_in(hub_app, db, role)

    for path in ("/zones/", "/zones/new", "/zones/hall-a/edit", "/zones/plans/upload"):
        assert other.get(path).status_code == 403, path
    assert other.post("/zones/new", data={"csrf_token": other.csrf,
                                          **zone_fields(zone="x")}).status_code == 403
    assert post_json(other, "/api/v1/zones", {"zone": "x", "name": "X"}).status_code == 403
    image = other.get(f"/zones/plans/{plan}.svg").status_code
    listing = other.get("/api/v1/zones").status_code
    assert (image, listing) == ((200, 200) if role == "dept_reviewer" else (403, 403))
    assert db["zones"].count == 1


def test_admin_manages_zones_too(hub_app, db):
    admin = signed_in(hub_app, db, "admin")

    assert admin.get("/zones/").status_code == 200
    assert post_form(admin, "/zones/new", zone_fields(polygon="")).status_code == 303
