"""Dashboard area "board": the tickets board and a ticket's page, the photos
of tickets, and the volunteer-hours review (pages only: their JSON API is in
``hub.web.api``).

Office and admin see every ticket and hour entry; a department reviewer only
their department's tickets (and those tickets' photos) and their department's
staff's hours, and anything else answers 404. State changes go through
``hub.web.api`` (``move_ticket``, ``decide_hours``), which audit them in the
same transaction.
"""

import json
import logging
import re
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

from flask import (Blueprint, Flask, abort, current_app, flash, redirect, render_template,
                   request, send_file, url_for)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import Conflict

from hub.tickets import hours, tickets
from protocol.clock import iso

from hub.web import labels
from hub.web.api import decide_hours, move_ticket
from hub.web.auth import department_scope, requires
from hub.web.context import get_db, hospital_tz
from hub.web.params import number

bp = Blueprint("board", __name__)
log = logging.getLogger(__name__)

PER_PAGE = 200
MAX_PAGE = 100  # 20,000 tickets back; further, narrow the dates
PENDING_SHOWN = 500
MAX_COMMENT = 2000
PHOTO_MAX_AGE = 86400
_SHA256 = re.compile(r"[0-9a-f]{64}")

STATE_LABELS = {"new": _l("New"), "assigned": _l("Assigned"),
                "in_progress": _l("In progress"), "resolved": _l("Resolved"),
                "closed": _l("Closed"), "rejected": _l("Rejected")}


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


@bp.context_processor
def _labels() -> dict:
    return {"state_labels": STATE_LABELS}


# -- the tickets board ---------------------------------------------------------

class BadFilter(ValueError):
    """A board filter that cannot be applied (the message says why)."""


@bp.get("/tickets/", endpoint="tickets")
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
        "board_tickets.html", tickets=rows, shown=shown, error=error, page=page, pages=pages,
        per_page=PER_PAGE, scoped=scope is not None, states=tickets.STATES,
        categories=_categories(db),
        zones=_names(db, "SELECT zone, name FROM zones ORDER BY name, zone"),
        departments=_departments(db))


def _categories(db) -> dict:
    """Category code -> the words shown (translated seed labels), by those words."""
    return dict(sorted(labels.category_labels(db).items(),
                       key=lambda item: item[1].casefold()))


def _page_url(args: dict, page: int) -> str:
    return url_for("board.tickets", **{**args, "page": page})


def _names(db, sql: str, params=()) -> dict:
    return {key: name or key for key, name in db.conn.execute(sql, params)}


def _departments(db) -> dict:
    """Department code -> name: the departments table, plus any department a
    ticket is routed to that the table does not name (read off the
    ``tickets_department`` index)."""
    names = _names(db, "SELECT department, name FROM departments")
    for (code,) in db.conn.execute("SELECT DISTINCT department FROM tickets"):
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
    return redirect(url_for("board.ticket", ticket_id=ticket_id), code=303)


def _refused(current: str, to: str) -> str:
    return _("A ticket that is %(current)s cannot be moved to %(to)s.",
             current=STATE_LABELS[current], to=STATE_LABELS[to])


def _render_ticket(ticket: dict, error: str | None = None, typed: dict | None = None):
    db = get_db()
    staff_ids = [r["staff_id"] for r in ticket["reports"]] + [ticket["staff_id"]]
    return render_template(
        "board_ticket.html", ticket=ticket, error=error, typed=typed or {},
        moves=tickets.TRANSITIONS[ticket["state"]], photos=_ticket_photos(db, ticket),
        overdue=ticket["open"] and ticket["due_at"] < iso(datetime.now(timezone.utc)),
        staff=_staff(db, staff_ids),
        category=labels.category_label(ticket["category"], _names(
            db, "SELECT category, label FROM category_settings WHERE category = ?",
            (ticket["category"],)).get(ticket["category"])),
        zone=_names(db, "SELECT zone, name FROM zones WHERE zone = ?",
                    (ticket["zone"],)).get(ticket["zone"], ticket["zone"]),
        department=_departments_named(db, ticket["department"]))


def _departments_named(db, code: str) -> str:
    row = db.conn.execute("SELECT name FROM departments WHERE department = ?",
                          (code,)).fetchone()
    return row[0] if row and row[0] else code


