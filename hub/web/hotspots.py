"""Dashboard area: hotspots, where problems keep coming back.

One page, ``/hotspots/`` (office, admin, department reviewers: counts are
site-wide aggregates, as in ``/api/v1/hotspots``), drawn on the server as
inline SVG by ``hub.svg`` (no chart library, no JavaScript):

* a heatmap of zone x ISO week over the last 12 weeks (``hub.tickets.hotspots``
  counts: tickets, duplicates once, rejected ones not);
* a floor plan (``floor_plans``) with its zones' polygons shaded by the
  tickets of the last 30 days, over the plan drawing served by the zones area;
* the recurring hotspots (``hub.tickets.hotspots.recurring``) with a sparkline of
  their weekly counts and their recent vs baseline numbers.

``?category=`` narrows everything to one category, ``?plan=<id>`` picks the
floor plan (default: the first one).
"""

from collections import Counter
from datetime import datetime, timedelta, timezone

from flask import (Blueprint, Flask, abort, current_app, jsonify, render_template, request,
                   url_for)
from flask_babel import gettext as _
from markupsafe import Markup

from hub.schedule import zones
from hub.tickets import hotspots, tickets
from hub.web import svg
from protocol.clock import iso

from hub.web import labels, openapi
from hub.web.auth import requires
from hub.web.context import get_db
from hub.web.params import number

bp = Blueprint("hotspots", __name__)
api = Blueprint("hotspots_api", __name__, url_prefix="/api/v1")
WEEKS = 12
PLAN_DAYS = 30


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(api)


# -- reads for this page -------------------------------------------------------
# The zones and plans are hub.schedule.zones'; the counting is hub.tickets.hotspots'
# and hub.tickets'.

def _categories(db) -> list[tuple[str, str]]:
    """(category, the words shown for it): the configured ones and any a
    ticket carries, by code."""
    shown = labels.category_labels(db)
    for category in tickets.categories_used(db):
        shown.setdefault(category, category)
    return sorted(shown.items())


def _points(points) -> list[tuple[float, float]] | None:
    """A zone's polygon (decoded ``[[x, y], ...]``) as points; None when it is
    missing or not a usable polygon."""
    if not isinstance(points, list) or len(points) < 3:
        return None
    out = []
    for point in points:
        if (not isinstance(point, list) or len(point) != 2 or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in point)):
            return None
        out.append((float(point[0]), float(point[1])))
    return out


def _plan_zones(db, plan: dict) -> list[dict]:
    """The zones on the plan's (campus, building, floor), with their points."""
    return [{"zone": z["zone"], "label": z["name"] or z["zone"], "points": _points(z["polygon"])}
            for z in zones.zones_on_floor(db, plan["campus"], plan["building"], plan["floor"])]


def _plan_image(plan_id: int) -> str | None:
    """The URL of the plan drawing, when the zones area serves it."""
    if "zones.plan_image" not in current_app.view_functions:
        return None
    rule = next(current_app.url_map.iter_rules("zones.plan_image"))
    if len(rule.arguments) != 1:
        return None
    return url_for("zones.plan_image", **{next(iter(rule.arguments)): plan_id})


# -- the page --------------------------------------------------------------------

def _weeks(now: datetime) -> list[str]:
    """The last ``WEEKS`` ISO weeks, oldest first, this one last."""
    return [hotspots.iso_week(iso(now - timedelta(weeks=n))) for n in range(WEEKS - 1, -1, -1)]


def _heatmap(weekly: list[dict], weeks: list[str], names: dict) -> tuple[Markup | None, int]:
    counts: Counter = Counter()
    for row in weekly:
        if row["week"] in weeks:
            counts[(row["zone"], row["week"])] += row["count"]
    totals: Counter = Counter()
    for (zone, _week), count in counts.items():
        totals[zone] += count
    if not totals:
        return None, 0
    busiest = sorted(totals, key=lambda z: (-totals[z], z))
    rows = [(z, names.get(z, z)) for z in busiest]
    columns = [(w, w.split("-")[1]) for w in weeks]
    return Markup(svg.heatmap(rows, columns, dict(counts),
                              _("Reports per zone and week"))), len(busiest)


def _chosen_plan(plans: list[dict]) -> dict | None:
    wanted = request.args.get("plan", "").strip()
    if not wanted:
        return plans[0] if plans else None
    if number(wanted) is None:
        abort(400, description="plan must be a floor plan id (a number)")
    for plan in plans:
        if plan["id"] == int(wanted):
            return plan
    abort(404, description=f"unknown floor plan: {wanted}")


