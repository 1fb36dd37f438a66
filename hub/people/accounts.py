"""Who may use the hub: accounts, their roles, passwords, API tokens.

Roles (see docs/roles.md for what each may do):

* ``admin``: everything, including accounts.
* ``office``: the civility office; everything but accounts.
* ``dept_reviewer``: tickets routed to their department and the volunteer
  hours of their department's staff (``department`` is required); the
  record entries of their department's staff at the department review level.
* ``branch_reviewer``: the record entries of their party branch's staff at
  the branch review level (``branch`` is required: the ``staff.branch``).
* ``committee_reviewer``: every record entry at the committee review level.
* ``staff``: their own record only (``staff_id`` is required).

On a group hub an ``office`` account may name a ``campus`` (a site id): it
then sees that campus only on the group's pages.

Office, reviewers and admins sign in with a password (werkzeug's salted
scrypt hash). Staff may also sign in with their staff number and the same PIN
they use on the portal (the roster's scrypt hash); a PIN only ever grants the
``staff`` role. Failed sign-ins are limited per username.
"""

import hashlib
import secrets
from datetime import datetime, timedelta, timezone

from werkzeug.security import check_password_hash, generate_password_hash

from hub.db import delete_batches
from protocol import pins
from protocol.clock import iso

ROLES = ("admin", "office", "dept_reviewer", "branch_reviewer", "committee_reviewer", "staff")
MIN_PASSWORD = 10
LOGIN_WINDOW = timedelta(minutes=15)
LOGIN_MAX_FAILURES = 5
_COLUMNS = ("username", "role", "department", "staff_id", "disabled", "created_at", "branch",
            "campus")


class AccountError(ValueError):
    """A request about accounts that cannot be done, with the reason."""


class Throttled(AccountError):
    pass


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(timezone.utc)


def check_role(role: str, department: str | None, staff_id: str | None,
               branch: str | None = None, campus: str | None = None) -> None:
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if role == "dept_reviewer" and not department:
        raise AccountError("a department reviewer needs a department")
    if role == "branch_reviewer" and not branch:
        raise AccountError("a branch reviewer needs a party branch")
    if role == "staff" and not staff_id:
        raise AccountError("a staff account needs a staff number")
    if campus is not None and role != "office":
        raise AccountError("only an office account is limited to a campus")


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")


def create(db, username: str, role: str, password: str | None = None, *,
           department: str | None = None, staff_id: str | None = None,
           branch: str | None = None, campus: str | None = None,
           now: datetime | None = None) -> dict:
    """Add an account (``password`` None: it cannot sign in with a password
    until one is set)."""
    username = (username or "").strip()
    if not 0 < len(username) <= 64:
        raise AccountError("username must be 1..64 characters")
    check_role(role, department, staff_id, branch, campus)
    if password is not None:
        check_password(password)
    if get(db, username) is not None:
        raise AccountError(f"account {username!r} exists already")
    db.conn.execute(
        "INSERT INTO accounts (username, password_hash, role, department, staff_id, created_at, "
        "branch, campus) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (username, generate_password_hash(password) if password else None, role,
         department, staff_id, iso(_now(now)), branch, campus))
    return get(db, username)


def set_password(db, username: str, password: str) -> None:
    check_password(password)
    cursor = db.conn.execute("UPDATE accounts SET password_hash = ? WHERE username = ?",
                             (generate_password_hash(password), username))
    if cursor.rowcount == 0:
        raise AccountError(f"no account {username!r}")


def set_role(db, username: str, role: str, department: str | None = None,
             staff_id: str | None = None, disabled: bool = False,
             branch: str | None = None, campus: str | None = None) -> None:
    check_role(role, department, staff_id, branch, campus)
    cursor = db.conn.execute(
        "UPDATE accounts SET role = ?, department = ?, staff_id = ?, disabled = ?, branch = ?, "
        "campus = ? WHERE username = ?",
        (role, department, staff_id, int(disabled), branch, campus, username))
    if cursor.rowcount == 0:
        raise AccountError(f"no account {username!r}")


def get(db, username: str) -> dict | None:
    row = db.conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM accounts WHERE username = ?",
                          (username,)).fetchone()
    return dict(zip(_COLUMNS, row)) if row else None


def list_accounts(db) -> list[dict]:
    return [dict(zip(_COLUMNS, row)) for row in db.conn.execute(
        f"SELECT {', '.join(_COLUMNS)} FROM accounts ORDER BY username")]


def staff_account(db, staff_id: str) -> dict | None:
    """The implicit account of a roster member signing in with a PIN."""
    row = db.conn.execute("SELECT staff_id, department FROM staff WHERE staff_id = ?",
                          (staff_id,)).fetchone()
    if row is None:
        return None
    return {"username": row[0], "role": "staff", "department": row[1], "staff_id": row[0],
            "disabled": 0, "created_at": None, "branch": None}


def authenticate(db, username: str, secret: str,
                 now: datetime | None = None) -> tuple[dict, str]:
    """``(account, via)``: the account ``username`` signs in as with
    ``secret``, and how (``password``, or ``pin`` for a staff member's portal
    PIN). Raises Throttled after too many failures and AccountError (one
    message for every cause) when it does not match."""
    now = _now(now)
    since = iso(now - LOGIN_WINDOW)
    failures = db.conn.execute("SELECT COUNT(*) FROM login_failures WHERE username = ? AND at > ?",
                               (username, since)).fetchone()[0]
    if failures >= LOGIN_MAX_FAILURES:
        raise Throttled("too many failed sign-ins; try again in 15 minutes")
    matched = _match(db, username, secret)
    if matched is None:
        db.conn.execute("INSERT INTO login_failures (username, at) VALUES (?, ?)",
                        (username, iso(now)))
        raise AccountError("unknown username or wrong password")
    db.conn.execute("DELETE FROM login_failures WHERE username = ?", (username,))
    return matched


def prune_login_failures(db, before: str, *, batch: int = 500, dry_run: bool = False) -> int:
    """Forget failed sign-ins older than ``before`` (retention: hub/retention.py)."""
    return delete_batches(db, "login_failures", "at < ?", (before,), batch=batch,
                          dry_run=dry_run)


def _match(db, username: str, secret: str) -> tuple[dict, str] | None:
    row = db.conn.execute("SELECT password_hash FROM accounts WHERE username = ? AND disabled = 0",
                          (username,)).fetchone()
    if row is not None and row[0] and check_password_hash(row[0], secret):
        return get(db, username), "password"
    if row is None or not row[0]:
        pin = db.conn.execute("SELECT pin_hash FROM staff WHERE staff_id = ?",
                              (username,)).fetchone()
        if pin and pin[0] and pins.verify_pin(secret, pin[0]):
            return staff_account(db, username), "pin"
    return None


# -- API tokens: for scripts and other systems (``Authorization: Bearer``) ----

def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(db, username: str, name: str, now: datetime | None = None) -> str:
    """A new token for ``username``; only its hash is kept, so show it once."""
    if get(db, username) is None:
        raise AccountError(f"no account {username!r}")
    token = "rnd_" + secrets.token_urlsafe(32)
    db.conn.execute("INSERT INTO api_tokens (token_hash, username, name, created_at) "
                    "VALUES (?, ?, ?, ?)", (_token_hash(token), username, name, iso(_now(now))))
    return token


def account_for_token(db, token: str) -> dict | None:
    row = db.conn.execute(
        "SELECT a.username FROM api_tokens t JOIN accounts a ON a.username = t.username "
        "WHERE t.token_hash = ? AND a.disabled = 0", (_token_hash(token),)).fetchone()
    return get(db, row[0]) if row else None
