"""Dashboard area: people's records (attendance, volunteer hours, reports),
a staff member's own page (``/me``), and the exports (CSV, XLSX) of a person
and of an event. The data and the files come from ``hub.attendance.exports``.

Who sees what: office and admin everyone; a department reviewer only their
department's staff (anyone else is 404); a staff account only its own record
at ``/me`` (the ``/people`` pages are 403 to it). Any account linked to a
staff member (``staff_id``) has a ``/me``; for one that is not, ``/me`` is
403. Every export is audited.

Optional ``?from=YYYY-MM-DD&to=YYYY-MM-DD`` (local days, both included)
limits a record and its export to a period.
"""

from datetime import date

from flask import (Blueprint, Flask, Response, abort, current_app, jsonify, render_template,
                   request, url_for)
from flask_babel import gettext as _
from flask_login import current_user

from hub import retention
from hub.attendance import exports
from hub.attendance.attendance import day_bounds
from hub.db import write_transaction
from hub.people.held import held_about
from hub.web import labels, records
from hub.web.assessment import own_progress
from hub.web.auth import OWN_RECORD, audited, audited_look, department_scope, requires
from hub.web.context import get_db, hospital_tz

bp = Blueprint("people", __name__)
api = Blueprint("people_api", __name__, url_prefix="/api/v1")
SEARCH_LIMIT = 200
FORMAT = "<any(csv, xlsx):fmt>"


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(api)


# -- shared ------------------------------------------------------------------

def _period() -> tuple[str | None, str | None, dict]:
    """``since``/``until`` wire timestamps from ``?from=&to=`` (local days,
    ``to`` included), and the arguments to carry into links."""
    args, bounds = {}, []
    for name in ("from", "to"):
        text = request.args.get(name, "").strip()
        if not text:
            bounds.append(None)
            continue
        try:
            day = date.fromisoformat(text)
        except ValueError:
            abort(400, description=f"{name} must be a date YYYY-MM-DD")
        args[name] = day.isoformat()
        bounds.append(day)
    start, end = bounds
    if start and end and end < start:
        abort(400, description="to must not be before from")
    since = day_bounds(start, hospital_tz())[0] if start else None
    until = day_bounds(end, hospital_tz())[1] if end else None
    return since, until, args


def _visible_staff(staff_id: str) -> None:
    """404 unless the staff member exists and is in a reviewer's department."""
    staff = exports.get_staff(get_db(), staff_id)
    scope = department_scope()
    if staff is None or (scope is not None and staff["department"] != scope):
        abort(404, description=f"unknown staff member: {staff_id}")


def _record(staff_id: str, since, until) -> dict:
    try:
        return exports.person_record(get_db(), staff_id, since, until)
    except exports.NotFound as exc:
        abort(404, description=str(exc))


def _own_staff_id() -> str:
    if not current_user.staff_id:
        abort(403, description="this account is not linked to a staff member")
    return current_user.staff_id


def _download(data: bytes, fmt: str, name: str) -> Response:
    response = Response(data, content_type=exports.MIME[fmt])
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _person_file(staff_id: str, fmt: str, since, until) -> Response:
    record = _record(staff_id, since, until)
    data = exports.write(exports.person_sheets(record, hospital_tz(), _), fmt)
    with write_transaction(get_db()):
        audited("export.person", f"staff:{staff_id}", format=fmt, since=since, until=until)
    return _download(data, fmt, exports.filename("person", staff_id, fmt))


def _event_file(event_id: str, fmt: str) -> Response:
    try:
        report = exports.event_rows(get_db(), event_id)
    except exports.NotFound as exc:
        abort(404, description=str(exc))
    # One CSV is the main sheet (everyone's row); the XLSX also has the event sheet.
    sheets = exports.event_sheets(report, hospital_tz(), _)
    data = exports.write(sheets[:1] if fmt == "csv" else sheets, fmt)
    with write_transaction(get_db()):
        audited("export.event", f"event:{event_id}", format=fmt)
    return _download(data, fmt, exports.filename("event", event_id, fmt))


def _api_format() -> str:
    fmt = request.args.get("format", "xlsx")
    if fmt not in exports.FORMATS:
        abort(400, description=f"format must be one of {', '.join(exports.FORMATS)}")
    return fmt


def _ticket_link(report: dict) -> str | None:
    """The ticket page for a report, when this account may open it."""
    if report["ticket_id"] is None or "tickets.ticket" not in current_app.view_functions:
        return None
    if not current_user.may("office", "dept_reviewer"):
        return None
    scope = department_scope()
    if scope is not None and report["department"] != scope:
        return None
    rule = next(current_app.url_map.iter_rules("tickets.ticket"))
    arg = next(iter(rule.arguments), None)
    return url_for("tickets.ticket", **{arg: report["ticket_id"]}) if arg else None


