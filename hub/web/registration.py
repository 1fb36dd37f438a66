"""Dashboard area "registration" (报名): staff register for events and cancel
on the hub; the office sees who is registered and who is waiting. The rules
are ``hub.schedule.registration``; this module parses requests and renders.

- ``/me/events`` (``registration.mine``): for an account linked to a staff
  number (staff sign in with staff number + PIN, as for ``/me``): the events
  taking registration that they may register for, and those they registered
  or wait for, required ones marked as a duty; each with its window, places
  and their state (registered; waiting, number N), and a register or cancel
  button. Also the person's iCal feed of the events they are registered for
  (``events.person_feed``, a token per person as for the zone feeds).
- ``POST /me/events/<event_id>/register`` and ``.../cancel``: plain form
  posts, 303 back to the page with what happened.
- API: ``GET /api/v1/me/registrations`` (the same list), ``POST
  /api/v1/me/registrations`` (``{"event_id"}``), ``DELETE
  /api/v1/me/registrations/<event_id>``; for the office ``GET
  /api/v1/events/<event_id>/registrations`` (settings, registered in order,
  the waiting list with positions).
- The event page's registration panel (the ``event_registration`` template
  global) and the event form's registration settings (``typed_settings``,
  ``form_settings``, ``save_settings``, used by hub/web/events.py).

Every register and cancel writes the audit log in its transaction
(``registration.register``, ``registration.cancel``; a registration made on
a node is audited by the ingest, hub/schedule/registration_records.py).
"""

from datetime import datetime, timezone

from flask import (Blueprint, Flask, abort, current_app, flash, jsonify, redirect,
                   render_template, request, url_for)
from flask_babel import gettext as _
from flask_login import current_user

from hub.db import write_transaction
from hub.people import roster
from hub.schedule import events, ical, registration, registration_lists
from hub.schedule.registration import RegistrationError
from hub.schedule.zones import Problem
from hub.web import labels, openapi
from hub.web.auth import audited, requires
from hub.web.context import get_db, hospital_tz
from hub.web.params import json_object, wall_clock

bp = Blueprint("registration", __name__)
api = Blueprint("registration_api", __name__, url_prefix="/api/v1")
N_ = str  # marks a message for extraction; translated where it is shown

# RegistrationError.code -> the API's status
STATUS = {"unknown_event": 404, "no_registration": 404, "not_eligible": 403,
          "unknown_staff": 409, "not_open": 409, "closed": 409, "started": 409}
_FORM_TIME = "%Y-%m-%dT%H:%M"


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(api)
    app.jinja_env.globals["event_registration"] = event_registration


def _own_staff_id() -> str:
    if not current_user.staff_id:
        abort(403, description="this account is not linked to a staff member")
    return current_user.staff_id


def _now() -> datetime:
    return datetime.now(timezone.utc)


def feed_link(staff_id: str) -> str:
    """The subscribe URL of a person's feed, token included (hub.schedule.ical)."""
    return url_for("events.person_feed", staff_id=staff_id, _external=True,
                   token=ical.feed_token(current_app.config["SECRET_KEY"], "person", staff_id))


def person_name(staff_id: str) -> str | None:
    """The name of a person on the roster (their feed's title), else None."""
    found = roster.staff_by_id(get_db(), [staff_id]).get(staff_id)
    return found["name"] if found else None


def _register(staff_id: str, event_id: str) -> dict:
    """Register, audited when it changed something; answers ``state_of``."""
    db = get_db()
    with write_transaction(db):
        before = registration.state_of(db, event_id, staff_id)
        state = registration.register(db, event_id, staff_id, _now())
        if before is None or before["state"] != state:
            audited("registration.register", f"event:{event_id}", staff_id=staff_id,
                    state=state)
        return registration.state_of(db, event_id, staff_id)


