"""The hotspots page through the real web app: the zone x week heatmap, the
floor plan shaded by recent reports and the recurring list, all as inline
SVG made on the server (hub.svg); tickets are real ones, reported relative
to the current time as the page counts from it."""

import json
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

import pytest

from hub.db import open_db
from hub.web import svg
from protocol.clock import iso

from .hubweb import make_app, signed_in
from .test_tickets import T0, file, report

EVIL = "<script>alert(1)</script>"


def minutes_ago(days: float) -> float:
    """test_tickets.report counts minutes from its T0; this is `days` before now."""
    return ((datetime.now(timezone.utc) - timedelta(days=days)) - T0).total_seconds() / 60


def tickets_at(db, zone, category, days_ago):
    for n, days in enumerate(days_ago):
        file(db, report(minutes_ago(days), zone=zone, category=category,
                        staff_id=f"S{zone}{n}"), minute=minutes_ago(days) + 1)


def add_zone(db, zone, name, polygon=None, floor="3"):
    db["zones"].insert({"zone": zone, "name": name, "campus": "Main", "building": "A",
                        "floor": floor, "polygon": json.dumps(polygon) if polygon else None})


@pytest.fixture
def db(hub_db):
    add_zone(db=hub_db, zone="ward-3", name="Ward 3",
             polygon=[[0, 0], [50, 0], [50, 50], [0, 50]])
    add_zone(db=hub_db, zone="ward-4", name="Ward 4",
             polygon=[[50, 0], [100, 0], [100, 50], [50, 50]])
    add_zone(db=hub_db, zone="evil", name=EVIL, floor="9")
    hub_db["floor_plans"].insert({"campus": "Main", "building": "A", "floor": "3",
                                  "kind": "json", "content": "{}", "width": 100,
                                  "height": 50, "updated_at": iso(datetime.now(timezone.utc))})
    tickets_at(hub_db, "ward-3", "hygiene", [0.2, 1.5, 2.5, 4])  # a spike this week
    tickets_at(hub_db, "ward-4", "signage", [50])                  # 7 weeks ago
    tickets_at(hub_db, "evil", "safety", [20])
    return hub_db


@pytest.fixture
def client(hub_app, db):
    """The office reading the page in English (the default is Chinese)."""
    return signed_in(hub_app, db, "office", lang="en")


def section(html: str, ident: str) -> str:
    match = re.search(rf'<section class="hotspots-part" id="{ident}">(.*?)</section>', html, re.S)
    assert match, ident
    return match.group(1)


def svg_of(html: str, css_class: str) -> ET.Element:
    match = re.search(rf'<svg [^>]*class="{css_class}".*?</svg>', html, re.S)
    assert match, css_class
    return ET.fromstring(match.group(0))


def tag(element: ET.Element) -> str:
    return element.tag.rsplit("}", 1)[-1]


