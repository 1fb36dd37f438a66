"""What a request of the hub's web app works with: its own connection to
the hub database (opened on first use, closed at the end of the request: the
ingest process writes the same file, and WAL lets readers and the writer work
at once) and the hospital's time zone."""

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from flask import current_app, g
from sqlite_utils import Database

from hub.db import open_db


def get_db() -> Database:
    """This request's connection to the hub database, opened on first use."""
    if "db" not in g:
        # The first connection of a process migrates (under a file lock); the
        # rest connect plainly.
        migrated = current_app.extensions.setdefault("hub_db_migrated", False)
        g.db = open_db(current_app.config["HUB_DB"], migrate=not migrated)
        current_app.extensions["hub_db_migrated"] = True
    return g.db


def close_db(exc: BaseException | None = None) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.close()


def photos_dir() -> Path:
    """Where ingest stores photos (``hub.ingest.photos.store``): the configured
    ``photos_dir``, else ``photos`` beside the database."""
    configured = current_app.config.get("PHOTOS_DIR")
    return Path(configured) if configured else Path(current_app.config["HUB_DB"]).parent / "photos"


def hospital_tz() -> ZoneInfo:
    return ZoneInfo(current_app.config["TIMEZONE"])


def localtime(ts: str | None, fmt: str = "%H:%M") -> str:
    """Template filter: a stored UTC timestamp shown in the hospital time zone."""
    if not ts:
        return ""
    try:
        dt = datetime.fromisoformat(ts)
    except ValueError:
        return ts
    if dt.tzinfo is None:
        return ts  # not a wire timestamp; show it as stored rather than guess
    return dt.astimezone(hospital_tz()).strftime(fmt)
