"""Dashboard area "events": scheduling lectures, trainings, meetings and
volunteer duties to zones, who is expected, the iCalendar feeds, and the
events API (GET/POST /api/v1/events, GET/PUT /api/v1/events/<id>, GET
/api/v1/events/<id>/attendance).

Office and admin schedule. Times on the form are wall-clock in the hospital's
time zone; the API takes ISO 8601 with an offset. Storage is UTC
(``protocol.clock.iso``). The rules live in ``hub.schedule.events``; this module parses
requests and renders. The feeds need no sign-in: their URL carries a token
(``hub.schedule.ical``), shown on this area's pages to office and admin; a
person's feed of the events they registered for is linked from their
``/me/events`` (hub/web/registration.py).

The event form also sets the event's registration (window, places, who may
register, required or voluntary: ``hub.schedule.registration``), saved in
the event's transaction and audited with it.
"""

from datetime import date, datetime, timedelta, timezone

from flask import (Blueprint, Flask, Response, abort, current_app, flash, jsonify, redirect,
                   render_template, request, url_for)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from hub.attendance import attendance
from hub.db import write_transaction
from hub.schedule import events, ical, registration, zones
from hub.schedule.zones import Invalid, Problem
from hub.web import labels, openapi
from hub.web import registration as registration_web
from hub.web.auth import audited, requires
from hub.web.context import get_db, hospital_tz
from hub.web.params import json_object
from hub.web.zones import errors, feed_url, invalid_json, translated

bp = Blueprint("events", __name__)
api = Blueprint("events_api", __name__, url_prefix="/api/v1")
N_ = str

KIND_LABELS = {"lecture": _l("Lecture"), "training": _l("Training"), "meeting": _l("Meeting"),
               "volunteer_duty": _l("Volunteer duty"), "contest": _l("Contest")}
UPCOMING = timedelta(days=60)
RECENT = timedelta(days=14)
_FORM_TIME = "%Y-%m-%dT%H:%M"


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(api)
    app.context_processor(lambda: {"event_kind_labels": KIND_LABELS})


# -- parsing -------------------------------------------------------------------------------


def _wall_clock(text: str, field: str, problems: list) -> datetime | None:
    """A form's ``YYYY-MM-DDTHH:MM`` (datetime-local) in the hospital's zone."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        value = None
    if value is None or value.tzinfo is not None:
        problems.append(Problem(field, N_("Write the time as YYYY-MM-DD HH:MM.")))
        return None
    return value.replace(tzinfo=hospital_tz())


def _instant(value, field: str, problems: list) -> datetime | None:
    """An API time: ISO 8601 with an offset or Z."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        problems.append(Problem(field, N_("The time must be ISO 8601 with an offset, e.g. "
                                          "2025-03-10T09:00:00+08:00.")))
        return None
    return parsed


def _form_draft(form) -> tuple[dict, dict, list]:
    """(draft for ``hub.schedule.events``, the form as typed, parse problems)."""
    typed = {"title": form.get("title", "").strip(), "kind": form.get("kind", ""),
             "zones": form.getlist("zones"), "start": form.get("start", "").strip(),
             "end": form.get("end", "").strip(), "departments": form.getlist("departments"),
             "staff": form.get("staff", "").strip(),
             "credit_hours": form.get("credit_hours", "").strip(),
             "min_presence": form.get("min_presence", "").strip()}
    problems: list = []
    draft = {"title": typed["title"], "kind": typed["kind"], "zones": typed["zones"],
             "start": _wall_clock(typed["start"], "start", problems),
             "end": _wall_clock(typed["end"], "end", problems),
             "departments": typed["departments"],
             "staff": events.split_staff_ids(typed["staff"]),
             "credit_hours": typed["credit_hours"] or 0,
             "min_presence": typed["min_presence"] or attendance.DEFAULT_MIN_PRESENCE}
    draft["registration"], typed_registration = registration_web.form_settings(
        form, problems, draft["start"])
    return draft, typed | typed_registration, problems


def _json_draft(body: dict, base: dict | None = None) -> tuple[dict, list]:
    """(draft, parse problems) from an API body, over ``base`` for a PUT."""
    problems: list = []
    draft = dict(base or {})
    for name in ("title", "kind", "zones", "credit_hours", "min_presence"):
        if name in body:
            draft[name] = body[name]
    for name in ("start", "end"):
        if name in body or base is None:
            draft[name] = _instant(body.get(name), name, problems)
    expected = body.get("expected", {} if base is None else None)
    if expected is not None:
        if not isinstance(expected, dict):
            problems.append(Problem("expected", N_("expected must be an object with "
                                                   "departments and staff.")))
        else:
            draft["departments"] = expected.get("departments", [])
            draft["staff"] = expected.get("staff", [])
    return draft, problems


