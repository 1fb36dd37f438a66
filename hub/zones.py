"""Zones and floor plans on the hub database.

A **zone** (``zones``) is a place a node watches: id (a slug), name, campus,
building, floor, optional lat/lon, and optionally a ``polygon``: JSON
``[[x, y], ...]`` (3..200 points) in the coordinates of its floor's plan.

A **floor plan** (``floor_plans``) is one drawing per (campus, building,
floor), kept as one of:

* ``svg``: an uploaded SVG, stored only after ``sanitize_svg`` rebuilt it from
  an allow-list (an SVG served from the hub's origin runs scripts when opened
  directly, so anything that is not plain drawing goes). Its ``viewBox`` is
  moved to the origin so that its ``width`` x ``height`` box is the
  coordinate system of the zones' polygons.
* ``json``: an outline drawn from data, rendered to SVG when served::

      {"width": 1000, "height": 600,
       "outline": [[0, 0], [1000, 0], [1000, 600], [0, 600]],
       "shapes": [{"type": "polygon", "points": [[x, y], ...], "label": "Ward 3"},
                  {"type": "polyline", "points": [[x, y], ...]},
                  {"type": "rect", "x": 10, "y": 10, "width": 80, "height": 40,
                   "label": "Lift"},
                  {"type": "text", "x": 500, "y": 20, "text": "North"}]}

  ``width``/``height`` (0 < n <= 100000) are the coordinate box; ``outline``
  (the building's walls) and ``shapes`` are each optional but not both
  absent; every coordinate lies within the box.

Validation problems are ``Invalid`` errors: messages in English marked for
translation (``N_``) with their parameters apart, so the dashboard shows them
translated and the API in English. ``hub.events`` uses the same class.
"""

import json
import math
import re
from datetime import datetime, timezone
from xml.parsers import expat
from xml.sax.saxutils import escape, quoteattr

from protocol.clock import iso

N_ = str  # marks a message for extraction; translated where it is shown

ZONE_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
MAX_NAME = 100
MAX_PLACE = 64
POLYGON_POINTS = (3, 200)
MAX_PLAN_BYTES = 1024 * 1024
MAX_PLAN_SIZE = 100_000
MAX_SHAPES = 2000
MAX_SHAPE_POINTS = 5000
_PLACE = ("campus", "building", "floor")
_ZONE_COLUMNS = ("zone", "name", "campus", "building", "floor", "lat", "lon", "polygon")


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


class Refused(ValueError):
    """A floor-plan file that is not accepted; ``status`` is the HTTP answer
    (413 too large, 400 otherwise) and the message says why."""

    def __init__(self, message: str, status: int = 400, **params):
        super().__init__(message % params if params else message)
        self.message, self.params, self.status = message, params, status


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


