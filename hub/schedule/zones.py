"""Zones and floor plans on the hub database.

A **zone** (``zones``) is a place a node watches: id (a slug), name, campus,
building, floor, optional lat/lon, and optionally a ``polygon``: JSON
``[[x, y], ...]`` (3..200 points) in the coordinates of its floor's plan. The
name is in the hospital's language; ``name_en``, optional, is the English name
shown to a reader who picks English (``zone_names(db, "en")``). ``check_zone``
takes it only when ``fields`` has the key, so a form or API body without it
keeps the stored one (and the zone dicts read here leave it out). A ward may
belong to a ``department`` (a code of the ``departments`` table, or none): the
satisfaction index per department (hub/surveys/results.py) adds up its wards.

A **floor plan** (``floor_plans``) is one drawing per (campus, building,
floor): an uploaded SVG (``kind`` ``svg``, stored only after sanitizing) or a
JSON outline (``json``), whose ``width`` x ``height`` box is the coordinate
system of the zones' polygons. What such a file may hold, the sanitizer and
the drawing of outlines are ``hub.schedule.floor_plans``.

Validation problems are ``Invalid`` errors: messages in English marked for
translation (``N_``) with their parameters apart, so the dashboard shows them
translated and the API in English. ``hub.schedule.events`` uses the same class. A plan
file that is not accepted raises ``hub.schedule.floor_plans.Refused``.
"""

import json
import math
import re
from datetime import datetime, timezone

from protocol.clock import iso

from hub.schedule.floor_plans import MAX_PLAN_BYTES, Refused, check_outline, fmt, points_within, sanitize_svg

N_ = str  # marks a message for extraction; translated where it is shown

ZONE_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
MAX_NAME = 100
MAX_PLACE = 64
POLYGON_POINTS = (3, 200)
_PLACE = ("campus", "building", "floor")
_ZONE_COLUMNS = ("zone", "name", "campus", "building", "floor", "lat", "lon", "polygon",
                 "department")


class Problem:
    """One thing wrong with an input: the field, an English message with
    ``%(name)s`` placeholders, and their values."""

    def __init__(self, field: str, message: str, /, **params):
        self.field, self.message, self.params = field, message, params

    def __str__(self) -> str:
        return self.message % self.params if self.params else self.message

    def __repr__(self) -> str:
        return f"Problem({self.field!r}, {str(self)!r})"


