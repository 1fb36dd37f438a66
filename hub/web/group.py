"""Dashboard area "group": a hospital group's campuses side by side (issue 16).

On the group hub (hub.json ``campuses``: ``GROUP_CAMPUSES``; its database the
group's PostgreSQL, each campus in its own schema, filled by ``rounds-hub
group ingest``): ``/group/`` and ``/api/v1/group`` show, per campus, the last
30 days' events, check-ins, the attendance of those expected at the events
that ended, survey responses and their satisfaction index (0-100), the
tickets open and overdue, and the recurring hotspots (``hub.group.summary``), for the group's
office and admin. An office account limited to a campus (accounts.campus)
sees that campus only; a campus's own office may also work on its campus
hub, whose database holds its site only. On a hub with no campuses the page
says so.
"""

from datetime import datetime, timezone

from flask import Blueprint, Flask, current_app, jsonify, render_template
from flask_login import current_user

from hub.group.summary import group_summary
from hub.web import openapi
from hub.web.auth import requires

bp = Blueprint("group", __name__)
api = Blueprint("group_api", __name__, url_prefix="/api/v1")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(api)


def _campuses() -> list[dict]:
    campuses = current_app.config.get("GROUP_CAMPUSES") or []
    if current_user.campus is not None:  # an office account of one campus
        campuses = [site for site in campuses if site == current_user.campus]
    if not campuses:
        return []
    return group_summary(current_app.config["HUB_DB"], campuses, datetime.now(timezone.utc))


@bp.get("/group/", endpoint="index")
@requires("office")
def index():
    return render_template("group.html", campuses=_campuses())


@api.get("/group", endpoint="summary")
@requires("office")
def summary():
    return jsonify(campuses=_campuses())


_COUNT = {"type": "integer"}
OPENAPI = {
    "paths": {"/api/v1/group": {"get": {
        "summary": "The group's campuses side by side (empty on a hub with no campuses)",
        "responses": {"200": openapi.json_response("Per campus", openapi.ref("GroupSummary")),
                      **openapi.SIGNED_IN}}}},
    "schemas": {"GroupSummary": {
        "type": "object", "required": ["campuses"],
        "properties": {"campuses": {"type": "array", "items": {
            "type": "object", "required": ["site", "ready"],
            "properties": {
                "site": {"type": "string"}, "ready": {"type": "boolean"},
                "events": _COUNT, "checkins": _COUNT, "survey_responses": _COUNT,
                "attendance": {
                    "type": "object",
                    "required": ["events", "expected", "present", "partial", "rate"],
                    "properties": {"events": _COUNT, "expected": _COUNT, "present": _COUNT,
                                   "partial": _COUNT,
                                   "rate": {"type": ["number", "null"]}}},
                "satisfaction": {"type": ["number", "null"]},
                "tickets_open": _COUNT, "tickets_overdue": _COUNT,
                "hotspots": {"type": "array", "items": {
                    "type": "object", "required": ["zone", "category", "recent"],
                    "properties": {"zone": {"type": "string"},
                                   "category": {"type": "string"},
                                   "recent": _COUNT}}}}}}}}},
}
