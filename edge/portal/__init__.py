"""The node's captive portal: a Flask app that staff phones reach on the
dedicated Wi-Fi (DESIGN.md, "Node portal paths").

Pages use plain HTML forms, full-page posts and 303 redirects, never AJAX and
no JavaScript at all: a captive-portal sign-in sheet closes only after a real
navigation that makes the phone probe again.

Modules: ``probes`` (OS connectivity probes, the RFC 8908 API, the redirect of
foreign hosts), ``device`` (which phone asks, and whose it is), ``auth`` (PIN
check with rate limits), ``checkin`` (home page, check-in by PIN or by one
tap), ``bind`` (bind this phone), ``me`` (my record), ``i18n`` (zh-CN / en),
``registration`` (register for events, ``/register``), ``writes`` (every
write, queued and committed in groups), ``fastflask`` (cached URL building
and a lighter session cookie).

Routes: ``/`` (start page: check-in form for an unknown device, "bind this
phone" for an unbound one, "Hello" + one-tap check-in for a bound one),
``POST /checkin`` (staff number + PIN), ``POST /checkin/tap`` (bound phone),
``/done``, ``GET|POST /bind``, ``/bound``, ``/me`` (my record),
``/api/captive`` (RFC 8908), the OS probe paths (``probes.PROBES``),
``/healthz`` (JSON). Any page takes ``?lang=zh|en``.

Config keys (``create_app(test_config)`` or the node's JSON config file named
by ``$ROUNDS_EDGE_CONFIG``; JSON names in brackets):

- ``NODE_DB``     path of the node's SQLite database (``db``)
- ``NODE_ID``     this node's id (``node``)
- ``ZONE``        zone to use while the hub's config has none (``zone``)
- ``SITE_SECRET`` bytes; key of the device HMAC (``site_secret``, hex)
- ``SECRET_KEY``  signs the session cookie (derived from ``site_secret``)
- ``TIMEZONE``    optional IANA name for times shown to people (``timezone``);
  default: the system's local time zone
- ``PORTAL_URL``  the user-portal URL phones are sent to, e.g.
  ``http://10.42.0.1/`` (``portal.url``). Requests for any other host name
  (the nftables redirect sends every HTTP request of a captive phone here)
  are redirected to it. Unset: no foreign-host redirect, and captive probes
  are sent to ``/`` on the host they asked for (the one-machine demo).
- ``API_URL``     the RFC 8908 API URL given in DHCP option 114, https
  (``portal.api_url``); its host name also counts as the portal's own.
- ``VENUE_INFO_URL`` optional venue page for the RFC 8908 API
  (``portal.venue_info_url``)
- ``LEASES_FILE`` dnsmasq's lease file (``portal.leases_file``), default
  ``edge.devices.LEASES_FILE``; ``ARP_FILE`` the neighbour table
  (``portal.arp_file``), default ``/proc/net/arp``
- ``RELEASE_SECONDS`` how long a bound phone passes the portal once released
  (``portal.release_seconds``), default 43200 (12 h)
- ``LANGUAGE_COOKIE_DAYS`` how long the language choice is remembered, default 180
- ``CLOCK``       the node's clocks (``edge.health.NodeClock``; tests pass one
  whose wall clock jumps). While its wall clock is known to be unset,
  check-ins name no event (``edge.checkins.event_now``) and pages say so
- ``DISK_RESERVE`` bytes of free storage kept for check-ins: a photo report is
  refused (507) when it would leave less (``portal.disk_reserve``, default
  32 MiB; see ``report.py``)

When the node's storage is full, a request that has to write (a check-in, a
binding) gets a 503 page that says so, never a 500: SQLite rolls the
transaction back, so nothing is half-written, and the next request after
space returns succeeds with no restart.

Every POST is checked by Flask-WTF's ``CSRFProtect`` (token in the session
cookie, signed copy in the form's ``csrf_token`` field, valid for
``WTF_CSRF_TIME_LIMIT`` = Flask-WTF's default of one hour; an expired form
gets a clear "please try again" page).
"""

