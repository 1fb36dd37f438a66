"""JSON API under /api/v1: health, events, attendance, occupancy, tickets, hours,
hotspots."""

import json
import logging
import sqlite3
from datetime import date, datetime, timedelta, timezone

from flask import Blueprint, Flask, abort, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from hub import attendance, hotspots, hours, occupancy, tickets
from protocol.clock import iso

from . import get_db, hospital_tz, open311

PREFIX = "/api/v1"
bp = Blueprint("api", __name__, url_prefix=PREFIX)
log = logging.getLogger(__name__)


@bp.get("/health")
def health():
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
def event_attendance(event_id):
    """``{"event", "counts": {"present", "partial", "absent", "expected"},
    "attendance": [row, ...]}``; rows as ``hub.attendance.attendance_of``."""
    report = attendance.attendance_report(get_db(), event_id)
    if report is None:
        abort(404, description=f"unknown event: {event_id}")
    return jsonify(report)


OCCUPANCY_DEFAULT = timedelta(hours=2)


@bp.get("/occupancy")
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
# Who may move a ticket or decide hours is not checked yet (roles come with the
# dashboard login): ``who`` is taken from the request body as given.

@bp.get("/tickets")
def list_tickets():
    """Tickets, newest first: ``?state=&department=&category=&zone=`` (each
    optional, state may be comma-separated), ``limit`` (default 500, max
    5000). Each ticket as ``hub.tickets.get_ticket``."""
    filters = {}
    for name in ("state", "department", "category", "zone"):
        value = request.args.get(name)
        if value:
            filters[name] = value.split(",") if name == "state" else value
    bad = set(filters.get("state", ())) - set(tickets.STATES)
    if bad:
        abort(400, description=f"unknown state(s): {', '.join(sorted(bad))}")
    limit = request.args.get("limit", "500")
    if not limit.isdigit() or not 0 < int(limit) <= 5000:
        abort(400, description="limit must be 1..5000")
    return jsonify(tickets.list_tickets(get_db(), limit=int(limit), **filters))


@bp.get("/tickets/<int:ticket_id>")
def ticket(ticket_id):
    """One ticket with ``history`` and ``reports`` (its reporters)."""
    found = tickets.get_ticket(get_db(), ticket_id, detail=True)
    if found is None:
        abort(404, description=f"unknown ticket: {ticket_id}")
    return jsonify(found)


@bp.post("/tickets/<int:ticket_id>/transition")
def ticket_transition(ticket_id):
    """Body ``{"to", "who", "comment"?}``; answers the ticket with history.
    400 bad body, 404 unknown ticket, 409 a move the state machine refuses."""
    body = _json_body()
    to, who, comment = body.get("to"), body.get("who"), body.get("comment", "")
    if to not in tickets.STATES:
        abort(400, description=f"to must be one of {', '.join(tickets.STATES)}")
    if not isinstance(who, str) or not 0 < len(who.strip()) <= 64:
        abort(400, description="who is required (1..64 characters)")
    if not isinstance(comment, str) or len(comment) > 2000:
        abort(400, description="comment must be text of at most 2000 characters")
    db = get_db()
    try:
        tickets.transition(db, ticket_id, to, who.strip(), comment)
    except tickets.NotFound as exc:
        abort(404, description=str(exc))
    except ValueError as exc:
        abort(409, description=str(exc))
    return jsonify(tickets.get_ticket(db, ticket_id, detail=True))


@bp.get("/hours")
def volunteer_hours():
    """``?staff_id=`` (optional) and ``state=`` (optional): ``{"staff_id",
    "totals": [{"staff_id", "approved", "pending", "rejected"}], "entries":
    [...]}``; without staff_id, totals for everyone."""
    staff_id = request.args.get("staff_id") or None
    state = request.args.get("state") or None
    if state is not None and state not in hours.ENTRY_STATES:
        abort(400, description=f"state must be one of {', '.join(hours.ENTRY_STATES)}")
    db = get_db()
    return jsonify(staff_id=staff_id, totals=hours.totals(db, staff_id),
                   entries=hours.entries(db, staff_id, state))


@bp.post("/hours/<int:entry_id>/decision")
def hours_decision(entry_id):
    """Body ``{"approve": true|false, "who"}``; answers the entry. 409 when
    it was already decided."""
    body = _json_body()
    approve, who = body.get("approve"), body.get("who")
    if not isinstance(approve, bool):
        abort(400, description="approve must be true or false")
    if not isinstance(who, str) or not 0 < len(who.strip()) <= 64:
        abort(400, description="who is required (1..64 characters)")
    try:
        return jsonify(hours.decide(get_db(), entry_id, approve, who.strip()))
    except tickets.NotFound as exc:
        abort(404, description=str(exc))
    except ValueError as exc:
        abort(409, description=str(exc))


@bp.get("/hotspots")
def hotspot_analysis():
    """``?weeks=`` (1..52, default 12): ``hub.hotspots.hotspots``."""
    weeks = request.args.get("weeks", "12")
    if not weeks.isdigit() or not 0 < int(weeks) <= 52:
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
            return exc
        if exc.code is not None and exc.code >= 500:
            message = "internal server error"  # never leak the details
        else:
            message = exc.description
        response = exc.get_response()  # keeps headers such as Allow on a 405
        response.set_data(json.dumps({"error": message}))
        response.content_type = "application/json"
        return response


def _is_api(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")
