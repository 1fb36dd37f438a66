"""Supervision tickets from snap-and-report reports: routing, due times,
states and history, duplicates.

Plain functions over a sqlite-utils ``Database`` (as ``hub.attendance``), so
ingest, the JSON API, Open311 and the dashboard share them. Timestamps are
stored as the wire writes them (``protocol.clock.iso``) and compare as text.

**Materializing.** ``materialize(db)`` turns every report that has no ticket
yet, and whose photos have *all* arrived (a row in ``photos`` per sha256), into
a new ticket or a duplicate attachment. A report with no photos is
materialized at once; one still waiting for a photo stays waiting (it is
picked up by a later call, after the photo row is inserted), or, after
``PHOTO_PATIENCE``, with the photos that came. It writes inside
the caller's transaction (a savepoint when one is open) and never commits it.
Reports are taken oldest first, so that a burst of reports arriving together
attach to the first of them.

**When a report happened** (``reported_at``): the report's ``taken_at``, or
its arrival time at the hub when the node said its clock was not synced.

**Routing.** ``routing_rules(category, zone, department)``: a rule naming the
report's category and zone wins over one naming the category with zone NULL
(any zone); with no rule the ticket goes to ``DEFAULT_DEPARTMENT`` (the
civility office). Among equal rules the newest (highest id) wins.

**Due time** = ticket creation + ``category_settings.due_hours`` (seeded:
safety 4 h, hygiene 8 h, the others 48 h); categories without settings use
``hub.tickets.categories.DEFAULT_DUE_HOURS``.

**States.** new -> assigned -> in_progress -> resolved -> closed; rejected
from new, assigned or in_progress. Open = not resolved/closed/rejected.
Moving to *assigned* is **accepting** the report (it credits volunteer hours,
see ``hub.tickets.hours``); rejecting rejects the ticket's pending hour entries.
Creation and every move are rows in ``ticket_history`` (creation by
``"system"``, from_state NULL).

**Duplicates.** A report attaches to an open ticket, instead of opening one,
when
  1. the ticket has the same zone and category and its ``reported_at`` is
     within ``DUPLICATE_WINDOW`` (30 min, either side) of the report's; or
  2. one of the report's photos has a difference hash (``photos.verify``'s ``dhash``, 64
     bits as 16 hex digits) within Hamming distance ``DHASH_DISTANCE`` (6) of
     a photo of the ticket (its own or an attached report's), in any zone
     or category. Near-featureless hashes (fewer than 4 or more than 60 bits
     set: blank walls, black frames) are ignored, as they match each other.
Rule 1 wins over rule 2 (the most recent matching ticket), rule 2 takes the
closest hash. ``tickets.reporters`` counts the distinct staff on the ticket.
"""

import json
from datetime import datetime, timedelta, timezone

from protocol.clock import iso, parse_iso

from hub.db import write_transaction
from hub.ingest import photos
from hub.tickets import hours
from hub.tickets.categories import category_settings
from hub.tickets.errors import NotFound

DEFAULT_DEPARTMENT = "civility_office"
DUPLICATE_WINDOW = timedelta(minutes=30)
# A node drops a photo it could not send within 30 days (edge/retention.py,
# spool_days): a report still missing one after this long becomes a ticket with
# the photos that did arrive.
PHOTO_PATIENCE = timedelta(days=31)
DHASH_DISTANCE = 6
SYSTEM = "system"

STATES = ("new", "assigned", "in_progress", "resolved", "closed", "rejected")
OPEN_STATES = ("new", "assigned", "in_progress")
CLOSED_STATES = ("resolved", "closed", "rejected")
TRANSITIONS = {
    "new": ("assigned", "rejected"),
    "assigned": ("in_progress", "rejected"),
    "in_progress": ("resolved", "rejected"),
    "resolved": ("closed",),
    "closed": (),
    "rejected": (),
}
NODE_REPORT_DAYS = 30

_OPEN_SQL = "('new', 'assigned', 'in_progress')"
_TICKET_COLUMNS = ("id", "report_id", "category", "zone", "department", "state", "created_at",
                   "reported_at", "due_at", "updated_at", "staff_id", "reporters", "lat", "lon",
                   "note", "photos", "source")


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(timezone.utc)


