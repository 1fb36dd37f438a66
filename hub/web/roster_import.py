"""Dashboard area: importing the roster from a CSV file, office and admin (see
docs/dashboard.md and the domain in ``hub/people/roster_import.py``).

The upload form is on the roster page (``/staff/``). An upload is previewed
first (each row's action and every row error) and nothing is written; the
preview's confirm form posts the same CSV back (a hidden base64 field, under
the page's CSRF token) and it is applied in one transaction only if no row
has an error. ``POST /api/v1/staff/import`` does the same for scripts
(``?dry_run=1`` to only plan). Every applied import is audited with its
counts.
"""

import base64
import binascii

from flask import (Blueprint, Flask, abort, flash, jsonify, redirect, render_template, request,
                   url_for)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from hub.db import write_transaction
from hub.people import roster, roster_import
from hub.web.auth import audited, requires
from hub.web.context import get_db
from hub.web.openapi import SIGNED_IN, errors, json_response, query, ref
from hub.web.params import json_object
from hub.web.roster import may_grant_admin, says

bp = Blueprint("roster_import", __name__)
api = Blueprint("roster_import_api", __name__, url_prefix="/api/v1")

ACTION_LABELS = {"new": _l("new"), "update": _l("update"), "unchanged": _l("unchanged"),
                 "invalid": _l("error")}
_FORMS = ("roster_import.preview", "roster_import.confirm")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(api)
    # First of all before-request hooks, as the CSRF check parses the form: a
    # roster pasted into the (multipart) upload form may be larger than
    # Flask's default limit for a non-file field, 500 kB.
    app.before_request_funcs.setdefault(None, []).insert(0, _roster_form_limit)


def _roster_form_limit() -> None:
    if request.endpoint in _FORMS:
        request.max_form_memory_size = 2 * roster_import.MAX_IMPORT_BYTES


def _import_page(result, text: str | None, status: int, error: str | None = None):
    issues = [{"line": i.line, "field": i.field, "reason": _(i.message, **i.params)}
              for i in result.issues] if result else []
    payload = base64.b64encode(text.encode()).decode() if text is not None else None
    return render_template("roster_import.html", result=result, issues=issues,
                           payload=payload, error=error, actions=ACTION_LABELS), status


