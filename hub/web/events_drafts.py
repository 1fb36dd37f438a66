"""Drafts of an event for the "events" area (hub/web/events.py,
hub/web/events_api.py): from the event form (times wall-clock in the
hospital's time zone, with the registration settings of
hub/web/registration.py) or from an API body (ISO 8601 with an offset; a PUT
over the stored draft), their parse problems joined with the rules' of
``hub.schedule.events`` (``Invalid``), and the audit detail of a saved event.
"""

from datetime import datetime

from hub.attendance import attendance
from hub.schedule import events, registration
from hub.schedule.zones import Invalid, Problem
from hub.web import registration as registration_web
from hub.web.params import wall_clock

N_ = str


def _instant(value, field: str, problems: list) -> datetime | None:
    """An API time: ISO 8601 with an offset or Z."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        problems.append(Problem(field, N_("The time must be ISO 8601 with an offset, e.g. "
                                          "2025-03-10T09:00:00+08:00.")))
        return None
    return parsed


def form_draft(form) -> tuple[dict, dict, list]:
    """(draft for ``hub.schedule.events``, the form as typed, parse problems)."""
    typed = {"title": form.get("title", "").strip(), "kind": form.get("kind", ""),
             "zones": form.getlist("zones"), "start": form.get("start", "").strip(),
             "end": form.get("end", "").strip(), "departments": form.getlist("departments"),
             "staff": form.get("staff", "").strip(),
             "credit_hours": form.get("credit_hours", "").strip(),
             "min_presence": form.get("min_presence", "").strip()}
    problems: list = []
    draft = {"title": typed["title"], "kind": typed["kind"], "zones": typed["zones"],
             "start": wall_clock(typed["start"], "start", problems),
             "end": wall_clock(typed["end"], "end", problems),
             "departments": typed["departments"],
             "staff": events.split_staff_ids(typed["staff"]),
             "credit_hours": typed["credit_hours"] or 0,
             "min_presence": typed["min_presence"] or attendance.DEFAULT_MIN_PRESENCE}
    draft["registration"], typed_registration = registration_web.form_settings(
        form, problems, draft["start"])
    return draft, typed | typed_registration, problems


def json_draft(body: dict, base: dict | None = None) -> tuple[dict, list]:
    """(draft, parse problems) from an API body, over ``base`` for a PUT."""
    problems: list = []
    draft = dict(base or {})
    for name in ("title", "kind", "zones", "credit_hours", "min_presence"):
        if name in body:
            draft[name] = body[name]
    for name in ("start", "end"):
        if name in body or base is None:
            draft[name] = _instant(body.get(name), name, problems)
    expected = body.get("expected", {} if base is None else None)
    if expected is not None:
        if not isinstance(expected, dict):
            problems.append(Problem("expected", N_("expected must be an object with "
                                                   "departments and staff.")))
        else:
            draft["departments"] = expected.get("departments", [])
            draft["staff"] = expected.get("staff", [])
    return draft, problems


def validated(db, draft: dict, problems: list) -> None:
    """Raise Invalid with the parse problems and the rules' problems, if any."""
    if not problems:
        return
    try:
        events.check(db, draft)
    except Invalid as exc:
        seen = {p.field for p in problems}
        problems = problems + [p for p in exc.problems if p.field not in seen]
    raise Invalid(problems)


def audit_detail(db, event_id: str) -> dict:
    event = attendance.get_event(db, event_id)
    expected = attendance.get_expected(db, event_id)
    return {k: event[k] for k in ("title", "kind", "zones", "start", "end", "credit_hours",
                                  "min_presence")} | expected | {
        "registration": registration.get(db, event_id)}

