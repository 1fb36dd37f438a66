"""Dashboard area "records": the staff record and its review chain (the
domain is ``hub/records``; who sees and who decides is
``hub.records.review``'s docstring).

Pages:

* ``/records/``: a reviewer's inbox: the entries waiting at the levels they
  decide (the office: at every level, to read), counts per level, overdue
  ones marked, and a form approving the ticked ones at once;
* ``/records/<id>``: an entry with its whole history, the decision form for
  whoever decides it now, and for its owner, once sent back, the edit and
  resubmit form;
* ``/records/people/<staff_id>``: one person's entries, read-only (a look
  at someone's record, audited as ``person.view``);
* ``/me/records``: one's own entries with their history, and the form to
  file a new one (any account linked to a staff number).

The API is hub/web/records_api.py; what both do (the roles ``REVIEWERS``,
``DECIDERS``, ``LINKED``, an entry as shown, the audited changes) is
hub/web/records_actions.py.

An entry one may not see answers 404; one seen but not decided by this
account now answers 403 (409 once decided). Every decision, filing and
resubmission is audited in its transaction. The entries the hub files itself
(``hub.records.system``) are filed by the ingest's downlink loop, every few
minutes (hub/ingest/subscriber.py): reading a page never writes.
"""

from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from hub.people import roster
from hub.records import entries, review
from hub.records.errors import NotFound, RecordError

from hub.web import labels
from hub.web import records_actions as actions
from hub.web.auth import audited_look, requires
from hub.web.context import get_db
from hub.web.params import number
from hub.web.records_actions import DECIDERS, LINKED, REVIEWERS  # hub/web/people.py reads these

bp = Blueprint("records", __name__)

OPENAPI = {"paths": {}, "schemas": {}}  # pages only: the API's is in records_api.py

KIND_LABELS = {
    "good_deed": _l("Good deed"), "thanks_letter": _l("Thank-you letter from a patient"),
    "complaint": _l("Complaint"), "study_reflection": _l("Study reflection"),
    "volunteering": _l("Volunteering outside Rounds"), "attendance": _l("Attended an event"),
    "volunteer_hours": _l("Volunteer hours approved"), "report": _l("Report accepted"),
}
STATE_LABELS = {"pending": _l("Under review"), "approved": _l("Approved"),
                "rejected": _l("Rejected"), "returned": _l("Sent back")}
LEVEL_LABELS = {"department": _l("Department"), "branch": _l("Party branch"),
                "committee": _l("Civility committee")}
STEP_LABELS = {"submit": _l("Filed"), "approve": _l("Approved"), "reject": _l("Rejected"),
               "return": _l("Sent back"), "resubmit": _l("Resubmitted")}


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


@bp.context_processor
def _labels() -> dict:
    return {"kind_labels": KIND_LABELS, "record_states": STATE_LABELS,
            "level_labels": LEVEL_LABELS, "step_labels": STEP_LABELS,
            "self_kinds": entries.SELF_KINDS}


# -- a reviewer's pages ----------------------------------------------------------------

def _inbox_page(error: str | None = None, status: int = 200):
    db = get_db()
    box = review.inbox(db, actions.current_account(), actions.current_settings())
    return render_template(
        "records_inbox.html", box=box, error=error, decides=current_user.may(*DECIDERS),
        staff=roster.staff_by_id(db, [e["staff_id"] for e in box["entries"]]),
        department_names=labels.department_names(db)), status


@bp.get("/records/", endpoint="inbox")
@requires(*REVIEWERS)
def inbox():
    return _inbox_page()


@bp.post("/records/approve", endpoint="approve_many")
@requires(*DECIDERS)
def approve_many():
    ids = [number(value) for value in request.form.getlist("entry")]
    if not ids or None in ids or len(ids) > actions.BULK_MAX:
        return _inbox_page(_("Tick the entries to approve."), 400)
    done, refused = actions.approve_many(ids)
    flash(_("Approved: %(n)d.", n=len(done)), "info")
    for record_id, exc in refused:
        flash(_("Entry %(id)d: %(reason)s", id=record_id, reason=actions.says(exc)), "error")
    return redirect(url_for("records.inbox"), code=303)


