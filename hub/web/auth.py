"""Sign-in, roles and CSRF for the dashboard and the API (Flask-Login, Flask-WTF).

* Pages and the API share one session cookie (HttpOnly, SameSite=Lax, Secure
  unless the hub config says ``"secure_cookies": false`` for a plain-HTTP
  demo), valid for a working day.
* Scripts use ``Authorization: Bearer <token>`` (``rounds-hub user token``).
  Such requests ignore any session cookie and need no CSRF token: a browser
  never adds that header to a cross-site request on its own.
* Every other POST needs the CSRF token (form field ``csrf_token`` or the
  ``X-CSRFToken`` header). Open311 is outside: it files requests by
  ``api_key`` only (a session may read them, never write).
* Views declare who may use them with ``@requires("office", ...)``; admin may
  use everything. Unsigned requests get 401 (JSON on the API, the sign-in
  page otherwise); signed-in ones with the wrong role get 403.
"""

from datetime import timedelta
from functools import wraps

from flask import (Blueprint, Flask, abort, current_app, flash, g, redirect, render_template,
                   request, session, url_for)
from flask_babel import gettext as _
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFProtect

from hub import audit
from hub.db import write_transaction
from hub.people import accounts
from hub.web.context import get_db
from hub.web.params import safe_next

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
csrf = CSRFProtect()
SESSION_HOURS = 10
# Where each role lands after signing in (the first endpoint that exists).
# Roles whose accounts may be linked to a staff number (``accounts.staff_id``):
# each such account has a record of its own (/me and what hangs off it).
OWN_RECORD = ("staff", "office", "dept_reviewer", "branch_reviewer", "committee_reviewer")
HOME = {
    "admin": ("pages.today",),
    "office": ("pages.today",),
    "dept_reviewer": ("tickets.index", "hours.index"),
    "branch_reviewer": ("records.inbox",),
    "committee_reviewer": ("records.inbox",),
    "staff": ("people.me",),
}


class User(UserMixin):
    """A signed-in account. ``via`` is how: ``password``, ``pin`` or ``token``;
    a PIN session is kept apart from a password account of the same name, so
    it can never load a role above ``staff``."""

    def __init__(self, account: dict, via: str):
        self.username = account["username"]
        self.role = account["role"]
        self.department = account.get("department")
        self.branch = account.get("branch")
        self.campus = account.get("campus")  # on a group hub: the one campus it sees
        self.staff_id = account.get("staff_id")
        self.via = via

    def get_id(self) -> str:
        return f"{self.via}:{self.username}"

    def may(self, *roles: str) -> bool:
        return self.role == "admin" or self.role in roles


def init_app(app: Flask) -> None:
    secure = app.config.get("SECURE_COOKIES", True) and not app.testing
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure, REMEMBER_COOKIE_SECURE=secure,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
        WTF_CSRF_CHECK_DEFAULT=False, WTF_CSRF_TIME_LIMIT=SESSION_HOURS * 3600,
    )
    login_manager.session_protection = "basic"
    login_manager.init_app(app)
    csrf.init_app(app)
    app.before_request(_protect)
    app.register_blueprint(bp)
    app.jinja_env.globals.update(home_url=home_url)


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _sep, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _protect() -> None:
    if request.method in ("GET", "HEAD", "OPTIONS") or _bearer() is not None:
        return
    if request.path.startswith("/open311/"):
        return
    csrf.protect()


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    if _bearer() is not None:
        return None  # a token request never rides on a cookie session
    via, _sep, username = user_id.partition(":")
    db = get_db()
    if via == "password":
        account = accounts.get(db, username)
    elif via == "pin":
        account = accounts.staff_account(db, username)
    else:
        return None
    if account is None or account["disabled"]:
        return None
    return User(account, via)


@login_manager.request_loader
def _load_token_user(req) -> User | None:
    token = _bearer()
    if token is None:
        return None
    account = accounts.account_for_token(get_db(), token)
    return User(account, "token") if account else None


@login_manager.unauthorized_handler
def _unauthorized():
    if request.path.startswith("/api/"):
        abort(401, description="sign in first (session) or send Authorization: Bearer <token>")
    return redirect(url_for("auth.login", next=request.full_path))


def requires(*roles: str):
    """Only signed-in accounts with one of ``roles`` (or admin) may use the view."""

    def decorate(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not current_user.may(*roles):
                abort(403, description=f"needs the role {' or '.join(roles)}")
            return view(*args, **kwargs)

        wrapped.roles = roles
        return wrapped

    return decorate


def department_scope() -> str | None:
    """The department a reviewer is limited to; None for office and admin."""
    return current_user.department if current_user.role == "dept_reviewer" else None


def actor() -> str:
    """Who is acting, as written in histories and the audit log."""
    return current_user.username


def audited(action: str, target: str | None = None, **detail) -> None:
    """Write the audit row for this request's change (same transaction)."""
    audit.record(get_db(), actor(), action, target, detail)


def audited_look(action: str, target: str, **detail) -> None:
    """Write the audit row for a read of someone's data (a request that
    changes nothing, so in a transaction of its own)."""
    db = get_db()
    with write_transaction(db):
        audit.record(db, actor(), action, target, detail)


def home_url() -> str:
    if not current_user.is_authenticated:
        return url_for("auth.login")
    for endpoint in HOME.get(current_user.role, ()):
        if endpoint in current_app.view_functions:
            return url_for(endpoint)
    return url_for("auth.login")


@bp.route("/login", methods=["GET", "POST"])
def login():
    error, status = None, 200
    if request.method == "POST":
        username = request.form.get("username", "").strip()
        secret = request.form.get("password", "")
        db = get_db()
        try:
            with db.conn:
                account, via = accounts.authenticate(db, username, secret)
        except accounts.Throttled:
            error, status = _("Too many failed sign-ins. Try again in 15 minutes."), 429
        except accounts.AccountError:
            error, status = _("Unknown username or wrong password."), 401
        else:
            session.clear()
            lang = g.get("lang")
            if lang:
                session["lang"] = lang
            session.permanent = True
            login_user(User(account, via))
            with db.conn:
                audit.record(db, account["username"], "login", None, {"via": via})
            return redirect(safe_next(request.args.get("next")) or home_url(), code=303)
    return render_template("login.html", error=error), status


@bp.post("/logout")
def logout():
    if current_user.is_authenticated:
        db = get_db()
        with db.conn:
            audit.record(db, current_user.username, "logout")
    logout_user()
    return redirect(url_for("auth.login"), code=303)