def _cancel(staff_id: str, event_id: str) -> dict:
    db = get_db()
    with write_transaction(db):
        done = registration.cancel(db, event_id, staff_id, _now())
        if done["was"] in registration.ACTIVE:
            audited("registration.cancel", f"event:{event_id}", staff_id=staff_id,
                    was=done["was"], promoted=done["promoted"])
    return done


# -- pages ---------------------------------------------------------------------

@bp.get("/me/events", endpoint="mine")
@requires("staff", "office", "dept_reviewer")
def mine():
    staff_id = _own_staff_id()
    db = get_db()
    found = registration_lists.for_person(db, staff_id, _now())
    found.sort(key=lambda e: (not (e["required"] and e["state"] not in registration.ACTIVE),
                              e["start"]))
    return render_template("registration_mine.html", events=found, feed=feed_link(staff_id),
                           zone_names=labels.zone_names(db))


def _refused(exc: RegistrationError):
    flash(_(exc.message, **exc.params), "error")
    return redirect(url_for("registration.mine"), code=303)


@bp.post("/me/events/<event_id>/register", endpoint="register")
@requires("staff", "office", "dept_reviewer")
def register(event_id):
    staff_id = _own_staff_id()
    try:
        now = _register(staff_id, event_id)
    except RegistrationError as exc:
        return _refused(exc)
    if now["state"] == "waiting":
        flash(_("The event is full: you are on the waiting list, number %(n)d.",
                n=now["position"]), "info")
    else:
        flash(_("You are registered."), "info")
    return redirect(url_for("registration.mine"), code=303)


@bp.post("/me/events/<event_id>/cancel", endpoint="cancel")
@requires("staff", "office", "dept_reviewer")
def cancel(event_id):
    staff_id = _own_staff_id()
    try:
        done = _cancel(staff_id, event_id)
    except RegistrationError as exc:
        return _refused(exc)
    if done["was"] in registration.ACTIVE:
        flash(_("Your registration is cancelled."), "info")
    return redirect(url_for("registration.mine"), code=303)


def event_registration(event_id: str) -> dict | None:
    """Template global for the event page: ``registration_lists.overview``."""
    return registration_lists.overview(get_db(), event_id)


# -- the event form's settings (hub/web/events.py) -----------------------------------

def typed_settings(settings: dict | None) -> dict:
    """The form's registration fields for stored ``settings`` (None: off)."""
    if settings is None:
        return {"registration": False, "reg_opens": "", "reg_closes": "", "reg_capacity": "",
                "reg_departments": [], "reg_roles": [], "reg_staff": "", "reg_required": False}
    tz = hospital_tz()

    def wall(ts: str) -> str:
        return datetime.fromisoformat(ts).astimezone(tz).strftime(_FORM_TIME)

    return {"registration": True, "reg_opens": wall(settings["opens_at"]),
            "reg_closes": wall(settings["closes_at"]),
            "reg_capacity": "" if settings["capacity"] is None else str(settings["capacity"]),
            "reg_departments": settings["departments"], "reg_roles": settings["roles"],
            "reg_staff": ", ".join(settings["staff"]), "reg_required": settings["required"]}


def form_settings(form, problems: list, start: datetime | None) -> tuple[dict | None, dict]:
    """(the draft for ``registration.configure``, or None when registration
    is off; the fields as typed). Left empty, registration opens now and
    closes when the event (``start``) starts."""
    typed = {"registration": form.get("registration") == "on",
             "reg_opens": form.get("reg_opens", "").strip(),
             "reg_closes": form.get("reg_closes", "").strip(),
             "reg_capacity": form.get("reg_capacity", "").strip(),
             "reg_departments": form.getlist("reg_departments"),
             "reg_roles": form.getlist("reg_roles"),
             "reg_staff": form.get("reg_staff", "").strip(),
             "reg_required": form.get("reg_required") == "on"}
    if not typed["registration"]:
        return None, typed
    return {"opens_at": wall_clock(typed["reg_opens"], "reg_opens", problems, _now()),
            "closes_at": wall_clock(typed["reg_closes"], "reg_closes", problems, start),
            "capacity": typed["reg_capacity"] or None,
            "departments": typed["reg_departments"], "roles": typed["reg_roles"],
            "staff": events.split_staff_ids(typed["reg_staff"]),
            "required": typed["reg_required"]}, typed


