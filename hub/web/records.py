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

API: ``GET /api/v1/records`` (the inbox, or ``?staff_id=`` a person's
entries), ``GET /api/v1/records/<id>``, ``POST /api/v1/records`` (file one's
own), ``POST /api/v1/records/<id>/decision``, ``POST
/api/v1/records/<id>/resubmit``, ``POST /api/v1/records/approve`` (bulk),
``GET /api/v1/me/records``.

An entry one may not see answers 404; one seen but not decided by this
account now answers 403 (409 once decided). Every decision, filing and
resubmission is audited in its transaction. The entries the hub files itself
(``hub.records.system``) are filed by the ingest's downlink loop, every few
minutes (hub/ingest/subscriber.py): reading a page never writes.
"""

from datetime import datetime, timezone

from flask import (Blueprint, Flask, abort, current_app, flash, jsonify, redirect,
                   render_template, request, url_for)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from hub.config import review_settings
from hub.db import write_transaction
from hub.people import roster
from hub.records import entries, review, system
from hub.records.errors import Conflict, Forbidden, NotFound, RecordError

from hub.web import labels, openapi
from hub.web.auth import actor, audited, audited_look, requires
from hub.web.context import get_db, hospital_tz
from hub.web.params import json_object, number

bp = Blueprint("records", __name__)
api = Blueprint("records_api", __name__, url_prefix="/api/v1")

DECIDERS = ("dept_reviewer", "branch_reviewer", "committee_reviewer")
REVIEWERS = ("office", *DECIDERS)
LINKED = ("staff", *REVIEWERS)  # any account linked to a staff number has entries
BULK_MAX = 500

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
    app.register_blueprint(api)


@bp.context_processor
def _labels() -> dict:
    return {"kind_labels": KIND_LABELS, "record_states": STATE_LABELS,
            "level_labels": LEVEL_LABELS, "step_labels": STEP_LABELS,
            "self_kinds": entries.SELF_KINDS}


# -- shared ------------------------------------------------------------------------

def _settings() -> dict:
    return review_settings(current_app.config.get("REVIEW"))


def _account() -> dict:
    return {"username": current_user.username, "role": current_user.role,
            "department": current_user.department, "branch": current_user.branch,
            "staff_id": current_user.staff_id}


def _status(exc: RecordError) -> int:
    for kind, status in ((NotFound, 404), (Forbidden, 403), (Conflict, 409)):
        if isinstance(exc, kind):
            return status
    return 400


def says(exc: RecordError) -> str:
    """A domain error in the reader's language."""
    return _(exc.message, **exc.params)


def _own_staff_id() -> str:
    if not current_user.staff_id:
        abort(403, description="this account is not linked to a staff member")
    return current_user.staff_id


def _detail(entry: dict) -> dict:
    """An entry as shown: where it stands, its history, whether this account
    decides it now."""
    db, settings = get_db(), _settings()
    return {**review.shown(entry, settings, datetime.now(timezone.utc)),
            "history": review.history(db, entry["id"], settings),
            "may_decide": review.refusal(_account(), entry, settings) is None}


def _visible(record_id: int) -> dict:
    try:
        return review.visible_entry(get_db(), _account(), record_id)
    except NotFound:
        abort(404, description=f"unknown record entry: {record_id}")


# -- the changes, audited ------------------------------------------------------------

def _decide(record_id: int, action, reason) -> dict:
    db = get_db()
    with write_transaction(db):
        entry = review.decide(db, record_id, _account(), action, reason,
                              settings=_settings())
        _audit_decision(entry, action, reason)
    return entry


def _audit_decision(entry: dict, action: str, reason: str) -> None:
    step = review.history(get_db(), entry["id"], _settings())[-1]
    audited("record.decision", f"record:{entry['id']}", decision=action,
            level=step["level_name"], reason=(reason or "").strip(), staff_id=entry["staff_id"],
            state=entry["state"])


def _approve_many(ids: list[int]) -> tuple[list[dict], list[tuple[int, RecordError]]]:
    """Approve each of ``ids`` this account decides now; the others are
    refused with the reason, in the same transaction."""
    db, settings, account = get_db(), _settings(), _account()
    done, refused = [], []
    with write_transaction(db):
        for record_id in dict.fromkeys(ids):
            try:
                entry = review.decide(db, record_id, account, "approve", settings=settings)
            except RecordError as exc:
                refused.append((record_id, exc))
                continue
            _audit_decision(entry, "approve", "")
            done.append(entry)
    return done, refused


