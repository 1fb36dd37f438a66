"""The staff roster: departments, people, their PINs and phone bindings, the
CSV roster import, and the accounts the hub's administrators manage.

Departments come first: a roster row naming an unknown department is an
error, so departments are added one by one (dashboard "Departments" page,
``POST /api/v1/departments``, ``rounds-hub roster add-department``). A row's
department may be written as the department's id or its name (any case).

Roster import (CSV, UTF-8 with or without BOM; GB18030 as Excel saves it in
Chinese Windows is accepted too) has the columns ``staff_number``, ``name``,
``department``, ``role`` (headers in any case, or 工号, 姓名, 科室, 角色; ``role``
may be left out or empty for ``staff``). It is all or nothing: any row error
(with its line number) and nothing is written. It upserts ``staff`` rows
(never touching an existing PIN hash, never deleting people missing from the
file) and keeps each person's account in step with their role:

* a role above ``staff`` ensures an account named after the staff number,
  linked to them (``staff_id``), with no password until one is set;
* back to ``staff``, such a linked account is demoted to ``staff``.

An account of the same name that is not linked to the person is never
touched (the row is an error), only an admin may grant or take away the
admin role, and nothing may leave the hub without an enabled admin.

PINs are six random digits from ``secrets``; only the scrypt hash
(``protocol.pins``) is stored, the PIN itself is returned once to be shown.

Functions take a sqlite-utils ``db`` and never commit: the caller wraps the
change and its audit row in one ``hub.db.write_transaction``. Messages are
English templates marked with ``N_`` (extracted for translation) and their
parameters, so the dashboard can show them in the reader's language.
"""

import csv
import io
import os
import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from protocol import pins

from . import accounts

ROLES = ("staff", "dept_reviewer", "office", "admin")
NAME_MAX = 100
DEPARTMENT_MAX = 64
PIN_DIGITS = 6
MAX_IMPORT_BYTES = 2 * 1024 * 1024
MAX_IMPORT_ROWS = 20_000
LIST_LIMIT = 1000
_STAFF_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_USERNAME = re.compile(r"[^\s/\x00-\x1f\x7f]{1,64}")

# CSV header (normalised: trimmed, lower case, spaces and dashes as "_") ->
# the roster field it fills.
HEADERS = {
    "staff_number": "staff_id", "staff_no": "staff_id", "staff_id": "staff_id",
    "number": "staff_id", "工号": "staff_id", "职工号": "staff_id", "员工编号": "staff_id",
    "name": "name", "姓名": "name",
    "department": "department", "dept": "department", "科室": "department", "部门": "department",
    "role": "role", "角色": "role",
}
# Each roster field as its CSV column is named in row errors.
COLUMNS = {"staff_id": "staff_number", "name": "name", "department": "department",
           "role": "role"}
_ROLE_WORDS = {
    "": "staff", "staff": "staff", "员工": "staff", "职工": "staff",
    "dept_reviewer": "dept_reviewer", "reviewer": "dept_reviewer",
    "科室审核员": "dept_reviewer", "审核员": "dept_reviewer",
    "office": "office", "文明办": "office", "admin": "admin", "管理员": "admin",
}


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


@dataclass(frozen=True)
class Issue:
    """One problem of an import: ``line`` of the file (None: the whole file),
    the CSV ``field`` (None: the whole row or file), and why."""

    line: int | None
    field: str | None
    message: str
    params: dict = field(default_factory=dict)

    @property
    def reason(self) -> str:
        return self.message % self.params if self.params else self.message

    def as_dict(self) -> dict:
        return {"line": self.line, "field": self.field, "reason": self.reason}


# -- departments ---------------------------------------------------------------

def departments(db) -> list[dict]:
    """Every department with the number of people on the roster in it."""
    return [dict(zip(("department", "name", "staff"), row)) for row in db.conn.execute(
        "SELECT d.department, d.name, (SELECT COUNT(*) FROM staff s "
        "WHERE s.department = d.department) FROM departments d ORDER BY d.department")]


