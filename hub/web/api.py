"""JSON API under /api/v1: health, events, attendance, occupancy, tickets, hours,
hotspots."""

import json
import logging
import sqlite3
from datetime import date, datetime, timedelta, timezone

from flask import Blueprint, Flask, abort, current_app, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from hub.attendance import attendance, occupancy
from hub.db import write_transaction
from hub.tickets import hotspots, hours, tickets
from hub.tickets.errors import NotFound
from protocol.clock import iso

from hub.web import open311
from hub.web.auth import actor, audited, department_scope, requires
from hub.web.context import get_db, hospital_tz
from hub.web.params import number

PREFIX = "/api/v1"
bp = Blueprint("api", __name__, url_prefix=PREFIX)
log = logging.getLogger(__name__)


@bp.get("/health")
def health():
    """Open to anyone who can reach the hub (monitoring): counts only."""
    site = current_app.config["SITE"]
    try:
        db = get_db()
        nodes = attendance.node_counts(db)
        quarantine = attendance.quarantine_count(db)
    except sqlite3.Error:
        log.exception("health: hub database unavailable")
        return jsonify(ok=False, site=site, db="error"), 503
    return jsonify(ok=True, site=site, db="ok", nodes=nodes, quarantine=quarantine)


@bp.get("/events")
@requires("office")
def events():
    day = request.args.get("date")
    if day is None:
        return jsonify(attendance.list_events(get_db()))
    try:
        day = date.fromisoformat(day)
    except ValueError:
        abort(400, description="date must be YYYY-MM-DD")
    return jsonify(attendance.list_events(get_db(), day, hospital_tz()))


@bp.get("/events/<event_id>/attendance")
@requires("office")
def event_attendance(event_id):
    """``{"event", "counts": {"present", "partial", "absent", "expected"},
    "attendance": [row, ...]}``; rows as ``hub.attendance.attendance_of``."""
    report = attendance.attendance_report(get_db(), event_id)
    if report is None:
        abort(404, description=f"unknown event: {event_id}")
    return jsonify(report)


OCCUPANCY_DEFAULT = timedelta(hours=2)


@bp.get("/occupancy")
@requires("office")
def zone_occupancy():
    """Devices per zone and minute: ``?zone=<zone>&from=<iso>&to=<iso>``, all
    optional (every zone; the last 2 hours). Times are ISO 8601 with a UTC
    offset or ``Z``; the range is at most 31 days. Answers ``{"zone", "from",
    "to", "occupancy": [{"zone", "minute", "devices"}, ...]}``."""
    now = datetime.now(timezone.utc)
    zone = request.args.get("zone")
    if zone is not None and not 0 < len(zone) <= 64:
        abort(400, description="zone must be 1..64 characters")
    end = _instant("to", now)
    start = _instant("from", end - OCCUPANCY_DEFAULT)
    if start >= end:
        abort(400, description="from must be before to")
    if end - start > occupancy.MAX_RANGE:
        abort(400, description=f"from..to spans at most {occupancy.MAX_RANGE.days} days")
    return jsonify(zone=zone, **{"from": iso(start), "to": iso(end)},
                   occupancy=occupancy.occupancy(get_db(), start, end, zone))


def _instant(name: str, default: datetime) -> datetime:
    text = request.args.get(name)
    if text is None:
        return default
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        abort(400, description=f"{name} must be an ISO 8601 time, e.g. 2025-03-10T09:00:00Z")
    if value.tzinfo is None:
        abort(400, description=f"{name} needs a time zone (Z, or +08:00 written %2B08:00)")
    if not 1970 <= value.year <= 9998:
        abort(400, description=f"{name} is out of range")
    return value


# -- tickets, volunteer hours, hotspots ---------------------------------------
# Office and admin see everything; a department reviewer sees and moves only
# the tickets routed to their department and decides only their staff's hours.
# Who acted is the signed-in account, written in the history and audit log.

def _visible_ticket(ticket_id: int) -> dict:
    found = tickets.get_ticket(get_db(), ticket_id, detail=True)
    scope = department_scope()
    if found is None or (scope is not None and found["department"] != scope):
        abort(404, description=f"unknown ticket: {ticket_id}")
    return found


@bp.get("/tickets")
@requires("office", "dept_reviewer")
def list_tickets():
    """Tickets, newest first: ``?state=&department=&category=&zone=`` (each
    optional, state may be comma-separated), ``limit`` (default 500, max
    5000). Each ticket as ``hub.tickets.get_ticket``. A reviewer's list is
    always their department's."""
    filters = {}
    for name in ("state", "department", "category", "zone"):
        value = request.args.get(name)
        if value:
            filters[name] = value.split(",") if name == "state" else value
    if department_scope() is not None:
        filters["department"] = department_scope()
    bad = set(filters.get("state", ())) - set(tickets.STATES)
    if bad:
        abort(400, description=f"unknown state(s): {', '.join(sorted(bad))}")
    limit = request.args.get("limit", "500")
    if not 0 < (number(limit) or 0) <= 5000:
        abort(400, description="limit must be 1..5000")
    return jsonify(tickets.list_tickets(get_db(), limit=int(limit), **filters))


@bp.get("/tickets/<int:ticket_id>")
@requires("office", "dept_reviewer")
def ticket(ticket_id):
    """One ticket with ``history`` and ``reports`` (its reporters)."""
    return jsonify(_visible_ticket(ticket_id))


