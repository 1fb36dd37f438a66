"""The few reads of other areas' tables a summary needs beyond their own
functions: who registered for an event (``registrations``, hub/schedule),
the reports filed in some zones during a time (``reports``, hub/ingest) and
a person's approved record entries (``record_entries``, hub/records)."""

import json


def registered(db, event_id: str) -> set[str]:
    """Staff ids registered for the event (not waiting, not cancelled)."""
    return {staff_id for (staff_id,) in db.conn.execute(
        "SELECT staff_id FROM registrations WHERE event_id = ? AND state = 'registered'",
        (event_id,))}


def reports_in(db, zones: list[str], since: str, until: str) -> dict[str, int]:
    """Category -> how many reports (each report id once, however often it
    was resent) were taken in ``zones`` from ``since`` to ``until``."""
    return dict(db.conn.execute(
        "SELECT category, COUNT(DISTINCT report_id) FROM reports "
        "WHERE zone IN (SELECT value FROM json_each(?)) AND taken_at >= ? AND taken_at <= ? "
        "GROUP BY category ORDER BY 2 DESC, 1", (json.dumps(zones), since, until)))


def approved_entries(db, staff_id: str, year: int) -> list[dict]:
    """The person's record entries about a day of ``year`` that passed every
    review level, oldest day first."""
    rows = db.conn.execute(
        "SELECT id, kind, title, occurred_on, source FROM record_entries "
        "WHERE staff_id = ? AND state = 'approved' AND occurred_on BETWEEN ? AND ? "
        "ORDER BY occurred_on, id", (staff_id, f"{year:04d}-01-01", f"{year:04d}-12-31"))
    return [dict(zip(("id", "kind", "title", "occurred_on", "source"), row)) for row in rows]