def save_settings(db, event_id: str, draft: dict | None) -> list[str]:
    """Configure (or, ``draft`` None, turn off) the event's registration in the
    caller's transaction; answers who a raised capacity promoted. Raises Invalid."""
    if draft is None:
        if registration.get(db, event_id) is not None:
            registration.remove(db, event_id)
        return []
    return registration.configure(db, event_id, draft, _now())


# -- API ---------------------------------------------------------------------------

def _error(exc: RegistrationError):
    return jsonify(error=str(exc)), STATUS.get(exc.code, 409)


@api.get("/me/registrations")
@requires("staff", "office", "dept_reviewer")
def my_registrations():
    """The events the signed-in person may register for or has registered or
    waits for (as on ``/me/events``), and their feed's URL."""
    staff_id = _own_staff_id()
    return jsonify({"staff_id": staff_id, "feed": feed_link(staff_id),
                    "events": registration_lists.for_person(get_db(), staff_id, _now())})


@api.post("/me/registrations")
@requires("staff", "office", "dept_reviewer")
def api_register():
    """Body ``{"event_id"}``: register (or join the waiting list). 200 with the
    state, already registered or waiting included."""
    staff_id = _own_staff_id()
    event_id = json_object().get("event_id")
    if not isinstance(event_id, str) or not event_id:
        abort(400, description="event_id (text) is required")
    try:
        now = _register(staff_id, event_id)
    except RegistrationError as exc:
        return _error(exc)
    return jsonify({"event_id": event_id, **now})


@api.delete("/me/registrations/<event_id>")
@requires("staff", "office", "dept_reviewer")
def api_cancel(event_id):
    """Cancel the signed-in person's registration or place on the waiting list
    (nothing to cancel: 200 all the same)."""
    staff_id = _own_staff_id()
    try:
        _cancel(staff_id, event_id)
    except RegistrationError as exc:
        return _error(exc)
    return jsonify({"event_id": event_id,
                    **(registration.state_of(get_db(), event_id, staff_id)
                       or {"state": None, "position": None})})


@api.get("/events/<event_id>/registrations")
@requires("office")
def event_registrations(event_id):
    """The event's registration: settings (null when it takes none), counts,
    who is registered in order and the waiting list with positions."""
    db = get_db()
    if events.draft_of(db, event_id) is None:
        abort(404, description=f"unknown event: {event_id}")
    found = registration_lists.overview(db, event_id) or {
        "settings": None, "counts": {"registered": 0, "waiting": 0}, "registered": [],
        "waiting": [], "to_register": None}
    return jsonify({"event_id": event_id, **found})


# -- OpenAPI -----------------------------------------------------------------------

_ref, _ok = openapi.ref, openapi.json_response
_STR, _NUM = openapi.NULLABLE_STR, {"type": ["integer", "null"]}
_STATE = {"enum": [*registration.STATES, None]}
_PERSON = {"type": "object",
           "required": ["staff_id", "name", "department", "queued_at", "changed_at", "via"],
           "properties": {"staff_id": {"type": "string"}, "name": _STR, "department": _STR,
                          "queued_at": {"type": "string", "description": "when they registered"},
                          "changed_at": {"type": "string"},
                          "via": {"type": "string", "description": "hub, or node:<node>"}}}