def _file(form: dict) -> dict:
    db, settings = get_db(), _settings()
    with write_transaction(db):
        entry = entries.file_entry(db, _own_staff_id(), form.get("kind"), form.get("title"),
                                   form.get("body"), form.get("occurred_on"), who=actor(),
                                   days=settings["days_per_level"], tz=hospital_tz())
        audited("record.file", f"record:{entry['id']}", kind=entry["kind"],
                staff_id=entry["staff_id"])
    return entry


def _resubmit(record_id: int, form: dict) -> dict:
    db, settings = get_db(), _settings()
    with write_transaction(db):
        entry = entries.resubmit(db, record_id, _own_staff_id(), form.get("title"),
                                 form.get("body"), form.get("occurred_on"), who=actor(),
                                 days=settings["days_per_level"], tz=hospital_tz())
        audited("record.resubmit", f"record:{record_id}", staff_id=entry["staff_id"])
    return entry


# -- pages ---------------------------------------------------------------------------

def _inbox_page(error: str | None = None, status: int = 200):
    db = get_db()
    box = review.inbox(db, _account(), _settings())
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
    if not ids or None in ids or len(ids) > BULK_MAX:
        return _inbox_page(_("Tick the entries to approve."), 400)
    done, refused = _approve_many(ids)
    flash(_("Approved: %(n)d.", n=len(done)), "info")
    for record_id, exc in refused:
        flash(_("Entry %(id)d: %(reason)s", id=record_id, reason=says(exc)), "error")
    return redirect(url_for("records.inbox"), code=303)


def _entry_page(record_id: int, error: str | None = None, status: int = 200,
                form: dict | None = None):
    entry = _detail(_visible(record_id))
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
        entry = _decide(record_id, action, reason)
    except NotFound:
        abort(404, description=f"unknown record entry: {record_id}")
    except RecordError as exc:
        return _entry_page(record_id, says(exc), _status(exc), {"reason": reason})
    flash(_("Entry %(id)d: %(state)s.", id=record_id,
            state=str(STATE_LABELS[entry["state"]])), "info")
    return redirect(url_for("records.inbox"), code=303)


@bp.get("/records/people/<staff_id>", endpoint="person")
@requires(*REVIEWERS)
def person(staff_id):
    db = get_db()
    try:
        found = review.of_staff(db, _account(), staff_id, _settings())
    except NotFound:
        abort(404, description=f"unknown staff member: {staff_id}")
    audited_look("person.view", f"staff:{staff_id}", page="records")
    return render_template("records_person.html", entries=found, staff_id=staff_id,
                           person=roster.staff_by_id(db, [staff_id]).get(staff_id),
                           department_names=labels.department_names(db))


def _mine_page(error: str | None = None, status: int = 200, form: dict | None = None):
    staff_id = _own_staff_id()
    db = get_db()
    mine = [_detail(e) for e in entries.of_staff(db, staff_id)]
    return render_template("records_mine.html", entries=mine, error=error, form=form or {},
                           days=_settings()["days_per_level"]), status


@bp.get("/me/records", endpoint="mine")
@requires(*LINKED)
def mine():
    return _mine_page()


_FIELDS = ("kind", "title", "body", "occurred_on")


@bp.post("/me/records", endpoint="file")
@requires(*LINKED)
def file_form():
    _own_staff_id()
    form = {key: request.form.get(key, "") for key in _FIELDS}
    try:
        _file(form)
    except RecordError as exc:
        return _mine_page(says(exc), _status(exc), form)
    flash(_("Filed. It is now with the first review level."), "info")
    return redirect(url_for("records.mine"), code=303)


@bp.post("/me/records/<int:record_id>/resubmit", endpoint="resubmit")
@requires(*LINKED)
def resubmit(record_id):
    _own_staff_id()
    form = {key: request.form.get(key, "") for key in _FIELDS}
    try:
        _resubmit(record_id, form)
    except NotFound:
        abort(404, description=f"unknown record entry: {record_id}")
    except RecordError as exc:
        return _entry_page(record_id, says(exc), _status(exc), {**form, "id": record_id})
    flash(_("Resubmitted. It starts again at the first review level."), "info")
    return redirect(url_for("records.mine"), code=303)


# -- API -----------------------------------------------------------------------------

def _api_error(exc: RecordError):
    abort(_status(exc), description=str(exc))


