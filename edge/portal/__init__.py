"""The node's captive portal: a Flask app that staff phones reach on the
dedicated Wi-Fi (DESIGN.md, "Node portal paths").

Pages use plain HTML forms, full-page posts and redirects, never AJAX: a
captive-portal sign-in sheet closes only after a real navigation.

Config keys (``create_app(test_config)`` or the node's JSON config file named
by ``$ROUNDS_EDGE_CONFIG``):

- ``NODE_DB``    path of the node's SQLite database (JSON: ``db``)
- ``NODE_ID``    this node's id (JSON: ``node``)
- ``ZONE``       zone to use while the hub's config has none (JSON: ``zone``)
- ``SECRET_KEY`` signs the session cookie (JSON: derived from ``site_secret``)
- ``TIMEZONE``   optional IANA name for times shown to people (JSON:
  ``timezone``); default: the system's local time zone
"""

import hashlib
import hmac
import os
import secrets
import sqlite3
from contextlib import contextmanager
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Flask, current_app, g, jsonify, render_template, request, session
from werkzeug.exceptions import HTTPException

from edge.db import open_db
from edge.outbox import Outbox
from edge.state import ROSTER, NodeState
from protocol.clock import parse_iso
from protocol.settings import ConfigError, load_json

CONFIG_ENV = "ROUNDS_EDGE_CONFIG"
_REQUIRED = ("NODE_DB", "NODE_ID", "SECRET_KEY")
_CSRF_FIELD = "csrf_token"


def create_app(test_config: dict | None = None) -> Flask:
    """Build the portal app from ``test_config`` or, when None, from the node
    config file named by ``$ROUNDS_EDGE_CONFIG``."""
    app = Flask(__name__)
    app.config.from_mapping(
        NODE_DB=None, NODE_ID=None, ZONE=None, SECRET_KEY=None, TIMEZONE=None,
        SESSION_COOKIE_NAME="rounds_portal",
        SESSION_COOKIE_SAMESITE="Lax",
    )
    app.config.update(config_from_file() if test_config is None else test_config)
    missing = [key for key in _REQUIRED if not app.config.get(key)]
    if missing:
        raise ConfigError(f"portal config lacks: {', '.join(missing)}")
    # Migrate once at start-up, so requests only ever find the schema current.
    open_db(app.config["NODE_DB"]).close()

    init_app(app)
    from . import checkin
    checkin.init_app(app)
    return app


def config_from_file(path: str | None = None) -> dict:
    """Flask config from the node's JSON config (written by provisioning)."""
    path = path or os.environ.get(CONFIG_ENV)
    if not path:
        raise ConfigError(f"set {CONFIG_ENV} to the path of the node config file")
    config = load_json(path, required=("node", "db", "site_secret"))
    return {
        "NODE_DB": config["db"],
        "NODE_ID": config["node"],
        "ZONE": config.get("zone"),
        "SECRET_KEY": session_key(config["site_secret"]),
        "TIMEZONE": config.get("timezone"),
    }


def session_key(site_secret: str) -> str:
    """The cookie-signing key, derived from the site secret.

    Derived rather than random so every gunicorn worker (and every restart)
    accepts the same session cookie; derived rather than the secret itself so
    the key that pseudonymises MACs is used for nothing else.
    """
    return hmac.new(site_secret.encode(), b"rounds-portal-session-v1", hashlib.sha256).hexdigest()


def init_app(app: Flask) -> None:
    """Per-request database, CSRF check on every POST, filters, error pages."""
    app.teardown_appcontext(close_db)
    app.before_request(check_csrf)
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["zone_label"] = zone_label
    app.jinja_env.filters["hhmm"] = hhmm
    app.register_error_handler(HTTPException, _http_error)
    app.add_url_rule("/healthz", "healthz", healthz)


# --- database: one connection per request -----------------------------------
# Each gunicorn worker is its own process and SQLite connections must not be
# shared across threads, so a connection lives exactly as long as a request.

def get_outbox() -> Outbox:
    """The request's Outbox; its ``db`` is the request's database connection,
    so portal writes and outbox appends can share one transaction."""
    if "outbox" not in g:
        g.outbox = Outbox(current_app.config["NODE_DB"])
    return g.outbox


def get_db():
    return get_outbox().db


def close_db(exc=None) -> None:
    outbox = g.pop("outbox", None)
    if outbox is not None:
        outbox.close()


@contextmanager
def immediate(db):
    """A write transaction that takes the write lock up front.

    A deferred transaction that reads and then writes can fail at once with
    "database is locked" when another process wrote in between (busy_timeout
    does not help there); BEGIN IMMEDIATE waits for the lock instead.
    Nested ``db.atomic()`` blocks (as in Outbox.append) become savepoints.
    """
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.conn.execute("COMMIT")
    except BaseException:
        if db.conn.in_transaction:
            db.conn.rollback()
        raise


def current_zone(state: NodeState) -> str | None:
    """The hub's word on this node's zone, else the provisioned one."""
    return state.zone() or current_app.config.get("ZONE")


def zone_label() -> str | None:
    """The zone as shown to people: its name from the hub, else its id."""
    state = NodeState(get_db())
    return state.zone_name() or current_zone(state)


# --- CSRF: a per-session token in a hidden field ------------------------------

def csrf_token() -> str:
    token = session.get(_CSRF_FIELD)
    if not token:
        token = session[_CSRF_FIELD] = secrets.token_urlsafe(32)
    return token


def check_csrf():
    """Refuse (400) any POST whose form does not carry this session's token."""
    if request.method != "POST":
        return None
    expected = session.get(_CSRF_FIELD, "")
    sent = request.form.get(_CSRF_FIELD, "")
    if expected and hmac.compare_digest(sent.encode(), expected.encode()):
        return None
    return message_page(
        400, "Please try again",
        "This form has expired or did not come from this page. "
        "Go back to the start page and submit it again.",
    )


# --- rendering helpers --------------------------------------------------------

def hhmm(timestamp: str) -> str:
    """A wire timestamp as HH:MM in the node's time zone."""
    name = current_app.config.get("TIMEZONE")
    moment: datetime = parse_iso(timestamp)
    return moment.astimezone(ZoneInfo(name) if name else None).strftime("%H:%M")


def message_page(status: int, title: str, message: str, headers=None):
    return render_template("message.html", title=title, message=message), status, headers or {}


def _http_error(exc: HTTPException):
    if exc.code is None or exc.code < 400:
        return exc
    return message_page(exc.code, exc.name, exc.description or "")


def healthz():
    """Node health for the facilities team (JSON)."""
    config = current_app.config
    try:
        outbox = get_outbox()
        state = NodeState(outbox.db)
        roster = state.get(ROSTER) or {}
        body = {
            "ok": True, "node": config["NODE_ID"], "zone": current_zone(state),
            "backlog": outbox.backlog(), "roster": roster.get("version"),
        }
        return jsonify(body)
    except sqlite3.Error as exc:
        return jsonify({"ok": False, "node": config["NODE_ID"], "error": str(exc)}), 503
