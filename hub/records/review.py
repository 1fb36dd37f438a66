"""The review chain: its levels, who sees and who decides an entry, the
decisions and each reviewer's inbox.

The levels are hub.json's ``"review": {"levels": ["department", "branch",
"committee"], "days_per_level": 7}`` (checked by ``hub.config``; ``DEFAULTS``
without it). At its level an entry is approved (on to the next level, or
``approved`` after the last), rejected with a reason (``rejected``, final)
or sent back with a reason (``returned``; ``entries.resubmit`` starts it
again at level 0). Each level has ``days_per_level`` to decide (``due_at``).

Who **sees** an entry (anyone else: ``NotFound``, as a ticket of another
department is to a reviewer): its owner; the office, admins and committee
reviewers every entry; a department reviewer the entries of their
department's staff; a branch reviewer those of their party branch's staff
(the account's ``branch`` = the person's ``staff.branch``).

Who **decides** (``Forbidden`` for an entry one sees but may not decide): a
department reviewer at a ``department`` level, a branch reviewer at a
``branch`` level, a committee reviewer at a ``committee`` level, an admin at
any; never the office (it reads), never the entry's owner.

``account`` is a dict with ``username``, ``role``, ``department``,
``branch`` and ``staff_id`` (the signed-in account). Functions never commit:
the caller wraps a decision and its audit row in one write transaction.
"""

from datetime import datetime, timezone

from protocol.clock import iso

from hub.records import entries
from hub.records.errors import N_, Conflict, Forbidden, NotFound, RecordError

LEVELS = ("department", "branch", "committee")
LEVEL_ROLES = {"department": "dept_reviewer", "branch": "branch_reviewer",
               "committee": "committee_reviewer"}
ACTIONS = ("approve", "reject", "return")
DEFAULTS = {"levels": list(LEVELS), "days_per_level": entries.DEFAULT_DAYS}
SEE_ALL = ("admin", "office", "committee_reviewer")
REASON_MAX = 1000
INBOX_LIMIT = 500


def level_index(settings: dict, level: int) -> int:
    """The level an entry stands at (one past the configured ones, after the
    hospital shortened its chain, is the last)."""
    return max(0, min(level, len(settings["levels"]) - 1))


def level_name(settings: dict, level: int | None) -> str | None:
    return None if level is None else settings["levels"][level_index(settings, level)]


def decided_levels(account: dict, settings: dict) -> list[int]:
    """The level indexes at which ``account`` decides."""
    levels = settings["levels"]
    if account.get("role") == "admin":
        return list(range(len(levels)))
    return [i for i, name in enumerate(levels) if LEVEL_ROLES[name] == account.get("role")]


def _scope(account: dict) -> tuple[str, list]:
    """The SQL condition on ``staff_id`` for the entries a reviewer sees as a
    reviewer (not counting their own)."""
    role = account.get("role")
    if role in SEE_ALL:
        return "1 = 1", []
    if role == "dept_reviewer" and account.get("department"):
        return "staff_id IN (SELECT staff_id FROM staff WHERE department = ?)", \
            [account["department"]]
    if role == "branch_reviewer" and account.get("branch"):
        return "staff_id IN (SELECT staff_id FROM staff WHERE branch = ?)", [account["branch"]]
    return "1 = 0", []


def _visible(account: dict) -> tuple[str, list]:
    where, params = _scope(account)
    if account.get("staff_id"):
        return f"({where} OR staff_id = ?)", [*params, account["staff_id"]]
    return where, params


def visible_entry(db, account: dict, entry_id: int) -> dict:
    """The entry, if ``account`` may see it; NotFound otherwise."""
    where, params = _visible(account)
    found = entries.select(db, f"id = ? AND {where}", [entry_id, *params], limit=1)
    if not found:
        raise NotFound(N_("Unknown entry %(id)s."), id=entry_id)
    return found[0]


def staff_visible(db, account: dict, staff_id: str) -> bool:
    """Whether ``account`` sees ``staff_id``'s entries (and the person is on
    the roster)."""
    where, params = _visible(account)
    return db.conn.execute(f"SELECT 1 FROM staff WHERE staff_id = ? AND {where}",
                           (staff_id, *params)).fetchone() is not None


def refusal(account: dict, entry: dict, settings: dict) -> RecordError | None:
    """Why ``account`` may not decide ``entry`` now (one it sees), or None."""
    if entry["state"] != "pending":
        return Conflict(N_("This entry is no longer waiting for a decision."))
    if account.get("staff_id") and account["staff_id"] == entry["staff_id"]:
        return Forbidden(N_("Nobody decides on their own entry."))
    if level_index(settings, entry["level"]) not in decided_levels(account, settings):
        return Forbidden(N_("This entry waits at a review level you do not decide."))
    return None