def add_department(db, department: str, name: str) -> dict:
    department, name = (department or "").strip(), (name or "").strip()
    if _text_problem(department, DEPARTMENT_MAX):
        raise RosterError(N_("a department id has 1 to %(limit)d characters, without control "
                             "characters"), limit=DEPARTMENT_MAX)
    if _text_problem(name, NAME_MAX):
        raise RosterError(N_("a department name has 1 to %(limit)d characters, without "
                             "control characters"), limit=NAME_MAX)
    if db.conn.execute("SELECT 1 FROM departments WHERE department = ?",
                       (department,)).fetchone():
        raise Conflict(N_("department %(department)s exists already"), department=department)
    db.conn.execute("INSERT INTO departments (department, name) VALUES (?, ?)",
                    (department, name))
    return {"department": department, "name": name, "staff": 0}


def department_exists(db, department: str) -> bool:
    return db.conn.execute("SELECT 1 FROM departments WHERE department = ?",
                           (department,)).fetchone() is not None


class _Departments:
    """Resolves what a roster row writes as its department: the id, or the
    id or name in any case."""

    def __init__(self, db):
        self.ids, self.folded, self.names, self.ambiguous = set(), {}, {}, set()
        for department, name in db.conn.execute("SELECT department, name FROM departments"):
            self.ids.add(department)
            self.folded[department.casefold()] = department
            key = name.casefold()
            if key in self.names and self.names[key] != department:
                self.ambiguous.add(key)
            self.names[key] = department

    def resolve(self, value: str) -> tuple[str | None, tuple | None]:
        """``(department, None)`` or ``(None, (message, params))``."""
        if value in self.ids:
            return value, None
        key = value.casefold()
        if key in self.folded:
            return self.folded[key], None
        if key in self.ambiguous:
            return None, (N_("%(value)s is the name of several departments; write its id"),
                          {"value": value})
        if key in self.names:
            return self.names[key], None
        return None, (N_("unknown department %(value)s (add it under Departments first)"),
                      {"value": value})


# -- people --------------------------------------------------------------------

_STAFF_SELECT = (
    "SELECT s.staff_id, s.name, s.department, d.name, s.role, s.pin_hash IS NOT NULL, "
    "(SELECT COUNT(*) FROM devices v WHERE v.staff_id = s.staff_id) "
    "FROM staff s LEFT JOIN departments d ON d.department = s.department")
_STAFF_KEYS = ("staff_id", "name", "department", "department_name", "role", "pin_set", "devices")


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
        where.append("(s.staff_id LIKE ? ESCAPE '\\' OR s.name LIKE ? ESCAPE '\\')")
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


def linked_account(db, staff_id: str) -> dict | None:
    row = db.conn.execute(
        "SELECT username, role, disabled, password_hash IS NOT NULL FROM accounts "
        "WHERE staff_id = ? ORDER BY username = ? DESC, username LIMIT 1",
        (staff_id, staff_id)).fetchone()
    if row is None:
        return None
    return {"username": row[0], "role": row[1], "disabled": bool(row[2]),
            "password_set": bool(row[3])}


def update_person(db, staff_id: str, name: str, department: str, role: str, *,
                  may_grant_admin: bool) -> dict:
    """Change one person's name, department and role (and their account, as
    the import does). Raises NotFound, or RosterError with the first problem."""
    if get_staff(db, staff_id) is None:
        raise NotFound(N_("unknown staff member %(staff_id)s"), staff_id=staff_id)
    record = {"staff_id": staff_id, "name": name, "department": department, "role": role}
    result = _plan(db, [(None, record)], may_grant_admin)
    if result.issues:
        issue = result.issues[0]
        raise RosterError(issue.message, **issue.params)
    _apply(db, result.rows)
    return result.rows[0]


# -- roster import ---------------------------------------------------------------

@dataclass
class ImportResult:
    """What an import does (or would do) to each row, and every problem."""

    rows: list[dict]
    issues: list[Issue]
    applied: bool = False

    @property
    def counts(self) -> dict:
        counts = {"rows": len(self.rows), "new": 0, "update": 0, "unchanged": 0, "invalid": 0,
                  "errors": len(self.issues)}
        for row in self.rows:
            counts[row["action"]] += 1
        return counts

    def as_dict(self) -> dict:
        public = ("line", "staff_id", "name", "department", "role", "action", "changes",
                  "account")
        return {"rows": [{key: row[key] for key in public} for row in self.rows],
                "errors": [issue.as_dict() for issue in self.issues],
                "applied": self.applied, "counts": self.counts}


