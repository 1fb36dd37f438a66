"""Registration (报名) for events: when people may sign up, how many places
there are, who may, the waiting list.

An event may take registration (``event_registration``): a window
(``opens_at`` <= now < ``closes_at``, closing by the event's end), a
``capacity`` (None: no limit), who may register (``departments``, ``roles``
as the roster's ``staff.role`` spells them, and named ``staff``; all three
empty: everyone on the roster, else anyone in one of them) and whether
registering is a duty (``required``: those who may register are asked to)
or voluntary.

Each person's registration (``registrations``) is ``registered``,
``waiting`` or ``cancelled``:

* **register** inside the window, if eligible: ``registered`` while places
  remain, else ``waiting``. The waiting list is in ``queued_at`` order (then
  row id). Registering again while registered or waiting changes nothing;
  after a cancellation it joins at the end again.
* **cancel** before the event starts. A registered person's place goes to
  the first on the waiting list at once. Cancelling what is not registered
  changes nothing.
* A capacity raised (or lifted) promotes waiting people in order; one
  lowered below the registered count takes no place away.
* Registered people are the event's expected attendees
  (``hub.attendance.attendance.expected_staff``).

Capacity is safe under concurrent sign-ups because every write here runs in
the caller's ``hub.db.write_transaction`` (BEGIN IMMEDIATE): the count of
places taken and the insert happen under the write lock. Callers pass
``now`` read inside that transaction, so the queue order is the commit order.

Nodes cannot decide places (several take sign-ups at once): a portal sends
``registration`` records (event, person, ``register`` or ``cancel``,
``taken_at``) that the ingest applies in ``taken_at`` order
(``apply_records``), each as of its ``taken_at``. A re-sent or late record
never undoes a later action of the same person: a ``register`` older than
their cancellation, or a ``cancel`` older than their registration, changes
nothing; so records need no id table to be applied once in effect. What the
hub cannot take (``refusal``: an unknown event, an event without
registration, an unknown or ineligible person, outside the window) is
quarantined with the reason.

Errors are ``RegistrationError`` (a ``code`` and an English message marked
``N_`` with its parameters apart); settings that do not hold are
``hub.schedule.zones.Invalid``. Functions never commit.
"""

import json
from datetime import datetime, timedelta, timezone

from hub import audit
from hub.people import roster
from hub.schedule import events as schedule
from hub.schedule.zones import Invalid, Problem
from protocol.clock import iso, parse_iso

N_ = str  # marks a message for extraction; translated where it is shown

STATES = ("registered", "waiting", "cancelled")
ACTIVE = ("registered", "waiting")
ACTIONS = ("register", "cancel")
MAX_CAPACITY = 100_000
MAX_PEOPLE = 5000
VIA_HUB = "hub"
# Windows opening this far ahead are listed (to the person and to nodes).
AHEAD = timedelta(days=14)

MESSAGES = {
    "unknown_event": N_("There is no event %(event)s."),
    "no_registration": N_("This event takes no registration."),
    "unknown_staff": N_("Staff number %(staff)s is not on the roster."),
    "not_eligible": N_("Registration for this event is not open to you."),
    "not_open": N_("Registration for this event has not opened yet."),
    "closed": N_("Registration for this event has closed."),
    "started": N_("The event has started: the registration can no longer be cancelled."),
}


class RegistrationError(ValueError):
    """A registration or cancellation refused: ``code`` (a key of
    ``MESSAGES``), ``message`` (N_) and its ``params``."""

    def __init__(self, code: str, **params):
        self.code, self.message, self.params = code, MESSAGES[code], params
        super().__init__(self.message % params if params else self.message)


# -- settings ---------------------------------------------------------------------

_SETTINGS = ("event_id", "opens_at", "closes_at", "capacity", "departments", "roles", "staff",
             "required")
_LISTS = ("departments", "roles", "staff")


def _settings(row) -> dict:
    found = dict(zip(_SETTINGS, row))
    for name in _LISTS:
        found[name] = json.loads(found[name] or "[]")
    found["required"] = bool(found["required"])
    return found


