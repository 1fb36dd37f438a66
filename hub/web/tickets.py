"""Dashboard area "tickets": the tickets board, a ticket's page and its
moves, the photos of tickets, and the tickets API (GET /api/v1/tickets, GET
/api/v1/tickets/<id>, POST /api/v1/tickets/<id>/transition).

Office and admin see every ticket; a department reviewer only their
department's tickets (and those tickets' photos), and anything else answers
404. A move goes through ``move_ticket``, which audits it in the same
transaction; who moved is the signed-in account, written in the history and
the audit log.
"""

import logging
import re
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

from flask import (Blueprint, Flask, abort, flash, jsonify, redirect,
                   render_template, request, send_file, url_for)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import Conflict

from hub.db import write_transaction
from hub.ingest import photos
from hub.people import roster
from hub.schedule import zones
from hub.tickets import categories, tickets
from hub.tickets.errors import NotFound
from protocol.clock import iso

from hub.web import labels, openapi
from hub.web.auth import actor, audited, department_scope, requires
from hub.web.context import get_db, hospital_tz, photos_dir
from hub.web.params import json_object, number

bp = Blueprint("tickets", __name__)
api = Blueprint("tickets_api", __name__, url_prefix="/api/v1")
log = logging.getLogger(__name__)

PER_PAGE = 200
MAX_PAGE = 100  # 20,000 tickets back; further, narrow the dates
MAX_COMMENT = 2000
PHOTO_MAX_AGE = 86400
_SHA256 = re.compile(r"[0-9a-f]{64}")

STATE_LABELS = {"new": _l("New"), "assigned": _l("Assigned"),
                "in_progress": _l("In progress"), "resolved": _l("Resolved"),
                "closed": _l("Closed"), "rejected": _l("Rejected")}


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(api)


@bp.context_processor
def _labels() -> dict:
    return {"state_labels": STATE_LABELS}


# -- the tickets board ---------------------------------------------------------

class BadFilter(ValueError):
    """A board filter that cannot be applied (the message says why)."""


@bp.get("/tickets/", endpoint="index")
@requires("office", "dept_reviewer")
def tickets_board():
    """Tickets newest first, filtered (see ``_filters``), ``PER_PAGE`` a page."""
    db = get_db()
    try:
        shown, query, page = _filters(request.args)
    except BadFilter as exc:
        return _render_board(db, _shown_as_typed(request.args), [], 1, False, str(exc)), 400
    rows = tickets.list_tickets(db, limit=page * PER_PAGE + 1, **query)
    has_next = len(rows) > page * PER_PAGE
    return _render_board(db, shown, rows[(page - 1) * PER_PAGE:page * PER_PAGE], page, has_next)


def _filters(args) -> tuple[dict, dict, int]:
    """(the filters as the form shows them, ``list_tickets`` arguments, page).

    States default to the open ones until the form is submitted (``f=1``); a
    submitted form with no state ticked means every state. Dates are days in
    the hospital's time zone, bounding ``reported_at`` (both days included).
    A reviewer's department is always their own, whatever the URL says.
    """
    shown = _shown_as_typed(args)
    states = shown["state"] or ([] if args.get("f") else list(tickets.OPEN_STATES))
    unknown = sorted(set(states) - set(tickets.STATES))
    if unknown:
        raise BadFilter(_("Unknown state: %(states)s", states=", ".join(unknown)))
    shown["state"] = states
    scope = department_scope()
    if scope is not None:
        shown["department"] = scope
    query = {"state": states or None, "department": shown["department"] or None,
             "category": shown["category"] or None, "zone": shown["zone"] or None}
    start, end = _day(shown["from"], _("From")), _day(shown["to"], _("To"))
    if start and end and start > end:
        raise BadFilter(_("The first day must not be after the last day."))
    tz = hospital_tz()
    if start:
        query["since"] = iso(datetime.combine(start, time(), tz))
    if end:  # up to the last millisecond of that day (timestamps keep milliseconds)
        query["until"] = iso(datetime.combine(end + timedelta(days=1), time(), tz)
                             - timedelta(milliseconds=1))
    page = args.get("page", "1")
    if not 0 < (number(page) or 0) <= MAX_PAGE:
        raise BadFilter(_("Page must be a number from 1 to %(max)d.", max=MAX_PAGE))
    return shown, query, int(page)


def _shown_as_typed(args) -> dict:
    shown = {name: args.get(name, "").strip()[:64]
             for name in ("department", "category", "zone", "from", "to")}
    shown["state"] = args.getlist("state")
    return shown