# -- settings and routing ---------------------------------------------------

def route(db, category: str, zone: str) -> str:
    """The department for a report of ``category`` in ``zone`` (see module doc)."""
    row = db.conn.execute(
        "SELECT department FROM routing_rules WHERE category = ? AND (zone = ? OR zone IS NULL) "
        "ORDER BY zone IS NULL, id DESC LIMIT 1", (category, zone)).fetchone()
    return row[0] if row else DEFAULT_DEPARTMENT


def add_rule(db, category: str, department: str, zone: str | None = None) -> None:
    with write_transaction(db):
        db.conn.execute("INSERT INTO routing_rules (category, zone, department) VALUES (?, ?, ?)",
                        (category, zone, department))


# -- materializing reports --------------------------------------------------

_UNTICKETED = (
    "SELECT r.report_id, r.node, r.staff_id, r.category, r.note, r.zone, r.lat, r.lon, "
    "r.photos, r.taken_at, r.clock_synced, r.received_at FROM reports r "
    "WHERE NOT EXISTS (SELECT 1 FROM ticket_reports t WHERE t.report_id = r.report_id) "
    "ORDER BY r.taken_at, r.received_at, r.id"
)


def materialize(db, now: datetime | None = None) -> list[str]:
    """Create tickets (or duplicate attachments) for every report that has no
    ticket and whose photos are all present; return the new ticket ids.

    Runs in the caller's transaction (``with db.atomic(): ...``); see the
    module docstring for the rules.
    """
    created_at = iso(_now(now))
    new_ids: list[str] = []
    with db.atomic():
        waiting = [dict(zip(("report_id", "node", "staff_id", "category", "note", "zone",
                             "lat", "lon", "photos", "taken_at", "clock_synced",
                             "received_at"), row))
                   for row in db.conn.execute(_UNTICKETED).fetchall()]
        for report in waiting:
            report["photos"] = json.loads(report["photos"])
        arrived = photos.arrived(db, (sha for r in waiting for sha in r["photos"]))
        given_up = iso(_now(now) - PHOTO_PATIENCE)
        for report in waiting:
            if not arrived.issuperset(report["photos"]):
                if report["received_at"] >= given_up:
                    continue  # a photo still on its way
                report["photos"] = [sha for sha in report["photos"] if sha in arrived]
            if db.conn.execute("SELECT 1 FROM ticket_reports WHERE report_id = ?",
                               (report["report_id"],)).fetchone():
                continue  # the same report_id twice in this run (resent under a new id)
            report["reported_at"] = _normalized(
                report["received_at"] if report["clock_synced"] == 0 else report["taken_at"])
            ticket_id = _materialize_one(db, report, created_at)
            if ticket_id is not None:
                new_ids.append(str(ticket_id))
    return new_ids


def _normalized(text: str) -> str:
    """A wire timestamp in the one form (milliseconds, Z) that sorts as text."""
    try:
        return iso(parse_iso(text))
    except ValueError:
        return text


def _materialize_one(db, report: dict, created_at: str) -> int | None:
    """Attach ``report`` to a matching open ticket (return None) or open a
    new ticket (return its id)."""
    match = find_duplicate(db, report)
    if match is not None:
        ticket_id, matched_by = match
        _attach(db, ticket_id, report, matched_by, created_at)
        return None
    settings = category_settings(db, report["category"])
    due_at = iso(parse_iso(created_at) + timedelta(hours=settings["due_hours"]))
    cursor = db.conn.execute(
        "INSERT INTO tickets (report_id, category, zone, department, state, created_at, "
        "reported_at, due_at, updated_at, staff_id, reporters, lat, lon, note, photos, source) "
        "VALUES (?, ?, ?, ?, 'new', ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?) RETURNING id",
        (report["report_id"], report["category"], report["zone"],
         route(db, report["category"], report["zone"]), created_at, report["reported_at"],
         due_at, created_at, report["staff_id"], report["lat"], report["lon"], report["note"],
         json.dumps(report["photos"]), _source(report)))
    ticket_id = cursor.fetchone()[0]
    db.conn.execute(
        "INSERT INTO ticket_reports (report_id, ticket_id, staff_id, duplicate, matched_by, "
        "attached_at) VALUES (?, ?, ?, 0, NULL, ?)",
        (report["report_id"], ticket_id, report["staff_id"], created_at))
    _history(db, ticket_id, created_at, SYSTEM, None, "new", "created from report "
             + report["report_id"])
    return ticket_id