def get(db, event_id: str) -> dict | None:
    """The event's registration settings, or None when it takes none."""
    row = db.conn.execute(f"SELECT {', '.join(_SETTINGS)} FROM event_registration "
                          "WHERE event_id = ?", (event_id,)).fetchone()
    return None if row is None else _settings(row)


def _aware(value) -> bool:
    return isinstance(value, datetime) and value.tzinfo is not None


def _texts(values, field: str, problems: list) -> list[str]:
    if values is None:
        return []
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        problems.append(Problem(field, N_("Expected %(field)s must be a list of text."),
                                field=field))
        return []
    return list(dict.fromkeys(v.strip() for v in values if v.strip()))


def _capacity(value, problems: list) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = int(value.strip()) if isinstance(value, str) else value
    except ValueError:
        number = None
    if isinstance(number, bool) or not isinstance(number, int) \
            or not 1 <= number <= MAX_CAPACITY:
        problems.append(Problem("reg_capacity", N_("The number of places is a whole number "
                                                   "from 1 to %(max)d, or empty for no "
                                                   "limit."), max=MAX_CAPACITY))
        return None
    return number


def known_roles(db) -> list[str]:
    """The roles a registration may name: the dashboard's and any the roster holds."""
    held = [r for (r,) in db.conn.execute("SELECT DISTINCT role FROM staff ORDER BY role")]
    return list(dict.fromkeys([*roster.ROLES, *held]))


def check(db, event_end: str, draft: dict) -> dict:
    """The ``event_registration`` values ``draft`` describes: ``opens_at`` and
    ``closes_at`` (aware datetimes; closing by ``event_end``), ``capacity``
    (a number, its text, or None/"" for no limit), ``departments``, ``roles``,
    ``staff`` (lists) and ``required`` (bool). Raises Invalid. Problems name
    the event form's fields (``reg_...``)."""
    problems: list[Problem] = []
    opens, closes = draft.get("opens_at"), draft.get("closes_at")
    if not _aware(opens):
        problems.append(Problem("reg_opens", N_("When registration opens is required.")))
    if not _aware(closes):
        problems.append(Problem("reg_closes", N_("When registration closes is required.")))
    elif _aware(opens) and closes <= opens:
        problems.append(Problem("reg_closes", N_("Registration must close after it opens.")))
    elif iso(closes) > event_end:
        problems.append(Problem("reg_closes", N_("Registration must close by the end of the "
                                                 "event.")))
    capacity = _capacity(draft.get("capacity"), problems)
    departments = _texts(draft.get("departments"), "reg_departments", problems)
    known = schedule.departments(db)
    unknown = [d for d in departments if d not in known]
    if unknown:
        problems.append(Problem("reg_departments", N_("Unknown department: %(departments)s."),
                                departments=", ".join(unknown)))
    roles = _texts(draft.get("roles"), "reg_roles", problems)
    known = known_roles(db)
    unknown = [r for r in roles if r not in known]
    if unknown:
        problems.append(Problem("reg_roles", N_("Unknown role: %(roles)s."),
                                roles=", ".join(unknown)))
    staff = _texts(draft.get("staff"), "reg_staff", problems)
    if len(staff) > MAX_PEOPLE:
        problems.append(Problem("reg_staff", N_("At most %(max)d named people."),
                                max=MAX_PEOPLE))
    held = {s for (s,) in db.conn.execute(
        "SELECT staff_id FROM staff WHERE staff_id IN (SELECT value FROM json_each(?))",
        (json.dumps(staff),))}
    unknown = [s for s in staff if s not in held]
    if unknown:
        problems.append(Problem("reg_staff", N_("Unknown staff number: %(staff)s."),
                                staff=", ".join(unknown[:20])))
    if problems:
        raise Invalid(problems)
    return {"opens_at": iso(opens), "closes_at": iso(closes), "capacity": capacity,
            "departments": json.dumps(departments, ensure_ascii=False),
            "roles": json.dumps(roles), "staff": json.dumps(staff),
            "required": int(bool(draft.get("required")))}


