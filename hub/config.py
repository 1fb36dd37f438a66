"""The hub's JSON config, read the same way by every hub process.

``db`` and ``photos_dir`` are relative to the config file, never to the
working directory, so ``rounds-hub web``, ``ingest`` and the CLI tools all
open the same files whatever directory they were started from.

``open311`` (optional) says who may read Open311 service requests
(``hub/web/open311.py``): ``{"public_read": false, "media_url_seconds": 3600}``
are the defaults. ``public_read`` true lists requests to anyone, without their
descriptions; ``media_url_seconds`` is how long a request's photo link works.

``retention`` (optional) says how many days each kind of data is kept
(hub/retention.py has the kinds, their defaults and why).

``review`` (optional) is the record's review chain (hub/records/review.py):
``{"levels": ["department", "branch", "committee"], "days_per_level": 7}``
are the defaults; ``levels`` is one or more of those, each at most once, in
the order an entry passes them."""

from pathlib import Path

from hub import retention
from hub.records import review
from hub.sql import is_dsn
from runtime.settings import ConfigError, load_json

_PATHS = ("db", "photos_dir")
OPEN311_DEFAULTS = {"public_read": False, "media_url_seconds": 3600}


def load_hub_config(path, required=("site", "db")) -> dict:
    """The config at ``path`` with its paths resolved and its ``open311`` and
    ``retention`` sections checked and completed; ConfigError when the file is
    unreadable, lacks a ``required`` key or has a wrong section value."""
    config = load_json(path, required)
    for key in _PATHS:
        if key == "db" and is_dsn(config.get(key, "")):
            continue  # a PostgreSQL DSN (docs/scaling.md), not a file
        if isinstance(config.get(key), str):
            config[key] = str(Path(path).parent / config[key])
    config["open311"] = open311_settings(config.get("open311"))
    config["retention"] = retention.settings(config.get("retention"))
    config["review"] = review_settings(config.get("review"))
    return config


def open311_settings(section: dict | None) -> dict:
    """The ``open311`` section with its defaults filled in; ConfigError on an
    unknown key or a value of the wrong type."""
    if section is None:
        section = {}
    if not isinstance(section, dict):
        raise ConfigError("open311 must be an object, e.g. {\"public_read\": false}")
    unknown = sorted(set(section) - set(OPEN311_DEFAULTS))
    if unknown:
        raise ConfigError(f"open311 has unknown keys: {', '.join(unknown)}")
    settings = {**OPEN311_DEFAULTS, **section}
    if not isinstance(settings["public_read"], bool):
        raise ConfigError("open311.public_read must be true or false")
    seconds = settings["media_url_seconds"]
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds <= 0:
        raise ConfigError("open311.media_url_seconds must be a whole number of seconds above 0")
    return settings


def review_settings(section: dict | None) -> dict:
    """The ``review`` section with its defaults filled in; ConfigError on an
    unknown key, an unknown or repeated level, no level at all, or days that
    are not a whole number from 1 to 365."""
    if section is None:
        section = {}
    if not isinstance(section, dict):
        raise ConfigError('review must be an object, e.g. {"days_per_level": 7}')
    unknown = sorted(set(section) - set(review.DEFAULTS))
    if unknown:
        raise ConfigError(f"review has unknown keys: {', '.join(unknown)}")
    settings = {**review.DEFAULTS, **section}
    levels = settings["levels"]
    if (not isinstance(levels, list) or not levels
            or any(level not in review.LEVELS for level in levels)
            or len(set(levels)) != len(levels)):
        raise ConfigError(f"review.levels must list one or more of {', '.join(review.LEVELS)}, "
                          "each at most once")
    days = settings["days_per_level"]
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 365:
        raise ConfigError("review.days_per_level must be a whole number of days from 1 to 365")
    return {"levels": list(levels), "days_per_level": days}
