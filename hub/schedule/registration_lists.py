"""Who has registered for an event and who waits (hub/schedule/registration.py
keeps the registrations), and the lists built from them: the office's
overview of an event, what a person sees on "my events" and what a node's
portal needs to take sign-ups offline. Reads only."""

import json
from datetime import datetime, timedelta, timezone

from hub.schedule import registration
from protocol.clock import iso

# Windows opening this far ahead are listed (to the person and to nodes).
AHEAD = timedelta(days=14)

_PEOPLE = ("SELECT r.staff_id, s.name, s.department, r.queued_at, r.changed_at, r.via "
           "FROM registrations r LEFT JOIN staff s ON s.staff_id = r.staff_id "
           "WHERE r.event_id = ? AND r.state = ? ORDER BY r.queued_at, r.id")
_PERSON = ("staff_id", "name", "department", "queued_at", "changed_at", "via")


def registered(db, event_id: str) -> list[dict]:
    """The people registered, in the order they registered."""
    return [dict(zip(_PERSON, row)) for row in db.conn.execute(_PEOPLE, (event_id, "registered"))]


def waiting(db, event_id: str) -> list[dict]:
    """The waiting list in order, each with its ``position`` (from 1)."""
    return [{**dict(zip(_PERSON, row)), "position": n}
            for n, row in enumerate(db.conn.execute(_PEOPLE, (event_id, "waiting")), 1)]


def _eligible_sql(settings: dict) -> tuple[str, list]:
    if not any(settings[name] for name in registration.LISTS):
        return "1 = 1", []
    return ("(s.department IN (SELECT value FROM json_each(?)) OR s.role IN "
            "(SELECT value FROM json_each(?)) OR s.staff_id IN (SELECT value FROM json_each(?)))",
            [json.dumps(settings[name]) for name in ("departments", "roles", "staff")])


def eligible_staff(db, settings: dict) -> list[str]:
    """The staff ids on the roster that ``settings`` lets register."""
    where, params = _eligible_sql(settings)
    return [s for (s,) in db.conn.execute(
        f"SELECT s.staff_id FROM staff s WHERE {where} ORDER BY s.staff_id", params)]


def to_register(db, event_id: str, settings: dict) -> int:
    """How many who may register have not (registered or waiting): for a
    required event, the people still to remind."""
    where, params = _eligible_sql(settings)
    return db.conn.execute(
        f"SELECT count(*) FROM staff s WHERE {where} AND NOT EXISTS (SELECT 1 FROM "
        "registrations r WHERE r.event_id = ? AND r.staff_id = s.staff_id AND r.state IN "
        "('registered', 'waiting'))", (*params, event_id)).fetchone()[0]


def overview(db, event_id: str) -> dict | None:
    """For the office: ``{"settings", "counts": {"registered", "waiting"},
    "registered", "waiting", "to_register"}`` (``to_register`` for a
    required event, else None), or None when the event takes no registration."""
    settings = registration.get(db, event_id)
    if settings is None:
        return None
    people, queue = registered(db, event_id), waiting(db, event_id)
    return {"settings": settings, "counts": {"registered": len(people), "waiting": len(queue)},
            "registered": people, "waiting": queue,
            "to_register": to_register(db, event_id, settings) if settings["required"] else None}


_OPEN_EVENTS = (
    'SELECT e.id, e.title, e.kind, e.zones, e.start, e."end", e.credit_hours, '
    f"{', '.join('g.' + c for c in registration.COLUMNS)} FROM event_registration g "
    'JOIN events e ON e.id = g.event_id WHERE e."end" > ? AND g.opens_at <= ? '
    "ORDER BY e.start, e.id")
_EVENT = ("event_id", "title", "kind", "zones", "start", "end", "credit_hours")


def _listed(db, now: datetime):
    """(event, settings) of every event taking registration that has not ended
    and whose window opens within ``AHEAD``."""
    for row in db.conn.execute(_OPEN_EVENTS, (iso(now), iso(now + AHEAD))).fetchall():
        event = dict(zip(_EVENT, row[:len(_EVENT)]))
        event["zones"] = json.loads(event["zones"] or "[]")
        yield event, registration.from_row(row[len(_EVENT):])


def for_person(db, staff_id: str, now: datetime | None = None) -> list[dict]:
    """What ``staff_id`` sees on "my events": each event taking registration
    (not ended, its window opening within ``AHEAD``) that they may register
    for or are registered or waiting for, by start: the event's fields,
    ``opens_at``, ``closes_at``, ``capacity``, ``required``, ``registered``
    and ``waiting`` (counts), ``window``, their ``state`` (None when never
    registered) and ``position``, ``can_register``, ``can_cancel``."""
    now = now or datetime.now(timezone.utc)
    person = db.conn.execute("SELECT department, role FROM staff WHERE staff_id = ?",
                             (staff_id,)).fetchone()
    found = []
    for event, settings in _listed(db, now):
        mine = (registration.state_of(db, event["event_id"], staff_id)
                or {"state": None, "position": None})
        eligible = person is not None and registration.may_register(settings, staff_id, *person)
        active = mine["state"] in registration.ACTIVE
        if not eligible and not active:
            continue
        is_open = registration.window(settings, now)
        found.append({
            **event, **{k: settings[k] for k in ("opens_at", "closes_at", "capacity",
                                                 "required")},
            "registered": registration.count(db, event["event_id"], "registered"),
            "waiting": registration.count(db, event["event_id"], "waiting"), "window": is_open,
            **mine,
            "can_register": eligible and not active and is_open == "open",
            "can_cancel": active and iso(now) < event["start"]})
    return found


def for_node(db, now: datetime | None = None) -> list[dict]:
    """What a node's portal needs to take sign-ups offline and show each
    person's state: every event ``for_person`` would list, with its window,
    capacity, ``required``, its places' names, who may register (``who``:
    None for everyone, else ``{"departments", "staff"}`` with the roles'
    people among the staff) and the staff ids ``registered`` and ``waiting``
    in order."""
    now = now or datetime.now(timezone.utc)
    names = dict(db.conn.execute("SELECT zone, name FROM zones").fetchall())
    found = []
    for event, settings in _listed(db, now):
        who = None
        if any(settings[name] for name in registration.LISTS):
            staff = settings["staff"]
            if settings["roles"]:
                staff = sorted(set(staff) | {s for (s,) in db.conn.execute(
                    "SELECT staff_id FROM staff WHERE role IN (SELECT value FROM json_each(?))",
                    (json.dumps(settings["roles"]),))})
            who = {"departments": settings["departments"], "staff": staff}
        found.append({
            **{k: event[k] for k in ("event_id", "title", "kind", "start", "end")},
            "places": [names.get(z, z) for z in event["zones"]],
            **{k: settings[k] for k in ("opens_at", "closes_at", "capacity", "required")},
            "who": who,
            "registered": [p["staff_id"] for p in registered(db, event["event_id"])],
            "waiting": [p["staff_id"] for p in waiting(db, event["event_id"])]})
    return found
