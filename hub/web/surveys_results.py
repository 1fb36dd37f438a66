"""A survey task's results as the "surveys" area shows them
(hub/web/surveys.py): each question's answers as bars and the weekly
satisfaction index as lines on a 0-100 chart (drawn as SVG by the template
``surveys_charts.html``), and the sheets of the task's exports (CSV, XLSX).
The numbers are ``hub.surveys.results``'; labels are in the reader's
language (``shown``).
"""

from datetime import datetime, timezone

from flask_babel import gettext as _

from hub.attendance import exports
from hub.surveys import questionnaires, results

from hub.web.context import hospital_tz
from hub.web.i18n import lang

COLOURS = ("#1f5f8b", "#b3261e", "#2e7d32", "#b26a00", "#6a3d9a", "#00838f", "#5b6b7b")
CHART_W, CHART_H, CHART_LEFT, CHART_TOP, CHART_BOTTOM = 640, 220, 44, 12, 34


def shown(item: dict, key: str = "label") -> str:
    """A questionnaire's title or a question's label in the reader's language."""
    english = item.get(f"{key}_en")
    return english if lang() == "en" and english else item[key]


# -- the task page's charts ---------------------------------------------------------


def bars(question: dict) -> list[dict]:
    """A question's distribution as bars: label, count, share of the longest."""
    if question["kind"] == "scale":
        pairs = [(str(v), question["counts"][v]) for v in question["counts"]]
    else:
        pairs = [(shown(o), question["counts"][o["id"]]) for o in question["options"]]
    top = max((count for _label, count in pairs), default=0) or 1
    return [{"label": label, "count": count, "share": count / top} for label, count in pairs]


def trend(weekly: list[dict], key: str, names: dict) -> dict:
    """Weekly index rows as a table and as lines on a 0-100 chart: ``weeks``,
    ``series`` (per ward or department: ``name``, ``values`` {week: (index,
    count)}, ``colour``, ``points`` [(x, y, index, week)]) and the axes."""
    weeks = sorted({row["week"] for row in weekly})
    values: dict[str, dict] = {}
    for row in weekly:
        values.setdefault(row[key], {})[row["week"]] = (row["index"], row["count"])
    first, plot_w = CHART_LEFT + 24, CHART_W - CHART_LEFT - 60
    plot_h = CHART_H - CHART_TOP - CHART_BOTTOM
    x = {week: first + n * plot_w / max(len(weeks) - 1, 1) for n, week in enumerate(weeks)}

    def y(index: float) -> float:
        return round(CHART_TOP + (100 - index) / 100 * plot_h, 1)

    series = []
    for n, (code, by_week) in enumerate(sorted(values.items())):
        points = [(round(x[w], 1), y(v[0]), v[0], w) for w, v in sorted(by_week.items())
                  if v[0] is not None]
        series.append({"name": names.get(code, code), "values": by_week, "points": points,
                       "colour": COLOURS[n % len(COLOURS)]})
    return {"weeks": weeks, "series": series, "width": CHART_W, "height": CHART_H,
            "left": CHART_LEFT, "right": CHART_W - 12, "bottom": CHART_H - CHART_BOTTOM,
            "ticks": [(y(v), v) for v in (0, 25, 50, 75, 100)],
            "labels": [(round(x[w], 1), w[5:]) for w in weeks]}


# -- the exports --------------------------------------------------------------------


def sheets(db, task: dict, fmt: str) -> list[exports.Sheet]:
    """The responses (question headers "label (id)"); the XLSX adds the task sheet."""
    tz = hospital_tz()
    _header, rows = results.export_rows(db, task, tz)
    form = questionnaires.get(db, task["questionnaire"], task["version"])
    fixed = [_("Taken at"), _("Ward"), _("Survey taker"), _("Version")]
    headers = fixed + [f"{shown(q)} ({q['id']})" for q in form["questions"]]
    for row in rows:  # a time cell, not text, in the spreadsheet
        row[0] = datetime.strptime(row[0], "%Y-%m-%d %H:%M")
    found = [exports.Sheet(_("Responses"), headers, rows)]
    if fmt == "xlsx":
        summary = results.summary(db, task, tz, datetime.now(timezone.utc))
        found.append(exports.Sheet(_("Survey task"), [_("Item"), _("Value")], [
            [_("Task"), task["title"]], [_("Questionnaire"), f"{shown(form, 'title')} "
                                                         f"(v{form['version']})"],
            [_("Wards"), ", ".join(task["zones"])], [_("Target"), task["target"]],
            [_("Responses"), summary["count"]], [_("Satisfaction index"), summary["index"]],
            [_("Time zone"), str(tz)]]))
    return found
