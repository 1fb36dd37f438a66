"""Dashboard area "events": scheduling lectures, trainings, meetings and
volunteer duties to zones, who is expected, and the iCalendar feeds. This
module holds the pages (blueprint ``events``: the list, the event form,
deletion) and the feeds; the events API (GET/POST /api/v1/events, GET/PUT
/api/v1/events/<id>, GET /api/v1/events/<id>/attendance) and its OpenAPI
fragment are hub/web/events_api.py, the parsing of the form and of the API's
bodies into drafts hub/web/events_drafts.py.

Office and admin schedule. Times on the form are wall-clock in the hospital's
time zone; the API takes ISO 8601 with an offset. Storage is UTC
(``protocol.clock.iso``). The rules live in ``hub.schedule.events``; these modules parse
requests and render. The feeds need no sign-in: their URL carries a token
(``hub.schedule.ical``), shown on this area's pages to office and admin; a
person's feed of the events they registered for is linked from their
``/me/events`` (hub/web/registration.py).

The event form also sets the event's registration (window, places, who may
register, required or voluntary: ``hub.schedule.registration``), saved in
the event's transaction and audited with it.
"""

from datetime import datetime, timedelta, timezone

from flask import (Blueprint, Flask, Response, abort, current_app, flash, redirect,
                   render_template, request, url_for)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from hub.attendance import attendance
from hub.db import write_transaction
from hub.schedule import events, ical, registration, registration_settings, zones
from hub.schedule.zones import Invalid
from hub.web import labels
from hub.web import registration as registration_web
from hub.web.auth import audited, requires
from hub.web.context import get_db, hospital_tz
from hub.web.events_drafts import audit_detail, form_draft, validated
from hub.web.zones import feed_url, translated

bp = Blueprint("events", __name__)

KIND_LABELS = {"lecture": _l("Lecture"), "training": _l("Training"), "meeting": _l("Meeting"),
               "volunteer_duty": _l("Volunteer duty"), "contest": _l("Contest")}
UPCOMING = timedelta(days=60)
RECENT = timedelta(days=14)
_FORM_TIME = "%Y-%m-%dT%H:%M"
OPENAPI = {"paths": {}, "schemas": {}}  # pages only: the API's is in events_api.py


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.context_processor(lambda: {"event_kind_labels": KIND_LABELS})


# -- pages ---------------------------------------------------------------------------------


def _by_day(found: list[dict]) -> list[tuple]:
    """[(local date, [events])] in the order given."""
    tz = hospital_tz()
    days: dict = {}
    for event in found:
        day = attendance.parse_time(event["start"]).astimezone(tz).date()
        days.setdefault(day, []).append(event)
    return list(days.items())


@bp.get("/events/", endpoint="index")
@requires("office")
def index():
    """Upcoming events (and those on now) by day, then the last two weeks'."""
    db = get_db()
    now = datetime.now(timezone.utc)
    upcoming = events.between(db, now, now + UPCOMING)
    recent = [e for e in events.between(db, now - RECENT, now)
              if attendance.parse_time(e["end"]) <= now]
    recent.reverse()
    departments = events.departments(db)
    feeds = [(code, name, feed_url("department", code)) for code, name in departments.items()]
    return render_template("events_index.html", upcoming=_by_day(upcoming),
                           recent=_by_day(recent), zone_names=labels.zone_names(db),
                           feeds=feeds, departments=departments)


def _render_form(typed: dict, event_id: str | None = None, problems=()):
    db = get_db()
    return render_template(
        "events_form.html", typed=typed, event_id=event_id, kinds=KIND_LABELS,
        errors=translated(problems), zones=zones.list_zones(db),
        departments=events.departments(db), roles=registration_settings.known_roles(db),
        checked_in=attendance.get_event(db, event_id)["checked_in"] if event_id else 0)


@bp.route("/events/new", methods=["GET", "POST"], endpoint="create")
@requires("office")
def create():
    if request.method == "GET":
        typed = {"title": "", "kind": "lecture", "zones": request.args.getlist("zone"),
                 "start": "", "end": "", "departments": [], "staff": "", "credit_hours": "0",
                 "min_presence": str(attendance.DEFAULT_MIN_PRESENCE),
                 **registration_web.typed_settings(None)}
        return _render_form(typed)
    db = get_db()
    draft, typed, problems = form_draft(request.form)
    try:
        with write_transaction(db):
            validated(db, draft, problems)
            event_id = events.create(db, draft, hospital_tz())
            registration_web.save_settings(db, event_id, draft["registration"])
            audited("event.create", f"event:{event_id}", **audit_detail(db, event_id))
    except Invalid as exc:
        return _render_form(typed, problems=exc.problems), 400
    flash(_("Event %(title)s scheduled.", title=draft["title"].strip()), "info")
    return redirect(url_for("events.index"), code=303)


