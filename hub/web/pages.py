"""Server-rendered dashboard pages: today's events and one event's live
attendance.

The event page refreshes itself without reloading: a small script fetches
``pages.event_live`` (the ``_attendance.html`` fragment) every 5 seconds and
swaps it in; without JavaScript a ``<noscript>`` meta refresh reloads the page
every 15 seconds. The today page, a wall-screen view, reloads every 10 s.
"""

from datetime import date, datetime, timezone

from flask import Blueprint, abort, make_response, render_template, request

from hub import attendance, zones
from protocol.clock import iso

from . import get_db, hospital_tz
from .auth import requires

bp = Blueprint("pages", __name__)


@bp.get("/")
@requires("office")
def today():
    """Today's events (or ``?date=YYYY-MM-DD``'s) in the hospital time zone,
    each with its present/partial/absent counts and who is (not) there."""
    tz = hospital_tz()
    day = request.args.get("date")
    try:
        day = date.fromisoformat(day) if day else datetime.now(tz).date()
    except ValueError:
        abort(400, description="date must be YYYY-MM-DD")
    db = get_db()
    reports = []
    for event in attendance.list_events(db, day, tz, counts=False):
        rows = attendance.attendance_of(db, event)
        reports.append({"event": event, "counts": attendance.count_statuses(rows),
                        "attendance": rows})
    return render_template("today.html", day=day, reports=reports,
                           zone_names=zones.zone_names(db), updated_at=_now())


def _now() -> str:
    return iso(datetime.now(timezone.utc))


def _report(event_id: str) -> dict:
    report = attendance.attendance_report(get_db(), event_id)
    if report is None:
        abort(404, description=f"unknown event: {event_id}")
    return report


@bp.get("/events/<event_id>")
@requires("office")
def event(event_id):
    db = get_db()
    report = _report(event_id)
    return render_template("event.html", expected=attendance.get_expected(db, event_id),
                           zone_names=zones.zone_names(db), live=True, updated_at=_now(),
                           **report)


@bp.get("/events/<event_id>/live")
@requires("office")
def event_live(event_id):
    """The event page's attendance part alone, for its script to swap in."""
    response = make_response(render_template("_attendance.html", live=True,
                                             updated_at=_now(), **_report(event_id)))
    response.headers["Cache-Control"] = "no-store"
    return response