def zone_names(db) -> dict[str, str]:
    return {zone: name for zone, name in db.conn.execute("SELECT zone, name FROM zones")}


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
    Raises Invalid."""
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
    for place in _PLACE:
        row[place] = _text(problems, fields, place, MAX_PLACE)
    row["lat"] = _coordinate(problems, fields, "lat", 90)
    row["lon"] = _coordinate(problems, fields, "lon", 180)
    if (row["lat"] is None) != (row["lon"] is None) and not any(
            p.field in ("lat", "lon") for p in problems):
        problems.append(Problem("lat", N_("Give both latitude and longitude, or neither.")))
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


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


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
    points = _points(polygon, width, height)
    if points is None:
        raise Invalid([Problem("polygon", N_(
            "Every polygon point must be [x, y] within the plan (0-%(width)s x "
            "0-%(height)s)."), width=_fmt(width), height=_fmt(height))])
    return points


def create_zone(db, row: dict) -> None:
    db.conn.execute(
        f"INSERT INTO zones ({', '.join(_ZONE_COLUMNS)}) VALUES ({', '.join('?' * 8)})",
        [row[c] for c in _ZONE_COLUMNS])


def update_zone(db, row: dict) -> None:
    columns = [c for c in _ZONE_COLUMNS if c != "zone"]
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
        "WHERE campus IS ? AND building IS ? AND floor IS ?",
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
        "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (campus, building, floor, kind, content, width, height, stamp))
    return cursor.lastrowid


def plan_svg(plan: dict) -> str:
    """The SVG to serve for a stored plan (``get_plan(..., content=True)``).
    A stored SVG goes through the sanitizer again: the table may have been
    written by something other than ``save_plan``."""
    if plan["kind"] == "json":
        return render_outline(json.loads(plan["content"]))
    return sanitize_svg(plan["content"].encode())[0]


# --- SVG sanitizer -----------------------------------------------------------------------

SVG_NS = "http://www.w3.org/2000/svg"
ELEMENTS = frozenset({"svg", "g", "path", "rect", "circle", "ellipse", "line", "polyline",
                      "polygon", "text", "tspan", "title", "desc"})
# Presentation properties: allowed as attributes and inside style="...".
PRESENTATION = frozenset({
    "fill", "fill-opacity", "fill-rule", "stroke", "stroke-width", "stroke-opacity",
    "stroke-linecap", "stroke-linejoin", "stroke-dasharray", "stroke-dashoffset",
    "stroke-miterlimit", "opacity", "color", "visibility", "display", "font-family",
    "font-size", "font-weight", "font-style", "font-variant", "text-anchor",
    "dominant-baseline", "alignment-baseline", "baseline-shift", "letter-spacing",
    "word-spacing", "text-decoration", "writing-mode", "paint-order", "shape-rendering",
    "text-rendering", "vector-effect", "clip-rule"})
GEOMETRY = frozenset({"x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "rx", "ry", "width",
                      "height", "d", "points", "transform", "viewBox", "preserveAspectRatio",
                      "dx", "dy", "rotate", "textLength", "lengthAdjust", "pathLength"})
_BAD_VALUE = re.compile(r"url\s*\(|javascript:|expression\s*\(|@import|\\|<", re.I)
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _fmt(number: float) -> str:
    text = f"{number:.4f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def _clean_style(value: str) -> str | None:
    if _BAD_VALUE.search(value):
        return None
    kept = []
    for declaration in value.split(";"):
        name, sep, val = declaration.partition(":")
        if sep and name.strip().lower() in PRESENTATION and val.strip():
            kept.append(f"{name.strip().lower()}:{val.strip()}")
    return ";".join(kept) or None


class _Sanitizer:
    """Expat handlers writing the allowed part of an SVG as they parse it.

    An element outside the allow-list is dropped with everything inside it
    (``skip`` counts how deep we are in one); text after it is kept.
    """

    def __init__(self):
        self.out: list[str] = []
        self.depth = self.skip = 0
        self.box: tuple[float, float] | None = None
        self.shifted = False

    def start(self, name: str, attrs: dict) -> None:
        self.depth += 1
        if self.skip:
            self.skip += 1
            return
        ns, _sep, local = name.rpartition(" ")
        svg = ns in ("", SVG_NS)
        if self.depth == 1:
            if not svg or local != "svg":
                raise Refused(N_("This is not an SVG drawing (its root element is %(root)s)."),
                              root=local)
            self._root(attrs)
            return
        if not svg or local not in ELEMENTS:
            self.skip = 1
            return
        self.out.append(f"<{local}{self._attributes(attrs)}>")

    def _attributes(self, attrs: dict, drop=()) -> str:
        kept = []
        for name, value in attrs.items():
            if " " in name or name in drop:
                continue  # namespaced: xlink:href, sodipodi:*, xml:* ...
            if name == "style":
                value = _clean_style(value)
            elif name not in PRESENTATION and name not in GEOMETRY:
                continue  # event handlers (on*), href, class, id ...
            elif _BAD_VALUE.search(value):
                continue
            if value is not None:
                kept.append(f" {name}={quoteattr(value)}")
        return "".join(kept)

    def _root(self, attrs: dict) -> None:
        numbers = [float(n) for n in _NUMBER.findall(attrs.get("viewBox", ""))]
        if len(numbers) == 4 and numbers[2] > 0 and numbers[3] > 0:
            min_x, min_y, width, height = numbers
        else:
            sizes = [_NUMBER.fullmatch(attrs.get(a, "").strip().removesuffix("px"))
                     for a in ("width", "height")]
            if not all(sizes) or float(sizes[0][0]) <= 0 or float(sizes[1][0]) <= 0:
                raise Refused(N_("The SVG needs a viewBox (or a width and height in pixels)."))
            min_x, min_y, width, height = 0.0, 0.0, float(sizes[0][0]), float(sizes[1][0])
        if not (width <= MAX_PLAN_SIZE and height <= MAX_PLAN_SIZE):
            raise Refused(N_("The drawing is larger than %(max)d units."), max=MAX_PLAN_SIZE)
        self.box = (width, height)
        size = f'0 0 {_fmt(width)} {_fmt(height)}'
        rest = self._attributes(attrs, drop=("viewBox", "width", "height", "x", "y"))
        self.out.append(f'<svg xmlns="{SVG_NS}" viewBox="{size}" width="{_fmt(width)}" '
                        f'height="{_fmt(height)}"{rest}>')
        if min_x or min_y:  # move the drawing so that its box starts at 0,0
            self.shifted = True
            self.out.append(f'<g transform="translate({_fmt(-min_x)} {_fmt(-min_y)})">')

    def end(self, name: str) -> None:
        self.depth -= 1
        if self.skip:
            self.skip -= 1
            return
        local = name.rpartition(" ")[2]
        if self.depth == 0 and self.shifted:
            self.out.append("</g>")
        self.out.append(f"</{local}>")

    def data(self, text: str) -> None:
        if self.depth and not self.skip:
            self.out.append(escape(text))


def _refuse_doctype(*_args) -> None:
    raise Refused(N_("SVG files with a DOCTYPE or entities are not accepted: export the "
                     "drawing as plain SVG."))


def sanitize_svg(data: bytes) -> tuple[str, float, float]:
    """``data`` rebuilt from the drawing elements and presentation attributes
    only; answers (svg text, width, height). Refuses (Refused) files over
    1 MB, anything with a DOCTYPE or entity declaration, XML that is not
    well-formed and documents whose root is not ``<svg>``."""
    if len(data) > MAX_PLAN_BYTES:
        raise Refused(N_("The file is larger than 1 MB."), 413)
    sanitizer = _Sanitizer()
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.EntityDeclHandler = _refuse_doctype
    parser.ExternalEntityRefHandler = _refuse_doctype
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.buffer_text = True
    parser.StartElementHandler = sanitizer.start
    parser.EndElementHandler = sanitizer.end
    parser.CharacterDataHandler = sanitizer.data
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise Refused(N_("The file is not well-formed XML (%(reason)s)."),
                      reason=expat.ErrorString(exc.code)) from None
    if sanitizer.box is None:
        raise Refused(N_("This is not an SVG drawing."))
    return "".join(sanitizer.out), *sanitizer.box


# --- JSON outlines ---------------------------------------------------------------------------


def check_outline(data: bytes) -> dict:
    """The outline document in ``data`` (see the module docstring), normalized.
    Raises Refused with the first problem."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise Refused(N_("The file is neither SVG nor a JSON outline.")) from None
    if not isinstance(doc, dict):
        raise Refused(N_("A JSON outline is an object with width, height and outline or "
                         "shapes."))
    width, height = _number(doc.get("width")), _number(doc.get("height"))
    if not (width and height and 0 < width <= MAX_PLAN_SIZE and 0 < height <= MAX_PLAN_SIZE):
        raise Refused(N_("width and height must be numbers from 1 to %(max)d."),
                      max=MAX_PLAN_SIZE)

    def points(value, where, minimum):
        if not isinstance(value, list) or not minimum <= len(value) <= MAX_SHAPE_POINTS:
            raise Refused(N_("%(where)s needs %(min)d to %(max)d points."), where=where,
                          min=minimum, max=MAX_SHAPE_POINTS)
        found = _points(value, width, height)
        if found is None:
            raise Refused(N_("%(where)s has a point that is not [x, y] within the plan."),
                          where=where)
        return found

    result: dict = {"width": width, "height": height}
    if doc.get("outline") is not None:
        result["outline"] = points(doc["outline"], "outline", 3)
    shapes = doc.get("shapes")
    if shapes is not None:
        if not isinstance(shapes, list) or len(shapes) > MAX_SHAPES:
            raise Refused(N_("shapes must be a list of at most %(max)d shapes."), max=MAX_SHAPES)
        result["shapes"] = [_shape(s, n, width, height, points) for n, s in enumerate(shapes)]
    if "outline" not in result and not result.get("shapes"):
        raise Refused(N_("A JSON outline needs an outline or shapes."))
    return result


