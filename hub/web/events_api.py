"""The API of the "events" area (blueprint ``events_api``, under /api/v1):
GET/POST /api/v1/events (a local day's or every event with its attendance
counts; schedule one), GET/PUT /api/v1/events/<id> (one event with who it
expects; change it), GET /api/v1/events/<id>/attendance, and their OpenAPI
fragment. Office and admin. Times are ISO 8601 with an offset, stored in UTC
(``protocol.clock.iso``); the bodies are parsed by hub/web/events_drafts.py,
the rules are ``hub.schedule.events``. The pages are hub/web/events.py.
"""

from datetime import date

from flask import Blueprint, Flask, abort, jsonify, request, url_for

from hub.attendance import attendance
from hub.db import write_transaction
from hub.schedule import events
from hub.schedule.zones import Invalid
from hub.web import openapi
from hub.web.auth import audited, requires
from hub.web.context import get_db, hospital_tz
from hub.web.events_drafts import audit_detail, json_draft, validated
from hub.web.params import json_object
from hub.web.zones import errors, invalid_json

api = Blueprint("events_api", __name__, url_prefix="/api/v1")


def init_app(app: Flask) -> None:
    app.register_blueprint(api)


def _event_json(db, event_id: str) -> dict:
    return {**attendance.get_event(db, event_id),
            "expected": attendance.get_expected(db, event_id)}


@api.get("/events")
@requires("office")
def list_events():
    """``?date=YYYY-MM-DD`` (a local day; every event when left out), each
    with its attendance counts."""
    day = request.args.get("date")
    if day is None:
        return jsonify(attendance.list_events(get_db()))
    try:
        day = date.fromisoformat(day)
    except ValueError:
        abort(400, description="date must be YYYY-MM-DD")
    return jsonify(attendance.list_events(get_db(), day, hospital_tz()))


@api.get("/events/<event_id>/attendance")
@requires("office")
def event_attendance(event_id):
    """``{"event", "counts": {"present", "partial", "absent", "expected"},
    "attendance": [row, ...]}``; rows as ``hub.attendance.attendance.attendance_of``."""
    report = attendance.attendance_report(get_db(), event_id)
    if report is None:
        abort(404, description=f"unknown event: {event_id}")
    return jsonify(report)


@api.post("/events")
@requires("office")
def create_event():
    """Body ``EventInput``; 201 with the event, 400 with ``errors`` per field,
    409 when the ``id`` given is taken."""
    body = json_object()
    db = get_db()
    wanted = body.get("id")
    if isinstance(wanted, str) and attendance.get_event(db, wanted) is not None:
        return jsonify(error=f"an event {wanted} already exists"), 409
    draft, problems = json_draft(body)
    try:
        with write_transaction(db):
            validated(db, draft, problems)
            event_id = events.create(db, draft, hospital_tz(), event_id=wanted)
            audited("event.create", f"event:{event_id}", **audit_detail(db, event_id))
    except Invalid as exc:
        return invalid_json(exc)
    response = jsonify(_event_json(db, event_id))
    response.status_code = 201
    response.headers["Location"] = url_for("events_api.get_event", event_id=event_id)
    return response


@api.get("/events/<event_id>")
@requires("office")
def get_event(event_id):
    db = get_db()
    if attendance.get_event(db, event_id) is None:
        abort(404, description=f"unknown event: {event_id}")
    return jsonify(_event_json(db, event_id))


@api.put("/events/<event_id>")
@requires("office")
def update_event(event_id):
    """Fields given replace the stored ones, the others stay; ``expected``
    given replaces both lists."""
    body = json_object()
    db = get_db()
    stored = events.draft_of(db, event_id)
    if stored is None:
        abort(404, description=f"unknown event: {event_id}")
    draft, problems = json_draft(body, stored)
    try:
        with write_transaction(db):
            validated(db, draft, problems)
            events.update(db, event_id, draft)
            audited("event.update", f"event:{event_id}", **audit_detail(db, event_id))
    except Invalid as exc:
        return invalid_json(exc)
    return jsonify(_event_json(db, event_id))


# -- OpenAPI -----------------------------------------------------------------------------------

_EVENT_ID = {"name": "event_id", "in": "path", "required": True, "schema": {"type": "string"}}
_EXPECTED = {"type": "object", "properties": {
    "departments": {"type": "array", "items": {"type": "string"},
                    "description": "department codes (the roster's spelling)"},
    "staff": {"type": "array", "items": {"type": "string"}, "description": "staff numbers"}}}
_INPUT_PROPS = {
    "title": {"type": "string", "minLength": 1, "maxLength": events.MAX_TITLE},
    "kind": {"enum": list(events.KINDS)},
    "zones": {"type": "array", "items": {"type": "string"}, "minItems": 1},
    "start": {"type": "string", "format": "date-time",
              "description": "ISO 8601 with an offset; stored in UTC"},
    "end": {"type": "string", "format": "date-time"},
    "credit_hours": {"type": "number", "minimum": 0, "maximum": events.MAX_CREDIT_HOURS},
    "min_presence": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.75},
    "expected": _EXPECTED,
}


_ref, _ok, _body = openapi.ref, openapi.json_response, openapi.json_request
NULLABLE_STR, NULLABLE_NUM = openapi.NULLABLE_STR, openapi.NULLABLE_NUM

