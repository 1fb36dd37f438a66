"""Reading request values without surprises: numbers, return paths, form times
and JSON bodies.

``str.isdigit`` is true for "²" and "١٢", and ``int()`` of a long digit
string overflows SQLite's 64-bit integers: either becomes a 500. Every
numeric query parameter goes through ``number``."""

from datetime import datetime
from urllib.parse import urlsplit

from flask import abort, request

from hub.schedule.zones import Problem
from hub.web.context import hospital_tz

MAX_DIGITS = 9
N_ = str  # marks a message for extraction; translated where it is shown


def number(text: str | None) -> int | None:
    """The value of 1..9 ASCII digits, else None."""
    if text and len(text) <= MAX_DIGITS and text.isascii() and text.isdigit():
        return int(text)
    return None


def wall_clock(text: str, field: str, problems: list, default=None) -> datetime | None:
    """A form's ``YYYY-MM-DDTHH:MM`` (datetime-local) in the hospital's zone;
    ``default`` when empty; None with a Problem for ``field`` when unreadable."""
    if not text:
        return default
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        value = None
    if value is None or value.tzinfo is not None:
        problems.append(Problem(field, N_("Write the time as YYYY-MM-DD HH:MM.")))
        return None
    return value.replace(tzinfo=hospital_tz())


def safe_next(target: str | None) -> str | None:
    """A path on this site to go back to, else None. Browsers read ``/\\host``,
    ``/\\t/host`` and ``//host`` as another host, so backslashes, control
    characters and anything with a scheme or host are refused."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if any(ord(c) < 32 or ord(c) == 127 for c in target):
        return None
    parts = urlsplit(target)
    return None if parts.scheme or parts.netloc else target


def json_object() -> dict:
    """The request's JSON object body; anything else answers 400."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, description="expected a JSON object body")
    return body