def _validated(db, draft: dict, problems: list) -> None:
    """Raise Invalid with the parse problems and the rules' problems, if any."""
    if not problems:
        return
    try:
        events.check(db, draft)
    except Invalid as exc:
        seen = {p.field for p in problems}
        problems = problems + [p for p in exc.problems if p.field not in seen]
    raise Invalid(problems)


def _audit_detail(db, event_id: str) -> dict:
    event = attendance.get_event(db, event_id)
    expected = attendance.get_expected(db, event_id)
    return {k: event[k] for k in ("title", "kind", "zones", "start", "end", "credit_hours",
                                  "min_presence")} | expected | {
        "registration": registration.get(db, event_id)}


# -- pages ---------------------------------------------------------------------------------


def _by_day(found: list[dict]) -> list[tuple]:
    """[(local date, [events])] in the order given."""
    tz = hospital_tz()
    days: dict = {}
    for event in found:
        day = attendance.parse_time(event["start"]).astimezone(tz).date()
        days.setdefault(day, []).append(event)
    return list(days.items())


@bp.get("/events/", endpoint="index")
@requires("office")
def index():
    """Upcoming events (and those on now) by day, then the last two weeks'."""
    db = get_db()
    now = datetime.now(timezone.utc)
    upcoming = events.between(db, now, now + UPCOMING)
    recent = [e for e in events.between(db, now - RECENT, now)
              if attendance.parse_time(e["end"]) <= now]
    recent.reverse()
    departments = events.departments(db)
    feeds = [(code, name, feed_url("department", code)) for code, name in departments.items()]
    return render_template("events_index.html", upcoming=_by_day(upcoming),
                           recent=_by_day(recent), zone_names=labels.zone_names(db),
                           feeds=feeds, departments=departments)


def _render_form(typed: dict, event_id: str | None = None, problems=()):
    db = get_db()
    return render_template(
        "events_form.html", typed=typed, event_id=event_id, kinds=KIND_LABELS,
        errors=translated(problems), zones=zones.list_zones(db),
        departments=events.departments(db), roles=registration.known_roles(db),
        checked_in=attendance.get_event(db, event_id)["checked_in"] if event_id else 0)


@bp.route("/events/new", methods=["GET", "POST"], endpoint="create")
@requires("office")
def create():
    if request.method == "GET":
        typed = {"title": "", "kind": "lecture", "zones": request.args.getlist("zone"),
                 "start": "", "end": "", "departments": [], "staff": "", "credit_hours": "0",
                 "min_presence": str(attendance.DEFAULT_MIN_PRESENCE),
                 **registration_web.typed_settings(None)}
        return _render_form(typed)
    db = get_db()
    draft, typed, problems = _form_draft(request.form)
    try:
        with write_transaction(db):
            _validated(db, draft, problems)
            event_id = events.create(db, draft, hospital_tz())
            registration_web.save_settings(db, event_id, draft["registration"])
            audited("event.create", f"event:{event_id}", **_audit_detail(db, event_id))
    except Invalid as exc:
        return _render_form(typed, problems=exc.problems), 400
    flash(_("Event %(title)s scheduled.", title=draft["title"].strip()), "info")
    return redirect(url_for("events.index"), code=303)


@bp.route("/events/<event_id>/edit", methods=["GET", "POST"], endpoint="edit")
@requires("office")
def edit(event_id):
    db = get_db()
    stored = events.draft_of(db, event_id)
    if stored is None:
        abort(404, description=f"unknown event: {event_id}")
    if request.method == "GET":
        tz = hospital_tz()
        typed = {**stored, "start": stored["start"].astimezone(tz).strftime(_FORM_TIME),
                 "end": stored["end"].astimezone(tz).strftime(_FORM_TIME),
                 "staff": ", ".join(stored["staff"]),
                 "credit_hours": f"{stored['credit_hours']:g}",
                 "min_presence": f"{stored['min_presence']:g}",
                 **registration_web.typed_settings(registration.get(db, event_id))}
        return _render_form(typed, event_id)
    draft, typed, problems = _form_draft(request.form)
    try:
        with write_transaction(db):
            _validated(db, draft, problems)
            events.update(db, event_id, draft)
            promoted = registration_web.save_settings(db, event_id, draft["registration"])
            audited("event.update", f"event:{event_id}", **_audit_detail(db, event_id),
                    **({"promoted": promoted} if promoted else {}))
    except Invalid as exc:
        return _render_form(typed, event_id, exc.problems), 400
    flash(_("Event %(title)s saved.", title=draft["title"].strip()), "info")
    return redirect(url_for("events.index"), code=303)


