"""Record entries: what a person files about themselves (``source`` 'self')
and what the hub files for them (``source`` 'system', ``hub.records.system``),
each with its whole history in ``entry_reviews``.

An entry is ``pending`` at a review ``level`` (0 = the first) with a
``due_at``, until a level rejects it (``rejected``, final), sends it back
(``returned``: the owner edits it and resubmits, and it starts again at
level 0) or the last level approves it (``approved``). The decisions are
``hub.records.review``'s; filing and resubmitting are here.

``occurred_on`` is the local day (YYYY-MM-DD) the entry is about. Functions
take a sqlite-utils ``db`` and never commit: the caller wraps the change and
its audit row in one ``hub.db.write_transaction``.
"""

import re
from datetime import date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

from protocol.clock import iso

from hub.records.errors import N_, Conflict, NotFound, RecordError

# What a person files about themselves (好人好事, 患者感谢信, 投诉, 学习心得, 院外志愿服务)
SELF_KINDS = ("good_deed", "thanks_letter", "complaint", "study_reflection", "volunteering")
# What the hub files for them (hub.records.system)
SYSTEM_KINDS = ("attendance", "volunteer_hours", "report")
KINDS = SELF_KINDS + SYSTEM_KINDS
STATES = ("pending", "approved", "rejected", "returned")
SYSTEM = "system"  # who filed a system entry, in its history
TITLE_MAX, BODY_MAX = 200, 5000
DEFAULT_DAYS = 7  # per review level, unless hub.json says otherwise
HOSPITAL_TZ = ZoneInfo("Asia/Shanghai")  # the hub's default (hub/web: TIMEZONE)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # tabs and newlines are text
COLUMNS = ("id", "staff_id", "kind", "title", "body", "occurred_on", "source", "source_ref",
           "state", "level", "due_at", "created_at", "updated_at")
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM record_entries"
_REVIEW_COLUMNS = ("id", "level", "who", "action", "reason", "at")


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(timezone.utc)


def due(now: datetime, days: int) -> str:
    return iso(now + timedelta(days=days))


def check_text(title, body, occurred_on, now: datetime, tz: tzinfo) -> tuple[str, str, str]:
    """``(title, body, occurred_on)`` cleaned; RecordError with the first problem."""
    title = title.strip() if isinstance(title, str) else ""
    body = body.strip() if isinstance(body, str) else ""
    if not title:
        raise RecordError(N_("The entry needs a title."))
    if len(title) > TITLE_MAX or len(body) > BODY_MAX:
        raise RecordError(N_("A title has at most %(title)d characters, the text at most "
                             "%(body)d."), title=TITLE_MAX, body=BODY_MAX)
    if _CONTROL.search(title) or _CONTROL.search(body) or re.search(r"[\r\n]", title):
        raise RecordError(N_("The title or the text contains control characters."))
    try:
        day = date.fromisoformat(occurred_on) if isinstance(occurred_on, str) else None
    except ValueError:
        day = None
    if day is None or len(occurred_on) != 10:
        raise RecordError(N_("The date must be a day written YYYY-MM-DD."))
    if not date(2000, 1, 1) <= day <= now.astimezone(tz).date():
        raise RecordError(N_("The date cannot be in the future."))
    return title, body, day.isoformat()


def file_entry(db, staff_id: str, kind: str, title, body, occurred_on, *, who: str,
               now: datetime | None = None, days: int = DEFAULT_DAYS,
               tz: tzinfo = HOSPITAL_TZ) -> dict:
    """A person's own entry about themselves, pending at the first level;
    RecordError (a kind they may not file, bad text or date), NotFound (no
    such staff member)."""
    now = _now(now)
    if kind not in SELF_KINDS:
        raise RecordError(N_("Choose what kind of entry this is."))
    title, body, day = check_text(title, body, occurred_on, now, tz)
    if db.conn.execute("SELECT 1 FROM staff WHERE staff_id = ?", (staff_id,)).fetchone() is None:
        raise NotFound(N_("Unknown staff member %(staff_id)s."), staff_id=staff_id)
    entry_id = insert(db, staff_id, kind, title, body, day, who=who, now=now, days=days)
    return get_entry(db, entry_id)