def _source(report: dict) -> str:
    """Where a ticket came from: ``open311``, ``survey`` (a low survey score,
    hub/surveys/alerts.py) or ``node`` (a report filed on a node's portal)."""
    if report["node"] == "open311":
        return "open311"
    return "survey" if report["report_id"].startswith("survey:") else "node"


def _attach(db, ticket_id: int, report: dict, matched_by: str, at: str) -> None:
    db.conn.execute(
        "INSERT INTO ticket_reports (report_id, ticket_id, staff_id, duplicate, matched_by, "
        "attached_at) VALUES (?, ?, ?, 1, ?, ?)",
        (report["report_id"], ticket_id, report["staff_id"], matched_by, at))
    db.conn.execute(
        "UPDATE tickets SET reporters = (SELECT COUNT(DISTINCT staff_id) FROM ticket_reports "
        "WHERE ticket_id = ?), updated_at = ? WHERE id = ?", (ticket_id, at, ticket_id))
    state = db.conn.execute("SELECT state FROM tickets WHERE id = ?", (ticket_id,)).fetchone()[0]
    if state in ("assigned", "in_progress"):  # already accepted: credit the duplicate now
        hours.credit_report(db, ticket_id, report["report_id"], at)


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def _usable_dhash(value) -> int | None:
    if not isinstance(value, str) or len(value) != 16:
        return None
    try:
        bits = int(value, 16)
    except ValueError:
        return None
    return bits if 4 <= bits.bit_count() <= 60 else None


def _dhashes(db, shas) -> list[int]:
    return [h for value in photos.dhashes(db, shas) if (h := _usable_dhash(value)) is not None]


def find_duplicate(db, report: dict) -> tuple[int, str] | None:
    """The open ticket ``report`` duplicates, as ``(ticket_id, "zone_time" |
    "photo")``, or None."""
    at = parse_iso(report["reported_at"])
    low, high = iso(at - DUPLICATE_WINDOW), iso(at + DUPLICATE_WINDOW)
    row = db.conn.execute(
        f"SELECT id FROM tickets WHERE state IN {_OPEN_SQL} AND zone = ? AND category = ? "
        "AND reported_at BETWEEN ? AND ? ORDER BY reported_at DESC, id DESC LIMIT 1",
        (report["zone"], report["category"], low, high)).fetchone()
    if row:
        return row[0], "zone_time"
    mine = _dhashes(db, report["photos"])
    if not mine:
        return None
    best = None
    open_photos = db.conn.execute(
        f"SELECT t.id, p.value FROM tickets t JOIN ticket_reports tr ON tr.ticket_id = t.id "
        f"JOIN reports r ON r.report_id = tr.report_id, json_each(r.photos) p "
        f"WHERE t.state IN {_OPEN_SQL} "
        f"UNION SELECT t.id, p.value FROM tickets t, json_each(t.photos) p "
        f"WHERE t.state IN {_OPEN_SQL}").fetchall()
    by_ticket: dict[int, set] = {}
    for ticket_id, sha in open_photos:
        by_ticket.setdefault(ticket_id, set()).add(sha)
    for ticket_id, shas in by_ticket.items():
        for theirs in _dhashes(db, shas):
            distance = min((h ^ theirs).bit_count() for h in mine)
            if distance <= DHASH_DISTANCE and (best is None or (distance, -ticket_id) < best[0]):
                best = ((distance, -ticket_id), ticket_id)
    return (best[1], "photo") if best else None


# -- states and history -----------------------------------------------------

def _history(db, ticket_id, at, who, from_state, to_state, comment="") -> None:
    db.conn.execute(
        "INSERT INTO ticket_history (ticket_id, at, who, from_state, to_state, comment) "
        "VALUES (?, ?, ?, ?, ?, ?)", (ticket_id, at, who, from_state, to_state, comment or ""))