@bp.post("/staff/import")
@requires("office")
def preview():
    """Upload (file or pasted text) -> the preview; nothing is written."""
    if (request.content_length or 0) > 2 * roster_import.MAX_IMPORT_BYTES:
        return _import_page(None, None, 413, _("The file is larger than %(n)d MB.",
                                               n=roster_import.MAX_IMPORT_BYTES // 2**20))
    upload = request.files.get("csv_file")
    data = upload.read() if upload and upload.filename else request.form.get("csv_text", "")
    if not data or (isinstance(data, str) and not data.strip()):
        return _import_page(None, None, 400, _("Choose a CSV file or paste the roster."))
    try:
        text = roster_import.decode_csv(data) if isinstance(data, bytes) else data
    except roster.RosterError as exc:
        return _import_page(None, None, 400, says(exc))
    result = roster_import.import_roster(get_db(), text, apply=False,
                                         may_grant_admin=may_grant_admin())
    return _import_page(result, text, 422 if result.issues else 200)


@bp.post("/staff/import/confirm")
@requires("office")
def confirm():
    """The previewed CSV, posted back: applied all or nothing."""
    try:
        text = base64.b64decode(request.form.get("csv", ""), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return _import_page(None, None, 400, _("The confirmation lost its roster; upload "
                                               "the file again."))
    result = _apply_import(text)
    if not result.applied:
        return _import_page(result, text, 422, _("Nothing was imported: fix the rows below "
                                                 "and upload the file again."))
    counts = result.counts
    flash(_("Roster imported: %(new)d new, %(update)d updated, %(unchanged)d unchanged.",
            new=counts["new"], update=counts["update"], unchanged=counts["unchanged"]))
    return redirect(url_for("roster.staff"), code=303)


def _apply_import(data: bytes | str) -> roster_import.ImportResult:
    """Plan again and apply in one transaction, audited with the counts."""
    db = get_db()
    with write_transaction(db):
        result = roster_import.import_roster(db, data, apply=True,
                                             may_grant_admin=may_grant_admin())
        if result.applied:
            counts = result.counts
            audited("roster.import", None, **{key: counts[key] for key in
                                              ("rows", "new", "update", "unchanged")})
    return result


@api.post("/staff/import")
@requires("office")
def import_roster():
    """The CSV as a ``text/csv`` body or ``{"csv": "..."}``; ``?dry_run=1``
    only plans. 422 (nothing written) when any row has an error."""
    if (request.content_length or 0) > roster_import.MAX_IMPORT_BYTES:
        abort(413, description=f"the roster is larger than "
                               f"{roster_import.MAX_IMPORT_BYTES // 2**20} MB")
    if request.is_json:
        data = json_object().get("csv")
        if not isinstance(data, str):
            abort(400, description='expected {"csv": "<the CSV text>"}')
    elif request.mimetype in ("text/csv", "text/plain"):
        data = request.get_data()
    else:
        abort(400, description="send the CSV as text/csv, or JSON {\"csv\": ...}")
    dry_run = request.args.get("dry_run", "").lower() in ("1", "true", "yes")
    if dry_run:
        result = roster_import.import_roster(get_db(), data, apply=False,
                                             may_grant_admin=may_grant_admin())
    else:
        result = _apply_import(data)
    return jsonify(result.as_dict()), 422 if result.issues else 200


# -- OpenAPI fragment ----------------------------------------------------------------

_STR = {"type": "string"}
_NULL_STR = {"type": ["string", "null"]}
_COUNTS = ("rows", "new", "update", "unchanged", "invalid", "errors")

OPENAPI = {
    "paths": {
        "/api/v1/staff/import": {"post": {
            "summary": "Import a roster CSV (staff_number, name, department, role, branch); "
                       "all or nothing",
            "parameters": [query("dry_run", "1: only say what would happen")],
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": {"type": "object", "required": ["csv"],
                                                "properties": {"csv": _STR}}},
                "text/csv": {"schema": _STR}}},
            "responses": {
                "200": json_response("Planned (dry run) or applied", ref("ImportResult")),
                "422": json_response("Rows with errors; nothing was imported",
                                     ref("ImportResult")),
                "413": json_response("The body is too large", ref("Error")),
                **errors(400), **SIGNED_IN}}},
    },
    "schemas": {
        "ImportRow": {
            "type": "object",
            "required": ["line", "staff_id", "name", "department", "role", "action",
                         "changes", "account"],
            "properties": {
                "line": {"type": ["integer", "null"]}, "staff_id": _STR, "name": _STR,
                "department": _NULL_STR,
                "role": {"type": "string", "description": "One of the roles, or as written "
                                                          "in the file when the row is invalid"},
                "branch": {"type": ["string", "null"], "description": "Party branch"},
                "action": {"enum": ["new", "update", "unchanged", "invalid"]},
                "changes": {"type": "array",
                            "items": {"enum": ["name", "department", "role", "branch"]}},
                "account": {"enum": ["create", "update", None]}}},
        "ImportError": {
            "type": "object", "required": ["line", "field", "reason"],
            "properties": {"line": {"type": ["integer", "null"]}, "field": _NULL_STR,
                           "reason": _STR}},
        "ImportResult": {
            "type": "object", "required": ["rows", "errors", "applied", "counts"],
            "properties": {
                "rows": {"type": "array", "items": ref("ImportRow")},
                "errors": {"type": "array", "items": ref("ImportError")},
                "applied": {"type": "boolean"},
                "counts": {"type": "object", "required": list(_COUNTS),
                           "properties": {k: {"type": "integer"} for k in _COUNTS}}}},
    },
}