class _FileProblem(Exception):
    def __init__(self, issue: Issue):
        self.issue = issue


def decode_csv(data: bytes) -> str:
    """The text of an uploaded file: UTF-8 (BOM or not), else GB18030."""
    if len(data) > MAX_IMPORT_BYTES:
        raise RosterError(N_("the file is larger than %(limit)d MB"),
                          limit=MAX_IMPORT_BYTES // 2**20)
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise RosterError(N_("the file is not UTF-8 text"))


def import_roster(db, data: bytes | str, *, apply: bool, may_grant_admin: bool) -> ImportResult:
    """Plan the import of the CSV ``data`` and, when ``apply`` and no row has
    a problem, write it (in the caller's transaction)."""
    try:
        text = decode_csv(data) if isinstance(data, bytes) else data.removeprefix("\ufeff")
        records = _read_csv(text)
    except RosterError as exc:
        return ImportResult([], [Issue(None, None, exc.message, exc.params)])
    except _FileProblem as problem:
        return ImportResult([], [problem.issue])
    result = _plan(db, records, may_grant_admin)
    if apply and not result.issues:
        _apply(db, result.rows)
        result.applied = True
    return result


def _read_csv(text: str) -> list[tuple[int, dict]]:
    """``[(line, {field: value})]`` of the data rows; blank rows are skipped."""
    if len(text.encode()) > MAX_IMPORT_BYTES:
        raise _FileProblem(Issue(None, None, N_("the file is larger than %(limit)d MB"),
                                 {"limit": MAX_IMPORT_BYTES // 2**20}))
    reader = csv.reader(io.StringIO(text, newline=""))
    header, positions, records = None, {}, []
    try:
        while True:
            line = reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                break
            if not any(cell.strip() for cell in cells):
                continue
            if header is None:
                header = cells
                positions = _columns(line, cells)
                continue
            if len(records) >= MAX_IMPORT_ROWS:
                raise _FileProblem(Issue(line, None, N_("more than %(limit)d rows"),
                                         {"limit": MAX_IMPORT_ROWS}))
            records.append((line, {name: cells[i].strip() if i < len(cells) else ""
                                   for name, i in positions.items()}))
    except csv.Error as exc:
        raise _FileProblem(Issue(reader.line_num, None, N_("not a readable CSV file: %(error)s"),
                                 {"error": str(exc)})) from None
    if header is None:
        raise _FileProblem(Issue(None, None, N_("the file is empty")))
    return records


def _columns(line: int, header: list[str]) -> dict[str, int]:
    positions = {}
    for i, cell in enumerate(header):
        key = re.sub(r"[\s-]+", "_", cell.strip().casefold())
        name = HEADERS.get(key)
        if name is None:
            continue  # columns the roster does not keep are ignored
        if name in positions:
            raise _FileProblem(Issue(line, COLUMNS[name], N_("column %(column)s appears twice"),
                                     {"column": cell.strip()}))
        positions[name] = i
    for name in ("staff_id", "name", "department"):
        if name not in positions:
            raise _FileProblem(Issue(
                line, COLUMNS[name],
                N_("no %(column)s column (the header needs staff_number, name, department "
                   "and optionally role)"), {"column": COLUMNS[name]}))
    return positions


def _plan(db, records: list[tuple[int | None, dict]], may_grant_admin: bool) -> ImportResult:
    lookup = _Departments(db)
    existing = {row[0]: row[1:] for row in db.conn.execute(
        "SELECT staff_id, name, department, role FROM staff")}
    by_name = {account["username"]: account for account in accounts.list_accounts(db)}
    first_line: dict[str, int | None] = {}
    rows, issues = [], []
    for line, record in records:
        row, problems = _plan_row(line, record, lookup, existing, by_name, may_grant_admin)
        staff_id = row["staff_id"]
        if staff_id in first_line:
            problems.append(Issue(line, "staff_number",
                                  N_("duplicate staff number (first on line %(first)s)"),
                                  {"first": first_line[staff_id]}))
        elif staff_id:
            first_line[staff_id] = line
        if problems:
            # An invalid row is shown as written in the file.
            row.update(action="invalid", account=None, changes=[],
                       department=row["department"] or record.get("department", ""),
                       role=row["role"] or record.get("role", ""))
        rows.append(row)
        issues += problems
    issues += _admin_issues(rows, by_name)
    return ImportResult(rows, issues)


def _plan_row(line, record, lookup, existing, by_name, may_grant_admin):
    staff_id, name = record.get("staff_id", ""), record.get("name", "")
    department_value, role_value = record.get("department", ""), record.get("role", "")
    problems = []

    def problem(column, message, **params):
        problems.append(Issue(line, column, message, params))

    if not staff_id:
        problem("staff_number", N_("required, but empty"))
    elif not _STAFF_ID.fullmatch(staff_id):
        problem("staff_number", N_("not a staff number (letters, digits, dot, dash or "
                                   "underscore, at most 32)"))
    text_problem = _text_problem(name, NAME_MAX)
    if text_problem:
        problem("name", text_problem, limit=NAME_MAX)
    department = None
    if not department_value:
        problem("department", N_("required, but empty"))
    else:
        department, unknown = lookup.resolve(department_value)
        if unknown:
            problem("department", unknown[0], **unknown[1])
    role = _ROLE_WORDS.get(role_value.strip().casefold())
    if role is None:
        problem("role", N_("unknown role %(value)s (staff, dept_reviewer, office or admin)"),
                value=role_value)
    row = {"line": line, "staff_id": staff_id, "name": name, "department": department,
           "role": role, "action": "new", "changes": [], "account": None}
    if staff_id in existing:
        row["action"] = "unchanged"
        before = dict(zip(("name", "department", "role"), existing[staff_id]))
        row["changes"] = [key for key in ("name", "department", "role")
                          if row[key] is not None and before[key] != row[key]]
    account = by_name.get(staff_id)
    if account is not None and account["staff_id"] != staff_id:
        problem("staff_number", N_("an account named %(username)s exists that is not this "
                                   "person's (link it on the Accounts page first)"),
                username=staff_id)
    elif role is not None and department is not None:
        row["account"] = _account_action(account, role, department)
        touches_admin = role == "admin" or (account is not None and account["role"] == "admin")
        if row["account"] and touches_admin and not may_grant_admin:
            problem("role", N_("only an admin may grant or take away the admin role"))
    if row["action"] == "unchanged" and (row["changes"] or row["account"]):
        row["action"] = "update"
    return row, problems


def _account_action(account: dict | None, role: str, department: str) -> str | None:
    if account is None:
        return None if role == "staff" else "create"
    if (account["role"], account["department"]) != (role, department):
        return "update"
    return None


def _admin_issues(rows: list[dict], by_name: dict) -> list[Issue]:
    """A row taking the admin role from the last enabled admin is an error."""
    demoted = {row["staff_id"]: row for row in rows
               if row["account"] == "update" and row["role"] != "admin"
               and by_name[row["staff_id"]]["role"] == "admin"}
    if not demoted:
        return []
    remaining = [name for name, account in by_name.items()
                 if account["role"] == "admin" and not account["disabled"]
                 and name not in demoted]
    if remaining:
        return []
    for row in demoted.values():
        row["action"], row["account"] = "invalid", None
    return [Issue(row["line"], "role", N_("would leave the hub without an enabled admin"))
            for row in demoted.values()]


def _apply(db, rows: list[dict]) -> None:
    for row in rows:
        values = (row["name"], row["department"], row["role"], row["staff_id"])
        if row["action"] == "new":
            db.conn.execute("INSERT INTO staff (name, department, role, staff_id) "
                            "VALUES (?, ?, ?, ?)", values)
        elif row["changes"]:
            db.conn.execute("UPDATE staff SET name = ?, department = ?, role = ? "
                            "WHERE staff_id = ?", values)
        if row["account"] == "create":
            accounts.create(db, row["staff_id"], row["role"], None,
                            department=row["department"], staff_id=row["staff_id"])
        elif row["account"] == "update":
            current = accounts.get(db, row["staff_id"])
            accounts.set_role(db, row["staff_id"], row["role"], row["department"],
                              row["staff_id"], disabled=bool(current["disabled"]))


def _text_problem(value: str, limit: int) -> str | None:
    if not value:
        return N_("required, but empty")
    if len(value) > limit:
        return N_("longer than %(limit)d characters")
    if _CONTROL.search(value):
        return N_("contains control characters")
    return None


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
    follows (``hub.downlink.roster_document``)."""
    cursor = db.conn.execute("DELETE FROM devices WHERE device = ? AND staff_id = ?",
                             (device, staff_id))
    if cursor.rowcount == 0:
        raise NotFound(N_("%(staff_id)s has no device %(device)s"), staff_id=staff_id,
                       device=device)


# -- accounts (admin) ------------------------------------------------------------

def account_list(db) -> list[dict]:
    """Accounts with whether a password is set; never the hash itself."""
    keys = ("username", "role", "department", "staff_id", "disabled", "created_at",
            "password_set")
    rows = db.conn.execute(
        "SELECT username, role, department, staff_id, disabled, created_at, "
        "password_hash IS NOT NULL FROM accounts ORDER BY username")
    return [{**dict(zip(keys, row)), "disabled": bool(row[4]), "password_set": bool(row[6])}
            for row in rows]


def get_account(db, username: str) -> dict | None:
    return next((a for a in account_list(db) if a["username"] == username), None)


def _check_account(db, role: str, department: str | None, staff_id: str | None) -> None:
    if role not in ROLES:
        raise RosterError(N_("unknown role %(value)s (staff, dept_reviewer, office or admin)"),
                          value=role)
    if role == "dept_reviewer" and not department:
        raise RosterError(N_("a department reviewer needs a department"))
    if department and not department_exists(db, department):
        raise RosterError(N_("unknown department %(value)s (add it under Departments first)"),
                          value=department)
    if role == "staff" and not staff_id:
        raise RosterError(N_("a staff account needs a staff number"))
    if staff_id and get_staff(db, staff_id) is None:
        raise RosterError(N_("unknown staff member %(staff_id)s"), staff_id=staff_id)


def _check_password(password: str) -> None:
    if len(password) < accounts.MIN_PASSWORD:
        raise RosterError(N_("a password needs at least %(n)d characters"),
                          n=accounts.MIN_PASSWORD)


def create_account(db, username: str, role: str, password: str | None, *,
                   department: str | None = None, staff_id: str | None = None) -> dict:
    username = (username or "").strip()
    if not _USERNAME.fullmatch(username):
        raise RosterError(N_("a username has 1 to 64 characters, without spaces or /"))
    _check_account(db, role, department or None, staff_id or None)
    if password is not None:
        _check_password(password)
    if accounts.get(db, username) is not None:
        raise Conflict(N_("account %(username)s exists already"), username=username)
    accounts.create(db, username, role, password, department=department or None,
                    staff_id=staff_id or None)
    return get_account(db, username)


def change_account(db, username: str, role: str, *, department: str | None = None,
                   staff_id: str | None = None, disabled: bool = False) -> dict:
    """Change an account's role, department, staff link, or disable it; the
    last enabled admin cannot be demoted or disabled."""
    before = accounts.get(db, username)
    if before is None:
        raise NotFound(N_("no account %(username)s"), username=username)
    _check_account(db, role, department or None, staff_id or None)
    if before["role"] == "admin" and not before["disabled"] and (role != "admin" or disabled):
        others = db.conn.execute("SELECT COUNT(*) FROM accounts WHERE role = 'admin' "
                                 "AND NOT disabled AND username != ?", (username,)).fetchone()[0]
        if not others:
            raise Conflict(N_("this is the last enabled admin account"))
    accounts.set_role(db, username, role, department or None, staff_id or None, disabled)
    return get_account(db, username)


def set_account_password(db, username: str, password: str) -> None:
    _check_password(password)
    if accounts.get(db, username) is None:
        raise NotFound(N_("no account %(username)s"), username=username)
    accounts.set_password(db, username, password)
