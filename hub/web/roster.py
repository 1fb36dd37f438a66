"""Dashboard area: the staff roster, departments and accounts (see
docs/dashboard.md and the domain in ``hub/roster.py``).

Pages (office and admin; accounts admin only):

* ``/staff/``: search and filter the roster, upload a roster CSV, print a
  department's PIN sheet. An upload is previewed first (each row's action and
  every row error); the preview's confirm form posts the same CSV back (a
  hidden base64 field, under the page's CSRF token) and it is applied in one
  transaction only if no row has an error.
* ``/staff/<staff_id>``: edit a person, give them a new PIN (shown once on
  the answer page, never stored or logged in clear), revoke phone bindings,
  set their account's password.
* ``/departments/``: list and add departments (the roster refuses unknown
  ones).
* ``/accounts/``: accounts, their roles and passwords (admin).

API under /api/v1 (``OPENAPI`` below). A department reviewer may list the
staff of their own department (``GET /api/v1/staff``, any other
``?department=`` answers 404) and the departments; everything else here is
office and admin, accounts admin only.
"""

import base64
import binascii

from flask import (Blueprint, Flask, abort, flash, jsonify, make_response, redirect,
                   render_template, request, url_for)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from hub import audit, roster
from hub.db import write_transaction

from . import get_db
from .auth import audited, department_scope, requires
from .openapi import errors, json_response, path_param, query, ref

bp = Blueprint("roster", __name__)
api = Blueprint("roster_api", __name__, url_prefix="/api/v1")

ROLE_LABELS = {"staff": _l("Staff"), "dept_reviewer": _l("Department reviewer"),
               "office": _l("Civility office"), "admin": _l("Administrator")}
ACTION_LABELS = {"new": _l("new"), "update": _l("update"), "unchanged": _l("unchanged"),
                 "invalid": _l("error")}


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(api)
    app.jinja_env.globals.update(role_labels=ROLE_LABELS)
    # First of all before-request hooks, as the CSRF check parses the form: a
    # roster pasted into the (multipart) upload form may be larger than
    # Flask's default limit for a non-file field, 500 kB.
    app.before_request_funcs.setdefault(None, []).insert(0, _roster_form_limit)


_IMPORT_FORMS = ("roster.import_preview", "roster.import_confirm")


def _roster_form_limit() -> None:
    if request.endpoint in _IMPORT_FORMS:
        request.max_form_memory_size = 2 * roster.MAX_IMPORT_BYTES


def _says(exc: roster.RosterError) -> str:
    """A domain error in the reader's language."""
    return _(exc.message, **exc.params)


def _may_grant_admin() -> bool:
    return current_user.role == "admin"


def _shown_once(html: str):
    """A page holding a new PIN: never cached, never kept in history."""
    response = make_response(html)
    response.headers["Cache-Control"] = "no-store"
    return response


# -- staff list and roster import ------------------------------------------------

@bp.get("/staff/")
@requires("office")
def staff():
    q = request.args.get("q", "").strip()
    department = request.args.get("department", "").strip()
    db = get_db()
    people = roster.list_staff(db, q or None, department or None)
    return render_template("roster_staff.html", people=people, q=q, department=department,
                           departments=roster.departments(db), limit=roster.LIST_LIMIT)


def _import_page(result, text: str | None, status: int, error: str | None = None):
    issues = [{"line": i.line, "field": i.field, "reason": _(i.message, **i.params)}
              for i in result.issues] if result else []
    payload = base64.b64encode(text.encode()).decode() if text is not None else None
    return render_template("roster_import.html", result=result, issues=issues,
                           payload=payload, error=error, actions=ACTION_LABELS), status