@bp.post("/events/<event_id>/delete", endpoint="delete")
@requires("office")
def delete(event_id):
    """Delete an event nobody checked in to; the form's ``confirm`` box must
    be ticked (see ``hub.schedule.events`` on why attended events stay)."""
    db = get_db()
    stored = events.draft_of(db, event_id)
    if stored is None:
        abort(404, description=f"unknown event: {event_id}")
    if request.form.get("confirm") != "yes":
        flash(_("Tick the box to confirm the deletion."), "error")
        return redirect(url_for("events.edit", event_id=event_id), code=303)
    try:
        with write_transaction(db):
            detail = _audit_detail(db, event_id)
            registration.remove(db, event_id, force=True)
            events.delete(db, event_id)
            audited("event.delete", f"event:{event_id}", **detail)
    except Invalid:
        flash(_("People have checked in to this event: it stays in their records and "
                "cannot be deleted."), "error")
        return redirect(url_for("events.edit", event_id=event_id), code=303)
    flash(_("Event %(title)s deleted.", title=stored["title"]), "info")
    return redirect(url_for("events.index"), code=303)


# -- iCalendar feeds ------------------------------------------------------------------------


def _describe(event: dict) -> str:
    kind = KIND_LABELS.get(event["kind"], event["kind"])
    hours = format(event["credit_hours"] or 0, "g")
    return _("%(kind)s · %(hours)s credit hours", kind=kind, hours=hours)


def _feed(kind: str, name: str, title: str) -> Response:
    if not ical.token_ok(current_app.config["SECRET_KEY"], kind, name,
                         request.args.get("token")):
        abort(404)
    db = get_db()
    site = current_app.config["SITE"] or "rounds"
    body = ical.calendar(ical.feed_events(db, kind, name), name=title, site=site,
                         tz_name=current_app.config["TIMEZONE"],
                         zone_names=labels.zone_names(db), describe=_describe)
    response = Response(body, content_type="text/calendar; charset=utf-8")
    response.headers["Cache-Control"] = "private, max-age=300"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/calendar/zone/<zone>.ics", endpoint="zone_feed")
def zone_feed(zone):
    """The events held in a zone. No sign-in: a wrong or missing token is 404."""
    found = zones.get_zone(get_db(), zone)
    if found is None:
        abort(404)
    return _feed("zone", zone, _("%(site)s: %(name)s", site=current_app.config["SITE"] or "",
                                 name=found["name"]))


@bp.get("/calendar/department/<dept>.ics", endpoint="department_feed")
def department_feed(dept):
    """The events expecting a department. No sign-in: token as for zones."""
    name = events.departments(get_db()).get(dept)
    if name is None:
        abort(404)
    return _feed("department", dept, _("%(site)s: %(name)s",
                                       site=current_app.config["SITE"] or "", name=name))


@bp.get("/calendar/person/<staff_id>.ics", endpoint="person_feed")
def person_feed(staff_id):
    """The events a person is registered for. No sign-in: token as for zones."""
    person = registration_web.person_name(staff_id)
    if person is None:
        abort(404)
    return _feed("person", staff_id, _("%(site)s: %(name)s",
                                       site=current_app.config["SITE"] or "", name=person))


# -- API ---------------------------------------------------------------------------------------


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
    draft, problems = _json_draft(body)
    try:
        with write_transaction(db):
            _validated(db, draft, problems)
            event_id = events.create(db, draft, hospital_tz(), event_id=wanted)
            audited("event.create", f"event:{event_id}", **_audit_detail(db, event_id))
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
    draft, problems = _json_draft(body, stored)
    try:
        with write_transaction(db):
            _validated(db, draft, problems)
            events.update(db, event_id, draft)
            audited("event.update", f"event:{event_id}", **_audit_detail(db, event_id))
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
