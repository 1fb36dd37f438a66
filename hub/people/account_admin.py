"""Accounts as the hub's administrators manage them (dashboard Accounts page,
``/api/v1/accounts``, ``rounds-hub user``): every change checked against the
roster (a reviewer's department exists, a linked staff number is on the
roster, a branch reviewer names a party branch, an office account's campus is
one of the group hub's) and refused with a message
the dashboard can translate (a ``hub.people.roster.RosterError``). The last enabled admin can be neither demoted
nor disabled.

``hub.people.accounts`` below it keeps the accounts themselves: password hashes,
sign-in, API tokens. Functions take a sqlite-utils ``db`` and never commit:
the caller wraps the change and its audit row in one
``hub.db.write_transaction``.
"""

import re

from hub.people import accounts
from hub.people.roster import (BRANCH_MAX, N_, ROLES, Conflict, NotFound, RosterError,
                               department_exists, get_staff, text_problem)

_USERNAME = re.compile(r"[^\s/\x00-\x1f\x7f]{1,64}")


def account_list(db) -> list[dict]:
    """Accounts with whether a password is set; never the hash itself."""
    keys = ("username", "role", "department", "staff_id", "disabled", "created_at",
            "password_set", "branch", "campus")
    rows = db.conn.execute(
        "SELECT username, role, department, staff_id, disabled, created_at, "
        "password_hash IS NOT NULL, branch, campus FROM accounts ORDER BY username")
    return [{**dict(zip(keys, row)), "disabled": bool(row[4]), "password_set": bool(row[6])}
            for row in rows]


def get_account(db, username: str) -> dict | None:
    return next((a for a in account_list(db) if a["username"] == username), None)


def _check_account(db, role: str, department: str | None, staff_id: str | None,
                   branch: str | None = None, campus: str | None = None,
                   campuses=()) -> None:
    if role not in ROLES:
        raise RosterError(N_("unknown role %(value)s (staff, dept_reviewer, branch_reviewer, "
                             "committee_reviewer, office or admin)"), value=role)
    if role == "dept_reviewer" and not department:
        raise RosterError(N_("a department reviewer needs a department"))
    if role == "branch_reviewer" and not branch:
        raise RosterError(N_("a branch reviewer needs a party branch"))
    if branch and text_problem(branch, BRANCH_MAX):
        raise RosterError(N_("a party branch has 1 to %(limit)d characters, without control "
                             "characters"), limit=BRANCH_MAX)
    if department and not department_exists(db, department):
        raise RosterError(N_("unknown department %(value)s (add it under Departments first)"),
                          value=department)
    if role == "staff" and not staff_id:
        raise RosterError(N_("a staff account needs a staff number"))
    if staff_id and get_staff(db, staff_id) is None:
        raise RosterError(N_("unknown staff member %(staff_id)s"), staff_id=staff_id)
    if campus is not None and role != "office":
        raise RosterError(N_("only an office account is limited to a campus"))
    if campus is not None and campus not in campuses:
        raise RosterError(N_("%(value)s is not one of this hub's campuses"), value=campus)


def _check_password(password: str) -> None:
    if len(password) < accounts.MIN_PASSWORD:
        raise RosterError(N_("a password needs at least %(n)d characters"),
                          n=accounts.MIN_PASSWORD)


def create_account(db, username: str, role: str, password: str | None, *,
                   department: str | None = None, staff_id: str | None = None,
                   branch: str | None = None, campus: str | None = None,
                   campuses=()) -> dict:
    """``campus``: the one campus an office account of a group hub sees, one
    of ``campuses`` (the hub config's)."""
    username = (username or "").strip()
    branch = (branch or "").strip() or None
    campus = (campus or "").strip() or None
    if not _USERNAME.fullmatch(username):
        raise RosterError(N_("a username has 1 to 64 characters, without spaces or /"))
    _check_account(db, role, department or None, staff_id or None, branch, campus, campuses)
    if password is not None:
        _check_password(password)
    if accounts.get(db, username) is not None:
        raise Conflict(N_("account %(username)s exists already"), username=username)
    accounts.create(db, username, role, password, department=department or None,
                    staff_id=staff_id or None, branch=branch, campus=campus)
    return get_account(db, username)


def change_account(db, username: str, role: str, *, department: str | None = None,
                   staff_id: str | None = None, disabled: bool = False,
                   branch: str | None = None, campus: str | None = None,
                   campuses=()) -> dict:
    """Change an account's role, department, party branch, staff link,
    campus, or disable it; the last enabled admin cannot be demoted or
    disabled."""
    before = accounts.get(db, username)
    branch = (branch or "").strip() or None
    campus = (campus or "").strip() or None
    if before is None:
        raise NotFound(N_("no account %(username)s"), username=username)
    _check_account(db, role, department or None, staff_id or None, branch, campus, campuses)
    if before["role"] == "admin" and not before["disabled"] and (role != "admin" or disabled):
        others = db.conn.execute("SELECT COUNT(*) FROM accounts WHERE role = 'admin' "
                                 "AND disabled = 0 AND username != ?", (username,)).fetchone()[0]
        if not others:
            raise Conflict(N_("this is the last enabled admin account"))
    accounts.set_role(db, username, role, department or None, staff_id or None, disabled,
                      branch, campus)
    return get_account(db, username)


def set_account_password(db, username: str, password: str) -> None:
    _check_password(password)
    if accounts.get(db, username) is None:
        raise NotFound(N_("no account %(username)s"), username=username)
    accounts.set_password(db, username, password)
