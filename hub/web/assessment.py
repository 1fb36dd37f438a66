"""Dashboard area "assessment" (考核): the year's items and everyone's progress.

- ``/assessment/?year=`` (office and admin; a department reviewer sees their
  department only): the items with their targets, progress per department and
  the list of who is behind the year's pace, for reminders; the office adds or
  changes items with the form there (``/assessment/items``).
- A staff member's own progress is on ``/me`` (hub/web/people.py) and in the
  API ``/api/v1/me/assessment``.
- ``/api/v1/assessment?year=`` the items, per-department progress and who is
  behind (in the caller's scope).

The rules are in ``hub.assessment``: confirmed counts only what passed the
review chain; pending is what waits for it.
"""

from datetime import datetime, timezone

from flask import Blueprint, Flask, abort, flash, jsonify, redirect, render_template, request, \
    url_for
from flask_babel import gettext as _
from flask_login import current_user

from hub.assessment import items, progress
from hub.assessment.items import ItemError
from hub.db import write_transaction
from hub.schedule.events import KINDS as EVENT_KINDS
from hub.web import labels, openapi
from hub.web.auth import OWN_RECORD, audited, department_scope, requires
from hub.web.context import get_db, hospital_tz

N_ = str  # marks a message for extraction; translated where it is shown
bp = Blueprint("assessment", __name__)
api = Blueprint("assessment_api", __name__, url_prefix="/api/v1")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(api)


def _year() -> int:
    text = request.args.get("year") or request.form.get("year") or ""
    if not text:
        return datetime.now(hospital_tz()).year
    if not text.isdigit() or not 2000 <= int(text) <= 2100:
        abort(400, description="year must be a year from 2000 to 2100")
    return int(text)


def _overview(year: int) -> dict:
    """Items, per-department progress and who is behind, in the caller's scope."""
    db = get_db()
    scope = department_scope()
    departments = progress.departments_of_staff(db)
    mine = None if scope is None else [s for s, d in departments.items() if d == scope]
    now = datetime.now(timezone.utc)
    rows = progress.progress(db, year, hospital_tz(), now, mine)
    late = [r for r in progress.behind(db, year, hospital_tz(), now)
            if scope is None or r["department"] == scope]
    return {"year": year, "items": items.of_year(db, year),
            "departments": progress.by_department(rows, departments), "behind": late,
            "year_gone": round(progress.year_gone(year, hospital_tz(), now), 3)}


@bp.get("/assessment/", endpoint="index")
@requires("office", "dept_reviewer")
def index():
    year = _year()
    return render_template("assessment_index.html", **_overview(year),
                           measures=items.MEASURES, event_kinds=EVENT_KINDS,
                           department_names=labels.department_names(get_db()),
                           may_edit=current_user.may("office"))


def _form_item(form) -> dict:
    def number(name):
        try:
            return float(form.get(name, ""))
        except ValueError:
            raise ItemError(N_("%(field)s must be a number."), field=name) from None
    targets = {}
    for line in form.get("targets", "").splitlines():
        if line.strip():
            key, _sep, value = line.partition("=")
            try:
                targets[key.strip()] = float(value)
            except ValueError:
                raise ItemError(N_("Targets are numbers of 0 or more (%(key)s)."),
                                key=key.strip()) from None
    return {"item_id": form.get("id", "").strip(), "title": form.get("title", ""),
            "measure": form.get("measure", ""), "target": number("target"),
            "title_en": form.get("title_en") or None,
            "event_kinds": form.getlist("event_kinds"),
            "entry_kinds": [k for k in form.get("entry_kinds", "").replace(",", " ").split()],
            "targets": targets}


@bp.post("/assessment/items", endpoint="save_item")
@requires("office")
def save_item():
    year = _year()
    db = get_db()
    try:
        draft = _form_item(request.form)
        with write_transaction(db):
            item = items.save(db, year, draft.pop("item_id"), draft.pop("title"),
                              draft.pop("measure"), draft.pop("target"), **draft)
            audited("assessment.item", f"assessment:{year}:{item['id']}",
                    measure=item["measure"], per_person=item["target"])
    except ItemError as exc:
        flash(_(exc.message, **exc.params), "error")
        return redirect(url_for("assessment.index", year=year), code=303)
    flash(_("Assessment item %(title)s saved.", title=item["title"]), "info")
    return redirect(url_for("assessment.index", year=year), code=303)


def own_progress(staff_id: str, year: int | None = None) -> dict:
    """A staff member's progress for their own page (hub/web/people.py)."""
    year = year or datetime.now(hospital_tz()).year
    rows = progress.progress(get_db(), year, hospital_tz(), staff_ids=[staff_id])
    return {"year": year, "rows": rows.get(staff_id, [])}


@api.get("/assessment")
@requires("office", "dept_reviewer")
def api_overview():
    return jsonify(_overview(_year()))


@api.get("/me/assessment")
@requires(*OWN_RECORD)
def api_mine():
    if not current_user.staff_id:
        abort(403, description="this account is not linked to a staff member")
    return jsonify(own_progress(current_user.staff_id, _year()))


_ROW = {"type": "object", "required": ["item", "target", "confirmed", "pending", "done"],
        "properties": {"item": {"type": "string"}, "title": {"type": "string"},
                       "title_en": openapi.NULLABLE_STR, "measure": {"type": "string"},
                       "target": {"type": "number"}, "confirmed": {"type": "number"},
                       "pending": {"type": "number"}, "ratio": {"type": "number"},
                       "done": {"type": "boolean"}}}
OPENAPI = {
    "paths": {
        "/api/v1/assessment": {"get": {
            "summary": "The year's assessment items, progress per department, who is behind",
            "parameters": [openapi.query("year", "the year, default this one")],
            "responses": {"200": openapi.json_response("Overview",
                                                       openapi.ref("AssessmentOverview")),
                          **openapi.errors(400), **openapi.SIGNED_IN}}},
        "/api/v1/me/assessment": {"get": {
            "summary": "My progress against the year's assessment items",
            "parameters": [openapi.query("year", "the year, default this one")],
            "responses": {"200": openapi.json_response("My progress",
                                                       openapi.ref("AssessmentMine")),
                          **openapi.errors(400), **openapi.SIGNED_IN}}},
    },
    "schemas": {
        "AssessmentOverview": {
            "type": "object",
            "required": ["year", "items", "departments", "behind", "year_gone"],
            "properties": {"year": {"type": "integer"}, "year_gone": {"type": "number"},
                           "items": {"type": "array", "items": {"type": "object"}},
                           "departments": {"type": "array", "items": {"type": "object"}},
                           "behind": {"type": "array", "items": {"type": "object"}}}},
        "AssessmentMine": {
            "type": "object", "required": ["year", "rows"],
            "properties": {"year": {"type": "integer"},
                           "rows": {"type": "array", "items": _ROW}}},
    },
}