def _render_record(record: dict, args: dict, export_endpoint: str, mine: bool, held=None,
                   assessment=None, **ids):
    exports_urls = {fmt: url_for(export_endpoint, fmt=fmt, **ids, **args)
                    for fmt in exports.FORMATS}
    links = {r["report_id"]: _ticket_link(r) for r in record["reports"]}
    entries_link = (url_for("records.person", staff_id=record["staff"]["staff_id"])
                    if not mine and current_user.may(*records.REVIEWERS) else None)
    db = get_db()
    return render_template("people_person.html", record=record, args=args, mine=mine,
                           entries_link=entries_link,
                           held=held, assessment=assessment, exports_urls=exports_urls, ticket_links=links,
                           department_names=labels.department_names(db),
                           zone_names=labels.zone_names(db),
                           category_labels=labels.category_labels(db),
                           event_links=not mine and current_user.may("office"),
                           status_labels=exports.STATUS_LABELS,
                           ledger_labels=exports.LEDGER_LABELS,
                           ticket_labels=exports.TICKET_LABELS)


# -- pages ---------------------------------------------------------------------

@bp.get("/people/")
@requires("office", "dept_reviewer")
def index():
    query = request.args.get("q", "").strip()[:100]
    scope = department_scope()
    department = scope if scope is not None else (request.args.get("department") or None)
    db = get_db()
    people = exports.find_people(db, query or None, department, limit=SEARCH_LIMIT + 1)
    names = labels.department_names(db)
    codes = [scope] if scope is not None else exports.departments(db)
    choices = sorted(((code, names.get(code, code)) for code in codes),
                     key=lambda choice: choice[1].casefold())
    return render_template("people_index.html", people=people[:SEARCH_LIMIT],
                           more=len(people) > SEARCH_LIMIT, query=query,
                           department=department, departments=choices,
                           department_names=names, scoped=scope is not None)


@bp.get("/people/<staff_id>")
@requires("office", "dept_reviewer")
def person(staff_id):
    _visible_staff(staff_id)
    since, until, args = _period()
    audited_look("person.view", f"staff:{staff_id}", since=since, until=until)
    return _render_record(_record(staff_id, since, until), args, "people.person_export",
                          mine=False, staff_id=staff_id)


@bp.get(f"/people/<staff_id>/export.{FORMAT}")
@requires("office", "dept_reviewer")
def person_export(staff_id, fmt):
    _visible_staff(staff_id)
    since, until, _args = _period()
    return _person_file(staff_id, fmt, since, until)


@bp.get("/me")
@requires(*OWN_RECORD)
def me():
    staff_id = _own_staff_id()
    since, until, args = _period()
    policy = retention.settings(current_app.config.get("RETENTION"))
    return _render_record(_record(staff_id, since, until), args, "people.me_export", mine=True,
                          held=held_about(get_db(), staff_id, policy),
                          assessment=own_progress(staff_id))


@bp.get(f"/me/export.{FORMAT}")
@requires(*OWN_RECORD)
def me_export(fmt):
    staff_id = _own_staff_id()
    since, until, _args = _period()
    return _person_file(staff_id, fmt, since, until)


@bp.get(f"/events/<event_id>/export.{FORMAT}")
@requires("office")
def event_export(event_id, fmt):
    return _event_file(event_id, fmt)


# -- JSON API ------------------------------------------------------------------

@api.get("/people/<staff_id>")
@requires("office", "dept_reviewer")
def api_person(staff_id):
    """``hub.attendance.exports.person_record``; ``?from=&to=`` local dates."""
    _visible_staff(staff_id)
    since, until, _args = _period()
    audited_look("person.view", f"staff:{staff_id}", since=since, until=until, via="api")
    return jsonify(_record(staff_id, since, until))


@api.get("/me")
@requires(*OWN_RECORD)
def api_me():
    """The signed-in person's own record; 403 for an account without a staff id."""
    since, until, _args = _period()
    return jsonify(_record(_own_staff_id(), since, until))


@api.get("/people/<staff_id>/export")
@requires("office", "dept_reviewer")
def api_person_export(staff_id):
    fmt = _api_format()
    _visible_staff(staff_id)
    since, until, _args = _period()
    return _person_file(staff_id, fmt, since, until)


@api.get("/events/<event_id>/export")
@requires("office")
def api_event_export(event_id):
    return _event_file(event_id, _api_format())


# -- OpenAPI -------------------------------------------------------------------

def _nullable(kind: str) -> dict:
    return {"type": [kind, "null"]}


def _object(properties: dict) -> dict:
    return {"type": "object", "required": sorted(properties), "properties": properties}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


