"""Server-side SVG for the hotspots page: a zone x week heatmap, a floor plan
with its zones shaded by count, and sparklines.

Built with ElementTree, so every name and label is escaped by the
serializer (a zone called ``<script>`` is text, never markup). The result is
an ``<svg>`` element as a string, to be placed inline in a page; no
JavaScript, no chart library.
"""

import xml.etree.ElementTree as ET

SVG_NS = "http://www.w3.org/2000/svg"
EMPTY = "#f1f4f7"  # a count of 0
# Shades from a few to the most: light orange to dark red, darker = more.
LOW, HIGH = (253, 224, 197), (150, 25, 20)
LABEL_WIDTH, CELL_W, CELL_H, HEAD = 210, 46, 26, 34
LABEL_CHARS = 26


def shade(count: float, maximum: float) -> str:
    """The fill for ``count`` on a scale up to ``maximum``: EMPTY for 0,
    then ever darker (strictly lower luminance) as the count grows."""
    if count <= 0 or maximum <= 0:
        return EMPTY
    t = min(count / maximum, 1.0)
    r, g, b = (round(lo + (hi - lo) * t) for lo, hi in zip(LOW, HIGH))
    return f"#{r:02x}{g:02x}{b:02x}"


def _text_colour(count: float, maximum: float) -> str:
    return "#ffffff" if maximum > 0 and count / maximum > 0.5 else "#1d2733"


def _svg(view_w: float, view_h: float, label: str, **attrs) -> ET.Element:
    svg = ET.Element("svg", {"xmlns": SVG_NS, "viewBox": f"0 0 {_n(view_w)} {_n(view_h)}",
                             "role": "img", "aria-label": label, **attrs})
    ET.SubElement(svg, "title").text = label
    return svg


def _n(value: float) -> str:
    """A coordinate as short text (no trailing .0)."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _short(text: str, limit: int = LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _string(svg: ET.Element) -> str:
    return ET.tostring(svg, encoding="unicode", short_empty_elements=True)


def heatmap(rows: list[tuple[str, str]], columns: list[tuple[str, str]],
            counts: dict[tuple[str, str], int], label: str) -> str:
    """A grid of ``rows`` (zone key, label) x ``columns`` (week key, label),
    one ``<rect class="cell">`` per pair shaded by ``counts[(row, column)]``,
    the count written in it when not 0 and in its tooltip always."""
    maximum = max(counts.values(), default=0)
    width = LABEL_WIDTH + CELL_W * len(columns) + 4
    height = HEAD + CELL_H * len(rows) + 4
    svg = _svg(width, height, label, width=_n(width), height=_n(height), **{"class": "heatmap"})
    for x, (key, text) in enumerate(columns):
        head = ET.SubElement(svg, "text", {
            "x": _n(LABEL_WIDTH + CELL_W * x + CELL_W / 2), "y": _n(HEAD - 10),
            "text-anchor": "middle", "font-size": "12", "class": "week"})
        head.text = text
        ET.SubElement(head, "title").text = key
    for y, (row_key, row_label) in enumerate(rows):
        top = HEAD + CELL_H * y
        name = ET.SubElement(svg, "text", {"x": _n(LABEL_WIDTH - 8), "y": _n(top + CELL_H * .68),
                                           "text-anchor": "end", "font-size": "13",
                                           "class": "zone"})
        name.text = _short(row_label)
        ET.SubElement(name, "title").text = row_label
        for x, (column_key, column_label) in enumerate(columns):
            count = counts.get((row_key, column_key), 0)
            left = LABEL_WIDTH + CELL_W * x
            cell = ET.SubElement(svg, "rect", {
                "class": "cell", "x": _n(left + 1), "y": _n(top + 1), "width": _n(CELL_W - 2),
                "height": _n(CELL_H - 2), "fill": shade(count, maximum),
                "data-count": str(count)})
            ET.SubElement(cell, "title").text = f"{row_label} · {column_key}: {count}"
            if count:
                number = ET.SubElement(svg, "text", {
                    "x": _n(left + CELL_W / 2), "y": _n(top + CELL_H * .68),
                    "text-anchor": "middle", "font-size": "12",
                    "fill": _text_colour(count, maximum), "class": "count"})
                number.text = str(count)
    return _string(svg)


def _centroid(points: list[tuple[float, float]]) -> tuple[float, float]:
    return (sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points))


def floor_plan(width: float, height: float, zones: list[dict], label: str,
               image_href: str | None = None) -> str:
    """A floor plan in its own coordinates (``width`` x ``height``): the
    drawing at ``image_href`` (when given) under each zone's polygon, shaded
    by its count. ``zones``: ``{"zone", "label", "points": [(x, y), ...],
    "count"}``; each polygon has ``data-zone`` and a tooltip."""
    maximum = max((z["count"] for z in zones), default=0)
    svg = _svg(width, height, label, width="100%", preserveAspectRatio="xMidYMid meet",
               **{"class": "floor-plan"})
    if image_href:
        ET.SubElement(svg, "image", {"href": image_href, "x": "0", "y": "0",
                                     "width": _n(width), "height": _n(height),
                                     "preserveAspectRatio": "xMidYMid meet"})
    else:
        ET.SubElement(svg, "rect", {"x": "0", "y": "0", "width": _n(width),
                                    "height": _n(height), "fill": "#ffffff",
                                    "stroke": "#b8c2cc"})
    font = max(min(width, height) / 40, 1)
    for zone in zones:
        points = zone["points"]
        shape = ET.SubElement(svg, "polygon", {
            "class": "zone", "points": " ".join(f"{_n(x)},{_n(y)}" for x, y in points),
            "fill": shade(zone["count"], maximum), "fill-opacity": "0.7",
            "stroke": "#1d2733", "stroke-width": _n(font / 8), "data-zone": zone["zone"],
            "data-count": str(zone["count"])})
        ET.SubElement(shape, "title").text = f"{zone['label']}: {zone['count']}"
        cx, cy = _centroid(points)
        text = ET.SubElement(svg, "text", {"x": _n(cx), "y": _n(cy), "text-anchor": "middle",
                                           "font-size": _n(font), "class": "zone-label"})
        text.text = f"{_short(zone['label'], 20)} ({zone['count']})"
    return _string(svg)


def sparkline(values: list[int], label: str, width: int = 120, height: int = 28) -> str:
    """A small line of ``values`` (oldest first) with the last point marked."""
    svg = _svg(width, height, label, width=str(width), height=str(height),
               **{"class": "sparkline"})
    if not values:
        return _string(svg)
    top = max(max(values), 1)
    step = (width - 6) / max(len(values) - 1, 1)
    points = [(3 + i * step, height - 3 - (height - 6) * v / top) for i, v in enumerate(values)]
    ET.SubElement(svg, "polyline", {"points": " ".join(f"{_n(x)},{_n(y)}" for x, y in points),
                                    "fill": "none", "stroke": "#1f5f8b", "stroke-width": "1.5"})
    x, y = points[-1]
    ET.SubElement(svg, "circle", {"cx": _n(x), "cy": _n(y), "r": "2.5", "fill": "#b3261e"})
    return _string(svg)