def luminance(hex_colour: str) -> float:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_heatmap_has_a_cell_per_zone_and_week_and_escapes_names(client):
    response = client.get("/hotspots/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    heatmap = svg_of(section(html, "heatmap"), "heatmap")
    cells = [e for e in heatmap.iter() if tag(e) == "rect" and e.get("class") == "cell"]
    assert len(cells) == 3 * 12  # three zones with tickets x the last 12 weeks
    assert sum(int(c.get("data-count")) for c in cells) == 6
    labels = [e.text for e in heatmap.iter() if tag(e) == "text" and e.get("class") == "zone"]
    assert labels[0] == "Ward 3"  # the busiest first
    assert EVIL in labels  # as text...
    assert "<script>" not in html and "&lt;script&gt;" in html  # ...never as markup


def test_a_category_narrows_the_page_and_an_unknown_one_is_refused(client):
    html = client.get("/hotspots/?category=signage").get_data(as_text=True)
    heatmap = svg_of(section(html, "heatmap"), "heatmap")
    assert len([e for e in heatmap.iter() if e.get("class") == "cell"]) == 12
    assert "No zone is a recurring hotspot" in section(html, "recurring")
    response = client.get("/hotspots/?category=parking-lot")
    assert response.status_code == 400 and "unknown category" in response.get_data(as_text=True)


def test_floor_plan_shades_the_zone_with_reports_darker(client):
    html = client.get("/hotspots/").get_data(as_text=True)
    plan = svg_of(section(html, "floor-plan"), "floor-plan")
    assert plan.get("viewBox") == "0 0 100 50"
    polygons = {e.get("data-zone"): e for e in plan.iter() if tag(e) == "polygon"}
    assert set(polygons) == {"ward-3", "ward-4"}  # the floor's zones with an outline
    assert polygons["ward-3"].get("points") == "0,0 50,0 50,50 0,50"
    assert polygons["ward-3"].get("data-count") == "4"
    assert polygons["ward-4"].get("data-count") == "0"  # its ticket is older than 30 days
    assert luminance(polygons["ward-3"].get("fill")) < luminance(polygons["ward-4"].get("fill"))
    images = [e for e in plan.iter() if tag(e) == "image"]
    if "zones.plan_image" in client.application.view_functions:
        assert [i.get("href") for i in images] == ["/zones/plans/1.svg"]
    else:
        assert images == []


def test_choosing_a_floor_plan(client, db):
    db["floor_plans"].insert({"campus": "Main", "building": "A", "floor": "9", "kind": "json",
                              "content": "{}", "width": 10, "height": 10,
                              "updated_at": iso(datetime.now(timezone.utc))})
    html = client.get("/hotspots/?plan=2").get_data(as_text=True)
    floor = section(html, "floor-plan")
    assert "No zone on this floor has an outline yet." in floor
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in floor  # listed without an outline
    assert client.get("/hotspots/?plan=abc").status_code == 400
    assert client.get("/hotspots/?plan=99").status_code == 404


def test_recurring_list_shows_the_spiking_zone_with_its_trend(client):
    recurring = section(client.get("/hotspots/").get_data(as_text=True), "recurring")
    body = recurring.split("<tbody>")[1]
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
    assert len(rows) == 1
    row = rows[0]
    assert "Ward 3" in row and "<td>Hygiene</td>" in row and "<strong>4</strong>" in row
    spark = svg_of(row, "sparkline")
    [line] = [e for e in spark.iter() if tag(e) == "polyline"]
    assert len(line.get("points").split()) == 12
    title = [e.text for e in spark.iter() if tag(e) == "title"][0]
    values = [int(v) for v in re.split("[:：]", title)[1].split(",")]
    assert len(values) == 12 and sum(values) == 4  # this week's spike (maybe across two weeks)
    assert sum(values[-2:]) == 4


def test_who_may_see_hotspots(hub_app, db):
    assert signed_in(hub_app, db, "dept_reviewer").get("/hotspots/").status_code == 200
    assert signed_in(hub_app, db, "staff").get("/hotspots/").status_code == 403
    assert hub_app.test_client().get("/hotspots/").status_code == 302


def test_an_empty_site_has_a_page_too(tmp_path):
    path = tmp_path / "empty.db"
    database = open_db(path)
    try:
        html = signed_in(make_app(path), database, "office").get("/hotspots/?lang=en").get_data(
            as_text=True)
    finally:
        database.close()
    assert "No reports in the last 12 weeks." in html and "No floor plans yet." in html


# -- hub.svg directly ------------------------------------------------------------

def test_heatmap_svg_is_well_formed_with_counts_and_titles():
    drawing = svg.heatmap([("a", "A & B"), ("b", EVIL)], [("2026-W01", "W01"),
                                                          ("2026-W02", "W02")],
                          {("a", "2026-W02"): 3}, "Reports <per> week")
    root = ET.fromstring(drawing)
    cells = [e for e in root if e.get("class") == "cell"]
    assert len(cells) == 4
    assert [c.get("data-count") for c in cells] == ["0", "3", "0", "0"]
    assert cells[1].find("{http://www.w3.org/2000/svg}title").text == "A & B · 2026-W02: 3"
    assert [e.text for e in root if e.get("class") == "count"] == ["3"]
    assert "<script>" not in drawing and "&lt;per&gt;" in drawing


def test_shades_darken_with_the_count():
    shades = [luminance(svg.shade(n, 10)) for n in range(0, 11)]
    assert shades == sorted(shades, reverse=True) and len(set(shades)) == 11