def _day(text: str, name: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadFilter(_("%(name)s must be a date (YYYY-MM-DD).", name=name)) from None


def _render_board(db, shown, rows, page, has_next, error=None):
    scope = department_scope()
    if scope is not None:
        shown["department"] = scope
    now = iso(datetime.now(timezone.utc))
    for ticket in rows:
        ticket["overdue"] = ticket["open"] and ticket["due_at"] < now
    args = request.args.to_dict(flat=False)
    pages = {"next": _page_url(args, page + 1) if has_next else None,
             "previous": _page_url(args, page - 1) if page > 1 else None}
    return render_template(
        "tickets_index.html", tickets=rows, shown=shown, error=error, page=page, pages=pages,
        per_page=PER_PAGE, scoped=scope is not None, states=tickets.STATES,
        categories=_categories(db),
        zones={zone: name or zone for zone, name in labels.zone_names(db).items()},
        departments=_departments(db))


def _categories(db) -> dict:
    """Category code -> the words shown (translated seed labels), by those words."""
    return dict(sorted(labels.category_labels(db).items(),
                       key=lambda item: item[1].casefold()))


def _page_url(args: dict, page: int) -> str:
    return url_for("tickets.index", **{**args, "page": page})


def _departments(db) -> dict:
    """Department code -> name: the departments table, plus any department a
    ticket is routed to that the table does not name (read off the
    ``tickets_department`` index)."""
    names = labels.department_names(db)
    for code in tickets.departments_used(db):
        names.setdefault(code, code)
    return dict(sorted(names.items(), key=lambda item: item[1].casefold()))


# -- one ticket -----------------------------------------------------------------

def _visible_ticket(ticket_id: int) -> dict:
    """The ticket with history and reports; 404 when unknown or (for a
    reviewer) routed to another department."""
    found = tickets.get_ticket(get_db(), ticket_id, detail=True)
    scope = department_scope()
    if found is None or (scope is not None and found["department"] != scope):
        abort(404, description=f"unknown ticket: {ticket_id}")
    return found


@bp.get("/tickets/<int:ticket_id>", endpoint="ticket")
@requires("office", "dept_reviewer")
def ticket_page(ticket_id):
    return _render_ticket(_visible_ticket(ticket_id))


@bp.post("/tickets/<int:ticket_id>/transition", endpoint="transition")
@requires("office", "dept_reviewer")
def transition(ticket_id):
    """The ticket page's form: ``to`` and ``comment``. A move the state
    machine does not allow re-renders the page with the reason (409)."""
    ticket = _visible_ticket(ticket_id)
    to, comment = request.form.get("to", ""), request.form.get("comment", "")
    typed = {"to": to, "comment": comment}
    if to not in tickets.STATES:
        return _render_ticket(ticket, _("Choose the state to move the ticket to."), typed), 400
    if len(comment) > MAX_COMMENT:
        return _render_ticket(ticket, _("The comment is longer than %(max)d characters.",
                                        max=MAX_COMMENT), typed), 400
    try:
        move_ticket(ticket_id, to, comment.strip())
    except Conflict:  # not allowed from its state (perhaps just changed by someone else)
        ticket = _visible_ticket(ticket_id)
        return _render_ticket(ticket, _refused(ticket["state"], to), typed), 409
    flash(_("Ticket %(id)s moved to %(state)s.", id=ticket_id, state=STATE_LABELS[to]), "info")
    return redirect(url_for("tickets.ticket", ticket_id=ticket_id), code=303)


def _refused(current: str, to: str) -> str:
    return _("A ticket that is %(current)s cannot be moved to %(to)s.",
             current=STATE_LABELS[current], to=STATE_LABELS[to])


def _render_ticket(ticket: dict, error: str | None = None, typed: dict | None = None):
    db = get_db()
    staff_ids = [r["staff_id"] for r in ticket["reports"]] + [ticket["staff_id"]]
    return render_template(
        "tickets_ticket.html", ticket=ticket, error=error, typed=typed or {},
        moves=tickets.TRANSITIONS[ticket["state"]], photos=tickets.photos_of(db, ticket),
        overdue=ticket["open"] and ticket["due_at"] < iso(datetime.now(timezone.utc)),
        staff=roster.staff_by_id(db, staff_ids),
        category=labels.category_label(ticket["category"],
                                       categories.labels(db).get(ticket["category"])),
        zone=_zone_name(db, ticket["zone"]),
        department=labels.department_names(db).get(ticket["department"], ticket["department"]))


def _zone_name(db, zone: str) -> str:
    found = zones.get_zone(db, zone)
    return found["name"] if found and found["name"] else zone


# -- photos -----------------------------------------------------------------------

@bp.get("/photos/<sha256>.jpg", endpoint="photo")
@requires("office", "dept_reviewer")
def photo(sha256):
    """A received photo by its sha256. Only the path the hub stored for it is
    read, and only when it lies inside the photos directory."""
    if not _SHA256.fullmatch(sha256):
        abort(404, description="unknown photo")
    db = get_db()
    stored = photos.path_of(db, sha256)
    scope = department_scope()
    if scope is not None and not tickets.photo_in_department(db, sha256, scope):
        abort(404, description="unknown photo")
    if not stored and photos.removed_at(db, sha256):
        abort(410, description="this photo was removed under the hospital's retention rules")
    if not stored:
        abort(404, description="unknown photo")
    path = _photo_file(stored)
    if path is None:
        abort(404, description="unknown photo")
    response = send_file(path, mimetype="image/jpeg", etag=sha256, conditional=True)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = f"private, max-age={PHOTO_MAX_AGE}"
    return response


def _photo_file(stored: str) -> Path | None:
    root = photos_dir().resolve()
    try:
        path = Path(stored).resolve(strict=True)
    except (OSError, RuntimeError):
        log.warning("photo file missing: %s", stored)
        return None
    if not path.is_relative_to(root) or not path.is_file():
        log.warning("photo path outside %s refused: %s", root, stored)
        return None
    return path


# -- API ------------------------------------------------------------------------------

@api.get("/tickets")
@requires("office", "dept_reviewer")
def list_tickets():
    """Tickets, newest first: ``?state=&department=&category=&zone=`` (each
    optional, state may be comma-separated), ``limit`` (default 500, max
    5000). Each ticket as ``hub.tickets.tickets.get_ticket``. A reviewer's list is
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


@api.get("/tickets/<int:ticket_id>", endpoint="ticket")
@requires("office", "dept_reviewer")
def one_ticket(ticket_id):
    """One ticket with ``history`` and ``reports`` (its reporters)."""
    return jsonify(_visible_ticket(ticket_id))


@api.post("/tickets/<int:ticket_id>/transition")
@requires("office", "dept_reviewer")
def ticket_transition(ticket_id):
    """Body ``{"to", "comment"?}``; answers the ticket with history.
    400 bad body, 404 unknown ticket, 409 a move the state machine refuses."""
    body = json_object()
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


# -- OpenAPI ----------------------------------------------------------------------------

OPENAPI = {
    "paths": {
        "/api/v1/tickets": {"get": {
            "summary": "Tickets, newest first (a reviewer: their department's)",
            "parameters": [openapi.query("state", "Comma-separated states"),
                           openapi.query("department", ""), openapi.query("category", ""),
                           openapi.query("zone", ""),
                           openapi.query("limit", "1..5000, default 500")],
            "responses": {"200": openapi.json_response("Tickets", {
                              "type": "array", "items": openapi.ref("Ticket")}),
                          **openapi.errors(400), **openapi.SIGNED_IN}}},
        "/api/v1/tickets/{ticket_id}": {"get": {
            "summary": "One ticket with its history and reporters",
            "parameters": [openapi.path_param("ticket_id", {"type": "integer"})],
            "responses": {"200": openapi.json_response("The ticket", openapi.ref("TicketDetail")),
                          **openapi.errors(404), **openapi.SIGNED_IN}}},
        "/api/v1/tickets/{ticket_id}/transition": {"post": {
            "summary": "Move a ticket to another state (as the signed-in account)",
            "parameters": [openapi.path_param("ticket_id", {"type": "integer"})],
            "requestBody": openapi.json_request(openapi.ref("Transition")),
            "responses": {"200": openapi.json_response("The ticket after the move",
                                                       openapi.ref("TicketDetail")),
                          **openapi.errors(400, 404, 409), **openapi.SIGNED_IN}}},
    },
    "schemas": {
        "Ticket": {
            "type": "object",
            "required": ["id", "report_id", "category", "zone", "department", "state",
                         "created_at", "reported_at", "due_at", "updated_at", "staff_id",
                         "reporters", "photos", "open"],
            "properties": {
                "id": {"type": "integer"}, "report_id": {"type": "string"},
                "category": {"type": "string"}, "zone": {"type": "string"},
                "department": {"type": "string"},
                "state": {"enum": ["new", "assigned", "in_progress", "resolved", "closed",
                                   "rejected"]},
                "created_at": {"type": "string"}, "reported_at": {"type": "string"},
                "due_at": {"type": "string"}, "updated_at": {"type": "string"},
                "staff_id": {"type": "string"}, "reporters": {"type": "integer"},
                "lat": openapi.NULLABLE_NUM, "lon": openapi.NULLABLE_NUM,
                "note": openapi.NULLABLE_STR,
                "photos": {"type": "array", "items": {"type": "string"}},
                "source": {"type": "string"}, "open": {"type": "boolean"}}},
        "TicketDetail": {"allOf": [openapi.ref("Ticket"), {
            "type": "object", "required": ["history", "reports"],
            "properties": {
                "history": {"type": "array", "items": {
                    "type": "object",
                    "required": ["at", "who", "from_state", "to_state", "comment"],
                    "properties": {"at": {"type": "string"}, "who": {"type": "string"},
                                   "from_state": openapi.NULLABLE_STR,
                                   "to_state": {"type": "string"},
                                   "comment": {"type": "string"}}}},
                "reports": {"type": "array", "items": {
                    "type": "object", "required": ["report_id", "staff_id", "duplicate"],
                    "properties": {"report_id": {"type": "string"},
                                   "staff_id": {"type": "string"},
                                   "duplicate": {"type": "boolean"},
                                   "matched_by": openapi.NULLABLE_STR,
                                   "taken_at": openapi.NULLABLE_STR}}}}}]},
        "Transition": {
            "type": "object", "required": ["to"],
            "properties": {"to": {"type": "string"},
                           "comment": {"type": "string", "maxLength": 2000}}},
    },
}