def _points(value: list, width: float, height: float) -> list[list[float]] | None:
    """``[[x, y], ...]`` rounded to 0.01, or None when a point is not a pair of
    numbers inside the ``width`` x ``height`` box."""
    out = []
    for point in value:
        if not isinstance(point, list) or len(point) != 2:
            return None
        x, y = _number(point[0]), _number(point[1])
        if x is None or y is None or not (0 <= x <= width and 0 <= y <= height):
            return None
        out.append([round(x, 2), round(y, 2)])
    return out


def _shape(shape, n, width, height, points) -> dict:
    where = f"shapes[{n}]"
    kind = shape.get("type") if isinstance(shape, dict) else None
    label = shape.get("label") if isinstance(shape, dict) else None
    if label is not None and (not isinstance(label, str) or len(label) > 200):
        raise Refused(N_("%(where)s: label must be text of at most 200 characters."),
                      where=where)
    if kind in ("polygon", "polyline"):
        out = {"type": kind, "points": points(shape.get("points"), where,
                                              3 if kind == "polygon" else 2)}
    elif kind in ("rect", "text"):
        names = ("x", "y", "width", "height") if kind == "rect" else ("x", "y")
        values = {name: _number(shape.get(name)) for name in names}
        x, y = values["x"], values["y"]
        right = (x or 0) + (values.get("width") or 0)
        bottom = (y or 0) + (values.get("height") or 0)
        if None in values.values() or min(values.values()) < 0 or right > width \
                or bottom > height:
            raise Refused(N_("%(where)s: %(names)s must be numbers within the plan."),
                          where=where, names=", ".join(names))
        out = {"type": kind, **values}
        if kind == "text":
            text = shape.get("text")
            if not isinstance(text, str) or not 0 < len(text) <= 200:
                raise Refused(N_("%(where)s: text must be 1 to 200 characters."), where=where)
            out["text"] = text
    else:
        raise Refused(N_("%(where)s: type must be polygon, polyline, rect or text."),
                      where=where)
    if label:
        out["label"] = label
    return out


