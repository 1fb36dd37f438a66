"""Dashboard area "fleet": the facilities' view of the edge nodes (the
``/nodes/`` page and the nodes API) and the staff Wi-Fi every node serves
(``/api/v1/site/wifi``). Office and admin; setting the Wi-Fi is admin only.

A node's health is computed by ``hub.fleet.nodes`` from the retained up/status
the ingest stores; moving a node to another zone and changing the Wi-Fi are
pushed to the nodes as retained config within seconds, and audited.
"""

from flask import Blueprint, Flask, abort, jsonify, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from hub.db import write_transaction
from hub.fleet import nodes, site
from hub.web.auth import audited, requires
from hub.web.context import get_db

bp = Blueprint("fleet", __name__)
api = Blueprint("fleet_api", __name__, url_prefix="/api/v1")

HEALTH_LABELS = {"online": _l("Online"), "offline": _l("Offline"), "silent": _l("Silent"),
                 "revoked": _l("Revoked"), "never_seen": _l("Never seen")}


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(api)


@bp.context_processor
def _labels() -> dict:
    return {"health_labels": HEALTH_LABELS}


# -- the nodes page --------------------------------------------------------------

@bp.get("/nodes/", endpoint="nodes")
@requires("office")
def nodes_page():
    fleet = nodes.fleet(get_db())
    for node in fleet:
        node["ago"] = _ago(node["last_seen_age"])
        node["disk"] = human_bytes(node["disk_free"])
    return render_template("fleet_nodes.html", nodes=fleet, summary=nodes.summary(fleet),
                           silent_minutes=int(nodes.SILENT_AFTER.total_seconds() // 60))


def _ago(seconds: int | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return _("just now")
    if seconds < 3600:
        return _("%(n)d min ago", n=seconds // 60)
    if seconds < 2 * 86400:
        return _("%(n)d h ago", n=seconds // 3600)
    return _("%(n)d days ago", n=seconds // 86400)


def human_bytes(size: int | None) -> str:
    """1536 -> "1.5 KB" (powers of 1024, as df -h)."""
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return ""  # not reached


# -- the nodes API ---------------------------------------------------------------

@api.get("/nodes")
@requires("office")
def api_nodes():
    """Every node with its ``health`` (``hub.fleet.nodes``)."""
    return jsonify(nodes.fleet(get_db()))


@api.get("/nodes/<node>")
@requires("office")
def api_node(node):
    found = nodes.get_node(get_db(), node)
    if found is None:
        abort(404, description=f"unknown node: {node}")
    return jsonify(found)


@api.put("/nodes/<node>")
@requires("office")
def api_move_node(node):
    """Body ``{"zone"}``: move the node to another zone (pushed to it as
    retained config within seconds)."""
    body = request.get_json(silent=True)
    zone = body.get("zone") if isinstance(body, dict) else None
    if not isinstance(zone, str) or not zone:
        abort(400, description="expected {\"zone\": \"<zone id>\"}")
    db = get_db()
    try:
        with write_transaction(db):
            before = nodes.get_node(db, node)
            nodes.move(db, node, zone)
            audited("node.move", f"node:{node}", zone=zone,
                    previous=before["zone"] if before else None)
    except LookupError as exc:
        abort(404, description=str(exc))
    except nodes.NodeError as exc:
        abort(409, description=str(exc))
    return jsonify(nodes.get_node(db, node))


# -- the staff Wi-Fi ---------------------------------------------------------------

@api.get("/site/wifi")
@requires("office")
def api_wifi():
    """The staff Wi-Fi every node serves: ``{"ssid", "psk_set"}`` (the
    passphrase itself is never shown)."""
    current = site.wifi(get_db()) or {}
    return jsonify(ssid=current.get("ssid"), psk_set=bool(current.get("psk")))


@api.put("/site/wifi")
@requires()
def api_set_wifi():
    """Body ``{"ssid", "psk"}`` (admin): pushed to every node's retained config."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, description="expected a JSON object body")
    db = get_db()
    try:
        with write_transaction(db):
            site.set_wifi(db, body.get("ssid"), body.get("psk"))
            audited("site.wifi", "site", ssid=body.get("ssid"))
    except site.SettingsError as exc:
        abort(400, description=str(exc))
    return jsonify(ssid=body.get("ssid"), psk_set=bool(body.get("psk")))


# -- OpenAPI ----------------------------------------------------------------------------

_ERROR = {"description": "error", "content": {"application/json": {"schema": {
    "type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}}}}
_NODE = {"$ref": "#/components/schemas/Node"}


def _ok(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


OPENAPI = {
    "paths": {
        "/api/v1/nodes": {"get": {
            "summary": "Every edge node with its health (office, admin)",
            "operationId": "listNodes", "tags": ["nodes"],
            "responses": {"200": _ok("the fleet, by node name",
                                     {"type": "array", "items": _NODE}),
                          "401": _ERROR, "403": _ERROR}}},
        "/api/v1/nodes/{node}": {"get": {
            "summary": "One edge node with its health (office, admin)",
            "operationId": "getNode", "tags": ["nodes"],
            "parameters": [{"name": "node", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "responses": {"200": _ok("the node", _NODE), "401": _ERROR, "403": _ERROR,
                          "404": _ERROR}},
            "put": {
            "summary": "Move the node to another zone (office, admin)",
            "operationId": "moveNode", "tags": ["nodes"],
            "parameters": [{"name": "node", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["zone"],
                "properties": {"zone": {"type": "string"}}}}}},
            "responses": {"200": _ok("the node", _NODE), "400": _ERROR, "401": _ERROR,
                          "403": _ERROR, "404": _ERROR, "409": _ERROR}}},
        "/api/v1/site/wifi": {
            "get": {"summary": "The staff Wi-Fi's SSID (office, admin)",
                    "operationId": "getWifi", "tags": ["nodes"],
                    "responses": {"200": _ok("the Wi-Fi", {"$ref": "#/components/schemas/Wifi"}),
                                  "401": _ERROR, "403": _ERROR}},
            "put": {"summary": "Set the staff Wi-Fi on every node (admin)",
                    "operationId": "setWifi", "tags": ["nodes"],
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"type": "object", "required": ["ssid"],
                                   "properties": {"ssid": {"type": "string"},
                                                  "psk": {"type": ["string", "null"]}}}}}},
                    "responses": {"200": _ok("the Wi-Fi", {"$ref": "#/components/schemas/Wifi"}),
                                  "400": _ERROR, "401": _ERROR, "403": _ERROR}}},
    },
    "schemas": {
        "Wifi": {"type": "object", "required": ["ssid", "psk_set"],
                 "properties": {"ssid": {"type": ["string", "null"]},
                                "psk_set": {"type": "boolean"}}},
        "Node": {
            "type": "object",
            "description": "A node as its retained up/status last described it; health is "
                           "computed: revoked, never_seen, offline (its Last Will), silent "
                           "(online but unheard for over 10 minutes) or online.",
            "required": ["node", "zone", "zone_name", "state", "version", "backlog",
                         "disk_free", "clock_synced", "status_ts", "last_seen",
                         "last_seen_age", "revoked", "health", "unsynced_records"],
            "additionalProperties": False,
            "properties": {
                "node": {"type": "string"},
                "zone": {"type": ["string", "null"]},
                "zone_name": {"type": ["string", "null"]},
                "state": {"enum": ["online", "offline", None]},
                "version": {"type": ["string", "null"]},
                "backlog": {"type": ["integer", "null"],
                            "description": "records and photos waiting on the node"},
                "disk_free": {"type": ["integer", "null"], "description": "bytes"},
                "clock_synced": {"type": ["boolean", "null"]},
                "status_ts": {"type": ["string", "null"],
                              "description": "the node's own time of its last status"},
                "last_seen": {"type": ["string", "null"],
                              "description": "when the hub last received a status (UTC)"},
                "last_seen_age": {"type": ["integer", "null"],
                                  "description": "seconds since last_seen"},
                "revoked": {"type": "boolean"},
                "health": {"enum": list(nodes.HEALTH)},
                "unsynced_records": {
                    "type": "integer", "minimum": 0,
                    "description": "records the node made before its clock was set (NTP), "
                                   "received in the last 7 days: corrected where the hub "
                                   "could, flagged either way (clock_flags)"},
            },
        },
    },
}