def transition(db, ticket_id, to_state: str, who: str, comment: str = "",
               now: datetime | None = None) -> dict:
    """Move a ticket to ``to_state`` as ``who``; write history; return the
    ticket. Raises NotFound for an unknown ticket and ValueError for a move
    the state machine does not allow."""
    if to_state not in STATES:
        raise ValueError(f"unknown state {to_state!r}; states are {', '.join(STATES)}")
    if not isinstance(who, str) or not who.strip():
        raise ValueError("who is required")
    at = iso(_now(now))
    with write_transaction(db):
        row = db.conn.execute("SELECT state FROM tickets WHERE id = ?", (ticket_id,)).fetchone()
        if row is None:
            raise NotFound(f"unknown ticket: {ticket_id}")
        current = row[0]
        if to_state not in TRANSITIONS[current]:
            allowed = ", ".join(TRANSITIONS[current]) or "none (final state)"
            raise ValueError(f"cannot move ticket {ticket_id} from {current} to {to_state}; "
                             f"allowed: {allowed}")
        db.conn.execute("UPDATE tickets SET state = ?, updated_at = ? WHERE id = ?",
                        (to_state, at, ticket_id))
        _history(db, ticket_id, at, who, current, to_state, comment)
        if to_state == "assigned":
            hours.credit_ticket(db, ticket_id, at)
        elif to_state == "rejected":
            hours.reject_pending(db, ticket_id, who, at)
    return get_ticket(db, ticket_id)


# -- reading ----------------------------------------------------------------

def _ticket_dict(row) -> dict:
    ticket = dict(zip(_TICKET_COLUMNS, row))
    ticket["photos"] = json.loads(ticket["photos"])
    ticket["open"] = ticket["state"] in OPEN_STATES
    return ticket


def list_tickets(db, state=None, department=None, category=None, zone=None,
                 ids=None, since=None, until=None, limit=500) -> list[dict]:
    """Tickets, newest first, filtered by any of the arguments (``state`` may
    be a list; ``since``/``until`` bound ``reported_at``)."""
    where, params = [], []
    for column, value in (("state", state), ("department", department),
                          ("category", category), ("zone", zone), ("id", ids)):
        if value is None:
            continue
        values = list(value) if isinstance(value, (list, tuple, set)) else [value]
        where.append(f"{column} IN ({', '.join('?' * len(values))})")
        params.extend(values)
    if since is not None:
        where.append("reported_at >= ?")
        params.append(since)
    if until is not None:
        where.append("reported_at <= ?")
        params.append(until)
    sql = f"SELECT {', '.join(_TICKET_COLUMNS)} FROM tickets"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY reported_at DESC, id DESC LIMIT ?"
    return [_ticket_dict(r) for r in db.conn.execute(sql, params + [limit])]


def get_ticket(db, ticket_id, detail: bool = False) -> dict | None:
    """One ticket; with ``detail`` also its ``history`` (oldest first) and
    ``reports`` (each attached report: report_id, staff_id, duplicate,
    matched_by, reported_at)."""
    row = db.conn.execute(f"SELECT {', '.join(_TICKET_COLUMNS)} FROM tickets WHERE id = ?",
                          (ticket_id,)).fetchone()
    if row is None:
        return None
    ticket = _ticket_dict(row)
    if detail:
        ticket["history"] = [
            dict(zip(("at", "who", "from_state", "to_state", "comment"), h))
            for h in db.conn.execute(
                "SELECT at, who, from_state, to_state, comment FROM ticket_history "
                "WHERE ticket_id = ? ORDER BY at, id", (ticket_id,))]
        ticket["reports"] = [
            {"report_id": r[0], "staff_id": r[1], "duplicate": bool(r[2]), "matched_by": r[3],
             "taken_at": r[4]}
            for r in db.conn.execute(
                "SELECT tr.report_id, tr.staff_id, tr.duplicate, tr.matched_by, "
                "(SELECT min(taken_at) FROM reports r WHERE r.report_id = tr.report_id) "
                "FROM ticket_reports tr WHERE tr.ticket_id = ? ORDER BY tr.duplicate, "
                "tr.attached_at, tr.report_id", (ticket_id,))]
    return ticket


def last_comment(db, ticket_id: int) -> str | None:
    """The comment of the ticket's last history row (None when it has none)."""
    row = db.conn.execute(
        "SELECT comment FROM ticket_history WHERE ticket_id = ? ORDER BY at DESC, id DESC "
        "LIMIT 1", (ticket_id,)).fetchone()
    return (row[0] or None) if row else None