OPENAPI = {
    "paths": {
        "/api/v1/me/registrations": {
            "get": {"summary": "Events I may register for or registered for, with my state",
                    "tags": ["registration"],
                    "responses": {"200": _ok("My registrations", _ref("MyRegistrations")),
                                  **openapi.SIGNED_IN}},
            "post": {"summary": "Register for an event (or join its waiting list)",
                     "tags": ["registration"],
                     "requestBody": openapi.json_request({
                         "type": "object", "required": ["event_id"],
                         "properties": {"event_id": {"type": "string"}}}),
                     "responses": {"200": _ok("My state now", _ref("RegistrationState")),
                                   **openapi.errors(400, 401, 403, 404, 409)}}},
        "/api/v1/me/registrations/{event_id}": {"delete": {
            "summary": "Cancel my registration or my place on the waiting list",
            "tags": ["registration"], "parameters": [openapi.path_param("event_id")],
            "responses": {"200": _ok("My state now", _ref("RegistrationState")),
                          **openapi.errors(401, 403, 404, 409)}}},
        "/api/v1/events/{event_id}/registrations": {"get": {
            "summary": "An event's registration: settings, registered, waiting list",
            "tags": ["registration"], "parameters": [openapi.path_param("event_id")],
            "responses": {"200": _ok("The registration", _ref("EventRegistrations")),
                          **openapi.errors(404), **openapi.SIGNED_IN}}},
    },
    "schemas": {
        "RegistrationState": {
            "type": "object", "required": ["event_id", "state", "position"],
            "properties": {"event_id": {"type": "string"}, "state": _STATE,
                           "position": {**_NUM, "description": "on the waiting list"}}},
        "MyRegistrations": {
            "type": "object", "required": ["staff_id", "feed", "events"],
            "properties": {
                "staff_id": {"type": "string"},
                "feed": {"type": "string", "description": "iCal feed of my registered events"},
                "events": {"type": "array", "items": {
                    "type": "object",
                    "required": ["event_id", "title", "kind", "zones", "start", "end",
                                 "opens_at", "closes_at", "capacity", "required", "registered",
                                 "waiting", "window", "state", "position", "can_register",
                                 "can_cancel"],
                    "properties": {
                        "event_id": {"type": "string"}, "title": {"type": "string"},
                        "kind": {"type": "string"},
                        "zones": {"type": "array", "items": {"type": "string"}},
                        "start": {"type": "string"}, "end": {"type": "string"},
                        "credit_hours": {"type": "number"},
                        "opens_at": {"type": "string"}, "closes_at": {"type": "string"},
                        "capacity": {**_NUM, "description": "null: no limit"},
                        "required": {"type": "boolean",
                                     "description": "registering is a duty"},
                        "registered": {"type": "integer"}, "waiting": {"type": "integer"},
                        "window": {"enum": ["upcoming", "open", "closed"]},
                        "state": _STATE, "position": _NUM,
                        "can_register": {"type": "boolean"},
                        "can_cancel": {"type": "boolean"}}}}}},
        "RegistrationSettings": {
            "type": "object",
            "required": ["event_id", "opens_at", "closes_at", "capacity", "departments",
                         "roles", "staff", "required"],
            "properties": {
                "event_id": {"type": "string"}, "opens_at": {"type": "string"},
                "closes_at": {"type": "string"}, "capacity": _NUM,
                **{k: {"type": "array", "items": {"type": "string"}}
                   for k in ("departments", "roles", "staff")},
                "required": {"type": "boolean"}}},
        "EventRegistrations": {
            "type": "object",
            "required": ["event_id", "settings", "counts", "registered", "waiting",
                         "to_register"],
            "properties": {
                "event_id": {"type": "string"},
                "settings": {"oneOf": [{"type": "null"}, _ref("RegistrationSettings")]},
                "counts": {"type": "object", "required": ["registered", "waiting"],
                           "properties": {"registered": {"type": "integer"},
                                          "waiting": {"type": "integer"}}},
                "registered": {"type": "array", "items": _PERSON},
                "waiting": {"type": "array", "items": {
                    **_PERSON, "required": [*_PERSON["required"], "position"],
                    "properties": {**_PERSON["properties"],
                                   "position": {"type": "integer"}}}},
                "to_register": {**_NUM, "description": "a required event: who may "
                                                       "register and has not"}}},
    },
}
