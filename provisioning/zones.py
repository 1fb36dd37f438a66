"""Zones in the hub database (``rounds-provision zone add/list``).

A zone is a place a node watches, in the campus / building / floor / name
hierarchy; its id is a slug (it travels in every record). The hub's
dashboard draws zones on floor plans (``zones.polygon``); provisioning only
names them and places them.
"""

import math
import re

from hub.db import write_transaction

from . import ProvisioningError

ZONE_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}\Z")  # as hub.zones
MAX_NAME, MAX_PLACE = 100, 64
PLACE_FIELDS = ("campus", "building", "floor")


class ZoneError(ProvisioningError):
    """A zone id or field is invalid, or the zone is not known at the hub."""


def add_zone(db, zone: str, *, name: str, campus=None, building=None, floor=None,
             lat=None, lon=None) -> str:
    """Add ``zone``, or update the fields given of an existing one; returns
    ``"added"`` or ``"updated"``."""
    if not ZONE_ID.match(zone or ""):
        raise ZoneError(f"zone id {zone!r}: expected a slug (lower-case letters, digits, "
                        "- and _, starting with a letter or digit, at most 64)")
    row = {"name": _text(name, "--name", MAX_NAME, required=True)}
    for key, value in zip(PLACE_FIELDS, (campus, building, floor)):
        if value is not None:
            row[key] = _text(value, f"--{key}", MAX_PLACE)
    if (lat is None) != (lon is None):
        raise ZoneError("--lat and --lon go together")
    if lat is not None:
        row["lat"], row["lon"] = _coordinate(lat, "--lat", 90), _coordinate(lon, "--lon", 180)
    with write_transaction(db):
        known = db.execute("SELECT 1 FROM zones WHERE zone = ?", [zone]).fetchone()
        if known:
            assignments = ", ".join(f"{key} = :{key}" for key in row)
            db.execute(f"UPDATE zones SET {assignments} WHERE zone = :zone", {**row, "zone": zone})
        else:
            row["zone"] = zone
            db.execute(f"INSERT INTO zones ({', '.join(row)}) "
                       f"VALUES ({', '.join(':' + key for key in row)})", row)
    return "updated" if known else "added"


def list_zones(db) -> list[dict]:
    return [dict(row) for row in db.query(
        "SELECT zone, name, campus, building, floor, lat, lon FROM zones "
        "ORDER BY campus, building, floor, zone")]


def require_zone(db, zone: str) -> dict:
    """The zone's row, or a ``ZoneError`` saying how to add it."""
    rows = list(db.query("SELECT zone, name FROM zones WHERE zone = ?", [zone]))
    if not rows:
        raise ZoneError(f"zone {zone!r} is not known at the hub: add it first with "
                        f"`rounds-provision zone add {zone} --name \"...\"`")
    return rows[0]


def _text(value, option: str, limit: int, required: bool = False) -> str | None:
    value = (value or "").strip()
    if required and not value:
        raise ZoneError(f"{option}: required")
    if len(value) > limit or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ZoneError(f"{option}: at most {limit} characters, no control characters")
    return value or None


def _coordinate(value, option: str, bound: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ZoneError(f"{option} {value!r}: expected a number") from None
    if not math.isfinite(number) or not -bound <= number <= bound:
        raise ZoneError(f"{option} {value}: expected a number from {-bound} to {bound}")
    return number
