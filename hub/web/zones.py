"""Dashboard area "zones": the zones of the hospital grouped campus, building,
floor; creating and editing a zone (with its polygon drawn on the floor
plan); uploading floor plans and serving them; the zones API.

Office and admin edit; a department reviewer may also read the zones API and
see the plans (the hotspot views draw on them). A zone (a ward) may name the
department it belongs to, for the satisfaction index per department
(hub/surveys). Floor plans are served with a Content-Security-Policy that
forbids scripts and every external load, on top of the sanitizing done at
upload (``hub.schedule.floor_plans.sanitize_svg``).
"""

import json

from flask import (Blueprint, Flask, Response, abort, current_app, flash, jsonify, redirect,
                   render_template, request, url_for)
from flask_babel import gettext as _

from hub.db import write_transaction
from hub.schedule import floor_plans, ical, zones
from hub.web import labels
from hub.web.auth import audited, requires
from hub.web.context import get_db
from hub.web.params import json_object

bp = Blueprint("zones", __name__)
api = Blueprint("zones_api", __name__, url_prefix="/api/v1")
PLAN_CSP = "default-src 'none'; style-src 'unsafe-inline'"
_FORM_FIELDS = ("zone", "name", "campus", "building", "floor", "lat", "lon", "polygon",
                "department")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(api)


def translated(problems) -> dict[str, str]:
    """field -> the first problem's message in the reader's language."""
    found: dict[str, str] = {}
    for problem in problems:
        found.setdefault(problem.field, _(problem.message, **problem.params))
    return found


def invalid_json(exc: zones.Invalid, status: int = 400):
    return jsonify(error=str(exc), errors=exc.by_field()), status


def feed_url(kind: str, name: str) -> str:
    """The subscribe URL of a feed, token included (see ``hub.schedule.ical``)."""
    endpoint = "events.zone_feed" if kind == "zone" else "events.department_feed"
    key = "zone" if kind == "zone" else "dept"
    return url_for(endpoint, _external=True, token=ical.feed_token(
        current_app.config["SECRET_KEY"], kind, name), **{key: name})


# -- pages ------------------------------------------------------------------------------


@bp.get("/zones/", endpoint="index")
@requires("office")
def index():
    """Zones grouped by campus, building and floor, each floor with its plan."""
    db = get_db()
    floors: dict[tuple, dict] = {}
    for plan in zones.list_plans(db):
        key = (plan["campus"], plan["building"], plan["floor"])
        floors[key] = {"place": key, "plan": plan, "zones": []}
    for zone in zones.list_zones(db):
        key = (zone["campus"], zone["building"], zone["floor"])
        floors.setdefault(key, {"place": key, "plan": None, "zones": []})["zones"].append(zone)
        zone["feed"] = feed_url("zone", zone["zone"])
    ordered = sorted(floors.values(), key=lambda f: tuple(p or "" for p in f["place"]))
    campuses: dict = {}
    for floor in ordered:
        campus, building, _floor = floor["place"]
        campuses.setdefault(campus, {}).setdefault(building, []).append(floor)
    return render_template("zones_index.html", campuses=campuses)


@bp.route("/zones/new", methods=["GET", "POST"], endpoint="create")
@requires("office")
def create():
    db = get_db()
    if request.method == "GET":
        typed = {name: request.args.get(name, "") for name in ("campus", "building", "floor")}
        return _render_form(typed, new=True)
    typed = _typed()
    try:
        with write_transaction(db):
            row = zones.check_zone(db, typed)
            zones.create_zone(db, row)
            audited("zone.create", f"zone:{row['zone']}", **_detail(row))
    except zones.Invalid as exc:
        return _render_form(typed, new=True, errors=translated(exc.problems)), 400
    flash(_("Zone %(name)s created.", name=row["name"]), "info")
    return redirect(url_for("zones.index"), code=303)


