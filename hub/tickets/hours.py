"""Volunteer hours earned by snap-and-report (the ``volunteer_ledger``).

The rule: a report earns hours when its ticket is **accepted**, i.e. moved
from ``new`` to ``assigned`` (``hub.tickets.tickets.transition``). Then

* the original reporter gets the category's ``credit_hours``
  (``hub.tickets.categories``: its ``category_settings`` or the default);
* each duplicate reporter gets ``duplicate_credit_hours`` (0 by default:
  a duplicate confirms a problem but does not find it, so no entry is
  written at all when it is 0); a duplicate attached after acceptance is
  credited when it attaches;
* a person is credited at most once per ticket (a second report of theirs
  on the same ticket earns nothing); Open311 submissions earn nothing (the
  submitter is not staff).

Each credit is a **pending** entry; a reviewer approves or rejects it with
``decide``. Rejecting a ticket rejects its still-pending entries (who = the
person who rejected the ticket). Totals per person sum approved and pending
hours separately.
"""

from datetime import datetime, timezone

from protocol.clock import iso

from hub.db import delete_batches, write_transaction
from hub.tickets.categories import category_settings
from hub.tickets.errors import NotFound

ENTRY_STATES = ("pending", "approved", "rejected")
_ENTRY_COLUMNS = ("id", "staff_id", "ticket_id", "report_id", "hours", "state", "created_at",
                  "decided_by", "decided_at")


def credit_report(db, ticket_id: int, report_id: str, at: str) -> int | None:
    """Write the pending entry one report on an accepted ticket earns; return
    its id, or None when it earns nothing."""
    row = db.conn.execute(
        "SELECT tr.staff_id, tr.duplicate, t.category, t.source FROM ticket_reports tr "
        "JOIN tickets t ON t.id = tr.ticket_id WHERE tr.ticket_id = ? AND tr.report_id = ?",
        (ticket_id, report_id)).fetchone()
    if row is None:
        return None
    staff_id, duplicate, category, source = row
    if source in ("open311", "survey"):  # no staff member filed it
        return None
    settings = category_settings(db, category)
    hours = settings["duplicate_credit_hours"] if duplicate else settings["credit_hours"]
    if not hours or hours <= 0:
        return None
    if db.conn.execute("SELECT 1 FROM volunteer_ledger WHERE ticket_id = ? AND staff_id = ?",
                       (ticket_id, staff_id)).fetchone():
        return None
    cursor = db.conn.execute(
        "INSERT INTO volunteer_ledger (staff_id, ticket_id, report_id, hours, state, created_at) "
        "VALUES (?, ?, ?, ?, 'pending', ?) ON CONFLICT DO NOTHING RETURNING id",
        (staff_id, ticket_id, report_id, hours, at))
    row = cursor.fetchone()
    return row[0] if row else None


def credit_ticket(db, ticket_id: int, at: str) -> list[int]:
    """Credit every report on a ticket that was just accepted (original first)."""
    reports = db.conn.execute(
        "SELECT report_id FROM ticket_reports WHERE ticket_id = ? "
        "ORDER BY duplicate, attached_at, report_id", (ticket_id,)).fetchall()
    ids = [credit_report(db, ticket_id, rid, at) for (rid,) in reports]
    return [i for i in ids if i is not None]


def reject_pending(db, ticket_id: int, who: str, at: str) -> None:
    db.conn.execute(
        "UPDATE volunteer_ledger SET state = 'rejected', decided_by = ?, decided_at = ? "
        "WHERE ticket_id = ? AND state = 'pending'", (who, at, ticket_id))


def decide(db, entry_id: int, approve: bool, who: str, now: datetime | None = None) -> dict:
    """Approve or reject a pending entry; return it. NotFound for an unknown
    entry, ValueError for one already decided or a missing ``who``."""
    if not isinstance(who, str) or not who.strip():
        raise ValueError("who is required")
    if not isinstance(approve, bool):
        raise ValueError("approve must be true or false")
    at = iso(now or datetime.now(timezone.utc))
    with write_transaction(db):
        row = db.conn.execute("SELECT state FROM volunteer_ledger WHERE id = ?",
                              (entry_id,)).fetchone()
        if row is None:
            raise NotFound(f"unknown ledger entry: {entry_id}")
        if row[0] != "pending":
            raise ValueError(f"ledger entry {entry_id} is already {row[0]}")
        db.conn.execute(
            "UPDATE volunteer_ledger SET state = ?, decided_by = ?, decided_at = ? WHERE id = ?",
            ("approved" if approve else "rejected", who, at, entry_id))
    return get_entry(db, entry_id)


