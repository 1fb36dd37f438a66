"""The hub's web app: dashboard pages, the JSON API (/api/v1) and Open311
GeoReport v2 (/open311/v2).

Run by gunicorn (``hub.web:create_app()``) in several workers while the ingest
process writes the same SQLite file, so each request opens its own connection
(WAL mode lets readers and the writer work at once) and closes it at the end.
"""

import os
import secrets
from pathlib import Path
from zoneinfo import ZoneInfo

from flask import Flask

from hub.config import load_hub_config
from hub.sql import is_dsn
from runtime.settings import ConfigError

from hub.web import (
    accounts, api, assessment, audit_log, auth, contests, events, events_api, fleet, group, hotspots, hours, i18n, labels, nav,
    open311, openapi, pages, people, records, records_api, registration, roster, roster_import, summaries, surveys,
    surveys_api, tickets, yearbook, zones,
)
from hub.web.context import close_db, localtime

CONFIG_ENV = "ROUNDS_HUB_CONFIG"
DEFAULT_TIMEZONE = "Asia/Shanghai"


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app from ``test_config``, or from the JSON hub config named by
    the ``ROUNDS_HUB_CONFIG`` environment variable."""
    app = Flask(__name__)
    app.config.from_mapping(SITE=None, HUB_DB=None, TIMEZONE=DEFAULT_TIMEZONE, SECRET_KEY=None,
                            PHOTOS_DIR=None, SECURE_COOKIES=True,
                            # Floor plans and roster files are the biggest uploads
                            # (1 MB, 5 MB); refuse anything far larger before the
                            # CSRF check reads it into a temporary file.
                            MAX_CONTENT_LENGTH=16 * 1024 * 1024)
    app.config.update(_load_hub_config() if test_config is None else test_config)
    if not app.config["HUB_DB"]:
        raise ConfigError("HUB_DB (the hub database path) is not configured")
    ZoneInfo(app.config["TIMEZONE"])  # fail at start-up, not on the first request
    if app.config.get("GROUP_CAMPUSES") and not is_dsn(app.config["HUB_DB"]):
        raise ConfigError("a group hub's database is PostgreSQL (a schema per campus): "
                          "HUB_DB must be a postgresql:// DSN")
    if is_dsn(app.config["HUB_DB"]):
        # Nothing lies beside a database server: every hub machine names the
        # same session key and the directory its ingest keeps photos in.
        missing = [key for key in ("SECRET_KEY", "PHOTOS_DIR") if not app.config[key]]
        if missing:
            raise ConfigError(f"a hub on PostgreSQL needs {' and '.join(missing)} "
                              "(hub.json: secret_key, photos_dir)")
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = _secret_key(Path(app.config["HUB_DB"]))

    app.teardown_appcontext(close_db)
    app.add_template_filter(localtime)

    i18n.init_app(app)
    labels.init_app(app)  # the words for stored codes and the ``hours`` filter, for every page
    auth.init_app(app)
    app.jinja_env.globals.update(nav_items=nav.nav_items)
    app.register_blueprint(api.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(open311.bp)
    openapi.init_app(app)
    fragments = app.extensions.setdefault("openapi_fragments", [])
    for area in AREAS:
        area.init_app(app)
        fragments.append(area.OPENAPI)
    api.register_error_handlers(app)
    return app


# Dashboard areas, each a module with ``init_app(app)`` registering its pages
# and/or its /api/v1 routes (events_api, surveys_api and records_api: the API of
# events, surveys and records, beside their pages); see docs/dashboard.md.
AREAS = (roster, roster_import, accounts, events, events_api, zones, tickets, hours, fleet, people,
         hotspots, surveys, surveys_api, contests, assessment, records, records_api, registration,
         summaries, yearbook, audit_log, group)


def _secret_key(db_path: Path) -> bytes:
    """The session-signing key kept beside the database (0600), made once,
    shared by every gunicorn worker of this hub."""
    path = db_path.parent / "hub-web.secret"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    key = secrets.token_hex(32).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another worker made it first
        return path.read_bytes()
    with os.fdopen(fd, "wb") as out:
        out.write(key)
        out.flush()
        os.fsync(out.fileno())
    return key


def _load_hub_config() -> dict:
    path = os.environ.get(CONFIG_ENV)
    if not path:
        raise ConfigError(f"{CONFIG_ENV} is not set (path to the hub's JSON config)")
    config = load_hub_config(path)
    mapping = {"SITE": config["site"], "HUB_DB": config["db"]}
    if "timezone" in config:
        mapping["TIMEZONE"] = config["timezone"]
    if "secret_key" in config:
        mapping["SECRET_KEY"] = config["secret_key"]
    if "photos_dir" in config:
        mapping["PHOTOS_DIR"] = config["photos_dir"]
    if "campuses" in config:  # a group hub (hub/web/group.py)
        mapping["GROUP_CAMPUSES"] = list(config["campuses"])
    mapping["OPEN311"] = config["open311"]
    mapping["RETENTION"] = config["retention"]
    mapping["REVIEW"] = config["review"]
    web = config.get("web", {})
    if "secure_cookies" in web:
        mapping["SECURE_COOKIES"] = bool(web["secure_cookies"])
    return mapping