@bp.route("/zones/<zone>/edit", methods=["GET", "POST"], endpoint="edit")
@requires("office")
def edit(zone):
    db = get_db()
    stored = zones.get_zone(db, zone)
    if stored is None:
        abort(404, description=f"unknown zone: {zone}")
    if request.method == "GET":
        typed = {k: ("" if v is None else v) for k, v in stored.items()}
        typed["polygon"] = json.dumps([[int(v) if v == int(v) else v for v in point]
                                       for point in stored["polygon"]]) \
            if stored["polygon"] else ""
        return _render_form(typed, new=False)
    typed = {**_typed(), "zone": zone}
    try:
        with write_transaction(db):
            row = zones.check_zone(db, typed, zone_id=zone)
            zones.update_zone(db, row)
            audited("zone.update", f"zone:{zone}", **_detail(row))
    except zones.Invalid as exc:
        return _render_form(typed, new=False, errors=translated(exc.problems)), 400
    flash(_("Zone %(name)s saved.", name=row["name"]), "info")
    return redirect(url_for("zones.index"), code=303)


def _typed() -> dict:
    return {name: request.form.get(name, "").strip() for name in _FORM_FIELDS}


def _detail(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in ("zone", "polygon")} | {
        "polygon_points": len(json.loads(row["polygon"])) if row["polygon"] else 0}


def _render_form(typed: dict, new: bool, errors: dict | None = None):
    db = get_db()
    plan = zones.plan_for(db, typed.get("campus"), typed.get("building"), typed.get("floor"))
    others = []
    if plan is not None:
        others = [z for z in zones.list_zones(db)
                  if z["polygon"] and z["zone"] != typed.get("zone")
                  and (z["campus"], z["building"], z["floor"]) == (
                      plan["campus"], plan["building"], plan["floor"])]
    return render_template("zones_form.html", zone=typed, new=new, errors=errors or {},
                           plan=plan, others=others, points=zones.POLYGON_POINTS,
                           departments=labels.department_names(db),
                           shape_points=_svg_points(typed.get("polygon")))


def _svg_points(text: str | None) -> str:
    """The typed polygon as an SVG points list, "" unless it is well-formed
    (the editor still shows the plan when the text has a mistake)."""
    try:
        polygon = json.loads(text or "[]")
    except ValueError:
        return ""
    if not isinstance(polygon, list) or not all(
            isinstance(p, list) and len(p) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p)
            for p in polygon):
        return ""
    return " ".join(f"{x},{y}" for x, y in polygon)


@bp.route("/zones/plans/upload", methods=["GET", "POST"], endpoint="upload_plan")
@requires("office")
def upload_plan():
    """A floor's plan: an SVG drawing or a JSON outline (``hub.schedule.floor_plans``),
    replacing that floor's earlier plan."""
    source = request.form if request.method == "POST" else request.args
    typed = {name: source.get(name, "").strip() for name in ("campus", "building", "floor")}
    if request.method == "GET":
        return render_template("zones_plan.html", typed=typed, errors={})
    upload = request.files.get("plan")
    if upload is None or not upload.filename:
        return render_template("zones_plan.html", typed=typed,
                               errors={"plan": _("Choose a file to upload.")}), 400
    data = upload.stream.read(floor_plans.MAX_PLAN_BYTES + 1)
    db = get_db()
    try:
        with write_transaction(db):
            plan_id = zones.save_plan(db, typed["campus"], typed["building"], typed["floor"],
                                      upload.filename, data)
            plan = zones.get_plan(db, plan_id)
            audited("floor_plan.upload", f"floor_plan:{plan_id}", kind=plan["kind"],
                    campus=plan["campus"], building=plan["building"], floor=plan["floor"],
                    width=plan["width"], height=plan["height"], size=len(data))
    except zones.Invalid as exc:
        return render_template("zones_plan.html", typed=typed,
                               errors=translated(exc.problems)), 400
    except floor_plans.Refused as exc:
        return render_template("zones_plan.html", typed=typed,
                               errors={"plan": _(exc.message, **exc.params)}), exc.status
    flash(_("Floor plan saved."), "info")
    return redirect(url_for("zones.index"), code=303)