@api.get("/records")
@requires(*REVIEWERS)
def list_records():
    """The inbox ``{"staff_id": null, "levels", "entries"}``; with
    ``?staff_id=``, that person's entries (404 outside one's scope)."""
    db, settings, account = get_db(), _settings(), _account()
    box = review.inbox(db, account, settings)
    staff_id = request.args.get("staff_id") or None
    if staff_id is not None:
        try:
            box["entries"] = review.of_staff(db, account, staff_id, settings)
        except RecordError as exc:
            _api_error(exc)
        audited_look("person.view", f"staff:{staff_id}", page="records", via="api")
    return jsonify(staff_id=staff_id, **box)


@api.get("/records/<int:record_id>")
@requires(*LINKED)
def get_record(record_id):
    return jsonify(_detail(_visible(record_id)))


@api.post("/records")
@requires(*LINKED)
def file_record():
    """Body ``{"kind", "title", "body", "occurred_on"}``: one's own entry; 201."""
    _own_staff_id()
    body = json_object()
    try:
        entry = _file({key: body.get(key) for key in _FIELDS})
    except RecordError as exc:
        _api_error(exc)
    return jsonify(_detail(entry)), 201


@api.post("/records/<int:record_id>/decision")
@requires(*DECIDERS)
def record_decision(record_id):
    """Body ``{"action": "approve"|"reject"|"return", "reason"}``."""
    body = json_object()
    try:
        entry = _decide(record_id, body.get("action"), body.get("reason") or "")
    except RecordError as exc:
        _api_error(exc)
    return jsonify(_detail(entry))


@api.post("/records/<int:record_id>/resubmit")
@requires(*LINKED)
def resubmit_record(record_id):
    """Body ``{"title", "body", "occurred_on"}``: a returned entry of one's own."""
    _own_staff_id()
    body = json_object()
    try:
        entry = _resubmit(record_id, {key: body.get(key) for key in _FIELDS})
    except RecordError as exc:
        _api_error(exc)
    return jsonify(_detail(entry))


@api.post("/records/approve")
@requires(*DECIDERS)
def approve_records():
    """Body ``{"ids": [...]}``: approve each one this account decides now."""
    ids = json_object().get("ids")
    if (not isinstance(ids, list) or not ids or len(ids) > BULK_MAX
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids)):
        abort(400, description=f"ids must be a list of 1 to {BULK_MAX} entry ids")
    done, refused = _approve_many(ids)
    return jsonify(approved=[e["id"] for e in done],
                   refused=[{"id": i, "status": _status(exc), "error": str(exc)}
                            for i, exc in refused])


@api.get("/me/records")
@requires(*LINKED)
def my_records():
    staff_id = _own_staff_id()
    return jsonify(staff_id=staff_id,
                   entries=[_detail(e) for e in entries.of_staff(get_db(), staff_id)])


# -- OpenAPI ---------------------------------------------------------------------------

_STR, _INT = {"type": "string"}, {"type": "integer"}
_ID = openapi.path_param("record_id", _INT)
_LEVEL = {"enum": list(review.LEVELS)}