def ticket_of_report(db, report_id: str) -> tuple[int, bool] | None:
    """(ticket id, attached as a duplicate?) of a materialized report."""
    row = db.conn.execute("SELECT ticket_id, duplicate FROM ticket_reports WHERE report_id = ?",
                          (report_id,)).fetchone()
    return (row[0], bool(row[1])) if row else None


def categories_used(db) -> list[str]:
    """Every category some ticket has."""
    return [c for (c,) in db.conn.execute("SELECT DISTINCT category FROM tickets")]


def departments_used(db) -> list[str]:
    """Every department some ticket is routed to (off the ``tickets_department`` index)."""
    return [d for (d,) in db.conn.execute("SELECT DISTINCT department FROM tickets")]


def photos_of(db, ticket: dict) -> list[str]:
    """Every photo of every report on the ticket, the original's first."""
    seen = list(ticket["photos"])
    for (sha,) in db.conn.execute(
            "SELECT p.value FROM ticket_reports tr JOIN reports r ON r.report_id = tr.report_id, "
            "json_each(r.photos) p WHERE tr.ticket_id = ? ORDER BY tr.duplicate, tr.attached_at",
            (ticket["id"],)):
        if sha not in seen:
            seen.append(sha)
    return seen


def photo_holds(db, resolved_before: str | None) -> dict[str, bool]:
    """Every photo a report or a ticket names, and whether it must be kept
    (retention: hub/retention.py): True while a report naming it has no ticket
    yet, or a ticket holding it is open or changed at or after
    ``resolved_before`` (None: every ticket's photos are kept)."""
    closed = ", ".join(f"'{state}'" for state in CLOSED_STATES)
    rows = db.conn.execute(f"""
        WITH refs(sha, keep) AS (
            SELECT p.value, CASE WHEN t.id IS NULL OR t.state NOT IN ({closed})
                                 OR t.updated_at >= :before THEN 1 ELSE 0 END
            FROM reports r CROSS JOIN json_each(r.photos) p
            LEFT JOIN ticket_reports tr ON tr.report_id = r.report_id
            LEFT JOIN tickets t ON t.id = tr.ticket_id
            UNION ALL
            SELECT p.value, CASE WHEN t.state NOT IN ({closed}) OR t.updated_at >= :before
                                 THEN 1 ELSE 0 END
            FROM tickets t CROSS JOIN json_each(t.photos) p)
        SELECT sha, MAX(keep) FROM refs GROUP BY sha""",
        {"before": resolved_before or ""})
    return {sha: bool(keep) for sha, keep in rows}


def photo_in_department(db, sha256: str, department: str) -> bool:
    """Whether the photo belongs to some ticket of the department (what a
    department reviewer may see)."""
    row = db.conn.execute(
        "SELECT 1 FROM tickets t JOIN ticket_reports tr ON tr.ticket_id = t.id "
        "JOIN reports r ON r.report_id = tr.report_id, json_each(r.photos) p "
        "WHERE t.department = ? AND p.value = ? LIMIT 1", (department, sha256)).fetchone()
    return row is not None


def reports_for_node(db, node: str, now: datetime | None = None) -> list[dict]:
    """The state of the reports filed at ``node`` in the last 30 days, newest
    first: ``{"report_id", "ticket_id", "state", "duplicate"}``. A report not
    materialized yet (a photo still on its way) has ticket_id None and state
    ``"waiting"``."""
    since = iso(_now(now) - timedelta(days=NODE_REPORT_DAYS))
    rows = db.conn.execute(
        "SELECT r.report_id, min(tr.ticket_id), min(t.state), min(tr.duplicate) FROM reports r "
        "LEFT JOIN ticket_reports tr ON tr.report_id = r.report_id "
        "LEFT JOIN tickets t ON t.id = tr.ticket_id "
        "WHERE r.node = ? AND r.taken_at >= ? GROUP BY r.report_id "
        "ORDER BY max(r.taken_at) DESC, r.report_id", (node, since)).fetchall()
    return [{"report_id": rid, "ticket_id": None if tid is None else str(tid),
             "state": state or "waiting", "duplicate": bool(dup)}
            for rid, tid, state, dup in rows]
