"""Floor-plan files: what an uploaded plan may be, and the SVG served for it
(the plans themselves are stored with the zones, ``hub.schedule.zones``).

A plan is one of:

* an SVG drawing, kept only after ``sanitize_svg`` rebuilt it from an
  allow-list (an SVG served from the hub's origin runs scripts when opened
  directly, so anything that is not plain drawing goes). Its ``viewBox`` is
  moved to the origin so that its ``width`` x ``height`` box is the
  coordinate system of the zones' polygons.
* a JSON outline, drawn from data by ``render_outline`` when served::

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

A file that is not accepted raises ``Refused``: a message in English marked
for translation (``N_``) with its parameters apart, and the HTTP status.
"""

import json
import math
import re
from xml.parsers import expat
from xml.sax.saxutils import escape, quoteattr

N_ = str  # marks a message for extraction; translated where it is shown

MAX_PLAN_BYTES = 1024 * 1024
MAX_PLAN_SIZE = 100_000
MAX_SHAPES = 2000
MAX_SHAPE_POINTS = 5000


class Refused(ValueError):
    """A floor-plan file that is not accepted; ``status`` is the HTTP answer
    (413 too large, 400 otherwise) and the message says why."""

    def __init__(self, message: str, status: int = 400, **params):
        super().__init__(message % params if params else message)
        self.message, self.params, self.status = message, params, status


def plan_svg(plan: dict) -> str:
    """The SVG to serve for a stored plan (``hub.schedule.zones.get_plan(...,
    content=True)``). A stored SVG goes through the sanitizer again: the table
    may have been written by something other than ``hub.schedule.zones.save_plan``."""
    if plan["kind"] == "json":
        return render_outline(json.loads(plan["content"]))
    return sanitize_svg(plan["content"].encode())[0]


def fmt(number: float) -> str:
    """``number`` as the SVG and the messages write it: at most 4 decimals."""
    text = f"{number:.4f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def points_within(value: list, width: float, height: float) -> list[list[float]] | None:
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
        size = f'0 0 {fmt(width)} {fmt(height)}'
        rest = self._attributes(attrs, drop=("viewBox", "width", "height", "x", "y"))
        self.out.append(f'<svg xmlns="{SVG_NS}" viewBox="{size}" width="{fmt(width)}" '
                        f'height="{fmt(height)}"{rest}>')
        if min_x or min_y:  # move the drawing so that its box starts at 0,0
            self.shifted = True
            self.out.append(f'<g transform="translate({fmt(-min_x)} {fmt(-min_y)})">')

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
        found = points_within(value, width, height)
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
    line = fmt(max(width, height) / 400)
    font = fmt(max(width, height) / 50)
    parts = [f'<svg xmlns="{SVG_NS}" viewBox="0 0 {fmt(width)} {fmt(height)}" '
             f'width="{fmt(width)}" height="{fmt(height)}" font-family="sans-serif" '
             f'font-size="{font}">',
             f'<rect x="0" y="0" width="{fmt(width)}" height="{fmt(height)}" fill="#ffffff"/>']

    def pts(points):
        return " ".join(f"{fmt(x)},{fmt(y)}" for x, y in points)

    def label(text, x, y):
        parts.append(f'<text x="{fmt(x)}" y="{fmt(y)}" text-anchor="middle" '
                     f'dominant-baseline="middle" fill="#333333">{escape(text)}</text>')

    if "outline" in doc:
        parts.append(f'<polygon points="{pts(doc["outline"])}" fill="#f4f1ea" '
                     f'stroke="#333333" stroke-width="{fmt(float(line) * 2)}"/>')
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
            parts.append(f'<rect x="{fmt(shape["x"])}" y="{fmt(shape["y"])}" '
                         f'width="{fmt(shape["width"])}" height="{fmt(shape["height"])}" '
                         f'fill="#e8eef4" stroke="#555555" stroke-width="{line}"/>')
            center = (shape["x"] + shape["width"] / 2, shape["y"] + shape["height"] / 2)
        else:
            label(shape["text"], shape["x"], shape["y"])
            continue
        if shape.get("label"):
            label(shape["label"], *center)
    parts.append("</svg>")
    return "".join(parts)
