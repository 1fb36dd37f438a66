"""What an event's registration settings may be (hub/schedule/registration.py
stores them): ``check`` turns the event form's draft into the
``event_registration`` values, or raises ``hub.schedule.zones.Invalid``
with problems naming the form's fields (``reg_...``)."""

import json
from datetime import datetime

from hub.people import roster
from hub.schedule import events as schedule
from hub.schedule.zones import Invalid, Problem
from protocol.clock import iso

N_ = str  # marks a message for extraction; translated where it is shown

MAX_CAPACITY = 100_000
MAX_PEOPLE = 5000


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
