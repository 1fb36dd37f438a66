"""Dashboard area: events (being built; see docs/dashboard.md)."""

from flask import Blueprint, Flask

bp = Blueprint("events", __name__)
api = Blueprint("events_api", __name__, url_prefix="/api/v1")
OPENAPI = {"paths": {}, "schemas": {}}


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(api)