def configure(db, event_id: str, draft: dict, now: datetime | None = None) -> list[str]:
    """Give ``event_id`` registration (``check``'s ``draft``) or change it;
    answers the staff ids a raised capacity promoted from the waiting list.
    Raises RegistrationError for an unknown event, Invalid for bad settings."""
    event = _event(db, event_id)
    values = {"event_id": event_id, **check(db, event[1], draft)}
    db.conn.execute(
        f"INSERT INTO event_registration ({', '.join(_SETTINGS)}) VALUES "
        f"({', '.join(':' + c for c in _SETTINGS)}) ON CONFLICT(event_id) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in _SETTINGS[1:]), values)
    return _fill(db, event_id, values["capacity"], now or datetime.now(timezone.utc))


def remove(db, event_id: str, *, force: bool = False) -> None:
    """Stop ``event_id`` taking registration. Refused (Invalid) while people
    are registered or waiting, unless ``force`` (the event itself is being
    deleted), which removes their registrations too."""
    active = _count(db, event_id, *ACTIVE)
    if active and not force:
        raise Invalid([Problem("registration", N_("%(n)d people have registered or are "
                                                  "waiting: registration cannot be turned "
                                                  "off."), n=active)])
    db.conn.execute("DELETE FROM registrations WHERE event_id = ?", (event_id,))
    db.conn.execute("DELETE FROM event_registration WHERE event_id = ?", (event_id,))


# -- who may register, and when -------------------------------------------------------

def may_register(settings: dict, staff_id: str, department: str | None,
                 role: str | None) -> bool:
    """Whether a person (their department and role) is one ``settings`` lets register."""
    if not any(settings[name] for name in _LISTS):
        return True
    return (department in settings["departments"] or role in settings["roles"]
            or staff_id in settings["staff"])


def _event(db, event_id: str) -> tuple[str, str]:
    """(start, end) of the event; RegistrationError when unknown."""
    row = db.conn.execute('SELECT start, "end" FROM events WHERE id = ?', (event_id,)).fetchone()
    if row is None:
        raise RegistrationError("unknown_event", event=event_id)
    return row


def _state(db, event_id: str, staff_id: str) -> tuple | None:
    """(state, queued_at, changed_at) of a person's registration, or None."""
    return db.conn.execute("SELECT state, queued_at, changed_at FROM registrations "
                           "WHERE event_id = ? AND staff_id = ?", (event_id, staff_id)).fetchone()


def _count(db, event_id: str, *states: str) -> int:
    return db.conn.execute(
        f"SELECT count(*) FROM registrations WHERE event_id = ? AND state IN "
        f"({', '.join('?' * len(states))})", (event_id, *states)).fetchone()[0]


def _checked(db, event_id: str, staff_id: str, action: str, at: str) -> tuple[dict, str | None]:
    """(settings, current state) when ``action`` by ``staff_id`` at ``at`` (a
    wire timestamp) may be taken (or changes nothing); else RegistrationError."""
    start, _end = _event(db, event_id)
    settings = get(db, event_id)
    if settings is None:
        raise RegistrationError("no_registration")
    found = _state(db, event_id, staff_id)
    current = found[0] if found else None
    if action == "cancel":
        if current in ACTIVE and at >= start:
            raise RegistrationError("started")
        return settings, current
    if current in ACTIVE:
        return settings, current
    person = db.conn.execute("SELECT department, role FROM staff WHERE staff_id = ?",
                             (staff_id,)).fetchone()
    if person is None:
        raise RegistrationError("unknown_staff", staff=staff_id)
    if not may_register(settings, staff_id, *person):
        raise RegistrationError("not_eligible")
    if at < settings["opens_at"]:
        raise RegistrationError("not_open")
    if at >= settings["closes_at"]:
        raise RegistrationError("closed")
    return settings, current


# -- register and cancel -------------------------------------------------------------------

def register(db, event_id: str, staff_id: str, now: datetime, via: str = VIA_HUB) -> str:
    """Register ``staff_id`` for ``event_id`` as of ``now``: ``"registered"``,
    or ``"waiting"`` when the event is full; already registered or waiting,
    the same answer and no change. Raises RegistrationError."""
    at = iso(now)
    settings, current = _checked(db, event_id, staff_id, "register", at)
    if current in ACTIVE:
        return current
    capacity = settings["capacity"]
    full = capacity is not None and _count(db, event_id, "registered") >= capacity
    state = "waiting" if full else "registered"
    db.conn.execute(
        "INSERT INTO registrations (event_id, staff_id, state, queued_at, changed_at, via) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(event_id, staff_id) DO UPDATE SET "
        "state = excluded.state, queued_at = excluded.queued_at, "
        "changed_at = excluded.changed_at, via = excluded.via",
        (event_id, staff_id, state, at, at, via))
    return state


def cancel(db, event_id: str, staff_id: str, now: datetime, via: str = VIA_HUB) -> dict:
    """Cancel ``staff_id``'s registration (or place on the waiting list) as of
    ``now``: ``{"was": the state before (None when none), "promoted": [staff
    ids given the freed place]}``. Raises RegistrationError."""
    at = iso(now)
    settings, current = _checked(db, event_id, staff_id, "cancel", at)
    if current not in ACTIVE:
        return {"was": current, "promoted": []}
    db.conn.execute("UPDATE registrations SET state = 'cancelled', changed_at = ?, via = ? "
                    "WHERE event_id = ? AND staff_id = ?", (at, via, event_id, staff_id))
    promoted = _fill(db, event_id, settings["capacity"], now) if current == "registered" else []
    return {"was": current, "promoted": promoted}


def _fill(db, event_id: str, capacity: int | None, now: datetime) -> list[str]:
    """Promote the first waiting people, in order, to the places free."""
    limit = -1  # SQLite's "no limit"
    if capacity is not None:
        limit = capacity - _count(db, event_id, "registered")
        if limit <= 0:
            return []
    rows = db.conn.execute("SELECT id, staff_id FROM registrations WHERE event_id = ? AND "
                           "state = 'waiting' ORDER BY queued_at, id LIMIT ?",
                           (event_id, limit)).fetchall()
    db.conn.executemany("UPDATE registrations SET state = 'registered', changed_at = ? "
                        "WHERE id = ?", [(iso(now), row_id) for row_id, _ in rows])
    return [staff_id for _, staff_id in rows]


# -- lists --------------------------------------------------------------------------------

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


def state_of(db, event_id: str, staff_id: str) -> dict | None:
    """``{"state", "position"}`` of a person's registration (position on the
    waiting list, else None), or None when they never registered."""
    found = _state(db, event_id, staff_id)
    if found is None:
        return None
    position = None
    if found[0] == "waiting":
        position = db.conn.execute(
            "SELECT count(*) FROM registrations w JOIN registrations me "
            "ON me.event_id = w.event_id AND me.staff_id = ? WHERE w.event_id = ? "
            "AND w.state = 'waiting' AND (w.queued_at < me.queued_at OR "
            "(w.queued_at = me.queued_at AND w.id <= me.id))",
            (staff_id, event_id)).fetchone()[0]
    return {"state": found[0], "position": position}


def _eligible_sql(settings: dict) -> tuple[str, list]:
    if not any(settings[name] for name in _LISTS):
        return "1", []
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
    settings = get(db, event_id)
    if settings is None:
        return None
    people, queue = registered(db, event_id), waiting(db, event_id)
    return {"settings": settings, "counts": {"registered": len(people), "waiting": len(queue)},
            "registered": people, "waiting": queue,
            "to_register": to_register(db, event_id, settings) if settings["required"] else None}


_OPEN_EVENTS = (
    'SELECT e.id, e.title, e.kind, e.zones, e.start, e."end", e.credit_hours, '
    f"{', '.join('g.' + c for c in _SETTINGS)} FROM event_registration g "
    'JOIN events e ON e.id = g.event_id WHERE e."end" > ? AND g.opens_at <= ? '
    "ORDER BY e.start, e.id")
_EVENT = ("event_id", "title", "kind", "zones", "start", "end", "credit_hours")


def _listed(db, now: datetime):
    """(event, settings) of every event taking registration that has not ended
    and whose window opens within ``AHEAD``."""
    for row in db.conn.execute(_OPEN_EVENTS, (iso(now), iso(now + AHEAD))).fetchall():
        event = dict(zip(_EVENT, row[:len(_EVENT)]))
        event["zones"] = json.loads(event["zones"] or "[]")
        yield event, _settings(row[len(_EVENT):])


def window(settings: dict, now: datetime) -> str:
    """``"upcoming"``, ``"open"`` or ``"closed"`` at ``now``."""
    at = iso(now)
    return ("upcoming" if at < settings["opens_at"] else
            "open" if at < settings["closes_at"] else "closed")


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
        mine = state_of(db, event["event_id"], staff_id) or {"state": None, "position": None}
        eligible = person is not None and may_register(settings, staff_id, *person)
        active = mine["state"] in ACTIVE
        if not eligible and not active:
            continue
        is_open = window(settings, now)
        found.append({
            **event, **{k: settings[k] for k in ("opens_at", "closes_at", "capacity",
                                                 "required")},
            "registered": _count(db, event["event_id"], "registered"),
            "waiting": _count(db, event["event_id"], "waiting"), "window": is_open, **mine,
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
        if any(settings[name] for name in _LISTS):
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


# -- records from nodes -------------------------------------------------------------------

def refusal(db, record: dict) -> str | None:
    """Why the hub cannot take a ``registration`` record (it is then
    quarantined), or None. Checked as of the record's ``taken_at``."""
    try:
        _checked(db, record["event_id"], record["staff_id"], record["action"],
                 record["taken_at"])
    except RegistrationError as exc:
        return _reason(exc, record)
    return None


def _reason(exc: RegistrationError, record: dict) -> str:
    return (f"registration: {exc} ({record['action']} by {record['staff_id']!r} "
            f"for {record['event_id']!r})")


def apply_record(db, record: dict, node: str) -> dict | None:
    """Apply one ``registration`` record as of its ``taken_at``; answers what
    changed (``{"state"}`` or ``cancel``'s answer), None when nothing did: a
    repeat, or an action older than the person's latest one (see the
    module). Raises RegistrationError."""
    event_id, staff_id, at = record["event_id"], record["staff_id"], record["taken_at"]
    found = _state(db, event_id, staff_id)
    via = f"node:{node}"
    if record["action"] == "register":
        if found and (found[0] in ACTIVE or found[2] > at):
            return None  # already in, or cancelled after this was taken
        return {"state": register(db, event_id, staff_id, parse_iso(at), via)}
    if found is None or found[0] not in ACTIVE or found[1] > at:
        return None  # nothing to cancel, or registered again after this was taken
    return cancel(db, event_id, staff_id, parse_iso(at), via)


def apply_records(db, node: str, records: list[dict]) -> list[tuple[dict, str]]:
    """Apply a batch's ``registration`` records in ``taken_at`` order, each
    change with its audit row (by the person, via the node); answers the
    records refused, with the reason, for the quarantine."""
    refused = []
    for record in sorted(records, key=lambda r: (r["taken_at"], r["id"])):
        try:
            changed = apply_record(db, record, node)
        except RegistrationError as exc:
            refused.append((record, _reason(exc, record)))
            continue
        if changed is not None:
            audit.record(db, record["staff_id"], f"registration.{record['action']}",
                         f"event:{record['event_id']}",
                         {"via": f"node:{node}", "record": record["id"],
                          "taken_at": record["taken_at"], **changed})
    return refused