def decide(db, entry_id: int, account: dict, action: str, reason: str = "", *,
           now: datetime | None = None, settings: dict | None = None) -> dict:
    """Approve, reject or send back (``return``) the entry at its level; the
    entry after. RecordError for a bad action or a missing reason, then
    NotFound, Forbidden or Conflict (see the module docstring)."""
    settings = settings or DEFAULTS
    now = now or datetime.now(timezone.utc)
    if action not in ACTIONS:
        raise RecordError(N_("Choose approve, reject or send back."))
    reason = reason.strip() if isinstance(reason, str) else ""
    if action != "approve" and not reason:
        raise RecordError(N_("Give the reason for rejecting or sending back the entry."))
    if len(reason) > REASON_MAX:
        raise RecordError(N_("A reason has at most %(n)d characters."), n=REASON_MAX)
    entry = visible_entry(db, account, entry_id)
    problem = refusal(account, entry, settings)
    if problem:
        raise problem
    index = level_index(settings, entry["level"])
    state, level, due_at = {"reject": "rejected", "return": "returned"}.get(action), index, None
    if action == "approve":
        if index + 1 < len(settings["levels"]):
            state, level = "pending", index + 1
            due_at = entries.due(now, settings["days_per_level"])
        else:
            state = "approved"
    at = iso(now)
    cursor = db.conn.execute(
        "UPDATE record_entries SET state = ?, level = ?, due_at = ?, updated_at = ? "
        "WHERE id = ? AND state = 'pending' AND level = ?",
        (state, level, due_at, at, entry_id, entry["level"]))
    if not cursor.rowcount:
        raise Conflict(N_("This entry is no longer waiting for a decision."))
    entries.add_step(db, entry_id, index, account["username"], action, reason, at)
    return entries.get_entry(db, entry_id)


def shown(entry: dict, settings: dict, now: datetime) -> dict:
    """The entry with ``level_name`` (where it stands, or stood when decided)
    and ``overdue`` (pending past its ``due_at``)."""
    overdue = entry["state"] == "pending" and bool(entry["due_at"]) and entry["due_at"] < iso(now)
    return {**entry, "level_name": level_name(settings, entry["level"]), "overdue": overdue}


def history(db, entry_id: int, settings: dict) -> list[dict]:
    """``entries.history`` with each step's ``level_name``."""
    return [{**step, "level_name": level_name(settings, step["level"])}
            for step in entries.history(db, entry_id)]


def inbox(db, account: dict, settings: dict | None = None, now: datetime | None = None,
          limit: int = INBOX_LIMIT) -> dict:
    """What waits for ``account``: ``levels`` (per level: ``level``, ``name``,
    ``pending`` and ``overdue`` counts of the entries it sees, ``decides``)
    and ``entries``, the pending ones at the levels it decides (the office:
    at every level, to read), most urgent first, without its own."""
    settings = settings or DEFAULTS
    now = now or datetime.now(timezone.utc)
    last = len(settings["levels"]) - 1
    decides = decided_levels(account, settings)
    listed = decides if account.get("role") != "office" else list(range(last + 1))
    where, params = _scope(account)
    counts = {index: (pending, overdue) for index, pending, overdue in db.conn.execute(
        f"SELECT max(0, min(level, ?)), count(*), coalesce(sum(due_at < ?), 0) "
        f"FROM record_entries WHERE state = 'pending' AND {where} GROUP BY 1",
        (last, iso(now), *params))}
    levels = [{"level": i, "name": name, "pending": counts.get(i, (0, 0))[0],
               "overdue": counts.get(i, (0, 0))[1], "decides": i in decides}
              for i, name in enumerate(settings["levels"])]
    found = []
    if listed:
        condition = (f"state = 'pending' AND {where} AND max(0, min(level, ?)) "
                     f"IN ({', '.join('?' * len(listed))}) AND staff_id != ?")
        found = entries.select(db, condition, [*params, last, *listed,
                                               account.get("staff_id") or ""],
                               order="due_at, id", limit=limit)
    return {"levels": levels, "entries": [shown(e, settings, now) for e in found]}


def of_staff(db, account: dict, staff_id: str, settings: dict | None = None,
             now: datetime | None = None) -> list[dict]:
    """A person's entries as ``account`` may read them; NotFound when it may not."""
    if not staff_visible(db, account, staff_id):
        raise NotFound(N_("Unknown staff member %(staff_id)s."), staff_id=staff_id)
    settings = settings or DEFAULTS
    now = now or datetime.now(timezone.utc)
    return [shown(e, settings, now) for e in entries.of_staff(db, staff_id)]
