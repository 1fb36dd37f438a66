"""Dashboard area "hours": the volunteer-hours review (pending entries to
approve or reject, totals per person and department) and its API (GET
/api/v1/hours, POST /api/v1/hours/<id>/decision).

Office and admin see and decide every entry; a department reviewer only
their department's staff's, and anything else answers 404. A decision goes
through ``decide_hours``, which audits it in the same transaction; who
decided is the signed-in account.
"""

from flask import (Blueprint, Flask, abort, flash, jsonify, redirect, render_template, request,
                   url_for)
from flask_babel import gettext as _
from werkzeug.exceptions import Conflict

from hub.db import write_transaction
from hub.people import roster
from hub.tickets import hours

from hub.web import labels, openapi
from hub.web.auth import actor, audited, department_scope, requires
from hub.web.context import get_db
from hub.web.params import json_object

bp = Blueprint("hours", __name__)
api = Blueprint("hours_api", __name__, url_prefix="/api/v1")

PENDING_SHOWN = 500


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(api)


# -- the review page ---------------------------------------------------------------

@bp.get("/hours/", endpoint="index")
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
    return redirect(url_for("hours.index"), code=303)


def _render_hours(error: str | None = None):
    db, scope = get_db(), department_scope()
    pending = hours.entries(db, state="pending", department=scope, limit=PENDING_SHOWN + 1)
    totals = hours.totals(db, department=scope)
    staff = roster.staff_by_id(db, [e["staff_id"] for e in pending]
                               + [t["staff_id"] for t in totals])
    return render_template(
        "hours_index.html", pending=pending[:PENDING_SHOWN],
        more=len(pending) > PENDING_SHOWN, totals=totals, staff=staff, error=error,
        departments=hours.department_totals(db) if scope is None else None,
        department_names=labels.department_names(db))


# -- API ------------------------------------------------------------------------------

@api.get("/hours")
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
    if (scope is not None and staff_id is not None
            and not roster.in_department(db, staff_id, scope)):
        abort(404, description=f"unknown staff member: {staff_id}")
    return jsonify(staff_id=staff_id, totals=hours.totals(db, staff_id, department=scope),
                   entries=hours.entries(db, staff_id, state, department=scope),
                   departments=hours.department_totals(db) if scope is None else [])


@api.post("/hours/<int:entry_id>/decision")
@requires("office", "dept_reviewer")
def hours_decision(entry_id):
    """Body ``{"approve": true|false}``; answers the entry. 409 when it was
    already decided."""
    approve = json_object().get("approve")
    if not isinstance(approve, bool):
        abort(400, description="approve must be true or false")
    return jsonify(decide_hours(entry_id, approve))


def decide_hours(entry_id: int, approve: bool) -> dict:
    """Decide and audit in one transaction; 404 when the entry is unknown or
    (for a reviewer) not their department's, 409 when already decided."""
    db = get_db()
    entry = hours.get_entry(db, entry_id)
    scope = department_scope()
    if entry is None or (scope is not None
                         and not roster.in_department(db, entry["staff_id"], scope)):
        abort(404, description=f"unknown ledger entry: {entry_id}")
    try:
        with write_transaction(db):
            decided = hours.decide(db, entry_id, approve, actor())
            audited("hours.decision", f"hours:{entry_id}", approve=approve,
                    staff_id=entry["staff_id"], hours=entry["hours"])
    except ValueError as exc:
        abort(409, description=str(exc))
    return decided


# -- OpenAPI ----------------------------------------------------------------------------

OPENAPI = {
    "paths": {
        "/api/v1/hours": {"get": {
            "summary": "Volunteer hours: entries and totals",
            "parameters": [openapi.query("staff_id", ""),
                           openapi.query("state", "pending, approved or rejected")],
            "responses": {"200": openapi.json_response("Hours", openapi.ref("Hours")),
                          **openapi.errors(400, 404), **openapi.SIGNED_IN}}},
        "/api/v1/hours/{entry_id}/decision": {"post": {
            "summary": "Approve or reject a pending entry",
            "parameters": [openapi.path_param("entry_id", {"type": "integer"})],
            "requestBody": openapi.json_request(openapi.ref("Decision")),
            "responses": {"200": openapi.json_response("The entry", openapi.ref("HoursEntry")),
                          **openapi.errors(400, 404, 409), **openapi.SIGNED_IN}}},
    },
    "schemas": {
        "HoursEntry": {
            "type": "object",
            "required": ["id", "staff_id", "ticket_id", "report_id", "hours", "state",
                         "created_at", "decided_by", "decided_at"],
            "properties": {
                "id": {"type": "integer"}, "staff_id": {"type": "string"},
                "ticket_id": {"type": "integer"}, "report_id": {"type": "string"},
                "hours": {"type": "number"},
                "state": {"enum": ["pending", "approved", "rejected"]},
                "created_at": {"type": "string"}, "decided_by": openapi.NULLABLE_STR,
                "decided_at": openapi.NULLABLE_STR}},
        "HoursTotals": {
            "type": "object", "required": ["approved", "pending", "rejected"],
            "properties": {"staff_id": {"type": "string"}, "department": {"type": "string"},
                           "approved": {"type": "number"}, "pending": {"type": "number"},
                           "rejected": {"type": "number"}}},
        "Hours": {
            "type": "object", "required": ["staff_id", "totals", "entries", "departments"],
            "properties": {"staff_id": openapi.NULLABLE_STR,
                           "totals": {"type": "array", "items": openapi.ref("HoursTotals")},
                           "entries": {"type": "array", "items": openapi.ref("HoursEntry")},
                           "departments": {"type": "array",
                                           "items": openapi.ref("HoursTotals")}}},
        "Decision": {"type": "object", "required": ["approve"],
                     "properties": {"approve": {"type": "boolean"}}},
    },
}