OPENAPI = {
    "paths": {
        "/api/v1/records": {
            "get": {"summary": "A reviewer's inbox (counts per level, the entries waiting at "
                               "the levels they decide), or ?staff_id= a person's entries",
                    "parameters": [openapi.query("staff_id", "A person's entries instead")],
                    "responses": {"200": openapi.json_response("Entries",
                                                               openapi.ref("RecordList")),
                                  **openapi.errors(404), **openapi.SIGNED_IN}},
            "post": {"summary": "File an entry about oneself",
                     "requestBody": openapi.json_request(openapi.ref("NewRecord")),
                     "responses": {"201": openapi.json_response("Filed",
                                                                openapi.ref("RecordDetail")),
                                   **openapi.errors(400, 404), **openapi.SIGNED_IN}}},
        "/api/v1/records/{record_id}": {"get": {
            "summary": "An entry with its whole history",
            "parameters": [_ID],
            "responses": {"200": openapi.json_response("The entry", openapi.ref("RecordDetail")),
                          **openapi.errors(404), **openapi.SIGNED_IN}}},
        "/api/v1/records/{record_id}/decision": {"post": {
            "summary": "Approve, reject or send back an entry at its level",
            "parameters": [_ID],
            "requestBody": openapi.json_request(openapi.ref("RecordDecision")),
            "responses": {"200": openapi.json_response("The entry after",
                                                       openapi.ref("RecordDetail")),
                          **openapi.errors(400, 404, 409), **openapi.SIGNED_IN}}},
        "/api/v1/records/{record_id}/resubmit": {"post": {
            "summary": "Edit and resubmit one's own entry that was sent back",
            "parameters": [_ID],
            "requestBody": openapi.json_request(openapi.ref("RecordEdit")),
            "responses": {"200": openapi.json_response("The entry after",
                                                       openapi.ref("RecordDetail")),
                          **openapi.errors(400, 404, 409), **openapi.SIGNED_IN}}},
        "/api/v1/records/approve": {"post": {
            "summary": "Approve several entries; each is checked on its own",
            "requestBody": openapi.json_request({
                "type": "object", "required": ["ids"],
                "properties": {"ids": {"type": "array", "items": _INT, "minItems": 1,
                                       "maxItems": BULK_MAX}}}),
            "responses": {"200": openapi.json_response("What was approved and refused",
                                                       openapi.ref("RecordBulk")),
                          **openapi.errors(400), **openapi.SIGNED_IN}}},
        "/api/v1/me/records": {"get": {
            "summary": "One's own entries with their history",
            "responses": {"200": openapi.json_response("Entries", {
                "type": "object", "required": ["staff_id", "entries"],
                "properties": {"staff_id": _STR, "entries": {
                    "type": "array", "items": openapi.ref("RecordDetail")}}}),
                **openapi.SIGNED_IN}}},
    },
    "schemas": {
        "RecordEntry": {
            "type": "object",
            "required": [*entries.COLUMNS, "level_name", "overdue"],
            "properties": {
                "id": _INT, "staff_id": _STR, "kind": {"enum": list(entries.KINDS)},
                "title": _STR, "body": _STR, "occurred_on": {"type": "string", "format": "date"},
                "source": {"enum": ["self", "system"]}, "source_ref": openapi.NULLABLE_STR,
                "state": {"enum": list(entries.STATES)},
                "level": {"type": "integer", "description": "Index of the review level"},
                "level_name": _LEVEL, "due_at": openapi.NULLABLE_STR, "created_at": _STR,
                "updated_at": _STR, "overdue": {"type": "boolean"}}},
        "RecordStep": {
            "type": "object", "required": ["id", "level", "level_name", "who", "action",
                                           "reason", "at"],
            "properties": {"id": _INT, "level": {"type": ["integer", "null"]},
                           "level_name": {"enum": [*review.LEVELS, None]}, "who": _STR,
                           "action": {"enum": ["submit", "approve", "reject", "return",
                                               "resubmit"]},
                           "reason": _STR, "at": _STR}},
        "RecordDetail": {"allOf": [openapi.ref("RecordEntry"), {
            "type": "object", "required": ["history", "may_decide"],
            "properties": {"history": {"type": "array", "items": openapi.ref("RecordStep")},
                           "may_decide": {"type": "boolean"}}}]},
        "RecordLevel": {
            "type": "object", "required": ["level", "name", "pending", "overdue", "decides"],
            "properties": {"level": _INT, "name": _LEVEL, "pending": _INT, "overdue": _INT,
                           "decides": {"type": "boolean"}}},
        "RecordList": {
            "type": "object", "required": ["staff_id", "levels", "entries"],
            "properties": {"staff_id": openapi.NULLABLE_STR,
                           "levels": {"type": "array", "items": openapi.ref("RecordLevel")},
                           "entries": {"type": "array", "items": openapi.ref("RecordEntry")}}},
        "NewRecord": {
            "type": "object", "required": ["kind", "title", "occurred_on"],
            "properties": {"kind": {"enum": list(entries.SELF_KINDS)},
                           "title": {"type": "string", "maxLength": entries.TITLE_MAX},
                           "body": {"type": "string", "maxLength": entries.BODY_MAX},
                           "occurred_on": {"type": "string", "format": "date"}}},
        "RecordEdit": {
            "type": "object", "required": ["title", "occurred_on"],
            "properties": {"title": {"type": "string", "maxLength": entries.TITLE_MAX},
                           "body": {"type": "string", "maxLength": entries.BODY_MAX},
                           "occurred_on": {"type": "string", "format": "date"}}},
        "RecordDecision": {
            "type": "object", "required": ["action"],
            "properties": {"action": {"enum": list(review.ACTIONS)},
                           "reason": {"type": "string", "maxLength": review.REASON_MAX,
                                      "description": "Required to reject or send back"}}},
        "RecordBulk": {
            "type": "object", "required": ["approved", "refused"],
            "properties": {"approved": {"type": "array", "items": _INT},
                           "refused": {"type": "array", "items": {
                               "type": "object", "required": ["id", "status", "error"],
                               "properties": {"id": _INT, "status": _INT,
                                              "error": _STR}}}}},
    },
}