_ERROR = {"application/json": {"schema": _object({"error": {"type": "string"}})}}
_ERRORS = {
    "400": {"description": "Bad query (a date or the format).", "content": _ERROR},
    "401": {"description": "Not signed in.", "content": _ERROR},
    "403": {"description": "The account's role may not do this.", "content": _ERROR},
    "404": {"description": "Unknown, or outside a reviewer's department.", "content": _ERROR},
}
_PERIOD = [
    {"name": "from", "in": "query", "required": False,
     "description": "First local day (YYYY-MM-DD) of the period.",
     "schema": {"type": "string", "format": "date"}},
    {"name": "to", "in": "query", "required": False,
     "description": "Last local day (YYYY-MM-DD, included) of the period.",
     "schema": {"type": "string", "format": "date"}},
]
_FORMAT = {"name": "format", "in": "query", "required": False,
           "description": "csv (UTF-8 with BOM) or xlsx (default).",
           "schema": {"type": "string", "enum": list(exports.FORMATS), "default": "xlsx"}}
_FILE = {"description": "The export, as an attachment.", "content": {
    "text/csv": {"schema": {"type": "string"}},
    exports.XLSX_MIME: {"schema": {"type": "string", "contentEncoding": "binary"}}}}
_RECORD = {"description": "The person's record.",
           "content": {"application/json": {"schema": _ref("PersonRecord")}}}


def _path_param(name: str, description: str) -> dict:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string"}}


_STAFF_ID = _path_param("staff_id", "The staff number.")
_EVENT_ID = _path_param("event_id", "The event id.")

OPENAPI = {
    "paths": {
        "/api/v1/people/{staff_id}": {"get": {
            "summary": "A person's attendance, volunteer hours and reports (office, admin, "
                       "a reviewer for their department's staff).",
            "operationId": "getPerson", "parameters": [_STAFF_ID, *_PERIOD],
            "responses": {"200": _RECORD, **_ERRORS}}},
        "/api/v1/me": {"get": {
            "summary": "The signed-in person's own record (any account linked to a staff id).",
            "operationId": "getMe", "parameters": list(_PERIOD),
            "responses": {"200": _RECORD, **_ERRORS}}},
        "/api/v1/people/{staff_id}/export": {"get": {
            "summary": "A person's record as CSV (sections one after another) or XLSX (a "
                       "worksheet per section); audited.",
            "operationId": "exportPerson", "parameters": [_STAFF_ID, _FORMAT, *_PERIOD],
            "responses": {"200": _FILE, **_ERRORS}}},
        "/api/v1/events/{event_id}/export": {"get": {
            "summary": "An event's attendance (everyone's row with check-in and check-out "
                       "times) as CSV or XLSX (office, admin); audited.",
            "operationId": "exportEvent", "parameters": [_EVENT_ID, _FORMAT],
            "responses": {"200": _FILE, **_ERRORS}}},
    },
    "schemas": {
        "PersonStaff": _object({"staff_id": {"type": "string"}, "name": {"type": "string"},
                                "department": _nullable("string"),
                                "role": {"type": "string"}}),
        "PersonAttendance": _object({
            "event_id": {"type": "string"}, "title": {"type": "string"},
            "kind": {"type": "string"}, "zones": {"type": "array", "items": {"type": "string"}},
            "start": {"type": "string"}, "end": {"type": "string"},
            "status": {"type": "string", "enum": ["present", "partial", "absent"]},
            "expected": {"type": "boolean"}, "method": _nullable("string"),
            "checked_in_at": _nullable("string"),
            "first_seen": _nullable("string"),
            "last_seen": {**_nullable("string"), "description": "Check-out: last seen there."},
            "dwell_minutes": {"type": "number"}, "late_minutes": _nullable("number"),
            "early_leave_minutes": _nullable("number"),
            "credit_hours": {"type": "number", "description": "Earned: the event's credit "
                                                              "hours when present, else 0."}}),
        "PersonHoursEntry": _object({
            "id": {"type": "integer"}, "staff_id": {"type": "string"},
            "ticket_id": {"type": "integer"}, "report_id": {"type": "string"},
            "hours": {"type": "number"},
            "state": {"type": "string", "enum": ["pending", "approved", "rejected"]},
            "created_at": {"type": "string"}, "decided_by": _nullable("string"),
            "decided_at": _nullable("string"), "category": _nullable("string"),
            "zone": _nullable("string")}),
        "PersonReport": _object({
            "report_id": {"type": "string"}, "taken_at": {"type": "string"},
            "category": {"type": "string"}, "zone": {"type": "string"},
            "note": _nullable("string"), "ticket_id": _nullable("integer"),
            "state": {"type": "string", "description": "The ticket's state, or waiting (a "
                                                       "photo still on its way)."},
            "duplicate": {"type": "boolean"}, "department": _nullable("string")}),
        "PersonTotals": _object({
            name: {"type": "number"} for name in (
                "events", "present", "partial", "absent", "credit_hours", "dwell_minutes",
                "hours_pending", "hours_approved", "hours_rejected", "reports")}),
        "PersonRecord": _object({
            "staff": _ref("PersonStaff"), "since": _nullable("string"),
            "until": _nullable("string"),
            "attendance": {"type": "array", "items": _ref("PersonAttendance")},
            "hours": {"type": "array", "items": _ref("PersonHoursEntry")},
            "reports": {"type": "array", "items": _ref("PersonReport")},
            "totals": _ref("PersonTotals")}),
    },
}