@bp.route("/events/<event_id>/edit", methods=["GET", "POST"], endpoint="edit")
@requires("office")
def edit(event_id):
    db = get_db()
    stored = events.draft_of(db, event_id)
    if stored is None:
        abort(404, description=f"unknown event: {event_id}")
    if request.method == "GET":
        tz = hospital_tz()
        typed = {**stored, "start": stored["start"].astimezone(tz).strftime(_FORM_TIME),
                 "end": stored["end"].astimezone(tz).strftime(_FORM_TIME),
                 "staff": ", ".join(stored["staff"]),
                 "credit_hours": f"{stored['credit_hours']:g}",
                 "min_presence": f"{stored['min_presence']:g}",
                 **registration_web.typed_settings(registration.get(db, event_id))}
        return _render_form(typed, event_id)
    draft, typed, problems = form_draft(request.form)
    try:
        with write_transaction(db):
            validated(db, draft, problems)
            events.update(db, event_id, draft)
            promoted = registration_web.save_settings(db, event_id, draft["registration"])
            audited("event.update", f"event:{event_id}", **audit_detail(db, event_id),
                    **({"promoted": promoted} if promoted else {}))
    except Invalid as exc:
        return _render_form(typed, event_id, exc.problems), 400
    flash(_("Event %(title)s saved.", title=draft["title"].strip()), "info")
    return redirect(url_for("events.index"), code=303)


@bp.post("/events/<event_id>/delete", endpoint="delete")
@requires("office")
def delete(event_id):
    """Delete an event nobody checked in to; the form's ``confirm`` box must
    be ticked (see ``hub.schedule.events`` on why attended events stay)."""
    db = get_db()
    stored = events.draft_of(db, event_id)
    if stored is None:
        abort(404, description=f"unknown event: {event_id}")
    if request.form.get("confirm") != "yes":
        flash(_("Tick the box to confirm the deletion."), "error")
        return redirect(url_for("events.edit", event_id=event_id), code=303)
    try:
        with write_transaction(db):
            detail = audit_detail(db, event_id)
            registration.remove(db, event_id, force=True)
            events.delete(db, event_id)
            audited("event.delete", f"event:{event_id}", **detail)
    except Invalid:
        flash(_("People have checked in to this event: it stays in their records and "
                "cannot be deleted."), "error")
        return redirect(url_for("events.edit", event_id=event_id), code=303)
    flash(_("Event %(title)s deleted.", title=stored["title"]), "info")
    return redirect(url_for("events.index"), code=303)


# -- iCalendar feeds ------------------------------------------------------------------------


def _describe(event: dict) -> str:
    kind = KIND_LABELS.get(event["kind"], event["kind"])
    hours = format(event["credit_hours"] or 0, "g")
    return _("%(kind)s · %(hours)s credit hours", kind=kind, hours=hours)


def _feed(kind: str, name: str, title: str) -> Response:
    if not ical.token_ok(current_app.config["SECRET_KEY"], kind, name,
                         request.args.get("token")):
        abort(404)
    db = get_db()
    site = current_app.config["SITE"] or "rounds"
    body = ical.calendar(ical.feed_events(db, kind, name), name=title, site=site,
                         tz_name=current_app.config["TIMEZONE"],
                         zone_names=labels.zone_names(db), describe=_describe)
    response = Response(body, content_type="text/calendar; charset=utf-8")
    response.headers["Cache-Control"] = "private, max-age=300"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/calendar/zone/<zone>.ics", endpoint="zone_feed")
def zone_feed(zone):
    """The events held in a zone. No sign-in: a wrong or missing token is 404."""
    found = zones.get_zone(get_db(), zone)
    if found is None:
        abort(404)
    return _feed("zone", zone, _("%(site)s: %(name)s", site=current_app.config["SITE"] or "",
                                 name=found["name"]))


@bp.get("/calendar/department/<dept>.ics", endpoint="department_feed")
def department_feed(dept):
    """The events expecting a department. No sign-in: token as for zones."""
    name = events.departments(get_db()).get(dept)
    if name is None:
        abort(404)
    return _feed("department", dept, _("%(site)s: %(name)s",
                                       site=current_app.config["SITE"] or "", name=name))


@bp.get("/calendar/person/<staff_id>.ics", endpoint="person_feed")
def person_feed(staff_id):
    """The events a person is registered for. No sign-in: token as for zones."""
    person = registration_web.person_name(staff_id)
    if person is None:
        abort(404)
    return _feed("person", staff_id, _("%(site)s: %(name)s",
                                       site=current_app.config["SITE"] or "", name=person))


