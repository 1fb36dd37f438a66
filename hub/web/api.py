"""JSON API under /api/v1: health, events, attendance."""

import json
import logging
import sqlite3
from datetime import date

from flask import Blueprint, Flask, abort, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from hub import attendance

from . import get_db, hospital_tz

PREFIX = "/api/v1"
bp = Blueprint("api", __name__, url_prefix=PREFIX)
log = logging.getLogger(__name__)


@bp.get("/health")
def health():
    site = current_app.config["SITE"]
    try:
        db = get_db()
        nodes = attendance.node_counts(db)
        quarantine = attendance.quarantine_count(db)
    except sqlite3.Error:
        log.exception("health: hub database unavailable")
        return jsonify(ok=False, site=site, db="error"), 503
    return jsonify(ok=True, site=site, db="ok", nodes=nodes, quarantine=quarantine)


@bp.get("/events")
def events():
    day = request.args.get("date")
    if day is None:
        return jsonify(attendance.list_events(get_db()))
    try:
        day = date.fromisoformat(day)
    except ValueError:
        abort(400, description="date must be YYYY-MM-DD")
    return jsonify(attendance.list_events(get_db(), day, hospital_tz()))


@bp.get("/events/<event_id>/attendance")
def event_attendance(event_id):
    db = get_db()
    event = attendance.get_event(db, event_id)
    if event is None:
        abort(404, description=f"unknown event: {event_id}")
    return jsonify(event=event, attendance=attendance.event_attendance(db, event_id))


def register_error_handlers(app: Flask) -> None:
    """Errors on /api/v1 paths answer JSON ``{"error": ...}``; pages keep HTML.

    Registered on the app, not the blueprint, so that a URL under /api/v1
    that matches no route (a 404 before any blueprint is chosen) is JSON too.
    """

    @app.errorhandler(HTTPException)
    def api_error(exc: HTTPException):
        if not _is_api(request.path):
            return exc
        if exc.code is not None and exc.code >= 500:
            message = "internal server error"  # never leak the details
        else:
            message = exc.description
        response = exc.get_response()  # keeps headers such as Allow on a 405
        response.set_data(json.dumps({"error": message}))
        response.content_type = "application/json"
        return response


def _is_api(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")