def _entry_page(record_id: int, error: str | None = None, status: int = 200,
                form: dict | None = None):
    entry = actions.detail(actions.visible(record_id))
    db = get_db()
    owner = roster.staff_by_id(db, [entry["staff_id"]]).get(entry["staff_id"])
    return render_template(
        "records_entry.html", entry=entry, owner=owner, error=error, form=form or entry,
        mine=entry["staff_id"] == current_user.staff_id,
        department_names=labels.department_names(db)), status


@bp.get("/records/<int:record_id>", endpoint="entry")
@requires(*LINKED)
def entry_page(record_id):
    return _entry_page(record_id)


@bp.post("/records/<int:record_id>/decision", endpoint="decide")
@requires(*DECIDERS)
def decide(record_id):
    """``action`` approve | reject | return, ``reason`` (required but to approve)."""
    action, reason = request.form.get("action", ""), request.form.get("reason", "")
    try:
        entry = actions.decide(record_id, action, reason)
    except NotFound:
        abort(404, description=f"unknown record entry: {record_id}")
    except RecordError as exc:
        return _entry_page(record_id, actions.says(exc), actions.status_of(exc),
                           {"reason": reason})
    flash(_("Entry %(id)d: %(state)s.", id=record_id,
            state=str(STATE_LABELS[entry["state"]])), "info")
    return redirect(url_for("records.inbox"), code=303)


@bp.get("/records/people/<staff_id>", endpoint="person")
@requires(*REVIEWERS)
def person(staff_id):
    db = get_db()
    try:
        found = review.of_staff(db, actions.current_account(), staff_id,
                                actions.current_settings())
    except NotFound:
        abort(404, description=f"unknown staff member: {staff_id}")
    audited_look("person.view", f"staff:{staff_id}", page="records")
    return render_template("records_person.html", entries=found, staff_id=staff_id,
                           person=roster.staff_by_id(db, [staff_id]).get(staff_id),
                           department_names=labels.department_names(db))


# -- one's own entries -------------------------------------------------------------------

def _mine_page(error: str | None = None, status: int = 200, form: dict | None = None):
    staff_id = actions.own_staff_id()
    db = get_db()
    mine = [actions.detail(e) for e in entries.of_staff(db, staff_id)]
    return render_template("records_mine.html", entries=mine, error=error, form=form or {},
                           days=actions.current_settings()["days_per_level"]), status


@bp.get("/me/records", endpoint="mine")
@requires(*LINKED)
def mine():
    return _mine_page()


@bp.post("/me/records", endpoint="file")
@requires(*LINKED)
def file_form():
    actions.own_staff_id()
    form = {key: request.form.get(key, "") for key in actions.FIELDS}
    try:
        actions.file_entry(form)
    except RecordError as exc:
        return _mine_page(actions.says(exc), actions.status_of(exc), form)
    flash(_("Filed. It is now with the first review level."), "info")
    return redirect(url_for("records.mine"), code=303)


@bp.post("/me/records/<int:record_id>/resubmit", endpoint="resubmit")
@requires(*LINKED)
def resubmit(record_id):
    actions.own_staff_id()
    form = {key: request.form.get(key, "") for key in actions.FIELDS}
    try:
        actions.resubmit(record_id, form)
    except NotFound:
        abort(404, description=f"unknown record entry: {record_id}")
    except RecordError as exc:
        return _entry_page(record_id, actions.says(exc), actions.status_of(exc),
                           {**form, "id": record_id})
    flash(_("Resubmitted. It starts again at the first review level."), "info")
    return redirect(url_for("records.mine"), code=303)