def insert(db, staff_id: str, kind: str, title: str, body: str, occurred_on: str, *,
           who: str, now: datetime, days: int, source: str = "self",
           source_ref: str | None = None) -> int | None:
    """Write a pending entry at level 0 and its 'submit' step; its id, or None
    when a system entry with this ``source_ref`` exists already."""
    at = iso(now)
    cursor = db.conn.execute(
        "INSERT INTO record_entries (staff_id, kind, title, body, occurred_on, source, "
        "source_ref, state, level, due_at, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id",
        (staff_id, kind, title, body, occurred_on, source, source_ref, due(now, days), at, at))
    row = cursor.fetchone()
    if row is None:
        return None
    entry_id = row[0]
    add_step(db, entry_id, 0, who, "submit", "", at)
    return entry_id


def add_step(db, entry_id: int, level: int | None, who: str, action: str, reason: str,
             at: str) -> None:
    db.conn.execute("INSERT INTO entry_reviews (entry_id, level, who, action, reason, at) "
                    "VALUES (?, ?, ?, ?, ?, ?)", (entry_id, level, who, action, reason, at))


def resubmit(db, entry_id: int, staff_id: str, title, body, occurred_on, *, who: str,
             now: datetime | None = None, days: int = DEFAULT_DAYS,
             tz: tzinfo = HOSPITAL_TZ) -> dict:
    """The owner's edit of a returned entry, pending again at level 0. A
    system entry keeps its title and day (what the hub recorded); only its
    text, the owner's note, changes. NotFound unless it is ``staff_id``'s,
    Conflict unless it was returned."""
    now = _now(now)
    entry = get_entry(db, entry_id)
    if entry is None or entry["staff_id"] != staff_id:
        raise NotFound(N_("Unknown entry %(id)s."), id=entry_id)
    if entry["state"] != "returned":
        raise Conflict(N_("Only an entry sent back to you can be edited and resubmitted."))
    if entry["source"] == "system":
        title, occurred_on = entry["title"], entry["occurred_on"]
    title, body, day = check_text(title, body, occurred_on, now, tz)
    at = iso(now)
    db.conn.execute(
        "UPDATE record_entries SET title = ?, body = ?, occurred_on = ?, state = 'pending', "
        "level = 0, due_at = ?, updated_at = ? WHERE id = ?",
        (title, body, day, due(now, days), at, entry_id))
    add_step(db, entry_id, 0, who, "resubmit", "", at)
    return get_entry(db, entry_id)


def get_entry(db, entry_id: int) -> dict | None:
    row = db.conn.execute(_SELECT + " WHERE id = ?", (entry_id,)).fetchone()
    return dict(zip(COLUMNS, row)) if row else None


def select(db, where: str = "", params=(), *, order: str = "id DESC",
           limit: int = 1000) -> list[dict]:
    """Entries matching the SQL condition ``where`` (for this package's modules)."""
    sql = _SELECT + (f" WHERE {where}" if where else "") + f" ORDER BY {order} LIMIT ?"
    return [dict(zip(COLUMNS, row)) for row in db.conn.execute(sql, (*params, limit))]


def history(db, entry_id: int) -> list[dict]:
    """Every step of an entry, oldest first: ``id``, ``level``, ``who``,
    ``action`` (submit, approve, reject, return, resubmit), ``reason``, ``at``."""
    return [dict(zip(_REVIEW_COLUMNS, row)) for row in db.conn.execute(
        f"SELECT {', '.join(_REVIEW_COLUMNS)} FROM entry_reviews WHERE entry_id = ? "
        "ORDER BY id", (entry_id,))]


def of_staff(db, staff_id: str, limit: int = 1000) -> list[dict]:
    """A person's entries, newest day first."""
    return select(db, "staff_id = ?", (staff_id,), order="occurred_on DESC, id DESC",
                  limit=limit)


def approved(db, staff_id: str, year: int, kinds=()) -> list[dict]:
    """The entries of ``staff_id`` about a day of ``year`` that passed every
    review level (only these count, e.g. for hub/assessment), of ``kinds``
    (empty: every kind), oldest day first."""
    where = "staff_id = ? AND state = 'approved' AND occurred_on BETWEEN ? AND ?"
    params = [staff_id, f"{year:04d}-01-01", f"{year:04d}-12-31"]
    if kinds:
        kinds = list(kinds)
        where += f" AND kind IN ({', '.join('?' * len(kinds))})"
        params += kinds
    return select(db, where, params, order="occurred_on, id", limit=100_000)
