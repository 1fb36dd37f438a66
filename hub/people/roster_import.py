"""The roster import: a CSV file of people, checked row by row, previewed, and
applied all or nothing (see ``hub.people.roster`` for departments, people and PINs).

The file (UTF-8 with or without BOM; GB18030 as Excel saves it in Chinese
Windows is accepted too) has the columns ``staff_number``, ``name``,
``department``, ``role`` (headers in any case, or 工号, 姓名, 科室, 角色;
``role`` may be left out or empty for ``staff``) and optionally ``branch``
(党支部: the person's party branch, by name; an empty cell clears it, a file
without the column leaves everyone's branch as it is). A row's department may be
written as the department's id or its name (any case); a department the hub
does not know is an error. Any row error (with its line number) and nothing
is written. The import upserts ``staff`` rows (never touching an existing PIN
hash, never deleting people missing from the file) and keeps each person's
account in step with their role:

* a role above ``staff`` ensures an account named after the staff number,
  linked to them (``staff_id``), with no password until one is set;
* back to ``staff``, such a linked account is demoted to ``staff``;
* a branch reviewer's account reviews the person's own party branch (the
  row's ``branch``, or the one the roster has), which it needs.

An account of the same name that is not linked to the person is never
touched (the row is an error), only an admin may grant or take away the
admin role, and nothing may leave the hub without an enabled admin.

Editing one person on the dashboard (``update_person``) is a one-row import:
the same checks, the same account handling.

Functions take a sqlite-utils ``db`` and never commit: the caller wraps the
change and its audit row in one ``hub.db.write_transaction``.
"""

import csv
import io
import re
from dataclasses import dataclass, field

from hub.people import accounts
from hub.people.roster import (BRANCH_MAX, NAME_MAX, N_, NotFound, RosterError, get_staff,
                               text_problem)

MAX_IMPORT_BYTES = 2 * 1024 * 1024
MAX_IMPORT_ROWS = 20_000
_STAFF_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")

# CSV header (normalised: trimmed, lower case, spaces and dashes as "_") ->
# the roster field it fills.
HEADERS = {
    "staff_number": "staff_id", "staff_no": "staff_id", "staff_id": "staff_id",
    "number": "staff_id", "工号": "staff_id", "职工号": "staff_id", "员工编号": "staff_id",
    "name": "name", "姓名": "name",
    "department": "department", "dept": "department", "科室": "department", "部门": "department",
    "role": "role", "角色": "role",
    "branch": "branch", "party_branch": "branch", "党支部": "branch", "支部": "branch",
}
# Each roster field as its CSV column is named in row errors.
COLUMNS = {"staff_id": "staff_number", "name": "name", "department": "department",
           "role": "role", "branch": "branch"}
_ROLE_WORDS = {
    "": "staff", "staff": "staff", "员工": "staff", "职工": "staff",
    "dept_reviewer": "dept_reviewer", "reviewer": "dept_reviewer",
    "科室审核员": "dept_reviewer", "审核员": "dept_reviewer",
    "branch_reviewer": "branch_reviewer", "支部审核员": "branch_reviewer",
    "党支部审核员": "branch_reviewer",
    "committee_reviewer": "committee_reviewer", "委员会审核员": "committee_reviewer",
    "文明委审核员": "committee_reviewer",
    "office": "office", "文明办": "office", "admin": "admin", "管理员": "admin",
}
_FIELDS = ("name", "department", "role", "branch")


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
        public = ("line", "staff_id", "name", "department", "role", "branch", "action",
                  "changes", "account")
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


def update_person(db, staff_id: str, name: str, department: str, role: str, *,
                  may_grant_admin: bool, branch: str | None = None) -> dict:
    """Change one person's name, department, role and (unless ``branch`` is
    None; "" clears it) party branch, and their account, as the import does.
    Raises NotFound, or RosterError with the first problem."""
    if get_staff(db, staff_id) is None:
        raise NotFound(N_("unknown staff member %(staff_id)s"), staff_id=staff_id)
    record = {"staff_id": staff_id, "name": name, "department": department, "role": role}
    if branch is not None:
        record["branch"] = branch
    result = _plan(db, [(None, record)], may_grant_admin)
    if result.issues:
        issue = result.issues[0]
        raise RosterError(issue.message, **issue.params)
    _apply(db, result.rows)
    return result.rows[0]


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