def render_outline(doc: dict) -> str:
    """A JSON outline (as ``check_outline`` answers it) drawn as SVG."""
    width, height = doc["width"], doc["height"]
    line = _fmt(max(width, height) / 400)
    font = _fmt(max(width, height) / 50)
    parts = [f'<svg xmlns="{SVG_NS}" viewBox="0 0 {_fmt(width)} {_fmt(height)}" '
             f'width="{_fmt(width)}" height="{_fmt(height)}" font-family="sans-serif" '
             f'font-size="{font}">',
             f'<rect x="0" y="0" width="{_fmt(width)}" height="{_fmt(height)}" fill="#ffffff"/>']

    def pts(points):
        return " ".join(f"{_fmt(x)},{_fmt(y)}" for x, y in points)

    def label(text, x, y):
        parts.append(f'<text x="{_fmt(x)}" y="{_fmt(y)}" text-anchor="middle" '
                     f'dominant-baseline="middle" fill="#333333">{escape(text)}</text>')

    if "outline" in doc:
        parts.append(f'<polygon points="{pts(doc["outline"])}" fill="#f4f1ea" '
                     f'stroke="#333333" stroke-width="{_fmt(float(line) * 2)}"/>')
    for shape in doc.get("shapes", ()):
        kind = shape["type"]
        if kind == "polygon":
            parts.append(f'<polygon points="{pts(shape["points"])}" fill="#e8eef4" '
                         f'stroke="#555555" stroke-width="{line}"/>')
            xs, ys = zip(*shape["points"])
            center = (sum(xs) / len(xs), sum(ys) / len(ys))
        elif kind == "polyline":
            parts.append(f'<polyline points="{pts(shape["points"])}" fill="none" '
                         f'stroke="#555555" stroke-width="{line}"/>')
            center = tuple(shape["points"][0])
        elif kind == "rect":
            parts.append(f'<rect x="{_fmt(shape["x"])}" y="{_fmt(shape["y"])}" '
                         f'width="{_fmt(shape["width"])}" height="{_fmt(shape["height"])}" '
                         f'fill="#e8eef4" stroke="#555555" stroke-width="{line}"/>')
            center = (shape["x"] + shape["width"] / 2, shape["y"] + shape["height"] / 2)
        else:
            label(shape["text"], shape["x"], shape["y"])
            continue
        if shape.get("label"):
            label(shape["label"], *center)
    parts.append("</svg>")
    return "".join(parts)
