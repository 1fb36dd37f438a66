"""The OpenAPI 3.1 document of /api/v1, served at /api/v1/openapi.json.

Written by hand next to the code it describes: this module holds the paths of
``api.py`` and the helpers every fragment uses; each dashboard area module
holds an ``OPENAPI = {"paths", "schemas"}`` fragment for its own routes, and ``document()`` merges them.
``tests/test_openapi.py`` checks that every /api/v1 route of the app is in the
document and that real responses match the schemas.
"""

from flask import Blueprint, current_app, jsonify

from hub.web import api

bp = Blueprint("openapi", __name__, url_prefix=api.PREFIX)

ERROR = {"$ref": "#/components/schemas/Error"}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def json_response(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def errors(*codes: int) -> dict:
    """Error responses (``{"error": ...}``) for the given status codes."""
    reasons = {400: "Bad request (the reason is in error)", 401: "Not signed in",
               403: "The account's role may not do this", 404: "Not found (or not yours)",
               409: "Conflicts with the current state", 422: "Input with errors",
               503: "The hub database is unavailable"}
    return {str(code): json_response(reasons[code], ERROR) for code in codes}


def query(name: str, description: str, schema: dict | None = None,
          required: bool = False) -> dict:
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": schema or {"type": "string"}}


def path_param(name: str, schema: dict | None = None) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema or {"type": "string"}}


NULLABLE_STR = {"type": ["string", "null"]}
NULLABLE_NUM = {"type": ["number", "null"]}
SIGNED_IN = errors(401, 403)

SCHEMAS = {
    "Error": {"type": "object", "required": ["error"],
              "properties": {"error": {"type": "string"}}},
    "Health": {
        "type": "object", "required": ["ok", "site", "db"],
        "properties": {"ok": {"type": "boolean"}, "site": NULLABLE_STR, "db": {"type": "string"},
                       "nodes": {"type": "object",
                                 "properties": {"online": {"type": "integer"},
                                                "offline": {"type": "integer"}}},
                       "quarantine": {"type": "integer"}}},
    "Occupancy": {
        "type": "object", "required": ["zone", "from", "to", "occupancy"],
        "properties": {
            "zone": NULLABLE_STR, "from": {"type": "string"}, "to": {"type": "string"},
            "occupancy": {"type": "array", "items": {
                "type": "object", "required": ["zone", "minute", "devices"],
                "properties": {"zone": {"type": "string"}, "minute": {"type": "string"},
                               "devices": {"type": "integer"}}}}}},
}


def json_request(schema: dict) -> dict:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


PATHS = {
    "/api/v1/health": {"get": {
        "summary": "Liveness and counts (no sign-in needed)", "security": [],
        "responses": {"200": json_response("The hub is up", ref("Health")),
                      **errors(503)}}},
    "/api/v1/occupancy": {"get": {
        "summary": "Devices per zone and minute",
        "parameters": [query("zone", "Zone id"), query("from", "ISO 8601 with offset"),
                       query("to", "ISO 8601 with offset")],
        "responses": {"200": json_response("Occupancy", ref("Occupancy")),
                      **errors(400), **SIGNED_IN}}},
    "/api/v1/openapi.json": {"get": {
        "summary": "This document", "security": [],
        "responses": {"200": json_response("OpenAPI 3.1", {"type": "object"})}}},
}


def document() -> dict:
    paths, schemas = dict(PATHS), dict(SCHEMAS)
    for area in current_app.extensions.get("openapi_fragments", ()):
        for path, item in area.get("paths", {}).items():
            paths.setdefault(path, {}).update(item)
        schemas.update(area.get("schemas", {}))
    for item in paths.values():
        for method in ("post", "put", "patch", "delete"):
            if method in item:  # a session request without its CSRF token
                item[method]["responses"].setdefault(
                    "400", json_response("Bad request, or a session request without the "
                                         "X-CSRFToken header", ERROR))
    return {
        "openapi": "3.1.0",
        "info": {"title": "Rounds hub API", "version": "1",
                 "description": "Attendance, tickets, volunteer hours, hotspots, roster, "
                                "zones, events, nodes and exports of one hospital's hub. "
                                "Sign in (session cookie + X-CSRFToken header on writes) or "
                                "send Authorization: Bearer <token> (rounds-hub user token)."},
        "servers": [{"url": "/"}],
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "session"},
                "bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"session": []}, {"bearer": []}],
        "paths": dict(sorted(paths.items())),
    }


@bp.get("/openapi.json")
def openapi_json():
    return jsonify(document())


def init_app(app) -> None:
    app.register_blueprint(bp)