import hashlib
import hmac
import logging
import os
import sqlite3
import threading
from urllib.parse import urlsplit

from flask import Flask, current_app, jsonify, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from edge import devices
from edge.db import is_disk_full, open_db
from edge.health import SYSTEM_CLOCK
from edge.state import ROSTER
from runtime.settings import ConfigError, load_json

from . import bind, checkin, device, i18n, me, probes, registration, report, score, survey, writes
from .context import clock_unset, close_db, current_zone, get_outbox, get_state, zone_label
from .fastflask import PortalFlask, PortalSessions
from .render import hhmm, message_page, storage_full_page, when

CONFIG_ENV = "ROUNDS_EDGE_CONFIG"
_REQUIRED = ("NODE_DB", "NODE_ID", "SECRET_KEY", "SITE_SECRET")
# node JSON "portal" section -> Flask config key
_PORTAL_KEYS = {"url": "PORTAL_URL", "leases_file": "LEASES_FILE", "arp_file": "ARP_FILE",
                "release_seconds": "RELEASE_SECONDS", "venue_info_url": "VENUE_INFO_URL",
                "api_url": "API_URL", "camera": "CAMERA_SOURCE",
                "disk_reserve": "DISK_RESERVE"}

csrf = CSRFProtect()
log = logging.getLogger(__name__)


def create_app(test_config: dict | None = None) -> Flask:
    """Build the portal app from ``test_config`` or, when None, from the node
    config file named by ``$ROUNDS_EDGE_CONFIG``."""
    app = PortalFlask(__name__)
    app.session_interface = PortalSessions()
    app.config.from_mapping(
        NODE_DB=None, NODE_ID=None, ZONE=None, SECRET_KEY=None, TIMEZONE=None,
        SITE_SECRET=None, PORTAL_URL=None, API_URL=None, VENUE_INFO_URL=None,
        LEASES_FILE=devices.LEASES_FILE, ARP_FILE=devices.ARP_FILE, RELEASE_SECONDS=43200,
        LANGUAGE_COOKIE_DAYS=180, DISK_RESERVE=32 * 1024 * 1024, CLOCK=SYSTEM_CLOCK,
        SESSION_COOKIE_NAME="rounds_portal",
        SESSION_COOKIE_SAMESITE="Lax",
        # Send the cookie only when it changes (not on every probe answer).
        SESSION_REFRESH_EACH_REQUEST=False,
    )
    app.config.update(config_from_file() if test_config is None else test_config)
    _check_config(app.config)
    # Migrate once at start-up, so requests only ever find the schema current.
    open_db(app.config["NODE_DB"]).close()

    # Order of the before-request hooks: who is asking (and release a bound
    # phone) -> redirect foreign hosts -> CSRF check of POSTs.
    init_app(app)
    writes.init_app(app)
    i18n.init_app(app)
    device.init_app(app)
    probes.init_app(app)
    csrf.init_app(app)
    checkin.init_app(app)
    bind.init_app(app)
    me.init_app(app)
    report.init_app(app)
    survey.init_app(app)
    score.init_app(app)
    registration.init_app(app)
    return app


def config_from_file(path: str | None = None) -> dict:
    """Flask config from the node's JSON config (written by provisioning)."""
    path = path or os.environ.get(CONFIG_ENV)
    if not path:
        raise ConfigError(f"set {CONFIG_ENV} to the path of the node config file")
    config = load_json(path, required=("node", "db", "site_secret"))
    result = {
        "NODE_DB": config["db"],
        "NODE_ID": config["node"],
        "ZONE": config.get("zone"),
        "SITE_SECRET": config["site_secret"],
        "SECRET_KEY": session_key(config["site_secret"]),
        "TIMEZONE": config.get("timezone"),
    }
    portal = config.get("portal") or {}
    result.update({key: portal[name] for name, key in _PORTAL_KEYS.items()
                   if portal.get(name) is not None})
    return result


