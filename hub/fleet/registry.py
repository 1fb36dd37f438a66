"""What the facilities team's tools (``rounds-provision``) ask of the hub:
zones named and placed, nodes registered in a zone and revoked. Each function
opens the hub database at the path it is given, so provisioning never touches
the hub's tables.

A zone is a place a node watches, in the campus / building / floor / name
hierarchy; its id is a slug (it travels in every record). The hub's
dashboard draws zones on floor plans (``hub.schedule.zones``); provisioning only
names them and places them. A node is registered with its zone
(``revoked = 0``) when added and marked ``revoked = 1`` when revoked; its
status columns (state, last seen, ...) belong to the ingest.
"""

import math
from contextlib import contextmanager

from hub.db import open_db, write_transaction
from hub.schedule.zones import ZONE_ID

MAX_NAME, MAX_PLACE = 100, 64
PLACE_FIELDS = ("campus", "building", "floor")


class ZoneError(ValueError):
    """A zone id or field is invalid, or the zone is not known at the hub."""


@contextmanager
def _hub(db_path):
    db = open_db(db_path)
    try:
        yield db
    finally:
        db.close()


def add_zone(db_path, zone: str, *, name: str, campus=None, building=None, floor=None,
             lat=None, lon=None) -> str:
    """Add ``zone``, or update the fields given of an existing one; returns
    ``"added"`` or ``"updated"``."""
    if not ZONE_ID.fullmatch(zone or ""):
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
    with _hub(db_path) as db, write_transaction(db):
        known = db.execute("SELECT 1 FROM zones WHERE zone = ?", [zone]).fetchone()
        if known:
            assignments = ", ".join(f"{key} = :{key}" for key in row)
            db.execute(f"UPDATE zones SET {assignments} WHERE zone = :zone", {**row, "zone": zone})
        else:
            row["zone"] = zone
            db.execute(f"INSERT INTO zones ({', '.join(row)}) "
                       f"VALUES ({', '.join(':' + key for key in row)})", row)
    return "updated" if known else "added"


def list_zones(db_path) -> list[dict]:
    with _hub(db_path) as db:
        return [dict(row) for row in db.query(
            "SELECT zone, name, campus, building, floor, lat, lon FROM zones "
            "ORDER BY campus, building, floor, zone")]


def require_zone(db_path, zone: str) -> dict:
    """The zone's row, or a ``ZoneError`` saying how to add it."""
    with _hub(db_path) as db:
        return _require_zone(db, zone)


def _require_zone(db, zone: str) -> dict:
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


# --- nodes ---------------------------------------------------------------------

def register_node(db_path, node: str, zone: str) -> None:
    """Insert or update ``node`` in ``zone``; the zone must exist (ZoneError)."""
    with _hub(db_path) as db, write_transaction(db):
        _require_zone(db, zone)
        db.execute("INSERT INTO nodes (node, zone, revoked) VALUES (?, ?, 0) "
                   "ON CONFLICT (node) DO UPDATE SET zone = excluded.zone, revoked = 0",
                   [node, zone])


def revoke_node(db_path, node: str) -> bool:
    """Mark ``node`` revoked; False when the hub does not know it."""
    with _hub(db_path) as db, write_transaction(db):
        cursor = db.execute("UPDATE nodes SET revoked = 1 WHERE node = ?", [node])
    return cursor.rowcount > 0


def registered_nodes(db_path) -> dict[str, dict]:
    """Every node the hub knows: node -> {zone, zone_name, state, last_seen, revoked}."""
    with _hub(db_path) as db:
        return {row["node"]: row for row in (dict(r) for r in db.query(
            "SELECT n.node, n.zone, z.name AS zone_name, n.state, n.last_seen, n.revoked "
            "FROM nodes n LEFT JOIN zones z ON z.zone = n.zone ORDER BY n.node"))}
