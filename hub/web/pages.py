"""Server-rendered dashboard pages: today's events and one event's live
attendance.

The event page refreshes itself without reloading: a small script fetches
``pages.event_live`` (the ``_attendance.html`` fragment) every 5 seconds and
swaps it in; without JavaScript a ``<noscript>`` meta refresh reloads the page
every 15 seconds. The today page, a wall-screen view, reloads every 10 s.

While an event is on, the page leads with where people are now (in the
room, checked in but not seen, left, not arrived: ``attendance.LIVE_STATES``)
and shows present/partial/absent as the verdict so far; once it is over, the
verdict alone.

A hospital lecture can expect thousands of people: the event page shows at
most ``PER_PAGE`` rows, filtered by ``?status=`` (a verdict, or a state now
while the event is on) and
paged by ``?page=N`` (the counts always cover everyone; the CSV/XLSX export
has the full list), and the fragment it polls keeps the same status and page.
The today page shows the first ``PER_PAGE`` rows of each event and links to
the event page for the rest.
"""

from datetime import date, datetime, timezone

from flask import Blueprint, abort, make_response, render_template, request, url_for
from flask_babel import gettext as _

from hub.attendance import attendance
from protocol.clock import iso

from hub.web import labels
from hub.web.auth import requires
from hub.web.context import get_db, hospital_tz

bp = Blueprint("pages", __name__)

PER_PAGE = 200
_PAGE_DIGITS = 6  # ?page= beyond 999,999 is not a page anyone reached by a link


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
        now = datetime.now(timezone.utc)
        rows = attendance.attendance_of(db, event, now)
        counts = attendance.count_statuses(rows, attendance.is_on(event, now))
        reports.append({"event": event, "counts": counts,
                        "attendance": rows[:PER_PAGE],
                        "listing": _first_page(event["id"], len(rows))})
    return render_template("today.html", day=day, reports=reports, labels=_labels(),
                           zone_names=labels.zone_names(db), updated_at=_now(),
                           department_names=labels.department_names(db))


def _first_page(event_id: str, rows: int) -> dict:
    """``listing`` for an event on the today page: no tabs, no pages, a link
    to the event page for the ``hidden`` rows past the first PER_PAGE."""
    return {"status": None, "tabs": None, "pages": 1, "paged": False,
            "hidden": max(0, rows - PER_PAGE),
            "more": url_for("pages.event", event_id=event_id)}


def _now() -> str:
    return iso(datetime.now(timezone.utc))


def _labels() -> dict:
    """The attendance table's words, translated once a request.

    Flask-Babel looks its context up on every ``_()`` call: called on each of
    2,000 rows that was ~70 ms. ``_()`` without variables returns the message
    unformatted; the template fills in ``%(n)d`` with ``format(n=...)``.
    """
    return {
        "status": {"present": _("present"), "partial": _("partial"), "absent": _("absent")},
        "now": {"in_room": _("in the room"), "unseen": _("checked in, not seen"),
                "left": _("left"), "not_arrived": _("not arrived")},
        "minutes": _("%(n)d min"),
        "late": _("late %(n)d min"),
        "early": _("left %(n)d min early"),
        "unexpected": _("not on the list"),
        "not_in_roster": _("not in roster"),
        "method": labels.method_labels(),
    }


def _report(event_id: str) -> dict:
    report = attendance.attendance_report(get_db(), event_id)
    if report is None:
        abort(404, description=f"unknown event: {event_id}")
    return report


def _shown() -> tuple[str | None, int]:
    """``?status=`` (None: everyone) and ``?page=`` (from 1) asked for; 400 otherwise."""
    status = request.args.get("status") or None
    known = (*attendance.STATUSES, *attendance.LIVE_STATES)
    if status is not None and status not in known:
        abort(400, description="status must be one of: " + ", ".join(known))
    page = request.args.get("page") or "1"
    if not (page.isascii() and page.isdigit() and len(page) <= _PAGE_DIGITS
            and int(page) >= 1):
        abort(400, description="page must be a whole number from 1")
    return status, int(page)


def _page_of(report: dict) -> dict:
    """The template context for the rows of ``report`` that the request
    asked for: ``attendance`` (at most PER_PAGE rows) and ``listing`` (the
    status and page shown, the links to the others).

    A page past the last one (the status shrank since the link was made, the
    live view moving on) shows the last one.
    """
    event_id = report["event"]["id"]
    status, page = _shown()
    on = report["counts"]["now"] is not None
    if status in attendance.LIVE_STATES and not on:
        status = None  # the event ended while the page was open: everyone
    rows = report["attendance"]
    if status is not None:
        field = "now" if status in attendance.LIVE_STATES else "status"
        rows = [row for row in rows if row[field] == status]
    pages = max(1, -(-len(rows) // PER_PAGE))
    page = min(page, pages)
    first = (page - 1) * PER_PAGE

    def link(endpoint="pages.event", **args):
        return url_for(endpoint, event_id=event_id, **args)

    kept = {"status": status, "page": page if page > 1 else None}
    listing = {
        "status": status, "page": page, "pages": pages, "matching": len(rows),
        "first": first + 1, "last": min(first + PER_PAGE, len(rows)),
        "tabs": {s: link(status=s) for s in (None, *attendance.STATUSES,
                                             *(attendance.LIVE_STATES if on else ()))},
        "previous": link(status=status, page=page - 1) if page > 1 else None,
        "next": link(status=status, page=page + 1) if page < pages else None,
        "live": link("pages.event_live", **kept),
        "paged": len(report["attendance"]) > PER_PAGE, "per_page": PER_PAGE, "hidden": 0,
        "export": {fmt: link("people.event_export", fmt=fmt) for fmt in ("csv", "xlsx")},
    }
    return {**report, "attendance": rows[first:first + PER_PAGE], "listing": listing,
            "labels": _labels()}


@bp.get("/events/<event_id>")
@requires("office")
def event(event_id):
    """One event's live attendance, ``PER_PAGE`` rows a page (see the module)."""
    db = get_db()
    shown = _page_of(_report(event_id))
    names = labels.department_names(db)
    expected = attendance.get_expected(db, event_id)
    expected_departments = [names.get(code, code) for code in expected["departments"]]
    return render_template("event.html", expected=expected,
                           expected_departments=expected_departments,
                           zone_names=labels.zone_names(db), live=True, updated_at=_now(),
                           department_names=names, **shown)


@bp.get("/events/<event_id>/live")
@requires("office")
def event_live(event_id):
    """The event page's attendance part alone, for its script to swap in;
    the same ``?status=`` and ``?page=`` as the page."""
    response = make_response(render_template(
        "_attendance.html", live=True, updated_at=_now(),
        department_names=labels.department_names(get_db()), **_page_of(_report(event_id))))
    response.headers["Cache-Control"] = "no-store"
    return response