def _check_config(config) -> None:
    secret = config.get("SITE_SECRET")
    if isinstance(secret, str):
        try:
            config["SITE_SECRET"] = bytes.fromhex(secret)
        except ValueError:
            raise ConfigError("site_secret must be hex (as `rounds-provision site init` "
                              "writes it)") from None
    missing = [key for key in _REQUIRED if not config.get(key)]
    if missing:
        raise ConfigError(f"portal config lacks: {', '.join(missing)}")
    for key in ("PORTAL_URL", "API_URL", "VENUE_INFO_URL"):
        url = config.get(key)
        if url and (urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname):
            raise ConfigError(f"{key} is not an http(s) URL: {url!r}")
    if config.get("API_URL") and urlsplit(config["API_URL"]).scheme != "https":
        log.warning("API_URL %s is not https: Android ignores a captive-portal API "
                    "(DHCP option 114) that is not served over HTTPS", config["API_URL"])
    try:
        config["RELEASE_SECONDS"] = int(config["RELEASE_SECONDS"])
    except (TypeError, ValueError):
        raise ConfigError("portal.release_seconds must be a whole number of seconds") from None
    if config["RELEASE_SECONDS"] <= 0:
        raise ConfigError("portal.release_seconds must be positive")
    try:
        config["DISK_RESERVE"] = int(config["DISK_RESERVE"])
    except (TypeError, ValueError):
        raise ConfigError("portal.disk_reserve must be a whole number of bytes") from None
    if config["DISK_RESERVE"] < 0:
        raise ConfigError("portal.disk_reserve must not be negative")


def session_key(site_secret: str) -> str:
    """The cookie-signing key, derived from the site secret.

    Derived rather than random so every gunicorn worker (and every restart)
    accepts the same session cookie; derived rather than the secret itself so
    the key that pseudonymises MACs is used for nothing else.
    """
    return hmac.new(site_secret.encode(), b"rounds-portal-session-v1", hashlib.sha256).hexdigest()


def init_app(app: Flask) -> None:
    """Per-request database, filters, error pages, no caching of pages."""
    app.extensions["rounds_portal_db"] = threading.local()
    app.teardown_appcontext(close_db)
    app.jinja_env.globals["zone_label"] = zone_label
    app.jinja_env.globals["clock_unset"] = clock_unset
    app.jinja_env.filters["hhmm"] = hhmm
    app.jinja_env.filters["when"] = when
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(sqlite3.OperationalError, _storage_error)
    app.add_url_rule("/healthz", "healthz", healthz)
    app.after_request(_no_store)


def _csrf_error(exc: CSRFError):
    return message_page(
        400, _("Please try again"),
        _("This form has expired or did not come from this page. "
          "Go back to the start page and submit it again."))


def _http_error(exc: HTTPException):
    if exc.code is None or exc.code < 400:
        return exc
    titles = {404: _("Page not found"), 405: _("This page cannot be used that way"),
              413: _("Too much data"), 429: _("Too many attempts")}
    return message_page(exc.code, titles.get(exc.code) or _("Something went wrong"),
                        _("Go back to the start page and try again."))


def _storage_error(exc: sqlite3.OperationalError):
    """A full disk is a condition to tell people about, not a crash; any
    other database error stays a 500 (and is logged with its traceback)."""
    if not is_disk_full(exc):
        raise exc
    log.warning("node storage full: %s %s refused (%s)", request.method, request.path, exc)
    return storage_full_page()


def _no_store(response):
    """Pages depend on which phone asks: no cache may keep them."""
    if request.endpoint != "static":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def healthz():
    """Node health for the facilities team (JSON)."""
    config = current_app.config
    try:
        outbox = get_outbox()
        state = get_state()
        roster = state.get(ROSTER) or {}
        body = {
            "ok": True, "node": config["NODE_ID"], "zone": current_zone(state),
            "backlog": outbox.backlog(), "roster": roster.get("version"),
        }
        return jsonify(body)
    except sqlite3.Error as exc:
        return jsonify({"ok": False, "node": config["NODE_ID"], "error": str(exc)}), 503