def get_entry(db, entry_id: int) -> dict | None:
    row = db.conn.execute(f"SELECT {', '.join(_ENTRY_COLUMNS)} FROM volunteer_ledger "
                          "WHERE id = ?", (entry_id,)).fetchone()
    return dict(zip(_ENTRY_COLUMNS, row)) if row else None


_OF_DEPARTMENT = "staff_id IN (SELECT staff_id FROM staff WHERE department = ?)"


def entries(db, staff_id: str | None = None, state: str | None = None,
            limit: int = 1000, department: str | None = None) -> list[dict]:
    """Ledger entries, newest first; ``department``: only its staff's."""
    where, params = [], []
    if department is not None:
        where.append(_OF_DEPARTMENT)
        params.append(department)
    if staff_id is not None:
        where.append("staff_id = ?")
        params.append(staff_id)
    if state is not None:
        where.append("state = ?")
        params.append(state)
    sql = f"SELECT {', '.join(_ENTRY_COLUMNS)} FROM volunteer_ledger"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
    return [dict(zip(_ENTRY_COLUMNS, r)) for r in db.conn.execute(sql, params + [limit])]


_TOTALS = ("SELECT min(staff_id), "  # grouped by staff_id, or one person's rows
           "coalesce(sum(CASE WHEN state = 'approved' THEN hours END), 0), "
           "coalesce(sum(CASE WHEN state = 'pending' THEN hours END), 0), "
           "coalesce(sum(CASE WHEN state = 'rejected' THEN hours END), 0) "
           "FROM volunteer_ledger")


def totals(db, staff_id: str | None = None, department: str | None = None) -> list[dict]:
    """Per person ``{"staff_id", "approved", "pending", "rejected"}`` (hours),
    by staff_id; one row (zeros when nothing) when ``staff_id`` is given;
    ``department``: only its staff."""
    if staff_id is not None:
        row = db.conn.execute(_TOTALS + " WHERE staff_id = ?", (staff_id,)).fetchone()
        return [{"staff_id": staff_id, "approved": row[1], "pending": row[2],
                 "rejected": row[3]}]
    where, params = ("", ()) if department is None else (f" WHERE {_OF_DEPARTMENT}", (department,))
    return [{"staff_id": r[0], "approved": r[1], "pending": r[2], "rejected": r[3]}
            for r in db.conn.execute(_TOTALS + where + " GROUP BY staff_id ORDER BY staff_id",
                                     params)]


def department_totals(db) -> list[dict]:
    """Per department ``{"department", "approved", "pending", "rejected"}``."""
    rows = db.conn.execute(
        "SELECT coalesce(s.department, ''), "
        "coalesce(sum(CASE WHEN v.state = 'approved' THEN v.hours END), 0), "
        "coalesce(sum(CASE WHEN v.state = 'pending' THEN v.hours END), 0), "
        "coalesce(sum(CASE WHEN v.state = 'rejected' THEN v.hours END), 0) "
        "FROM volunteer_ledger v LEFT JOIN staff s ON s.staff_id = v.staff_id "
        "GROUP BY 1 ORDER BY 1")
    return [{"department": r[0], "approved": r[1], "pending": r[2], "rejected": r[3]}
            for r in rows]


def prune(db, before: str, *, batch: int = 500, dry_run: bool = False) -> int:
    """Decided hour entries (approved or rejected) decided before ``before``
    (only when the hospital sets a period for hours records: they feed
    appraisals; hub/retention.py). Pending ones are never pruned."""
    return delete_batches(db, "volunteer_ledger", "state != 'pending' AND decided_at < ?",
                          (before,), batch=batch, dry_run=dry_run)
