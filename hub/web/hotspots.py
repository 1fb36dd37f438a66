"""Dashboard area: hotspots (being built; see docs/dashboard.md)."""

from flask import Blueprint, Flask

bp = Blueprint("hotspots", __name__)
api = Blueprint("hotspots_api", __name__, url_prefix="/api/v1")
OPENAPI = {"paths": {}, "schemas": {}}


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(api)