# Every photo of every report on a ticket (the original's first), and whether
# a photo belongs to some ticket of a department.
_TICKET_PHOTOS = (
    "SELECT p.value FROM ticket_reports tr JOIN reports r ON r.report_id = tr.report_id, "
    "json_each(r.photos) p WHERE tr.ticket_id = ? ORDER BY tr.duplicate, tr.attached_at")
_PHOTO_IN_DEPARTMENT = (
    "SELECT 1 FROM tickets t JOIN ticket_reports tr ON tr.ticket_id = t.id "
    "JOIN reports r ON r.report_id = tr.report_id, json_each(r.photos) p "
    "WHERE t.department = ? AND p.value = ? LIMIT 1")


def _ticket_photos(db, ticket: dict) -> list[str]:
    seen = list(ticket["photos"])
    for (sha,) in db.conn.execute(_TICKET_PHOTOS, (ticket["id"],)):
        if sha not in seen:
            seen.append(sha)
    return seen


def _staff(db, staff_ids) -> dict:
    """staff_id -> {"name", "department"} for those in the roster."""
    rows = db.conn.execute(
        "SELECT staff_id, name, department FROM staff "
        "WHERE staff_id IN (SELECT value FROM json_each(?))",
        (_json_list(staff_ids),))
    return {sid: {"name": name, "department": dept} for sid, name, dept in rows}


def _json_list(values) -> str:
    return json.dumps(sorted(set(values)))


# -- photos -----------------------------------------------------------------------

@bp.get("/photos/<sha256>.jpg", endpoint="photo")
@requires("office", "dept_reviewer")
def photo(sha256):
    """A received photo by its sha256. Only the path the hub stored for it is
    read, and only when it lies inside the photos directory."""
    if not _SHA256.fullmatch(sha256):
        abort(404, description="unknown photo")
    db = get_db()
    row = db.conn.execute("SELECT path FROM photos WHERE sha256 = ?", (sha256,)).fetchone()
    scope = department_scope()
    if row is None or not row[0] or (
            scope is not None
            and db.conn.execute(_PHOTO_IN_DEPARTMENT, (scope, sha256)).fetchone() is None):
        abort(404, description="unknown photo")
    path = _photo_file(row[0])
    if path is None:
        abort(404, description="unknown photo")
    response = send_file(path, mimetype="image/jpeg", etag=sha256, conditional=True)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = f"private, max-age={PHOTO_MAX_AGE}"
    return response


def photos_dir() -> Path:
    """Where ingest stores photos (``hub.photos.store``): the configured
    ``photos_dir``, else ``photos`` beside the database."""
    configured = current_app.config.get("PHOTOS_DIR")
    return Path(configured) if configured else Path(current_app.config["HUB_DB"]).parent / "photos"


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


# -- volunteer hours ----------------------------------------------------------------

@bp.get("/hours/", endpoint="hours")
@requires("office", "dept_reviewer")
def hours_page():
    return _render_hours()


@bp.post("/hours/<int:entry_id>/decision", endpoint="decide")
@requires("office", "dept_reviewer")
def decide(entry_id):
    """Approve or reject a pending entry (``decision`` = approve|reject)."""
    decision = request.form.get("decision")
    if decision not in ("approve", "reject"):
        return _render_hours(_("Choose approve or reject.")), 400
    try:
        entry = decide_hours(entry_id, decision == "approve")
    except Conflict:
        return _render_hours(_("That entry was already decided.")), 409
    if entry["state"] == "approved":
        flash(_("Approved %(hours)s h for %(staff)s.", hours=labels.hours(entry["hours"]),
                staff=entry["staff_id"]), "info")
    else:
        flash(_("Rejected %(hours)s h for %(staff)s.", hours=labels.hours(entry["hours"]),
                staff=entry["staff_id"]), "info")
    return redirect(url_for("board.hours"), code=303)


def _render_hours(error: str | None = None):
    db, scope = get_db(), department_scope()
    pending = hours.entries(db, state="pending", department=scope, limit=PENDING_SHOWN + 1)
    totals = hours.totals(db, department=scope)
    staff = _staff(db, [e["staff_id"] for e in pending] + [t["staff_id"] for t in totals])
    return render_template(
        "board_hours.html", pending=pending[:PENDING_SHOWN],
        more=len(pending) > PENDING_SHOWN, totals=totals, staff=staff, error=error,
        departments=hours.department_totals(db) if scope is None else None,
        department_names=_names(db, "SELECT department, name FROM departments"))


# No JSON API of its own (tickets and hours are in ``hub.web.api``).
OPENAPI = {"paths": {}, "schemas": {}}
