"""The staff roster: departments, the people in them, their PINs and phone
bindings. The CSV import is ``hub.people.roster_import``; the accounts
administrators manage are ``hub.people.account_admin``.

Departments come first: a roster row naming an unknown department is an
error, so departments are added one by one (dashboard "Departments" page,
``POST /api/v1/departments``, ``rounds-hub roster add-department``).

PINs are six random digits from ``secrets``; only the scrypt hash
(``protocol.pins``) is stored, the PIN itself is returned once to be shown.

Functions take a sqlite-utils ``db`` and never commit: the caller wraps the
change and its audit row in one ``hub.db.write_transaction``. Messages are
English templates marked with ``N_`` (extracted for translation) and their
parameters (``RosterError``), so the dashboard can show them in the reader's
language; the import and the account administration use the same errors.
"""

import json
import os
import re
import secrets
from concurrent.futures import ThreadPoolExecutor

from protocol import pins

ROLES = ("staff", "dept_reviewer", "branch_reviewer", "committee_reviewer", "office", "admin")
NAME_MAX = 100
DEPARTMENT_MAX = 64
BRANCH_MAX = 64  # a party branch (党支部) is its name, as the hospital writes it
PIN_DIGITS = 6
LIST_LIMIT = 1000
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def N_(message: str) -> str:
    """Marks ``message`` for translation; it is translated where it is shown."""
    return message


class RosterError(ValueError):
    """A request the roster refuses (bad input), with the reason."""

    def __init__(self, message: str, **params):
        self.message, self.params = message, params
        super().__init__(message % params if params else message)


class NotFound(RosterError):
    pass


class Conflict(RosterError):
    pass


def text_problem(value: str, limit: int) -> str | None:
    """Why ``value`` (a name or id of 1 to ``limit`` characters) is refused, or
    None (the message may hold ``%(limit)d``)."""
    if not value:
        return N_("required, but empty")
    if len(value) > limit:
        return N_("longer than %(limit)d characters")
    if _CONTROL.search(value):
        return N_("contains control characters")
    return None


# -- departments ---------------------------------------------------------------

def departments(db) -> list[dict]:
    """Every department with the number of people on the roster in it."""
    return [dict(zip(("department", "name", "staff"), row)) for row in db.conn.execute(
        "SELECT d.department, d.name, (SELECT COUNT(*) FROM staff s "
        "WHERE s.department = d.department) FROM departments d ORDER BY d.department")]


def add_department(db, department: str, name: str, name_en: str | None = None) -> dict:
    """Add a department: its id, its name (in the hospital's language) and,
    optionally, the English name shown to a reader who picks English."""
    department, name = (department or "").strip(), (name or "").strip()
    name_en = (name_en or "").strip() or None
    if text_problem(department, DEPARTMENT_MAX):
        raise RosterError(N_("a department id has 1 to %(limit)d characters, without control "
                             "characters"), limit=DEPARTMENT_MAX)
    if text_problem(name, NAME_MAX):
        raise RosterError(N_("a department name has 1 to %(limit)d characters, without "
                             "control characters"), limit=NAME_MAX)
    if name_en is not None and text_problem(name_en, NAME_MAX):
        raise RosterError(N_("an English name has at most %(limit)d characters, without "
                             "control characters"), limit=NAME_MAX)
    if db.conn.execute("SELECT 1 FROM departments WHERE department = ?",
                       (department,)).fetchone():
        raise Conflict(N_("department %(department)s exists already"), department=department)
    db.conn.execute("INSERT INTO departments (department, name, name_en) VALUES (?, ?, ?)",
                    (department, name, name_en))
    return {"department": department, "name": name, "staff": 0}


def department_exists(db, department: str) -> bool:
    return db.conn.execute("SELECT 1 FROM departments WHERE department = ?",
                           (department,)).fetchone() is not None


def department_names(db, lang: str | None = None) -> dict[str, str]:
    """Department code -> name (the code when the name is empty); with ``lang``
    ``"en"``, the English name where one is stored."""
    english = lang == "en"
    return {code: (name_en if english and name_en else name) or code
            for code, name, name_en in db.conn.execute(
                "SELECT department, name, name_en FROM departments")}


# -- people --------------------------------------------------------------------

_STAFF_SELECT = (
    "SELECT s.staff_id, s.name, s.department, d.name, s.role, s.pin_hash IS NOT NULL, "
    "(SELECT COUNT(*) FROM devices v WHERE v.staff_id = s.staff_id), s.branch "
    "FROM staff s LEFT JOIN departments d ON d.department = s.department")
_STAFF_KEYS = ("staff_id", "name", "department", "department_name", "role", "pin_set", "devices",
               "branch")


def _person(row) -> dict:
    person = dict(zip(_STAFF_KEYS, row))
    person["pin_set"] = bool(person["pin_set"])
    return person


