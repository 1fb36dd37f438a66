"""The fleet view of edge nodes: health from the retained up/status the ingest
stores (birth, periodic status, Last Will), the nodes page and its API."""

from datetime import datetime, timedelta, timezone

import pytest

from hub.fleet import nodes
from hub.ingest.store import update_node_status
from protocol.clock import iso, parse_iso
from protocol.records import validate_status

from .hubweb import signed_in


@pytest.fixture
def db(hub_db):
    return hub_db


def status(db, node, state="online", **fields):
    """Store an up/status document the way ingest does (validated first)."""
    document = {"state": state, "version": "1.4.2", "ts": iso(datetime.now(timezone.utc)),
                **fields}
    update_node_status(db, node, validate_status(document))


def register(db, node, zone=None):
    """A node as provisioning registers it: a row, no status yet."""
    db["nodes"].insert({"node": node, "zone": zone})


def heard(db, node, minutes_ago: float) -> None:
    """Move the hub's last word from ``node`` into the past (time passing)."""
    db.conn.execute("UPDATE nodes SET last_seen = ? WHERE node = ?",
                    (iso(datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)), node))


def build_fleet(db):
    db["zones"].insert_all([{"zone": "ward-3", "name": "Ward 3 (cardiology)"},
                            {"zone": "hall-a", "name": "Lecture hall A"}])
    register(db, "ward-3-1", "ward-3")
    status(db, "ward-3-1", backlog=3, disk_free=5 * 1024 ** 3, clock_synced=True)
    register(db, "ward-3-2", "ward-3")
    status(db, "ward-3-2", backlog=0, disk_free=2 * 1024 ** 3, clock_synced=True)
    heard(db, "ward-3-2", 25)  # said online, then nothing for 25 minutes
    register(db, "hall-a-1", "hall-a")
    status(db, "hall-a-1", backlog=12, disk_free=900 * 1024 ** 2, clock_synced=False)
    status(db, "hall-a-1", "offline")  # the broker published its Last Will
    register(db, "hall-a-2", "hall-a")
    status(db, "hall-a-2")
    db.conn.execute("UPDATE nodes SET revoked = 1 WHERE node = 'hall-a-2'")
    register(db, "spare-1")


# -- hub.fleet.nodes ---------------------------------------------------------------------

def test_health_of_each_kind_of_node(db):
    build_fleet(db)
    fleet = {n["node"]: n for n in nodes.fleet(db)}
    assert {name: n["health"] for name, n in fleet.items()} == {
        "ward-3-1": "online", "ward-3-2": "silent", "hall-a-1": "offline",
        "hall-a-2": "revoked", "spare-1": "never_seen"}
    assert nodes.summary(list(fleet.values())) == {
        "online": 1, "offline": 1, "silent": 1, "revoked": 1, "never_seen": 1}


def test_the_last_will_keeps_what_the_last_birth_said(db):
    build_fleet(db)
    node = nodes.get_node(db, "hall-a-1")
    assert (node["state"], node["backlog"], node["disk_free"], node["clock_synced"],
            node["version"], node["zone_name"]) == (
        "offline", 12, 900 * 1024 ** 2, False, "1.4.2", "Lecture hall A")


def test_silent_exactly_after_ten_minutes(db):
    status(db, "n1")
    seen = parse_iso(nodes.get_node(db, "n1")["last_seen"])
    at_limit = nodes.get_node(db, "n1", now=seen + nodes.SILENT_AFTER)
    past = nodes.get_node(db, "n1", now=seen + nodes.SILENT_AFTER + timedelta(seconds=1))
    assert (at_limit["health"], past["health"]) == ("online", "silent")
    assert past["last_seen_age"] == 601
    status(db, "n1")  # the next periodic status brings it back
    assert nodes.get_node(db, "n1")["health"] == "online"


def test_unknown_node_and_unreadable_last_seen(db):
    assert nodes.get_node(db, "nope") is None
    db["nodes"].insert({"node": "odd", "state": "online", "last_seen": "yesterday"})
    assert nodes.get_node(db, "odd")["health"] == "never_seen"


# -- page and API ----------------------------------------------------------------------

@pytest.fixture
def office(hub_app, db):
    return signed_in(hub_app, db, "office", lang="en")


def test_nodes_page_shows_health_zone_backlog_disk_and_clock(office, db):
    build_fleet(db)
    page = office.get("/nodes/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    row = _row(html, "ward-3-1")
    assert 'data-health="online"' in row and "Ward 3 (cardiology)" in row
    assert "5.0 GB" in row and ">3<" in row and "1.4.2" in row and "synchronised" in row
    assert "just now" in row
    assert 'data-health="silent"' in _row(html, "ward-3-2") and "25 min ago" in _row(
        html, "ward-3-2")
    offline = _row(html, "hall-a-1")
    assert 'data-health="offline"' in offline and "900.0 MB" in offline
    assert "not synchronised" in offline
    assert 'data-health="revoked"' in _row(html, "hall-a-2")
    assert 'data-health="never_seen"' in _row(html, "spare-1")
    assert '<strong class="count" data-health="online">1</strong>' in html


def _row(html: str, node: str) -> str:
    start = html.index(f'<tr id="node-{node}"')
    return html[start:html.index("</tr>", start)]


def test_nodes_api_lists_and_gets_nodes(office, db):
    build_fleet(db)
    listed = office.get("/api/v1/nodes")
    assert listed.status_code == 200
    by_name = {n["node"]: n for n in listed.get_json()}
    assert [n["node"] for n in listed.get_json()] == sorted(by_name)
    assert {name: n["health"] for name, n in by_name.items()} == {
        "ward-3-1": "online", "ward-3-2": "silent", "hall-a-1": "offline",
        "hall-a-2": "revoked", "spare-1": "never_seen"}
    one = office.get("/api/v1/nodes/ward-3-2").get_json()
    assert (one["zone"], one["state"], one["revoked"], one["clock_synced"]) == (
        "ward-3", "online", False, True)
    assert 25 * 60 <= one["last_seen_age"] < 26 * 60
    missing = office.get("/api/v1/nodes/nope")
    assert missing.status_code == 404 and missing.get_json() == {"error": "unknown node: nope"}


def test_nodes_api_matches_its_openapi_schema(office, db):
    jsonschema = pytest.importorskip("jsonschema")
    from hub.web.fleet import OPENAPI

    build_fleet(db)
    schema = {**OPENAPI["schemas"]["Node"]}
    for node in office.get("/api/v1/nodes").get_json():
        jsonschema.validate(node, schema)
    assert set(OPENAPI["paths"]) == {"/api/v1/nodes", "/api/v1/nodes/{node}",
                                     "/api/v1/site/wifi"}


def test_nodes_are_for_office_and_admin_only(hub_app, db):
    reviewer = signed_in(hub_app, db, "dept_reviewer")
    assert reviewer.get("/nodes/").status_code == 403
    assert reviewer.get("/api/v1/nodes").status_code == 403
    assert hub_app.test_client().get("/api/v1/nodes").status_code == 401
    admin = signed_in(hub_app, db, "admin")
    assert admin.get("/api/v1/nodes").status_code == 200
