"""Scheduling events (lectures, trainings, meetings, volunteer duties) on the
hub database: create, update and delete, with who is expected.

An event row holds its zones as a JSON list; who it expects is kept by
``hub.attendance.set_expected``. Each write here is one statement group the
caller wraps in a transaction together with its audit row.

Ids are readable slugs: the local start day and the ASCII letters of the
title (``20250310-hand-hygiene``, ``20250310-event-2`` for a title without
any), unique in the table, never reused by an edit.

Deleting: an event nobody has checked in to may be deleted (a mistake, or
cancelled in advance; its expected list goes with it). Once someone checked
in, the event is part of people's records and stays: change it instead.

The schedule reaches the nodes by itself: ``hub.ingest`` republishes every
node's retained config (``hub.ingest.downlink.node_config_document``) when it changes.
"""

import json
import re
from datetime import datetime, timedelta, tzinfo

from hub.attendance import attendance
from hub.schedule.zones import Invalid, Problem
from protocol.clock import iso

N_ = str  # marks a message for extraction; translated where it is shown

KINDS = ("lecture", "training", "meeting", "volunteer_duty", "contest")
MAX_TITLE = 200
MAX_DURATION = timedelta(days=7)
MAX_CREDIT_HOURS = 24
MAX_EXPECTED_PEOPLE = 5000
EVENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
RESERVED_IDS = frozenset({"new", "live", "edit", "delete"})
_SEPARATORS = re.compile(r"[\s,;，、；]+")
_SLUG_DROP = re.compile(r"[^a-z0-9]+")


def split_staff_ids(text: str) -> list[str]:
    """Staff numbers as typed: separated by spaces, commas (also full-width)
    or semicolons; duplicates dropped, order kept."""
    return list(dict.fromkeys(s for s in _SEPARATORS.split(text or "") if s))


def departments(db) -> dict[str, str]:
    """Department code -> name: the departments table plus every department
    the roster names (as it spells it), sorted by name."""
    names = {code: name or code for code, name in
             db.conn.execute("SELECT department, name FROM departments")}
    for (code,) in db.conn.execute(
            "SELECT DISTINCT department FROM staff WHERE department IS NOT NULL "
            "AND department != ''"):
        names.setdefault(code, code)
    return dict(sorted(names.items(), key=lambda item: (item[1].casefold(), item[0])))


def check(db, draft: dict) -> dict:
    """The event row and expected lists ``draft`` describes, validated against
    the database. ``draft``: title, kind, zones (list), start/end (aware
    datetimes), credit_hours and min_presence (numbers), departments and
    staff (lists). Raises Invalid with every problem found."""
    problems: list[Problem] = []
    title = draft.get("title")
    title = title.strip() if isinstance(title, str) else ""
    if not title or len(title) > MAX_TITLE:
        problems.append(Problem("title", N_("A title of 1 to %(max)d characters is required."),
                                max=MAX_TITLE))
    kind = draft.get("kind")
    if kind not in KINDS:
        problems.append(Problem("kind", N_("The kind must be one of %(kinds)s."),
                                kinds=", ".join(KINDS)))
    zones = draft.get("zones")
    if not isinstance(zones, list) or not zones or not all(isinstance(z, str) for z in zones):
        problems.append(Problem("zones", N_("Choose at least one zone.")))
        zones = []
    zones = list(dict.fromkeys(zones))
    known = {row[0] for row in db.conn.execute(
        "SELECT zone FROM zones WHERE zone IN (SELECT value FROM json_each(?))",
        (json.dumps(zones),))}
    unknown = [z for z in zones if z not in known]
    if unknown:
        problems.append(Problem("zones", N_("Unknown zone: %(zones)s."),
                                zones=", ".join(unknown)))
    start, end = draft.get("start"), draft.get("end")
    if not isinstance(start, datetime) or start.tzinfo is None:
        problems.append(Problem("start", N_("The start date and time are required.")))
    elif not isinstance(end, datetime) or end.tzinfo is None:
        problems.append(Problem("end", N_("The end date and time are required.")))
    elif end <= start:
        problems.append(Problem("end", N_("The end must be after the start.")))
    elif end - start > MAX_DURATION:
        problems.append(Problem("end", N_("An event lasts at most %(days)d days."),
                                days=MAX_DURATION.days))
    credit = _number(draft.get("credit_hours", 0))
    if credit is None or not 0 <= credit <= MAX_CREDIT_HOURS:
        problems.append(Problem("credit_hours", N_("Credit hours must be a number from 0 to "
                                                   "%(max)d."), max=MAX_CREDIT_HOURS))
    min_presence = _number(draft.get("min_presence", attendance.DEFAULT_MIN_PRESENCE))
    if min_presence is None or not 0 <= min_presence <= 1:
        problems.append(Problem("min_presence", N_("Minimum presence must be a number from 0 "
                                                   "to 1 (0.75 is three quarters).")))
    wanted_departments = _names(draft.get("departments", []), problems, "departments")
    known_departments = departments(db)
    unknown = [d for d in wanted_departments if d not in known_departments]
    if unknown:
        problems.append(Problem("departments", N_("Unknown department: %(departments)s."),
                                departments=", ".join(unknown)))
    staff = _names(draft.get("staff", []), problems, "staff")
    if len(staff) > MAX_EXPECTED_PEOPLE:
        problems.append(Problem("staff", N_("At most %(max)d expected people."),
                                max=MAX_EXPECTED_PEOPLE))
    roster = {row[0] for row in db.conn.execute(
        "SELECT staff_id FROM staff WHERE staff_id IN (SELECT value FROM json_each(?))",
        (json.dumps(staff),))}
    unknown = [s for s in staff if s not in roster]
    if unknown:
        problems.append(Problem("staff", N_("Unknown staff number: %(staff)s."),
                                staff=", ".join(unknown[:20])))
    if problems:
        raise Invalid(problems)
    return {"row": {"title": title, "kind": kind, "zones": json.dumps(zones),
                    "start": iso(start), "end": iso(end), "credit_hours": credit,
                    "min_presence": min_presence},
            "departments": wanted_departments, "staff": staff}