OPENAPI = {
    "paths": {
        "/api/v1/events": {"get": {
            "summary": "Events with attendance counts", "tags": ["events"],
            "parameters": [openapi.query("date", "A local day, YYYY-MM-DD",
                                         {"type": "string", "format": "date"})],
            "responses": {"200": _ok("Events by start",
                                     {"type": "array", "items": _ref("EventSummary")}),
                          **openapi.errors(400), **openapi.SIGNED_IN}}, "post": {
            "summary": "Schedule an event (office, admin)", "tags": ["events"],
            "requestBody": _body({**_ref("EventInput"),
                                  "description": "title, kind, zones, start and end required"}),
            "responses": {"201": _ok("The event", _ref("Event")),
                          **errors(400, 401, 403, 409)}}},
        "/api/v1/events/{event_id}/attendance": {"get": {
            "summary": "One event's attendance: counts and every person", "tags": ["events"],
            "parameters": [_EVENT_ID],
            "responses": {"200": _ok("Attendance", _ref("AttendanceReport")),
                          **openapi.errors(404), **openapi.SIGNED_IN}}},
        "/api/v1/events/{event_id}": {
            "get": {"summary": "One event with who it expects", "tags": ["events"],
                    "parameters": [_EVENT_ID],
                    "responses": {"200": _ok("The event", _ref("Event")),
                                  **errors(401, 403, 404)}},
            "put": {"summary": "Change an event: given fields replace, others stay",
                    "tags": ["events"], "parameters": [_EVENT_ID],
                    "requestBody": _body(_ref("EventInput")),
                    "responses": {"200": _ok("The event", _ref("Event")),
                                  **errors(400, 401, 403, 404)}}},
    },
    "schemas": {
        "EventSummary": {
            "type": "object",
            "required": ["id", "title", "kind", "zones", "start", "end", "credit_hours",
                         "min_presence", "checked_in"],
            "properties": {
                "id": {"type": "string"}, "title": {"type": "string"},
                "kind": {"type": "string"},
                "zones": {"type": "array", "items": {"type": "string"}},
                "start": {"type": "string"}, "end": {"type": "string"},
                "credit_hours": {"type": "number"}, "min_presence": {"type": "number"},
                "checked_in": {"type": "integer"}, "present": {"type": "integer"},
                "partial": {"type": "integer"}, "absent": {"type": "integer"},
                "expected": {"type": "integer"}}},
        "Counts": {
            "type": "object", "required": ["present", "partial", "absent", "expected", "now"],
            "properties": {
                **{k: {"type": "integer"} for k in ("present", "partial", "absent", "expected")},
                "now": {"description": "while the event is on: how many are where now "
                                       "(null once it is over)",
                        "oneOf": [{"type": "null"}, {
                            "type": "object", "required": list(attendance.LIVE_STATES),
                            "properties": {k: {"type": "integer"}
                                           for k in attendance.LIVE_STATES}}]}}},
        "AttendanceRow": {
            "type": "object",
            "required": ["staff_id", "name", "department", "status", "checked_in_at", "method",
                         "node", "first_seen", "last_seen", "dwell_minutes", "late_minutes",
                         "early_leave_minutes", "expected", "registered", "walk_in", "now"],
            "properties": {
                "staff_id": {"type": "string"}, "name": NULLABLE_STR,
                "department": NULLABLE_STR,
                "status": {"enum": list(attendance.STATUSES)},
                "checked_in_at": NULLABLE_STR, "method": NULLABLE_STR, "node": NULLABLE_STR,
                "first_seen": NULLABLE_STR, "last_seen": NULLABLE_STR,
                "dwell_minutes": {"type": "number"}, "late_minutes": NULLABLE_NUM,
                "early_leave_minutes": NULLABLE_NUM, "expected": {"type": "boolean"},
                "registered": {"type": "boolean", "description": "registered for the event "
                                                                 "(so expected too)"},
                "walk_in": {"type": "boolean", "description": "checked in or seen, neither "
                                                              "expected nor registered"},
                "now": {"enum": [*attendance.LIVE_STATES, None],
                        "description": "where the person is now while the event is on "
                                       "(status is then the verdict so far); null after"}}},
        "AttendanceReport": {
            "type": "object", "required": ["event", "counts", "attendance"],
            "properties": {"event": _ref("EventSummary"), "counts": _ref("Counts"),
                           "registration": {
                               "type": "object",
                               "required": ["registered", "registered_absent", "walk_ins"],
                               "properties": {k: {"type": "integer"} for k in (
                                   "registered", "registered_absent", "walk_ins")}},
                           "attendance": {"type": "array", "items": _ref("AttendanceRow")}}},
        "EventInput": {"type": "object", "properties": {
            "id": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
                   "description": "on create only; made from the day and title if left out"},
            **_INPUT_PROPS}},
        "Event": {
            "type": "object", "additionalProperties": False,
            "required": ["id", "title", "kind", "zones", "start", "end", "credit_hours",
                         "min_presence", "checked_in", "expected"],
            "properties": {
                "id": {"type": "string"}, "title": {"type": "string"},
                "kind": {"type": "string"},
                "zones": {"type": "array", "items": {"type": "string"}},
                "start": {"type": "string", "description": "UTC, ISO 8601 with milliseconds"},
                "end": {"type": "string"}, "credit_hours": {"type": "number"},
                "min_presence": {"type": "number"},
                "checked_in": {"type": "integer", "description": "distinct people so far"},
                "expected": {**_EXPECTED, "required": ["departments", "staff"]}}},
    },
}