@bp.post("/staff/import")
@requires("office")
def import_preview():
    """Upload (file or pasted text) -> the preview; nothing is written."""
    if (request.content_length or 0) > 2 * roster.MAX_IMPORT_BYTES:
        return _import_page(None, None, 413, _("The file is larger than %(n)d MB.",
                                               n=roster.MAX_IMPORT_BYTES // 2**20))
    upload = request.files.get("csv_file")
    data = upload.read() if upload and upload.filename else request.form.get("csv_text", "")
    if not data or (isinstance(data, str) and not data.strip()):
        return _import_page(None, None, 400, _("Choose a CSV file or paste the roster."))
    try:
        text = roster.decode_csv(data) if isinstance(data, bytes) else data
    except roster.RosterError as exc:
        return _import_page(None, None, 400, _says(exc))
    result = roster.import_roster(get_db(), text, apply=False,
                                  may_grant_admin=_may_grant_admin())
    return _import_page(result, text, 422 if result.issues else 200)


@bp.post("/staff/import/confirm")
@requires("office")
def import_confirm():
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


@bp.post("/staff/pins")
@requires("office")
def department_pins():
    """New PINs for a whole department, on a printable sheet shown once."""
    department = request.form.get("department", "")
    db = get_db()
    if not request.form.get("confirm"):
        flash(_("Tick the box to confirm: everyone's old PIN stops working."), "error")
        return redirect(url_for("roster.staff", department=department), code=303)
    try:
        issued = roster.department_pins(db, department)
    except roster.NotFound as exc:
        abort(404, description=str(exc))
    with write_transaction(db):
        roster.store_pins(db, issued)
        audited("staff.pin_reset_department", f"department:{department}", count=len(issued))
    name = next((d["name"] for d in roster.departments(db) if d["department"] == department),
                department)
    return _shown_once(render_template("roster_pin_sheet.html", issued=issued,
                                       department=department, department_name=name))


# -- one person ------------------------------------------------------------------

def _person_or_404(staff_id: str) -> dict:
    person = roster.get_staff(get_db(), staff_id)
    if person is None:
        abort(404, description=f"unknown staff member: {staff_id}")
    return person


def _person_page(person: dict, status: int = 200, error: str | None = None,
                 form: dict | None = None):
    db = get_db()
    return render_template(
        "roster_person.html", person=person, error=error, form=form or person,
        departments=roster.departments(db), roles=roster.ROLES,
        history=audit.entries(db, 20, target=f"staff:{person['staff_id']}")), status


@bp.get("/staff/<staff_id>")
@requires("office")
def person(staff_id):
    return _person_page(_person_or_404(staff_id))


@bp.post("/staff/<staff_id>/edit")
@requires("office")
def person_update(staff_id):
    person = _person_or_404(staff_id)
    form = {key: request.form.get(key, "").strip() for key in ("name", "department", "role")}
    db = get_db()
    try:
        with write_transaction(db):
            row = roster.update_person(db, staff_id, form["name"], form["department"],
                                       form["role"], may_grant_admin=_may_grant_admin())
            audited("staff.update", f"staff:{staff_id}", changes=row["changes"],
                    account=row["account"])
    except roster.RosterError as exc:
        return _person_page(person, 400, _says(exc), {**person, **form})
    flash(_("Saved."))
    return redirect(url_for("roster.person", staff_id=staff_id), code=303)


@bp.post("/staff/<staff_id>/pin")
@requires("office")
def person_pin(staff_id):
    person = _person_or_404(staff_id)
    db = get_db()
    with write_transaction(db):
        pin = roster.reset_pin(db, staff_id)
        audited("staff.pin_reset", f"staff:{staff_id}")
    return _shown_once(render_template("roster_pin.html", person=person, pin=pin))


@bp.post("/staff/<staff_id>/bindings/<device>/revoke")
@requires("office")
def revoke_binding(staff_id, device):
    _person_or_404(staff_id)
    _revoke(staff_id, device)
    flash(_("The phone is unbound; the nodes will know within seconds."))
    return redirect(url_for("roster.person", staff_id=staff_id), code=303)


def _revoke(staff_id: str, device: str) -> None:
    db = get_db()
    try:
        with write_transaction(db):
            roster.revoke_binding(db, staff_id, device)
            audited("device.revoke", f"staff:{staff_id}", device=device)
    except roster.NotFound as exc:
        abort(404, description=str(exc))


@bp.post("/staff/<staff_id>/password")
@requires("office")
def person_password(staff_id):
    """The office sets the password of a person's reviewer or office account
    (an admin account's only by an admin)."""
    person = _person_or_404(staff_id)
    account = person["account"]
    if account is None:
        abort(404, description="this person has no account")
    if account["role"] == "admin" and not _may_grant_admin():
        abort(403, description="only an admin sets an admin's password")
    db = get_db()
    try:
        with write_transaction(db):
            roster.set_account_password(db, account["username"],
                                        request.form.get("password", ""))
            audited("account.password", f"account:{account['username']}")
    except roster.RosterError as exc:
        return _person_page(person, 400, _says(exc))
    flash(_("Password set."))
    return redirect(url_for("roster.person", staff_id=staff_id), code=303)


# -- departments -----------------------------------------------------------------

@bp.get("/departments/")
@requires("office")
def departments():
    return _departments_page()


def _departments_page(status: int = 200, error: str | None = None, form: dict | None = None):
    return render_template("roster_departments.html", departments=roster.departments(get_db()),
                           error=error, form=form or {}), status


@bp.post("/departments/")
@requires("office")
def department_add():
    form = {key: request.form.get(key, "") for key in ("department", "name")}
    try:
        department = _add_department(form["department"], form["name"])
    except roster.RosterError as exc:
        return _departments_page(409 if isinstance(exc, roster.Conflict) else 400,
                                 _says(exc), form)
    flash(_("Department %(name)s added.", name=department["name"]))
    return redirect(url_for("roster.departments"), code=303)


def _add_department(department: str, name: str) -> dict:
    db = get_db()
    with write_transaction(db):
        added = roster.add_department(db, department, name)
        audited("department.add", f"department:{added['department']}", name=added["name"])
    return added


# -- accounts (admin) --------------------------------------------------------------

def _accounts_page(status: int = 200, error: str | None = None, form: dict | None = None):
    db = get_db()
    departments = roster.departments(db)
    return render_template("roster_accounts.html", accounts=roster.account_list(db),
                           departments=departments, roles=roster.ROLES,
                           department_names={d["department"]: d["name"] or d["department"]
                                             for d in departments},
                           error=error, form=form or {}), status


@bp.get("/accounts/")
@requires()
def accounts():
    return _accounts_page()


@bp.post("/accounts/")
@requires()
def account_create():
    form = {key: request.form.get(key, "").strip()
            for key in ("username", "role", "department", "staff_id")}
    try:
        created = _create_account(form, request.form.get("password") or None)
    except roster.RosterError as exc:
        return _accounts_page(409 if isinstance(exc, roster.Conflict) else 400,
                              _says(exc), form)
    flash(_("Account %(username)s created.", username=created["username"]))
    return redirect(url_for("roster.accounts"), code=303)


def _create_account(form: dict, password: str | None) -> dict:
    db = get_db()
    with write_transaction(db):
        created = roster.create_account(
            db, form.get("username", ""), form.get("role", ""), password,
            department=form.get("department") or None, staff_id=form.get("staff_id") or None)
        audited("account.create", f"account:{created['username']}", role=created["role"],
                department=created["department"], staff_id=created["staff_id"])
    return created


def _account_page(account: dict, status: int = 200, error: str | None = None,
                  form: dict | None = None):
    db = get_db()
    return render_template("roster_account.html", account=account, form=form or account,
                           departments=roster.departments(db), roles=roster.ROLES,
                           error=error, history=audit.entries(
                               db, 20, target=f"account:{account['username']}")), status


def _account_or_404(username: str) -> dict:
    account = roster.get_account(get_db(), username)
    if account is None:
        abort(404, description=f"no account {username}")
    return account


@bp.get("/accounts/<username>")
@requires()
def account(username):
    return _account_page(_account_or_404(username))


@bp.post("/accounts/<username>/role")
@requires()
def account_role(username):
    account = _account_or_404(username)
    form = {key: request.form.get(key, "").strip() for key in ("role", "department", "staff_id")}
    disabled = bool(request.form.get("disabled"))
    db = get_db()
    try:
        with write_transaction(db):
            changed = roster.change_account(db, username, form["role"],
                                            department=form["department"] or None,
                                            staff_id=form["staff_id"] or None, disabled=disabled)
            audited("account.change", f"account:{username}", role=changed["role"],
                    department=changed["department"], staff_id=changed["staff_id"],
                    disabled=changed["disabled"])
    except roster.RosterError as exc:
        return _account_page(account, 409 if isinstance(exc, roster.Conflict) else 400,
                             _says(exc), {**account, **form, "disabled": disabled})
    flash(_("Saved."))
    return redirect(url_for("roster.account", username=username), code=303)


@bp.post("/accounts/<username>/password")
@requires()
def account_password(username):
    account = _account_or_404(username)
    db = get_db()
    try:
        with write_transaction(db):
            roster.set_account_password(db, username, request.form.get("password", ""))
            audited("account.password", f"account:{username}")
    except roster.RosterError as exc:
        return _account_page(account, 400, _says(exc))
    flash(_("Password set."))
    return redirect(url_for("roster.account", username=username), code=303)


# -- JSON API ----------------------------------------------------------------------

def _json_object() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, description="expected a JSON object body")
    return body


def _text_fields(body: dict, *names: str) -> dict:
    values = {}
    for name in names:
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            abort(400, description=f"{name} must be text")
        values[name] = value
    return values


@api.get("/departments")
@requires("office", "dept_reviewer")
def api_departments():
    return jsonify(roster.departments(get_db()))


@api.post("/departments")
@requires("office")
def api_department_add():
    body = _text_fields(_json_object(), "department", "name")
    try:
        added = _add_department(body["department"] or "", body["name"] or "")
    except roster.Conflict as exc:
        abort(409, description=str(exc))
    except roster.RosterError as exc:
        abort(400, description=str(exc))
    return jsonify(added), 201


@api.get("/staff")
@requires("office", "dept_reviewer")
def api_staff():
    """``?q=`` part of a name or number, ``?department=``; a reviewer's list
    is always their own department's."""
    department = request.args.get("department") or None
    scope = department_scope()
    if scope is not None:
        if department not in (None, scope):
            abort(404, description=f"unknown department: {department}")
        department = scope
    return jsonify(roster.list_staff(get_db(), request.args.get("q") or None, department))


@api.get("/staff/<staff_id>")
@requires("office")
def api_person(staff_id):
    return jsonify(_person_or_404(staff_id))


@api.post("/staff/import")
@requires("office")
def api_import():
    """The CSV as a ``text/csv`` body or ``{"csv": "..."}``; ``?dry_run=1``
    only plans. 422 (nothing written) when any row has an error."""
    if (request.content_length or 0) > roster.MAX_IMPORT_BYTES:
        abort(413, description=f"the roster is larger than "
                               f"{roster.MAX_IMPORT_BYTES // 2**20} MB")
    if request.is_json:
        data = _json_object().get("csv")
        if not isinstance(data, str):
            abort(400, description='expected {"csv": "<the CSV text>"}')
    elif request.mimetype in ("text/csv", "text/plain"):
        data = request.get_data()
    else:
        abort(400, description="send the CSV as text/csv, or JSON {\"csv\": ...}")
    dry_run = request.args.get("dry_run", "").lower() in ("1", "true", "yes")
    if dry_run:
        result = roster.import_roster(get_db(), data, apply=False,
                                      may_grant_admin=_may_grant_admin())
    else:
        result = _apply_import(data)
    return jsonify(result.as_dict()), 422 if result.issues else 200


def _apply_import(data: bytes | str) -> roster.ImportResult:
    """Plan again and apply in one transaction, audited with the counts."""
    db = get_db()
    with write_transaction(db):
        result = roster.import_roster(db, data, apply=True, may_grant_admin=_may_grant_admin())
        if result.applied:
            counts = result.counts
            audited("roster.import", None, **{key: counts[key] for key in
                                              ("rows", "new", "update", "unchanged")})
    return result


@api.post("/staff/<staff_id>/pin")
@requires("office")
def api_pin(staff_id):
    """A new PIN, in this answer only."""
    _person_or_404(staff_id)
    db = get_db()
    with write_transaction(db):
        pin = roster.reset_pin(db, staff_id)
        audited("staff.pin_reset", f"staff:{staff_id}")
    response = jsonify(staff_id=staff_id, pin=pin)
    response.headers["Cache-Control"] = "no-store"
    return response


@api.delete("/staff/<staff_id>/bindings/<device>")
@requires("office")
def api_revoke(staff_id, device):
    """Unbind a phone; answers the person with the bindings left."""
    _person_or_404(staff_id)
    _revoke(staff_id, device)
    return jsonify(_person_or_404(staff_id))


@api.get("/accounts")
@requires()
def api_accounts():
    return jsonify(roster.account_list(get_db()))


@api.post("/accounts")
@requires()
def api_account_create():
    body = _text_fields(_json_object(), "username", "role", "password", "department",
                        "staff_id")
    try:
        created = _create_account(body, body["password"])
    except roster.Conflict as exc:
        abort(409, description=str(exc))
    except roster.RosterError as exc:
        abort(400, description=str(exc))
    return jsonify(created), 201


# -- OpenAPI fragment ----------------------------------------------------------------

_STR = {"type": "string"}
_NULL_STR = {"type": ["string", "null"]}
_ROLE = {"enum": list(roster.ROLES)}
_SIGNED_IN = errors(401, 403)
_TOO_LARGE = {"413": json_response("The body is too large", ref("Error"))}


def _body(schema: dict, *extra: tuple[str, dict]) -> dict:
    content = {"application/json": {"schema": schema}}
    content.update({mimetype: {"schema": s} for mimetype, s in extra})
    return {"required": True, "content": content}


SCHEMAS = {
    "Department": {
        "type": "object", "required": ["department", "name", "staff"],
        "properties": {"department": _STR, "name": _STR,
                       "staff": {"type": "integer", "description": "People in it"}}},
    "NewDepartment": {
        "type": "object", "required": ["department", "name"],
        "properties": {"department": {"type": "string", "maxLength": roster.DEPARTMENT_MAX},
                       "name": {"type": "string", "maxLength": roster.NAME_MAX}}},
    "Staff": {
        "type": "object",
        "required": ["staff_id", "name", "department", "department_name", "role", "pin_set",
                     "devices"],
        "properties": {"staff_id": _STR, "name": _STR, "department": _NULL_STR,
                       "department_name": _NULL_STR, "role": _ROLE,
                       "pin_set": {"type": "boolean"},
                       "devices": {"type": "integer", "description": "Bound phones"}}},
    "Binding": {
        "type": "object", "required": ["device", "bound_at", "node"],
        "properties": {"device": {"type": "string", "description": "HMAC of the phone's MAC"},
                       "bound_at": _STR, "node": _NULL_STR}},
    "StaffDetail": {"allOf": [ref("Staff"), {
        "type": "object", "required": ["bindings", "account"],
        "properties": {
            "bindings": {"type": "array", "items": ref("Binding")},
            "account": {"oneOf": [{"type": "null"}, {
                "type": "object", "required": ["username", "role", "disabled", "password_set"],
                "properties": {"username": _STR, "role": _ROLE,
                               "disabled": {"type": "boolean"},
                               "password_set": {"type": "boolean"}}}]}}}]},
    "PinReset": {
        "type": "object", "required": ["staff_id", "pin"],
        "properties": {"staff_id": _STR,
                       "pin": {"type": "string", "pattern": "^[0-9]{6}$",
                               "description": "Shown this once; only its hash is kept"}}},
    "ImportRow": {
        "type": "object",
        "required": ["line", "staff_id", "name", "department", "role", "action", "changes",
                     "account"],
        "properties": {
            "line": {"type": ["integer", "null"]}, "staff_id": _STR, "name": _STR,
            "department": _NULL_STR,
            "role": {"type": "string", "description": "One of the roles, or as written in "
                                                      "the file when the row is invalid"},
            "action": {"enum": ["new", "update", "unchanged", "invalid"]},
            "changes": {"type": "array", "items": {"enum": ["name", "department", "role"]}},
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
            "counts": {"type": "object",
                       "required": ["rows", "new", "update", "unchanged", "invalid", "errors"],
                       "properties": {k: {"type": "integer"} for k in
                                      ("rows", "new", "update", "unchanged", "invalid",
                                       "errors")}}}},
    "Account": {
        "type": "object",
        "required": ["username", "role", "department", "staff_id", "disabled", "created_at",
                     "password_set"],
        "properties": {"username": _STR, "role": _ROLE, "department": _NULL_STR,
                       "staff_id": _NULL_STR, "disabled": {"type": "boolean"},
                       "created_at": _NULL_STR, "password_set": {"type": "boolean"}}},
    "NewAccount": {
        "type": "object", "required": ["username", "role"],
        "properties": {"username": _STR, "role": _ROLE,
                       "password": {"type": "string", "minLength": 10},
                       "department": _NULL_STR, "staff_id": _NULL_STR}},
}

PATHS = {
    "/api/v1/departments": {
        "get": {"summary": "Departments with their head counts",
                "responses": {"200": json_response("Departments", {
                    "type": "array", "items": ref("Department")}), **_SIGNED_IN}},
        "post": {"summary": "Add a department (office)", "requestBody": _body(ref("NewDepartment")),
                 "responses": {"201": json_response("Added", ref("Department")),
                               **errors(400, 409), **_SIGNED_IN}}},
    "/api/v1/staff": {"get": {
        "summary": "The roster (a reviewer: their own department only)",
        "parameters": [query("q", "Part of a name or staff number"),
                       query("department", "Department id")],
        "responses": {"200": json_response("People", {"type": "array", "items": ref("Staff")}),
                      **errors(404), **_SIGNED_IN}}},
    "/api/v1/staff/import": {"post": {
        "summary": "Import a roster CSV (staff_number, name, department, role); all or nothing",
        "parameters": [query("dry_run", "1: only say what would happen")],
        "requestBody": _body({"type": "object", "required": ["csv"],
                              "properties": {"csv": _STR}}, ("text/csv", _STR)),
        "responses": {"200": json_response("Planned (dry run) or applied", ref("ImportResult")),
                      "422": json_response("Rows with errors; nothing was imported",
                                           ref("ImportResult")),
                      **errors(400), **_TOO_LARGE, **_SIGNED_IN}}},
    "/api/v1/staff/{staff_id}": {"get": {
        "summary": "One person with their phone bindings and account",
        "parameters": [path_param("staff_id")],
        "responses": {"200": json_response("The person", ref("StaffDetail")),
                      **errors(404), **_SIGNED_IN}}},
    "/api/v1/staff/{staff_id}/pin": {"post": {
        "summary": "Give the person a new random PIN, answered this once",
        "parameters": [path_param("staff_id")],
        "responses": {"200": json_response("The new PIN", ref("PinReset")),
                      **errors(404), **_SIGNED_IN}}},
    "/api/v1/staff/{staff_id}/bindings/{device}": {"delete": {
        "summary": "Unbind a phone (the nodes follow within seconds)",
        "parameters": [path_param("staff_id"), path_param("device")],
        "responses": {"200": json_response("The person after", ref("StaffDetail")),
                      **errors(404), **_SIGNED_IN}}},
    "/api/v1/accounts": {
        "get": {"summary": "Accounts (admin); never a password hash",
                "responses": {"200": json_response("Accounts", {
                    "type": "array", "items": ref("Account")}), **_SIGNED_IN}},
        "post": {"summary": "Create an account (admin)", "requestBody": _body(ref("NewAccount")),
                 "responses": {"201": json_response("Created", ref("Account")),
                               **errors(400, 409), **_SIGNED_IN}}},
}

OPENAPI = {"paths": PATHS, "schemas": SCHEMAS}