def _number(value) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number else None  # not NaN


def _names(values, problems: list, field: str) -> list[str]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        problems.append(Problem(field, N_("Expected %(field)s must be a list of text."),
                                field=field))
        return []
    return list(dict.fromkeys(v.strip() for v in values if v.strip()))


def new_id(db, title: str, start: datetime, tz: tzinfo) -> str:
    """A free id: local start day + the title's ASCII slug (see the module)."""
    slug = _SLUG_DROP.sub("-", title.lower()).strip("-")[:40].strip("-") or "event"
    base = f"{start.astimezone(tz):%Y%m%d}-{slug}"
    candidate, n = base, 1
    while db.conn.execute("SELECT 1 FROM events WHERE id = ?", (candidate,)).fetchone():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def create(db, draft: dict, tz: tzinfo, event_id: str | None = None) -> str:
    """Insert the event and its expected list; answers its id. ``event_id``
    (optional) must be free and match ``EVENT_ID``. Raises Invalid."""
    checked = check(db, draft)
    if event_id is not None:
        if not isinstance(event_id, str) or not EVENT_ID.fullmatch(event_id) \
                or event_id in RESERVED_IDS:
            raise Invalid([Problem("id", N_("An event id is 1 to 64 letters, digits, '-', '_' "
                                            "or '.'."))])
        if db.conn.execute("SELECT 1 FROM events WHERE id = ?", (event_id,)).fetchone():
            raise Invalid([Problem("id", N_("An event %(id)s already exists."), id=event_id)])
    else:
        event_id = new_id(db, checked["row"]["title"], draft["start"], tz)
    row = {"id": event_id, **checked["row"]}
    db.conn.execute(
        'INSERT INTO events (id, title, kind, zones, start, "end", credit_hours, min_presence) '
        "VALUES (:id, :title, :kind, :zones, :start, :end, :credit_hours, :min_presence)", row)
    attendance.set_expected(db, event_id, checked["departments"], checked["staff"])
    return event_id


def update(db, event_id: str, draft: dict) -> None:
    """Replace the event's fields and expected list (the id stays). Raises
    KeyError for an unknown event, Invalid for bad input."""
    if attendance.get_event(db, event_id) is None:
        raise KeyError(event_id)
    checked = check(db, draft)
    db.conn.execute(
        'UPDATE events SET title = :title, kind = :kind, zones = :zones, start = :start, '
        '"end" = :end, credit_hours = :credit_hours, min_presence = :min_presence '
        "WHERE id = :id", {**checked["row"], "id": event_id})
    attendance.set_expected(db, event_id, checked["departments"], checked["staff"])


def draft_of(db, event_id: str) -> dict | None:
    """The stored event as a draft (what ``check`` takes), or None."""
    event = attendance.get_event(db, event_id)
    if event is None:
        return None
    expected = attendance.get_expected(db, event_id)
    return {"title": event["title"], "kind": event["kind"], "zones": event["zones"],
            "start": attendance.parse_time(event["start"]),
            "end": attendance.parse_time(event["end"]),
            "credit_hours": event["credit_hours"], "min_presence": event["min_presence"],
            "departments": expected["departments"], "staff": expected["staff"]}


def delete(db, event_id: str) -> None:
    """Delete an event nobody has checked in to. Raises KeyError when
    unknown, Invalid when someone has checked in."""
    if attendance.get_event(db, event_id) is None:
        raise KeyError(event_id)
    if db.conn.execute("SELECT 1 FROM checkins WHERE event_id = ? LIMIT 1",
                       (event_id,)).fetchone():
        raise Invalid([Problem("id", N_("People have checked in to this event: it stays in "
                                        "their records and cannot be deleted."))])
    db.conn.execute("DELETE FROM event_expected WHERE event_id = ?", (event_id,))
    db.conn.execute("DELETE FROM events WHERE id = ?", (event_id,))


def between(db, since: datetime, until: datetime) -> list[dict]:
    """Events overlapping [since, until), by start, each as
    ``hub.attendance.get_event`` answers it plus its ``expected`` lists."""
    ids = [row[0] for row in db.conn.execute(
        'SELECT id FROM events WHERE "end" > ? AND start < ? ORDER BY start, id',
        (iso(since), iso(until)))]
    found = []
    for event_id in ids:
        event = attendance.get_event(db, event_id)
        event["expected"] = attendance.get_expected(db, event_id)
        found.append(event)
    return found
