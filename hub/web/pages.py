"""Server-rendered dashboard pages: today's events and one event's attendance."""

from datetime import date, datetime

from flask import Blueprint, abort, render_template, request

from hub import attendance

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
    return render_template("today.html", day=day, reports=reports)


@bp.get("/events/<event_id>")
@requires("office")
def event(event_id):
    db = get_db()
    report = attendance.attendance_report(db, event_id)
    if report is None:
        abort(404, description=f"unknown event: {event_id}")
    return render_template("event.html", expected=attendance.get_expected(db, event_id),
                           **report)
