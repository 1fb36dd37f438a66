"""Server-rendered dashboard pages (no JavaScript; the pages refresh themselves)."""

from datetime import date, datetime

from flask import Blueprint, abort, render_template, request

from hub import attendance

from . import get_db, hospital_tz

bp = Blueprint("pages", __name__)


@bp.get("/")
def today():
    """Today's events (or ``?date=YYYY-MM-DD``'s) in the hospital time zone,
    each with who has checked in."""
    tz = hospital_tz()
    day = request.args.get("date")
    try:
        day = date.fromisoformat(day) if day else datetime.now(tz).date()
    except ValueError:
        abort(400, description="date must be YYYY-MM-DD")
    db = get_db()
    events = [
        (event, attendance.event_attendance(db, event["id"]))
        for event in attendance.list_events(db, day, tz)
    ]
    return render_template("today.html", day=day, events=events)


@bp.get("/events/<event_id>")
def event(event_id):
    db = get_db()
    found = attendance.get_event(db, event_id)
    if found is None:
        abort(404, description=f"unknown event: {event_id}")
    return render_template(
        "event.html", event=found, attendance=attendance.event_attendance(db, event_id)
    )