def _plan(db, records: list[tuple[int | None, dict]], may_grant_admin: bool) -> ImportResult:
    lookup = _Departments(db)
    existing = {row[0]: dict(zip(_FIELDS, row[1:])) for row in db.conn.execute(
        "SELECT staff_id, name, department, role, branch FROM staff")}
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
                       role=row["role"] or record.get("role", ""),
                       branch=row["branch"] or record.get("branch") or None)
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
    name_problem = text_problem(name, NAME_MAX)
    if name_problem:
        problem("name", name_problem, limit=NAME_MAX)
    department = None
    if not department_value:
        problem("department", N_("required, but empty"))
    else:
        department, unknown = lookup.resolve(department_value)
        if unknown:
            problem("department", unknown[0], **unknown[1])
    role = _ROLE_WORDS.get(role_value.strip().casefold())
    if role is None:
        problem("role", N_("unknown role %(value)s (staff, dept_reviewer, branch_reviewer, "
                           "committee_reviewer, office or admin)"), value=role_value)
    before = existing.get(staff_id)
    branch = _branch(record, before, problem)
    if role == "branch_reviewer" and not branch:
        problem("branch", N_("a branch reviewer needs a party branch"))
    row = {"line": line, "staff_id": staff_id, "name": name, "department": department,
           "role": role, "branch": branch, "action": "new", "changes": [], "account": None}
    if before is not None:
        row["action"] = "unchanged"
        row["changes"] = [key for key in _FIELDS if before[key] != row[key]
                          and (row[key] is not None or key == "branch")]
    account = by_name.get(staff_id)
    if account is not None and account["staff_id"] != staff_id:
        problem("staff_number", N_("an account named %(username)s exists that is not this "
                                   "person's (link it on the Accounts page first)"),
                username=staff_id)
    elif role is not None and department is not None:
        row["account"] = _account_action(account, role, department, _account_branch(row))
        touches_admin = role == "admin" or (account is not None and account["role"] == "admin")
        if row["account"] and touches_admin and not may_grant_admin:
            problem("role", N_("only an admin may grant or take away the admin role"))
    if row["action"] == "unchanged" and (row["changes"] or row["account"]):
        row["action"] = "update"
    return row, problems


def _branch(record: dict, before: dict | None, problem) -> str | None:
    """The row's party branch: the file's (empty: none), else the roster's."""
    if "branch" not in record:
        return before["branch"] if before else None
    branch = record["branch"].strip() or None
    if branch is not None and text_problem(branch, BRANCH_MAX):
        problem("branch", text_problem(branch, BRANCH_MAX), limit=BRANCH_MAX)
    return branch


def _account_branch(row: dict) -> str | None:
    """A linked account's party branch: a branch reviewer's is their own."""
    return row["branch"] if row["role"] == "branch_reviewer" else None


def _account_action(account: dict | None, role: str, department: str,
                    branch: str | None) -> str | None:
    if account is None:
        return None if role == "staff" else "create"
    if (account["role"], account["department"], account["branch"]) != (role, department, branch):
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
        values = (row["name"], row["department"], row["role"], row["branch"], row["staff_id"])
        if row["action"] == "new":
            db.conn.execute("INSERT INTO staff (name, department, role, branch, staff_id) "
                            "VALUES (?, ?, ?, ?, ?)", values)
        elif row["changes"]:
            db.conn.execute("UPDATE staff SET name = ?, department = ?, role = ?, branch = ? "
                            "WHERE staff_id = ?", values)
        if row["account"] == "create":
            accounts.create(db, row["staff_id"], row["role"], None,
                            department=row["department"], staff_id=row["staff_id"],
                            branch=_account_branch(row))
        elif row["account"] == "update":
            current = accounts.get(db, row["staff_id"])
            accounts.set_role(db, row["staff_id"], row["role"], row["department"],
                              row["staff_id"], disabled=bool(current["disabled"]),
                              branch=_account_branch(row))