@bp.get("/zones/plans/<int:plan_id>.svg", endpoint="plan_image")
@requires("office", "dept_reviewer")
def plan_image(plan_id):
    plan = zones.get_plan(get_db(), plan_id, content=True)
    if plan is None:
        abort(404, description=f"unknown floor plan: {plan_id}")
    try:
        svg = floor_plans.plan_svg(plan)
    except (floor_plans.Refused, ValueError, KeyError):
        abort(404, description=f"floor plan {plan_id} cannot be drawn")
    response = Response(svg, mimetype="image/svg+xml")
    response.headers["Content-Security-Policy"] = PLAN_CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-cache"
    return response


# -- API --------------------------------------------------------------------------------


def _zone_json(zone: dict, plans: dict) -> dict:
    """A zone for the API; ``department`` only when the ward has one."""
    place = (zone["campus"], zone["building"], zone["floor"])
    shown = {k: v for k, v in zone.items() if k != "department" or v is not None}
    return {**shown, "floor_plan_id": plans.get(place)}


def _plan_ids(db) -> dict:
    return {(p["campus"], p["building"], p["floor"]): p["id"] for p in zones.list_plans(db)}


@api.get("/zones")
@requires("office", "dept_reviewer")
def list_zones():
    db = get_db()
    plans = _plan_ids(db)
    return jsonify([_zone_json(z, plans) for z in zones.list_zones(db)])


@api.post("/zones")
@requires("office")
def create_zone():
    body = json_object()
    db = get_db()
    if isinstance(body.get("zone"), str) and zones.get_zone(db, body["zone"].strip()):
        return jsonify(error=f"a zone {body['zone'].strip()} already exists"), 409
    try:
        with write_transaction(db):
            row = zones.check_zone(db, body)
            zones.create_zone(db, row)
            audited("zone.create", f"zone:{row['zone']}", **_detail(row))
    except zones.Invalid as exc:
        return invalid_json(exc)
    response = jsonify(_zone_json(zones.get_zone(db, row["zone"]), _plan_ids(db)))
    response.status_code = 201
    response.headers["Location"] = url_for("zones_api.update_zone", zone=row["zone"])
    return response


@api.put("/zones/<zone>")
@requires("office")
def update_zone(zone):
    """Fields given replace the stored ones; fields left out keep their value
    (``null`` clears an optional one)."""
    body = json_object()
    db = get_db()
    stored = zones.get_zone(db, zone)
    if stored is None:
        abort(404, description=f"unknown zone: {zone}")
    fields = {**stored, **{k: v for k, v in body.items() if k != "zone"}}
    try:
        with write_transaction(db):
            row = zones.check_zone(db, fields, zone_id=zone)
            zones.update_zone(db, row)
            audited("zone.update", f"zone:{zone}", **_detail(row))
    except zones.Invalid as exc:
        return invalid_json(exc)
    return jsonify(_zone_json(zones.get_zone(db, zone), _plan_ids(db)))


@api.get("/floor-plans")
@requires("office", "dept_reviewer")
def list_floor_plans():
    return jsonify([{**plan, "url": url_for("zones.plan_image", plan_id=plan["id"])}
                    for plan in zones.list_plans(get_db())])


# -- OpenAPI ----------------------------------------------------------------------------

