"""Attendance queries on the hub database: events, who checked in, fleet counts.

Plain functions over a sqlite-utils ``Database``, no web framework, so the
dashboard, the API and the exports share them. Event ``start``/``end`` and
check-in ``ts`` are stored as the wire writes them (ISO 8601 UTC with
milliseconds, ``protocol.clock.iso``), so they compare correctly as text.
"""

import json
from datetime import date, datetime, time, timedelta, tzinfo

from sqlite_utils import Database

from protocol.clock import iso

_EVENT_COLUMNS = 'e.id, e.title, e.kind, e.zones, e.start, e."end", e.credit_hours, e.min_presence'
_CHECKED_IN = "(SELECT COUNT(DISTINCT c.staff_id) FROM checkins c WHERE c.event_id = e.id)"


def day_bounds(day: date, tz: tzinfo) -> tuple[str, str]:
    """The wire timestamps of local midnight starting ``day`` and the next one."""
    start = datetime.combine(day, time.min, tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)
    return iso(start), iso(end)


def _event(row: dict) -> dict:
    event = dict(row)
    try:
        zones = json.loads(event["zones"] or "[]")
    except ValueError:
        zones = []
    event["zones"] = zones if isinstance(zones, list) else []
    return event


def list_events(db: Database, day: date | None = None, tz: tzinfo | None = None) -> list[dict]:
    """Events ordered by start, each with ``checked_in`` (distinct staff).

    With ``day`` (a date in time zone ``tz``), only the events that overlap
    that local day.
    """
    sql = f"SELECT {_EVENT_COLUMNS}, {_CHECKED_IN} AS checked_in FROM events e"
    params: dict = {}
    if day is not None:
        if tz is None:
            raise ValueError("a day needs a time zone")
        sql += ' WHERE e.start < :day_end AND e."end" > :day_start'
        params["day_start"], params["day_end"] = day_bounds(day, tz)
    sql += " ORDER BY e.start, e.id"
    return [_event(row) for row in db.query(sql, params)]


def get_event(db: Database, event_id: str) -> dict | None:
    """One event with its ``checked_in`` count, or None when unknown."""
    sql = f"SELECT {_EVENT_COLUMNS}, {_CHECKED_IN} AS checked_in FROM events e WHERE e.id = ?"
    rows = list(db.query(sql, [event_id]))
    return _event(rows[0]) if rows else None


def event_attendance(db: Database, event_id: str) -> list[dict]:
    """Who checked in to an event: one row per staff member, earliest check-in.

    Each row has ``staff_id``, ``name`` and ``department`` (None when the
    staff id is not in the roster), ``checked_in_at``, and the ``method`` and
    ``node`` of that earliest check-in; ordered by check-in time.
    """
    sql = """
        SELECT staff_id, name, department, checked_in_at, method, node FROM (
            SELECT c.staff_id, s.name, s.department, c.ts AS checked_in_at,
                   c.method, c.node,
                   ROW_NUMBER() OVER (PARTITION BY c.staff_id ORDER BY c.ts, c.id) AS nth
            FROM checkins c LEFT JOIN staff s ON s.staff_id = c.staff_id
            WHERE c.event_id = ?
        ) AS firsts
        WHERE nth = 1
        ORDER BY checked_in_at, staff_id
    """
    return list(db.query(sql, [event_id]))


def node_counts(db: Database) -> dict:
    """Nodes not revoked, split by their last status: ``{"online", "offline"}``.

    A node that never reported a status counts as offline.
    """
    sql = """
        SELECT COALESCE(SUM(CASE WHEN state = 'online' THEN 1 ELSE 0 END), 0) AS online,
               COALESCE(SUM(CASE WHEN state = 'online' THEN 0 ELSE 1 END), 0) AS offline
        FROM nodes WHERE revoked = 0
    """
    return next(db.query(sql))


def quarantine_count(db: Database) -> int:
    """How many malformed payloads or records the ingest has set aside."""
    return db["quarantine"].count
