"""Dashboard area: the accounts, admin only (see docs/dashboard.md and the
domain in ``hub/people/account_admin.py``).

Pages: ``/accounts/`` lists the accounts and creates one; ``/accounts/<username>``
changes its role, department, party branch (a branch reviewer's), staff link,
campus (on a group hub, the one campus an office account sees) or disabled
state, and sets its password. API: ``GET``/``POST
/api/v1/accounts`` (``OPENAPI`` below).

An account's password is never shown or logged, only whether one is set. The
office sets the password of a person's account from the person's roster page
(``hub/web/roster.py``); everything else about accounts is here.
"""

from flask import (Blueprint, Flask, abort, current_app, flash, jsonify, redirect,
                   render_template, request, url_for)
from flask_babel import gettext as _

from hub import audit
from hub.db import write_transaction
from hub.people import account_admin, roster
from hub.web.auth import audited, requires
from hub.web.context import get_db
from hub.web.openapi import NULLABLE_STR, SIGNED_IN, errors, json_response, ref
from hub.web.params import json_object
from hub.web.roster import says, text_fields

bp = Blueprint("accounts", __name__)
api = Blueprint("accounts_api", __name__, url_prefix="/api/v1")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(api)


def _status(exc: roster.RosterError) -> int:
    return 409 if isinstance(exc, roster.Conflict) else 400


def _campuses() -> list[str]:
    """The group hub's campuses (none on one hospital's hub)."""
    return current_app.config.get("GROUP_CAMPUSES") or []


# -- the list, and a new account ----------------------------------------------------

def _accounts_page(status: int = 200, error: str | None = None, form: dict | None = None):
    db = get_db()
    departments = roster.departments(db)
    return render_template("accounts_index.html", accounts=account_admin.account_list(db),
                           departments=departments, roles=roster.ROLES,
                           branches=roster.branches(db), campuses=_campuses(),
                           department_names={d["department"]: d["name"] or d["department"]
                                             for d in departments},
                           error=error, form=form or {}), status


@bp.get("/accounts/")
@requires()
def index():
    return _accounts_page()


@bp.post("/accounts/")
@requires()
def create():
    form = {key: request.form.get(key, "").strip()
            for key in ("username", "role", "department", "staff_id", "branch", "campus")}
    try:
        created = _create(form, request.form.get("password") or None)
    except roster.RosterError as exc:
        return _accounts_page(_status(exc), says(exc), form)
    flash(_("Account %(username)s created.", username=created["username"]))
    return redirect(url_for("accounts.index"), code=303)


def _create(form: dict, password: str | None) -> dict:
    db = get_db()
    with write_transaction(db):
        created = account_admin.create_account(
            db, form.get("username", ""), form.get("role", ""), password,
            department=form.get("department") or None, staff_id=form.get("staff_id") or None,
            branch=form.get("branch") or None, campus=form.get("campus") or None,
            campuses=_campuses())
        audited("account.create", f"account:{created['username']}", role=created["role"],
                department=created["department"], staff_id=created["staff_id"],
                branch=created["branch"], campus=created["campus"])
    return created


# -- one account ------------------------------------------------------------------------

def _account_page(account: dict, status: int = 200, error: str | None = None,
                  form: dict | None = None):
    db = get_db()
    return render_template("accounts_account.html", account=account, form=form or account,
                           departments=roster.departments(db), roles=roster.ROLES,
                           branches=roster.branches(db), campuses=_campuses(),
                           error=error, history=audit.entries(
                               db, 20, target=f"account:{account['username']}")), status


def _account_or_404(username: str) -> dict:
    account = account_admin.get_account(get_db(), username)
    if account is None:
        abort(404, description=f"no account {username}")
    return account


@bp.get("/accounts/<username>")
@requires()
def account(username):
    return _account_page(_account_or_404(username))


@bp.post("/accounts/<username>/role")
@requires()
def role(username):
    account = _account_or_404(username)
    form = {key: request.form.get(key, "").strip()
            for key in ("role", "department", "staff_id", "branch", "campus")}
    disabled = bool(request.form.get("disabled"))
    db = get_db()
    try:
        with write_transaction(db):
            changed = account_admin.change_account(
                db, username, form["role"], department=form["department"] or None,
                staff_id=form["staff_id"] or None, disabled=disabled,
                branch=form["branch"] or None, campus=form["campus"] or None,
                campuses=_campuses())
            audited("account.change", f"account:{username}", role=changed["role"],
                    department=changed["department"], staff_id=changed["staff_id"],
                    branch=changed["branch"], campus=changed["campus"],
                    disabled=changed["disabled"])
    except roster.RosterError as exc:
        return _account_page(account, _status(exc), says(exc),
                             {**account, **form, "disabled": disabled})
    flash(_("Saved."))
    return redirect(url_for("accounts.account", username=username), code=303)


@bp.post("/accounts/<username>/password")
@requires()
def password(username):
    account = _account_or_404(username)
    db = get_db()
    try:
        with write_transaction(db):
            account_admin.set_account_password(db, username, request.form.get("password", ""))
            audited("account.password", f"account:{username}")
    except roster.RosterError as exc:
        return _account_page(account, 400, says(exc))
    flash(_("Password set."))
    return redirect(url_for("accounts.account", username=username), code=303)


# -- JSON API -----------------------------------------------------------------------------

@api.get("/accounts")
@requires()
def list_accounts():
    return jsonify(account_admin.account_list(get_db()))


@api.post("/accounts")
@requires()
def create_account():
    body = text_fields(json_object(), "username", "role", "password", "department",
                       "staff_id", "branch", "campus")
    try:
        created = _create(body, body["password"])
    except roster.RosterError as exc:
        abort(_status(exc), description=str(exc))
    return jsonify(created), 201


# -- OpenAPI fragment -----------------------------------------------------------------------

_STR = {"type": "string"}
_ROLE = {"enum": list(roster.ROLES)}

OPENAPI = {
    "paths": {
        "/api/v1/accounts": {
            "get": {"summary": "Accounts (admin); never a password hash",
                    "responses": {"200": json_response("Accounts", {
                        "type": "array", "items": ref("Account")}), **SIGNED_IN}},
            "post": {"summary": "Create an account (admin)",
                     "requestBody": {"required": True, "content": {
                         "application/json": {"schema": ref("NewAccount")}}},
                     "responses": {"201": json_response("Created", ref("Account")),
                                   **errors(400, 409), **SIGNED_IN}}},
    },
    "schemas": {
        "Account": {
            "type": "object",
            "required": ["username", "role", "department", "staff_id", "disabled",
                         "created_at", "password_set", "branch", "campus"],
            "properties": {"username": _STR, "role": _ROLE, "department": NULLABLE_STR,
                           "branch": NULLABLE_STR, "campus": NULLABLE_STR,
                           "staff_id": NULLABLE_STR, "disabled": {"type": "boolean"},
                           "created_at": NULLABLE_STR, "password_set": {"type": "boolean"}}},
        "NewAccount": {
            "type": "object", "required": ["username", "role"],
            "properties": {"username": _STR, "role": _ROLE,
                           "password": {"type": "string", "minLength": 10},
                           "department": NULLABLE_STR, "staff_id": NULLABLE_STR,
                           "branch": {"type": ["string", "null"],
                                      "description": "A branch reviewer's party branch"},
                           "campus": {"type": ["string", "null"],
                                      "description": "On a group hub, the one campus an "
                                                     "office account sees"}}},
    },
}
