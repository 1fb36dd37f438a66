"""Config push: moving a node to another zone, or changing the site's staff
Wi-Fi, at the hub reaches the node as retained config over a real broker."""

from edge.db import open_db as open_node_db
from edge.state import CONFIG, NodeState
from hub.db import open_db as open_hub_db

from .conftest import running_ingest, running_sync, wait_for
from .hubweb import make_app, post_json, signed_in


def node_config(node_db_path) -> dict:
    db = open_node_db(node_db_path)
    try:
        return NodeState(db).get(CONFIG) or {}
    finally:
        db.close()


def test_zone_move_and_wifi_change_reach_the_node(broker, hub_db_path, node_db_path):
    hub = open_hub_db(hub_db_path)
    with hub.conn:
        hub["zones"].insert_all([{"zone": "ward-3e", "name": "Ward 3 East"},
                                 {"zone": "ward-5w", "name": "Ward 5 West"}])
        hub["nodes"].insert({"node": "n1", "zone": "ward-3e"})
    app = make_app(hub_db_path)
    office, admin = signed_in(app, hub, "office"), signed_in(app, hub, "admin")
    with running_ingest(broker, hub_db_path, downlink_interval=0.2), \
            running_sync(broker, node_db_path):
        wait_for(lambda: node_config(node_db_path).get("zone") == "ward-3e",
                 message="the node's first config")
        moved = office.put("/api/v1/nodes/n1", json={"zone": "ward-5w"},
                           headers={"X-CSRFToken": office.csrf})
        assert moved.status_code == 200 and moved.get_json()["zone"] == "ward-5w"
        config = wait_for(lambda: (c := node_config(node_db_path)).get("zone") == "ward-5w"
                          and c, message="the moved zone on the node")
        assert config["zone_name"] == "Ward 5 West"

        # Only an admin sets the Wi-Fi; the passphrase is never shown back.
        assert office.put("/api/v1/site/wifi", json={"ssid": "Rounds-Staff", "psk": "x" * 12},
                          headers={"X-CSRFToken": office.csrf}).status_code == 403
        changed = admin.put("/api/v1/site/wifi", json={"ssid": "Rounds-Staff", "psk": "x" * 12},
                            headers={"X-CSRFToken": admin.csrf})
        assert changed.get_json() == {"ssid": "Rounds-Staff", "psk_set": True}
        config = wait_for(lambda: (c := node_config(node_db_path)).get("wifi") and c,
                          message="the Wi-Fi on the node")
        assert config["wifi"] == {"ssid": "Rounds-Staff", "psk": "x" * 12}
    actions = [r[0] for r in hub.conn.execute("SELECT action FROM audit_log ORDER BY id")
               if r[0] not in ("login",)]
    details = " ".join(r[0] for r in hub.conn.execute("SELECT detail FROM audit_log"))
    hub.close()
    assert actions == ["node.move", "site.wifi"]
    assert "x" * 12 not in details  # the passphrase is not in the audit log


def test_bad_moves_and_wifi_are_refused(hub_db_path):
    hub = open_hub_db(hub_db_path)
    with hub.conn:
        hub["zones"].insert({"zone": "ward-3e", "name": "Ward 3 East"})
        hub["nodes"].insert_all([{"node": "n1", "zone": "ward-3e", "revoked": 0},
                                 {"node": "n2", "zone": "ward-3e", "revoked": 1}])
    app = make_app(hub_db_path)
    admin = signed_in(app, hub, "admin")
    put = lambda path, body: admin.put(path, json=body, headers={"X-CSRFToken": admin.csrf})
    assert put("/api/v1/nodes/n1", {"zone": "nowhere"}).status_code == 409
    assert put("/api/v1/nodes/n2", {"zone": "ward-3e"}).status_code == 409
    assert put("/api/v1/nodes/n9", {"zone": "ward-3e"}).status_code == 404
    assert put("/api/v1/nodes/n1", {}).status_code == 400
    assert put("/api/v1/site/wifi", {"ssid": "x" * 33}).status_code == 400
    assert put("/api/v1/site/wifi", {"ssid": "ok", "psk": "short"}).status_code == 400
    assert admin.get("/api/v1/site/wifi").get_json() == {"ssid": None, "psk_set": False}
    hub.close()