@bp.post("/tickets/<int:ticket_id>/transition")
@requires("office", "dept_reviewer")
def ticket_transition(ticket_id):
    """Body ``{"to", "comment"?}``; answers the ticket with history.
    400 bad body, 404 unknown ticket, 409 a move the state machine refuses."""
    body = _json_body()
    to, comment = body.get("to"), body.get("comment", "")
    if to not in tickets.STATES:
        abort(400, description=f"to must be one of {', '.join(tickets.STATES)}")
    if not isinstance(comment, str) or len(comment) > 2000:
        abort(400, description="comment must be text of at most 2000 characters")
    _visible_ticket(ticket_id)
    move_ticket(ticket_id, to, comment)
    return jsonify(tickets.get_ticket(get_db(), ticket_id, detail=True))


def move_ticket(ticket_id: int, to: str, comment: str) -> None:
    """Transition and audit in one transaction; 404/409 as HTTP errors."""
    db = get_db()
    try:
        with write_transaction(db):
            before = tickets.get_ticket(db, ticket_id)
            tickets.transition(db, ticket_id, to, actor(), comment)
            audited("ticket.transition", f"ticket:{ticket_id}",
                    **{"from": before["state"] if before else None, "to": to})
    except NotFound as exc:
        abort(404, description=str(exc))
    except ValueError as exc:
        abort(409, description=str(exc))


@bp.get("/hours")
@requires("office", "dept_reviewer")
def volunteer_hours():
    """``?staff_id=`` (optional) and ``state=`` (optional): ``{"staff_id",
    "totals": [{"staff_id", "approved", "pending", "rejected"}], "entries":
    [...], "departments": [{"department", "approved", "pending",
    "rejected"}]}``; without staff_id, totals for everyone (a reviewer: their
    department's staff; ``departments`` is empty for them)."""
    staff_id = request.args.get("staff_id") or None
    state = request.args.get("state") or None
    if state is not None and state not in hours.ENTRY_STATES:
        abort(400, description=f"state must be one of {', '.join(hours.ENTRY_STATES)}")
    db = get_db()
    scope = department_scope()
    if scope is not None and staff_id is not None and not in_department(staff_id, scope):
        abort(404, description=f"unknown staff member: {staff_id}")
    return jsonify(staff_id=staff_id, totals=hours.totals(db, staff_id, department=scope),
                   entries=hours.entries(db, staff_id, state, department=scope),
                   departments=hours.department_totals(db) if scope is None else [])


def in_department(staff_id: str, department: str) -> bool:
    return get_db().conn.execute("SELECT 1 FROM staff WHERE staff_id = ? AND department = ?",
                                 (staff_id, department)).fetchone() is not None


@bp.post("/hours/<int:entry_id>/decision")
@requires("office", "dept_reviewer")
def hours_decision(entry_id):
    """Body ``{"approve": true|false}``; answers the entry. 409 when it was
    already decided."""
    approve = _json_body().get("approve")
    if not isinstance(approve, bool):
        abort(400, description="approve must be true or false")
    return jsonify(decide_hours(entry_id, approve))


def decide_hours(entry_id: int, approve: bool) -> dict:
    """Decide and audit in one transaction; 404 when the entry is unknown or
    (for a reviewer) not their department's, 409 when already decided."""
    db = get_db()
    entry = hours.get_entry(db, entry_id)
    scope = department_scope()
    if entry is None or (scope is not None and not in_department(entry["staff_id"], scope)):
        abort(404, description=f"unknown ledger entry: {entry_id}")
    try:
        with write_transaction(db):
            decided = hours.decide(db, entry_id, approve, actor())
            audited("hours.decision", f"hours:{entry_id}", approve=approve,
                    staff_id=entry["staff_id"], hours=entry["hours"])
    except ValueError as exc:
        abort(409, description=str(exc))
    return decided


@bp.get("/hotspots")
@requires("office", "dept_reviewer")
def hotspot_analysis():
    """``?weeks=`` (1..52, default 12): ``hub.hotspots.hotspots``."""
    weeks = request.args.get("weeks", "12")
    if not 0 < (number(weeks) or 0) <= 52:
        abort(400, description="weeks must be 1..52")
    return jsonify(hotspots.hotspots(get_db(), weeks=int(weeks)))


def _json_body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, description="expected a JSON object body")
    return body


def register_error_handlers(app: Flask) -> None:
    """Errors on /api/v1 paths answer JSON ``{"error": ...}``; pages keep HTML.

    Registered on the app, not the blueprint, so that a URL under /api/v1
    that matches no route (a 404 before any blueprint is chosen) is JSON too.
    """

    @app.errorhandler(HTTPException)
    def api_error(exc: HTTPException):
        if open311.is_open311(request.path):
            return open311.error_response(exc)
        if not _is_api(request.path):
            return _error_page(exc)
        if exc.code is not None and exc.code >= 500:
            message = "internal server error"  # never leak the details
        else:
            message = exc.description
        response = exc.get_response()  # keeps headers such as Allow on a 405
        response.set_data(json.dumps({"error": message}))
        response.content_type = "application/json"
        return response


# Dashboard errors with a page in the reader's language (error.html); any
# other (405, 413, 429, 5xx, ...) keeps Werkzeug's own.
ERROR_PAGES = (400, 403, 404, 409)


def _error_page(exc: HTTPException):
    """A page's 400/403/404/409 as a translated page (``error.html``): the
    reason given to ``abort`` is shown as detail; Werkzeug's generic English
    description is not. An error that carries its own response keeps it."""
    if exc.code not in ERROR_PAGES or exc.response is not None:
        return exc
    if isinstance(exc, CSRFError):
        detail = _("The form has expired or came from another page (CSRF check failed): "
                   "reload the page and send it again.")
    else:
        detail = exc.description if exc.description != type(exc).description else None
    return render_template("error.html", code=exc.code, detail=detail), exc.code


def _is_api(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")