def list_staff(db, q: str | None = None, department: str | None = None,
               limit: int = LIST_LIMIT) -> list[dict]:
    """People by department and number; ``q`` matches part of a name or number."""
    where, params = [], []
    if q:
        like = "%" + re.sub(r"([\\%_])", r"\\\1", q.strip()) + "%"
        # lower() on both sides: SQLite's LIKE ignores ASCII case, PostgreSQL's does not
        where.append("(lower(s.staff_id) LIKE lower(?) ESCAPE '\\' "
                     "OR lower(s.name) LIKE lower(?) ESCAPE '\\')")
        params += [like, like]
    if department:
        where.append("s.department = ?")
        params.append(department)
    sql = _STAFF_SELECT + (" WHERE " + " AND ".join(where) if where else "")
    rows = db.conn.execute(sql + " ORDER BY s.department, s.staff_id LIMIT ?", (*params, limit))
    return [_person(row) for row in rows]


def get_staff(db, staff_id: str) -> dict | None:
    """One person with their device bindings and their account (if any)."""
    row = db.conn.execute(_STAFF_SELECT + " WHERE s.staff_id = ?", (staff_id,)).fetchone()
    if row is None:
        return None
    person = _person(row)
    person["bindings"] = bindings(db, staff_id)
    person["account"] = linked_account(db, staff_id)
    return person


def staff_by_id(db, staff_ids) -> dict[str, dict]:
    """staff_id -> {"name", "department"} for those of ``staff_ids`` on the roster."""
    rows = db.conn.execute(
        "SELECT staff_id, name, department FROM staff "
        "WHERE staff_id IN (SELECT value FROM json_each(?))",
        (json.dumps(sorted(set(staff_ids))),))
    return {sid: {"name": name, "department": dept} for sid, name, dept in rows}


def branches(db) -> list[str]:
    """The party branches the roster names (``staff.branch``), for choosing one."""
    return [branch for (branch,) in db.conn.execute(
        "SELECT DISTINCT branch FROM staff WHERE branch IS NOT NULL AND branch != '' "
        "ORDER BY branch")]


def in_department(db, staff_id: str, department: str) -> bool:
    return db.conn.execute("SELECT 1 FROM staff WHERE staff_id = ? AND department = ?",
                           (staff_id, department)).fetchone() is not None


def linked_account(db, staff_id: str) -> dict | None:
    row = db.conn.execute(
        "SELECT username, role, disabled, password_hash IS NOT NULL FROM accounts "
        "WHERE staff_id = ? ORDER BY username = ? DESC, username LIMIT 1",
        (staff_id, staff_id)).fetchone()
    if row is None:
        return None
    return {"username": row[0], "role": row[1], "disabled": bool(row[2]),
            "password_set": bool(row[3])}


# -- PINs and device bindings ----------------------------------------------------

def new_pin() -> str:
    return f"{secrets.randbelow(10 ** PIN_DIGITS):0{PIN_DIGITS}d}"


def reset_pin(db, staff_id: str) -> str:
    """Give ``staff_id`` a new random PIN; returns it (show it once)."""
    pin = new_pin()
    cursor = db.conn.execute("UPDATE staff SET pin_hash = ? WHERE staff_id = ?",
                             (pins.hash_pin(pin), staff_id))
    if cursor.rowcount == 0:
        raise NotFound(N_("unknown staff member %(staff_id)s"), staff_id=staff_id)
    return pin


def department_pins(db, department: str) -> list[dict]:
    """New PINs for everyone in ``department``: ``[{"staff_id", "name", "pin",
    "pin_hash"}]``, hashed here (scrypt is slow on purpose) so that the
    caller's write transaction, ``store_pins``, stays short."""
    if not department_exists(db, department):
        raise NotFound(N_("unknown department %(value)s"), value=department)
    people = [{"staff_id": staff_id, "name": name, "pin": new_pin()} for staff_id, name in
              db.conn.execute("SELECT staff_id, name FROM staff WHERE department = ? "
                              "ORDER BY staff_id", (department,))]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # scrypt frees the GIL
        for person, digest in zip(people, pool.map(pins.hash_pin,
                                                   [p["pin"] for p in people])):
            person["pin_hash"] = digest
    return people


def store_pins(db, issued: list[dict]) -> None:
    db.conn.executemany("UPDATE staff SET pin_hash = ? WHERE staff_id = ?",
                        [(person["pin_hash"], person["staff_id"]) for person in issued])


def bindings(db, staff_id: str) -> list[dict]:
    return [dict(zip(("device", "bound_at", "node"), row)) for row in db.conn.execute(
        "SELECT device, bound_at, node FROM devices WHERE staff_id = ? ORDER BY bound_at",
        (staff_id,))]


def revoke_binding(db, staff_id: str, device: str) -> None:
    """Unbind ``device`` from ``staff_id``; the roster sent down to the nodes
    follows (``hub.ingest.downlink.roster_document``)."""
    cursor = db.conn.execute("DELETE FROM devices WHERE device = ? AND staff_id = ?",
                             (device, staff_id))
    if cursor.rowcount == 0:
        raise NotFound(N_("%(staff_id)s has no device %(device)s"), staff_id=staff_id,
                       device=device)
