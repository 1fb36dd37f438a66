"""Settling an event's attendance before the presence it came from is pruned.

Attendance is derived from presence intervals on every look
(hub/attendance/attendance.py). Presence is movement data and is kept only for
``presence_days`` (hub/retention.py); the attendance it proved feeds
appraisals and is kept much longer. So before presence is pruned, every ended
event it could have served is computed one last time and its rows are kept in
``attendance_settled``; ``attendance_of`` reads them from then on.
"""

import json
from datetime import datetime

from hub.attendance.attendance import attendance_of, get_event
from hub.db import delete_batches, write_transaction
from protocol.clock import iso


def settle_ended(db, before: str, now: datetime, *, dry_run: bool = False) -> int:
    """Settle every event that started before ``before`` and has ended by
    ``now``; returns how many were settled (or would be)."""
    ids = [event_id for (event_id,) in db.conn.execute(
        'SELECT id FROM events WHERE start < ? AND "end" <= ? '
        "AND id NOT IN (SELECT event_id FROM attendance_settled) ORDER BY start",
        (before, iso(now)))]
    if dry_run:
        return len(ids)
    for event_id in ids:
        with write_transaction(db):
            rows = attendance_of(db, get_event(db, event_id), now)
            db.conn.execute("INSERT INTO attendance_settled (event_id, settled_at, rows) "
                            "VALUES (?, ?, ?)",
                            (event_id, iso(now), json.dumps(rows, ensure_ascii=False)))
    return len(ids)


def still_needed(db, before: str, now: datetime) -> list[tuple[str, str]]:
    """``(zone, start)`` of every event that began before ``before`` and is still
    on at ``now``: its zones' intervals since its start are needed until it ends
    and is settled."""
    return [(zone, start) for zone, start in db.conn.execute(
        'SELECT z.value, e.start FROM events e CROSS JOIN json_each(e.zones) z '
        'WHERE e.start < ? AND e."end" > ?', (before, iso(now)))]


def prune_settled(db, before: str, *, batch: int = 500, dry_run: bool = False) -> int:
    """Settled attendance of events that ended before ``before`` (only when the
    hospital sets a period for attendance records)."""
    return delete_batches(db, "attendance_settled", 'event_id IN (SELECT id FROM events '
                          'WHERE "end" < ?)', (before,), batch=batch, dry_run=dry_run)
