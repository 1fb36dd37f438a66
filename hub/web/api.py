"""JSON API under /api/v1: health and occupancy, and the JSON errors of every
/api/v1 route. The dashboard areas own the rest of /api/v1 (``api``
blueprints beside their pages: events and attendance, zones, tickets, hours,
hotspots, ...)."""

import json
import logging
from datetime import datetime, timedelta, timezone

from flask import Blueprint, Flask, abort, current_app, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from hub.attendance import attendance, occupancy
from hub.sql import Error as DatabaseError  # SQLite's or PostgreSQL's
from protocol.clock import iso

from hub.web import open311
from hub.web.auth import requires
from hub.web.context import get_db

PREFIX = "/api/v1"
bp = Blueprint("api", __name__, url_prefix=PREFIX)
log = logging.getLogger(__name__)


@bp.get("/health")
def health():
    """Open to anyone who can reach the hub (monitoring): counts only."""
    site = current_app.config["SITE"]
    try:
        db = get_db()
        nodes = attendance.node_counts(db)
        quarantine = attendance.quarantine_count(db)
    except DatabaseError:
        log.exception("health: hub database unavailable")
        return jsonify(ok=False, site=site, db="error"), 503
    return jsonify(ok=True, site=site, db="ok", nodes=nodes, quarantine=quarantine)


OCCUPANCY_DEFAULT = timedelta(hours=2)


@bp.get("/occupancy")
@requires("office")
def zone_occupancy():
    """Devices per zone and minute: ``?zone=<zone>&from=<iso>&to=<iso>``, all
    optional (every zone; the last 2 hours). Times are ISO 8601 with a UTC
    offset or ``Z``; the range is at most 31 days. Answers ``{"zone", "from",
    "to", "occupancy": [{"zone", "minute", "devices"}, ...]}``."""
    now = datetime.now(timezone.utc)
    zone = request.args.get("zone")
    if zone is not None and not 0 < len(zone) <= 64:
        abort(400, description="zone must be 1..64 characters")
    end = _instant("to", now)
    start = _instant("from", end - OCCUPANCY_DEFAULT)
    if start >= end:
        abort(400, description="from must be before to")
    if end - start > occupancy.MAX_RANGE:
        abort(400, description=f"from..to spans at most {occupancy.MAX_RANGE.days} days")
    return jsonify(zone=zone, **{"from": iso(start), "to": iso(end)},
                   occupancy=occupancy.occupancy(get_db(), start, end, zone))


def _instant(name: str, default: datetime) -> datetime:
    text = request.args.get(name)
    if text is None:
        return default
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        abort(400, description=f"{name} must be an ISO 8601 time, e.g. 2025-03-10T09:00:00Z")
    if value.tzinfo is None:
        abort(400, description=f"{name} needs a time zone (Z, or +08:00 written %2B08:00)")
    if not 1970 <= value.year <= 9998:
        abort(400, description=f"{name} is out of range")
    return value


def register_error_handlers(app: Flask) -> None:
    """Errors on /api/v1 paths answer JSON ``{"error": ...}``; pages keep HTML.

    Registered on the app, not the blueprint, so that a URL under /api/v1
    that matches no route (a 404 before any blueprint is chosen) is JSON too.
    """

    @app.errorhandler(HTTPException)
    def api_error(exc: HTTPException):
        if open311.is_open311(request.path):
            return open311.error_response(exc)
        if not _is_api(request.path):
            return _error_page(exc)
        if exc.code is not None and exc.code >= 500:
            message = "internal server error"  # never leak the details
        else:
            message = exc.description
        response = exc.get_response()  # keeps headers such as Allow on a 405
        response.set_data(json.dumps({"error": message}))
        response.content_type = "application/json"
        return response


# Dashboard errors with a page in the reader's language (error.html); any
# other (405, 413, 429, 5xx, ...) keeps Werkzeug's own.
ERROR_PAGES = (400, 403, 404, 409)


def _error_page(exc: HTTPException):
    """A page's 400/403/404/409 as a translated page (``error.html``): the
    reason given to ``abort`` is shown as detail; Werkzeug's generic English
    description is not. An error that carries its own response keeps it."""
    if exc.code not in ERROR_PAGES or exc.response is not None:
        return exc
    if isinstance(exc, CSRFError):
        detail = _("The form has expired or came from another page (CSRF check failed): "
                   "reload the page and send it again.")
    else:
        detail = exc.description if exc.description != type(exc).description else None
    return render_template("error.html", code=exc.code, detail=detail), exc.code


def _is_api(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")