def _floor(db, plan: dict | None, category: str | None, now: datetime) -> dict | None:
    if plan is None:
        return None
    open_or_done = [s for s in tickets.STATES if s != "rejected"]
    recent = tickets.list_tickets(db, state=open_or_done, category=category,
                                  since=iso(now - timedelta(days=PLAN_DAYS)), until=iso(now),
                                  limit=1_000_000)
    counts = Counter(t["zone"] for t in recent)
    on_floor = _plan_zones(db, plan)
    drawn = [{**z, "count": counts.get(z["zone"], 0)} for z in on_floor if z["points"]]
    picture = svg.floor_plan(float(plan["width"]), float(plan["height"]), drawn,
                             _("Reports per zone in the last %(days)s days", days=PLAN_DAYS),
                             _plan_image(plan["id"]))
    return {"plan": plan, "svg": Markup(picture), "zones": drawn,
            "unplaced": [z for z in on_floor if not z["points"]]}


@bp.get("/hotspots/")
@requires("office", "dept_reviewer")
def page():
    db = get_db()
    now = datetime.now(timezone.utc)
    categories = _categories(db)
    category_names = dict(categories)
    category = request.args.get("category") or None
    if category is not None and category not in category_names:
        abort(400, description=f"unknown category: {category}")
    names = labels.zone_names(db)
    weeks = _weeks(now)
    weekly = [r for r in hotspots.weekly_counts(db, now, weeks=WEEKS)
              if category is None or r["category"] == category]
    heatmap, heat_rows = _heatmap(weekly, weeks, names)

    by_key: Counter = Counter()
    for row in weekly:
        by_key[(row["zone"], row["category"], row["week"])] += row["count"]
    flagged = []
    for row in hotspots.recurring(db, now):
        if category is not None and row["category"] != category:
            continue
        values = [by_key[(row["zone"], row["category"], w)] for w in weeks]
        line = svg.sparkline(values, _("Weekly reports, last %(n)s weeks: %(values)s",
                                       n=WEEKS, values=", ".join(map(str, values))))
        flagged.append({**row, "zone_name": names.get(row["zone"], row["zone"]),
                        "category_label": category_names.get(row["category"], row["category"]),
                        "sparkline": Markup(line)})

    plans = zones.list_plans(db)
    floor = _floor(db, _chosen_plan(plans), category, now)
    return render_template("hotspots_page.html", heatmap=heatmap, heat_rows=heat_rows,
                           weeks=weeks, recurring=flagged, categories=categories,
                           category=category, plans=plans, floor=floor,
                           plan_days=PLAN_DAYS, rule=_rule())


def _rule() -> str:
    factor = format(hotspots.FACTOR, "g")
    return _("Recurring: at least %(min)s reports in the last 7 days and at least %(factor)s "
             "times the weekly mean of the %(weeks)s weeks before, plus one.",
             min=hotspots.MIN_RECENT, factor=factor,
             weeks=hotspots.BASELINE_WEEKS)


# -- the API -------------------------------------------------------------------

@api.get("/hotspots")
@requires("office", "dept_reviewer")
def hotspot_analysis():
    """``?weeks=`` (1..52, default 12): ``hub.tickets.hotspots.hotspots``."""
    weeks = request.args.get("weeks", "12")
    if not 0 < (number(weeks) or 0) <= 52:
        abort(400, description="weeks must be 1..52")
    return jsonify(hotspots.hotspots(get_db(), weeks=int(weeks)))


OPENAPI = {
    "paths": {"/api/v1/hotspots": {"get": {
        "summary": "Weekly counts and recurring hotspots",
        "parameters": [openapi.query("weeks", "1..52, default 12")],
        "responses": {"200": openapi.json_response("Hotspot analysis", openapi.ref("Hotspots")),
                      **openapi.errors(400), **openapi.SIGNED_IN}}}},
    "schemas": {"Hotspots": {
        "type": "object", "required": ["now", "rule", "weekly", "recurring"],
        "properties": {
            "now": {"type": "string"}, "rule": {"type": "string"},
            "weekly": {"type": "array", "items": {
                "type": "object", "required": ["zone", "category", "week", "count"],
                "properties": {"zone": {"type": "string"}, "category": {"type": "string"},
                               "week": {"type": "string"}, "count": {"type": "integer"}}}},
            "recurring": {"type": "array", "items": {
                "type": "object",
                "required": ["zone", "category", "recent", "baseline_weekly", "threshold",
                             "p_value", "recurring"],
                "properties": {"zone": {"type": "string"}, "category": {"type": "string"},
                               "recent": {"type": "integer"},
                               "baseline_weekly": {"type": "number"},
                               "threshold": {"type": "number"}, "p_value": {"type": "number"},
                               "recurring": {"type": "boolean"}}}}}}},
}
