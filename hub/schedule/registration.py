"""Registration (报名) for events: when people may sign up, how many places
there are, who may, the waiting list.

This module holds an event's registration settings and each person's
registration: register, cancel, promotion from the waiting list. Beside it:
``registration_settings`` (what the settings may be: ``check``),
``registration_lists`` (who is registered and waiting; what a person and a
node see) and ``registration_records`` (a portal's ``registration``
records, applied at ingest).

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

Errors are ``RegistrationError`` (a ``code`` and an English message marked
``N_`` with its parameters apart); settings that do not hold are
``hub.schedule.zones.Invalid``. Functions never commit.
"""

import json
from datetime import datetime, timezone

from hub.schedule.registration_settings import check
from hub.schedule.zones import Invalid, Problem
from protocol.clock import iso

N_ = str  # marks a message for extraction; translated where it is shown

STATES = ("registered", "waiting", "cancelled")
ACTIVE = ("registered", "waiting")
ACTIONS = ("register", "cancel")
VIA_HUB = "hub"

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

COLUMNS = ("event_id", "opens_at", "closes_at", "capacity", "departments", "roles", "staff",
           "required")
LISTS = ("departments", "roles", "staff")


def from_row(row) -> dict:
    """The settings of an ``event_registration`` row (its ``COLUMNS``)."""
    found = dict(zip(COLUMNS, row))
    for name in LISTS:
        found[name] = json.loads(found[name] or "[]")
    found["required"] = bool(found["required"])
    return found


def get(db, event_id: str) -> dict | None:
    """The event's registration settings, or None when it takes none."""
    row = db.conn.execute(f"SELECT {', '.join(COLUMNS)} FROM event_registration "
                          "WHERE event_id = ?", (event_id,)).fetchone()
    return None if row is None else from_row(row)


def configure(db, event_id: str, draft: dict, now: datetime | None = None) -> list[str]:
    """Give ``event_id`` registration (``registration_settings.check``'s
    ``draft``) or change it; answers the staff ids a raised capacity promoted
    from the waiting list. Raises RegistrationError for an unknown event,
    Invalid for bad settings."""
    event = _event(db, event_id)
    values = {"event_id": event_id, **check(db, event[1], draft)}
    db.conn.execute(
        f"INSERT INTO event_registration ({', '.join(COLUMNS)}) VALUES "
        f"({', '.join(':' + c for c in COLUMNS)}) ON CONFLICT(event_id) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[1:]), values)
    return _fill(db, event_id, values["capacity"], now or datetime.now(timezone.utc))


def remove(db, event_id: str, *, force: bool = False) -> None:
    """Stop ``event_id`` taking registration. Refused (Invalid) while people
    are registered or waiting, unless ``force`` (the event itself is being
    deleted), which removes their registrations too."""
    active = count(db, event_id, *ACTIVE)
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
    if not any(settings[name] for name in LISTS):
        return True
    return (department in settings["departments"] or role in settings["roles"]
            or staff_id in settings["staff"])


def window(settings: dict, now: datetime) -> str:
    """``"upcoming"``, ``"open"`` or ``"closed"`` at ``now``."""
    at = iso(now)
    return ("upcoming" if at < settings["opens_at"] else
            "open" if at < settings["closes_at"] else "closed")


def _event(db, event_id: str) -> tuple[str, str]:
    """(start, end) of the event; RegistrationError when unknown."""
    row = db.conn.execute('SELECT start, "end" FROM events WHERE id = ?', (event_id,)).fetchone()
    if row is None:
        raise RegistrationError("unknown_event", event=event_id)
    return row


def stored(db, event_id: str, staff_id: str) -> tuple | None:
    """(state, queued_at, changed_at) of a person's registration, or None."""
    return db.conn.execute("SELECT state, queued_at, changed_at FROM registrations "
                           "WHERE event_id = ? AND staff_id = ?", (event_id, staff_id)).fetchone()


def count(db, event_id: str, *states: str) -> int:
    """How many of the event's registrations are in one of ``states``."""
    return db.conn.execute(
        f"SELECT count(*) FROM registrations WHERE event_id = ? AND state IN "
        f"({', '.join('?' * len(states))})", (event_id, *states)).fetchone()[0]


def checked(db, event_id: str, staff_id: str, action: str, at: str) -> tuple[dict, str | None]:
    """(settings, current state) when ``action`` by ``staff_id`` at ``at`` (a
    wire timestamp) may be taken (or changes nothing); else RegistrationError."""
    start, _end = _event(db, event_id)
    settings = get(db, event_id)
    if settings is None:
        raise RegistrationError("no_registration")
    found = stored(db, event_id, staff_id)
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
    settings, current = checked(db, event_id, staff_id, "register", at)
    if current in ACTIVE:
        return current
    capacity = settings["capacity"]
    full = capacity is not None and count(db, event_id, "registered") >= capacity
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
    settings, current = checked(db, event_id, staff_id, "cancel", at)
    if current not in ACTIVE:
        return {"was": current, "promoted": []}
    db.conn.execute("UPDATE registrations SET state = 'cancelled', changed_at = ?, via = ? "
                    "WHERE event_id = ? AND staff_id = ?", (at, via, event_id, staff_id))
    promoted = _fill(db, event_id, settings["capacity"], now) if current == "registered" else []
    return {"was": current, "promoted": promoted}


def _fill(db, event_id: str, capacity: int | None, now: datetime) -> list[str]:
    """Promote the first waiting people, in order, to the places free."""
    sql = ("SELECT id, staff_id FROM registrations WHERE event_id = ? AND "
           "state = 'waiting' ORDER BY queued_at, id")
    params: tuple = (event_id,)
    if capacity is not None:
        places = capacity - count(db, event_id, "registered")
        if places <= 0:
            return []
        sql, params = sql + " LIMIT ?", (event_id, places)
    rows = db.conn.execute(sql, params).fetchall()
    db.conn.executemany("UPDATE registrations SET state = 'registered', changed_at = ? "
                        "WHERE id = ?", [(iso(now), row_id) for row_id, _ in rows])
    return [staff_id for _, staff_id in rows]


def state_of(db, event_id: str, staff_id: str) -> dict | None:
    """``{"state", "position"}`` of a person's registration (position on the
    waiting list, else None), or None when they never registered."""
    found = stored(db, event_id, staff_id)
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