class Invalid(ValueError):
    """Input refused, with every ``Problem`` found (nothing was changed)."""

    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(f"{p.field}: {p}" for p in problems))
        self.problems = problems

    def by_field(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for problem in self.problems:
            found.setdefault(problem.field, str(problem))
        return found


# --- zones ---------------------------------------------------------------------------


def _zone(row) -> dict:
    zone = dict(zip(_ZONE_COLUMNS, row))
    try:
        zone["polygon"] = json.loads(zone["polygon"]) if zone["polygon"] else None
    except ValueError:
        zone["polygon"] = None
    return zone


def list_zones(db) -> list[dict]:
    """Every zone, ordered campus, building, floor, name (empty places first)."""
    rows = db.conn.execute(
        f"SELECT {', '.join(_ZONE_COLUMNS)} FROM zones "
        "ORDER BY coalesce(campus, ''), coalesce(building, ''), coalesce(floor, ''), name, zone")
    return [_zone(row) for row in rows]


def get_zone(db, zone_id: str) -> dict | None:
    row = db.conn.execute(f"SELECT {', '.join(_ZONE_COLUMNS)} FROM zones WHERE zone = ?",
                          (zone_id,)).fetchone()
    return _zone(row) if row else None


def zone_names(db, lang: str | None = None) -> dict[str, str]:
    """Zone -> name, by name; with ``lang`` ``"en"``, the English name where
    one is stored."""
    english = lang == "en"
    return {zone: name_en if english and name_en else name
            for zone, name, name_en in db.conn.execute(
                "SELECT zone, name, name_en FROM zones ORDER BY name, zone")}


def zones_on_floor(db, campus, building, floor) -> list[dict]:
    """The zones of one (campus, building, floor), by id: a floor plan's zones."""
    rows = db.conn.execute(
        f"SELECT {', '.join(_ZONE_COLUMNS)} FROM zones "
        "WHERE campus IS NOT DISTINCT FROM ? AND building IS NOT DISTINCT FROM ? "
        "AND floor IS NOT DISTINCT FROM ? ORDER BY zone",
        (campus, building, floor))
    return [_zone(row) for row in rows]


def find_zone(db, text: str) -> str | None:
    """The zone whose id or name is ``text``."""
    row = db.conn.execute("SELECT zone FROM zones WHERE zone = ? OR name = ? LIMIT 1",
                          (text, text)).fetchone()
    return row[0] if row else None


def nearest_zone(db, lat: float, lon: float) -> str | None:
    """The zone with coordinates closest to (lat, lon); None when no zone has any."""
    best = None
    for zone, zlat, zlon in db.conn.execute(
            "SELECT zone, lat, lon FROM zones WHERE lat IS NOT NULL AND lon IS NOT NULL"):
        d = (zlat - lat) ** 2 + ((zlon - lon) * math.cos(math.radians(lat))) ** 2
        if best is None or d < best[0]:
            best = (d, zone)
    return best[1] if best else None


_REQUIRED = {"name": N_("The name is required."), "floor": N_("The floor is required.")}
_RANGE = {"lat": N_("Latitude must be a number from -90 to 90."),
          "lon": N_("Longitude must be a number from -180 to 180.")}


def _text(problems, fields, name, limit, required=False):
    value = fields.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # "floor": 2 in a JSON body
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            problems.append(Problem(name, _REQUIRED[name]))
        return None
    if not isinstance(value, str) or len(value.strip()) > limit:
        problems.append(Problem(name, N_("Text of at most %(max)d characters, please."),
                                max=limit))
        return None
    return value.strip()


def _coordinate(problems, fields, name, bound):
    value = fields.get(name)
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not -bound <= number <= bound:
        problems.append(Problem(name, _RANGE[name]))
        return None
    return number


def check_zone(db, fields: dict, zone_id: str | None = None) -> dict:
    """The zone row ``fields`` describe, validated: for a new zone when
    ``zone_id`` is None (``fields["zone"]`` is its id), else for that one.
    ``polygon`` may be a list or its JSON text; it needs a floor plan.
    ``name_en`` is in the row only when ``fields`` has it. Raises Invalid."""
    problems: list[Problem] = []
    row: dict = {}
    if zone_id is None:
        zone_id = fields.get("zone")
        if not isinstance(zone_id, str) or not ZONE_ID.fullmatch(zone_id.strip()):
            problems.append(Problem("zone", N_(
                "The zone id must be 1-64 lowercase letters, digits, '-' or '_'.")))
        elif get_zone(db, zone_id.strip()) is not None:
            problems.append(Problem("zone", N_("A zone %(zone)s already exists."),
                                    zone=zone_id.strip()))
        zone_id = zone_id.strip() if isinstance(zone_id, str) else zone_id
    row["zone"] = zone_id
    row["name"] = _text(problems, fields, "name", MAX_NAME, required=True)
    if "name_en" in fields:  # left out: the stored English name stays
        row["name_en"] = _text(problems, fields, "name_en", MAX_NAME)
    for place in _PLACE:
        row[place] = _text(problems, fields, place, MAX_PLACE)
    row["lat"] = _coordinate(problems, fields, "lat", 90)
    row["lon"] = _coordinate(problems, fields, "lon", 180)
    if (row["lat"] is None) != (row["lon"] is None) and not any(
            p.field in ("lat", "lon") for p in problems):
        problems.append(Problem("lat", N_("Give both latitude and longitude, or neither.")))
    row["department"] = _department(db, problems, fields)
    polygon = fields.get("polygon")
    row["polygon"] = None
    if polygon not in (None, "", []):
        plan = plan_for(db, row["campus"], row["building"], row["floor"])
        if plan is None:
            problems.append(Problem("polygon", N_(
                "This floor has no floor plan yet: upload one before drawing the zone.")))
        else:
            try:
                row["polygon"] = json.dumps(check_polygon(polygon, plan["width"],
                                                          plan["height"]))
            except Invalid as exc:
                problems.extend(exc.problems)
    if problems:
        raise Invalid(problems)
    return row


def _department(db, problems, fields) -> str | None:
    """The zone's department: empty for none, else a code of ``departments``."""
    value = _text(problems, fields, "department", MAX_PLACE)
    if value is not None and db.conn.execute(
            "SELECT 1 FROM departments WHERE department = ?", (value,)).fetchone() is None:
        problems.append(Problem("department", N_("Unknown department: %(departments)s."),
                                departments=value))
        return None
    return value


def check_polygon(polygon, width: float, height: float) -> list[list[float]]:
    """``polygon`` (a list or its JSON text) as ``[[x, y], ...]`` with 3..200
    points inside the ``width`` x ``height`` plan. Raises Invalid."""
    if isinstance(polygon, str):
        try:
            polygon = json.loads(polygon)
        except ValueError:
            raise Invalid([Problem("polygon", N_(
                "The polygon must be JSON: [[x, y], [x, y], ...]."))]) from None
    low, high = POLYGON_POINTS
    if not isinstance(polygon, list) or not low <= len(polygon) <= high:
        raise Invalid([Problem("polygon", N_("The polygon needs %(min)d to %(max)d points."),
                               min=low, max=high)])
    points = points_within(polygon, width, height)
    if points is None:
        raise Invalid([Problem("polygon", N_(
            "Every polygon point must be [x, y] within the plan (0-%(width)s x "
            "0-%(height)s)."), width=fmt(width), height=fmt(height))])
    return points


def _row_columns(row: dict) -> list[str]:
    return [*_ZONE_COLUMNS, *(["name_en"] if "name_en" in row else [])]


def create_zone(db, row: dict) -> None:
    columns = _row_columns(row)
    db.conn.execute(
        f"INSERT INTO zones ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
        [row[c] for c in columns])


def update_zone(db, row: dict) -> None:
    columns = [c for c in _row_columns(row) if c != "zone"]
    db.conn.execute(f"UPDATE zones SET {', '.join(c + ' = ?' for c in columns)} WHERE zone = ?",
                    [row[c] for c in columns] + [row["zone"]])


# --- floor plans -----------------------------------------------------------------------

_PLAN_COLUMNS = ("id", "campus", "building", "floor", "kind", "width", "height", "updated_at")


def list_plans(db) -> list[dict]:
    return [dict(zip(_PLAN_COLUMNS, row)) for row in db.conn.execute(
        f"SELECT {', '.join(_PLAN_COLUMNS)} FROM floor_plans "
        "ORDER BY coalesce(campus, ''), coalesce(building, ''), coalesce(floor, '')")]


def get_plan(db, plan_id: int, content: bool = False) -> dict | None:
    columns = _PLAN_COLUMNS + (("content",) if content else ())
    row = db.conn.execute(f"SELECT {', '.join(columns)} FROM floor_plans WHERE id = ?",
                          (plan_id,)).fetchone()
    return dict(zip(columns, row)) if row else None


def plan_for(db, campus, building, floor) -> dict | None:
    """The plan of a floor; empty parts of the place match empty ones."""
    row = db.conn.execute(
        f"SELECT {', '.join(_PLAN_COLUMNS)} FROM floor_plans "
        "WHERE campus IS NOT DISTINCT FROM ? AND building IS NOT DISTINCT FROM ? "
        "AND floor IS NOT DISTINCT FROM ?",
        (campus or None, building or None, floor or None)).fetchone()
    return dict(zip(_PLAN_COLUMNS, row)) if row else None


def save_plan(db, campus, building, floor, filename: str, data: bytes,
              now: datetime | None = None) -> int:
    """Store the plan of a floor from an uploaded file (``.json`` is an
    outline, anything else must be SVG), replacing the floor's earlier plan
    in place (its id stays). Raises Refused or Invalid; answers the id."""
    place = {"campus": campus, "building": building, "floor": floor}
    problems: list[Problem] = []
    campus, building = (_text(problems, place, p, MAX_PLACE) for p in ("campus", "building"))
    floor = _text(problems, place, "floor", MAX_PLACE, required=True)
    if problems:
        raise Invalid(problems)
    if len(data) > MAX_PLAN_BYTES:
        raise Refused(N_("The file is larger than 1 MB."), 413)
    if not data.strip():
        raise Refused(N_("The file is empty."))
    if filename.lower().endswith(".json"):
        document = check_outline(data)
        kind, content = "json", json.dumps(document, separators=(",", ":"))
        width, height = document["width"], document["height"]
    else:
        content, width, height = sanitize_svg(data)
        kind = "svg"
    stamp = iso(now or datetime.now(timezone.utc))
    existing = plan_for(db, campus, building, floor)
    if existing:
        db.conn.execute("UPDATE floor_plans SET kind = ?, content = ?, width = ?, height = ?, "
                        "updated_at = ? WHERE id = ?",
                        (kind, content, width, height, stamp, existing["id"]))
        return existing["id"]
    cursor = db.conn.execute(
        "INSERT INTO floor_plans (campus, building, floor, kind, content, width, height, "
        "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (campus, building, floor, kind, content, width, height, stamp))
    return cursor.fetchone()[0]