def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _ok(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def errors(*codes: int) -> dict:
    """Error answers: ``{"error"}``, plus ``errors`` (field -> message) on 400/409."""
    reasons = {400: "Bad input; errors names each field's problem", 401: "Not signed in",
               403: "The account's role may not do this", 404: "Not found",
               409: "Conflicts with what exists"}
    return {str(code): _ok(reasons[code], _ref("InvalidInput")) for code in codes}


NULLABLE_TEXT = {"type": ["string", "null"]}
POINTS = {"type": "array", "items": {"type": "array", "items": {"type": "number"},
                                     "minItems": 2, "maxItems": 2}}
ZONE_PARAM = {"name": "zone", "in": "path", "required": True, "schema": {"type": "string"}}
_ZONE_INPUT_PROPS = {
    "zone": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$",
             "description": "the id (on create only)"},
    "name": {"type": "string", "maxLength": zones.MAX_NAME},
    "campus": NULLABLE_TEXT, "building": NULLABLE_TEXT, "floor": NULLABLE_TEXT,
    "lat": {"type": ["number", "null"], "minimum": -90, "maximum": 90},
    "lon": {"type": ["number", "null"], "minimum": -180, "maximum": 180},
    "polygon": {"oneOf": [{**POINTS, "minItems": 3, "maxItems": 200}, {"type": "null"}],
                "description": "points in the coordinates of the floor's plan"},
    "department": {**NULLABLE_TEXT,
                   "description": "the department the ward belongs to (a department code); "
                                  "in a Zone only when it has one"},
}

OPENAPI = {
    "paths": {
        "/api/v1/zones": {
            "get": {"summary": "Every zone with its polygon and floor plan id",
                    "tags": ["zones"],
                    "responses": {"200": _ok("Zones by campus, building, floor, name",
                                             {"type": "array", "items": _ref("Zone")}),
                                  **errors(401, 403)}},
            "post": {"summary": "Create a zone (office, admin)", "tags": ["zones"],
                     "requestBody": {"required": True, "content": {"application/json": {
                         "schema": _ref("ZoneInput")}}},
                     "responses": {"201": _ok("The zone", _ref("Zone")),
                                   **errors(400, 401, 403, 409)}}},
        "/api/v1/zones/{zone}": {
            "put": {"summary": "Change a zone: given fields replace, others stay",
                    "tags": ["zones"], "parameters": [ZONE_PARAM],
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": _ref("ZoneInput")}}},
                    "responses": {"200": _ok("The zone", _ref("Zone")),
                                  **errors(400, 401, 403, 404)}}},
        "/api/v1/floor-plans": {
            "get": {"summary": "Floor plans (the drawing itself is at url)", "tags": ["zones"],
                    "responses": {"200": _ok("Floor plans by campus, building, floor",
                                             {"type": "array", "items": _ref("FloorPlan")}),
                                  **errors(401, 403)}}},
    },
    "schemas": {
        "InvalidInput": {
            "type": "object", "required": ["error"],
            "properties": {"error": {"type": "string"},
                           "errors": {"type": "object",
                                      "additionalProperties": {"type": "string"}}}},
        "ZoneInput": {"type": "object", "properties": _ZONE_INPUT_PROPS},
        "Zone": {
            "type": "object", "additionalProperties": False,
            "required": ["zone", "name", "campus", "building", "floor", "lat", "lon",
                         "polygon", "floor_plan_id"],
            "properties": {**_ZONE_INPUT_PROPS, "zone": {"type": "string"},
                           "polygon": {"oneOf": [POINTS, {"type": "null"}]},
                           "floor_plan_id": {"type": ["integer", "null"]}}},
        "FloorPlan": {
            "type": "object", "additionalProperties": False,
            "required": ["id", "campus", "building", "floor", "kind", "width", "height",
                         "updated_at", "url"],
            "properties": {"id": {"type": "integer"}, "campus": NULLABLE_TEXT,
                           "building": NULLABLE_TEXT, "floor": NULLABLE_TEXT,
                           "kind": {"enum": ["svg", "json"]},
                           "width": {"type": "number"}, "height": {"type": "number"},
                           "updated_at": {"type": "string"},
                           "url": {"type": "string",
                                   "description": "the drawing as SVG (sign-in needed)"}}},
    },
}
