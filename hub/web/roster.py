"""Dashboard area: the staff roster and departments, office and admin (see
docs/dashboard.md and the domain in ``hub/people/roster.py``). Importing the roster
from CSV is its own area (``roster_import.py``), so are accounts
(``accounts.py``); both use this module's helpers for requests and domain
errors (``says``, ``may_grant_admin``, ``text_fields``).

Pages:

* ``/staff/``: search and filter the roster, upload a roster CSV (to
  ``roster_import``), print a department's PIN sheet.
* ``/staff/<staff_id>``: edit a person, give them a new PIN (shown once on
  the answer page, never stored or logged in clear), revoke phone bindings,
  set their account's password.
* ``/departments/``: list and add departments (the roster refuses unknown
  ones).

API under /api/v1 (``OPENAPI`` below). A department reviewer may list the
staff of their own department (``GET /api/v1/staff``, any other
``?department=`` answers 404) and the departments; everything else here is
office and admin.
"""

from flask import (Blueprint, Flask, abort, flash, jsonify, make_response, redirect,
                   render_template, request, url_for)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from hub import audit
from hub.db import write_transaction
from hub.people import account_admin, roster, roster_import
from hub.web.auth import audited, audited_look, department_scope, requires
from hub.web.context import get_db
from hub.web.params import json_object
from hub.web.openapi import errors, json_response, path_param, query, ref

bp = Blueprint("roster", __name__)
api = Blueprint("roster_api", __name__, url_prefix="/api/v1")

ROLE_LABELS = {"staff": _l("Staff"), "dept_reviewer": _l("Department reviewer"),
               "branch_reviewer": _l("Party branch reviewer"),
               "committee_reviewer": _l("Civility committee reviewer"),
               "office": _l("Civility office"), "admin": _l("Administrator")}


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(api)
    app.jinja_env.globals.update(role_labels=ROLE_LABELS)


def says(exc: roster.RosterError) -> str:
    """A domain error in the reader's language."""
    return _(exc.message, **exc.params)


def may_grant_admin() -> bool:
    """Whether the signed-in account may give or take the admin role."""
    return current_user.role == "admin"


def _shown_once(html: str):
    """A page holding a new PIN: never cached, never kept in history."""
    response = make_response(html)
    response.headers["Cache-Control"] = "no-store"
    return response


# -- the staff list and PIN sheets -----------------------------------------------

@bp.get("/staff/")
@requires("office")
def staff():
    q = request.args.get("q", "").strip()
    department = request.args.get("department", "").strip()
    db = get_db()
    people = roster.list_staff(db, q or None, department or None)
    return render_template("roster_staff.html", people=people, q=q, department=department,
                           departments=roster.departments(db), limit=roster.LIST_LIMIT)


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
        abort(404, description=says(exc))
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
        departments=roster.departments(db), roles=roster.ROLES, branches=roster.branches(db),
        history=audit.entries(db, 20, target=f"staff:{person['staff_id']}", looks=False)), status


@bp.get("/staff/<staff_id>")
@requires("office")
def person(staff_id):
    person = _person_or_404(staff_id)
    audited_look("person.view", f"staff:{staff_id}", page="roster")
    return _person_page(person)


@bp.post("/staff/<staff_id>/edit")
@requires("office")
def person_update(staff_id):
    person = _person_or_404(staff_id)
    form = {key: request.form.get(key, "").strip()
            for key in ("name", "department", "role", "branch")}
    db = get_db()
    try:
        with write_transaction(db):
            row = roster_import.update_person(db, staff_id, form["name"], form["department"],
                                              form["role"], may_grant_admin=may_grant_admin(),
                                              branch=form["branch"])
            audited("staff.update", f"staff:{staff_id}", changes=row["changes"],
                    account=row["account"])
    except roster.RosterError as exc:
        return _person_page(person, 400, says(exc), {**person, **form})
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
    _revoke(staff_id, device, says)
    flash(_("The phone is unbound; the nodes will know within seconds."))
    return redirect(url_for("roster.person", staff_id=staff_id), code=303)


def _revoke(staff_id: str, device: str, words=str) -> None:
    """Unbind, audited; an unknown binding is a 404 whose reason ``words``
    gives (``says`` on a page, the English message on the API)."""
    db = get_db()
    try:
        with write_transaction(db):
            roster.revoke_binding(db, staff_id, device)
            audited("device.revoke", f"staff:{staff_id}", device=device)
    except roster.NotFound as exc:
        abort(404, description=words(exc))


@bp.post("/staff/<staff_id>/password")
@requires("office")
def person_password(staff_id):
    """The office sets the password of a person's reviewer or office account
    (an admin account's only by an admin)."""
    person = _person_or_404(staff_id)
    account = person["account"]
    if account is None:
        abort(404, description="this person has no account")
    if account["role"] == "admin" and not may_grant_admin():
        abort(403, description="only an admin sets an admin's password")
    db = get_db()
    try:
        with write_transaction(db):
            account_admin.set_account_password(db, account["username"],
                                               request.form.get("password", ""))
            audited("account.password", f"account:{account['username']}")
    except roster.RosterError as exc:
        return _person_page(person, 400, says(exc))
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
                                 says(exc), form)
    flash(_("Department %(name)s added.", name=department["name"]))
    return redirect(url_for("roster.departments"), code=303)


def _add_department(department: str, name: str) -> dict:
    db = get_db()
    with write_transaction(db):
        added = roster.add_department(db, department, name)
        audited("department.add", f"department:{added['department']}", name=added["name"])
    return added


# -- JSON API ----------------------------------------------------------------------

def text_fields(body: dict, *names: str) -> dict:
    """``names`` of ``body``, each text or None; anything else answers 400."""
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
    body = text_fields(json_object(), "department", "name")
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
    person = _person_or_404(staff_id)
    audited_look("person.view", f"staff:{staff_id}", page="roster", via="api")
    return jsonify(person)


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


# -- OpenAPI fragment ----------------------------------------------------------------

_STR = {"type": "string"}
_NULL_STR = {"type": ["string", "null"]}
_ROLE = {"enum": list(roster.ROLES)}
_SIGNED_IN = errors(401, 403)


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
                     "devices", "branch"],
        "properties": {"staff_id": _STR, "name": _STR, "department": _NULL_STR,
                       "department_name": _NULL_STR, "role": _ROLE,
                       "branch": {"type": ["string", "null"], "description": "Party branch"},
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
}

PATHS = {
    "/api/v1/departments": {
        "get": {"summary": "Departments with their head counts",
                "responses": {"200": json_response("Departments", {
                    "type": "array", "items": ref("Department")}), **_SIGNED_IN}},
        "post": {"summary": "Add a department (office)",
                 "requestBody": {"required": True, "content": {
                     "application/json": {"schema": ref("NewDepartment")}}},
                 "responses": {"201": json_response("Added", ref("Department")),
                               **errors(400, 409), **_SIGNED_IN}}},
    "/api/v1/staff": {"get": {
        "summary": "The roster (a reviewer: their own department only)",
        "parameters": [query("q", "Part of a name or staff number"),
                       query("department", "Department id")],
        "responses": {"200": json_response("People", {"type": "array", "items": ref("Staff")}),
                      **errors(404), **_SIGNED_IN}}},
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
}

OPENAPI = {"paths": PATHS, "schemas": SCHEMAS}
