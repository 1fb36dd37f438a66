"""The entries the hub files itself (``source`` 'system'), once each, named
by ``source_ref``:

* ``attendance:<event>:<staff>``: present at an event that has ended
  (hub/attendance); the title is the event's, the day its local start;
* ``hours:<ledger id>``: volunteer hours approved (hub/tickets/hours.py);
* ``report:<report id>``: a report whose ticket was accepted (assigned or
  further, not rejected), for its original reporter.

``sync_system_entries`` is idempotent (``UNIQUE (source, source_ref)``): run
it as often as you like. Each new entry starts at the first review level
like a person's own, filed by ``system``. Only people on the roster get
entries. An ended event is looked at again while it is recent (late records
from a node that was offline) and until someone's entry exists for it; an
event nobody attended is looked at each time, which costs one attendance
computation (a settled one is read, not computed).
"""

from datetime import datetime, timedelta, timezone, tzinfo

from protocol.clock import iso

from hub.attendance.attendance import attendance_of, get_event, parse_time
from hub.db import write_transaction
from hub.records import entries

RECENT = timedelta(days=3)
ACCEPTED = ("assigned", "in_progress", "resolved", "closed")


def _day(timestamp: str, tz: tzinfo) -> str:
    return parse_time(timestamp).astimezone(tz).date().isoformat()


def _ended_events(db, now: datetime) -> list[str]:
    """Events that ended, recently or with nobody's entry yet."""
    return [event_id for (event_id,) in db.conn.execute(
        "SELECT e.id FROM events e WHERE e.\"end\" <= ? AND (e.\"end\" > ? OR NOT EXISTS ("
        "SELECT 1 FROM record_entries r WHERE r.source = 'system' "
        "AND r.source_ref >= 'attendance:' || e.id || ':' "
        "AND r.source_ref < 'attendance:' || e.id || ';')) ORDER BY e.\"end\"",
        (iso(now), iso(now - RECENT)))]


def _attendance(db, now: datetime, tz: tzinfo):
    on_roster = {staff_id for (staff_id,) in db.conn.execute("SELECT staff_id FROM staff")}
    for event_id in _ended_events(db, now):
        event = get_event(db, event_id)
        for row in attendance_of(db, event, now):
            if row["status"] == "present" and row["staff_id"] in on_roster:
                yield (row["staff_id"], "attendance", event["title"], "",
                       _day(event["start"], tz), f"attendance:{event_id}:{row['staff_id']}")


def _hours(db, tz: tzinfo):
    rows = db.conn.execute(
        "SELECT v.id, v.staff_id, v.hours, v.ticket_id, v.decided_at FROM volunteer_ledger v "
        "JOIN staff s ON s.staff_id = v.staff_id WHERE v.state = 'approved' AND NOT EXISTS ("
        "SELECT 1 FROM record_entries r WHERE r.source = 'system' "
        "AND r.source_ref = 'hours:' || v.id) ORDER BY v.id").fetchall()
    for entry_id, staff_id, hours, ticket_id, decided_at in rows:
        yield (staff_id, "volunteer_hours", f"{hours:g} h (#{ticket_id})", "",
               _day(decided_at, tz), f"hours:{entry_id}")


def _reports(db, tz: tzinfo):
    rows = db.conn.execute(
        "SELECT tr.report_id, tr.staff_id, t.id, t.note, t.reported_at FROM ticket_reports tr "
        "JOIN tickets t ON t.id = tr.ticket_id JOIN staff s ON s.staff_id = tr.staff_id "
        "WHERE tr.duplicate = 0 AND t.source = 'node' "
        f"AND t.state IN ({', '.join('?' * len(ACCEPTED))}) AND NOT EXISTS ("
        "SELECT 1 FROM record_entries r WHERE r.source = 'system' "
        "AND r.source_ref = 'report:' || tr.report_id) ORDER BY t.id", ACCEPTED).fetchall()
    for report_id, staff_id, ticket_id, note, reported_at in rows:
        yield (staff_id, "report", f"#{ticket_id}", (note or "")[:entries.BODY_MAX],
               _day(reported_at, tz), f"report:{report_id}")


def sync_system_entries(db, now: datetime | None = None, *, days: int = entries.DEFAULT_DAYS,
                        tz: tzinfo = entries.HOSPITAL_TZ) -> int:
    """File every system entry not filed yet (``days``: per review level);
    how many were new. What is due is read first, then written in one short
    write transaction (a savepoint inside the caller's, if any), so the
    ingest does not wait while attendance is computed."""
    now = now or datetime.now(timezone.utc)
    facts = [*_attendance(db, now, tz), *_hours(db, tz), *_reports(db, tz)]
    made = 0
    with write_transaction(db):
        for staff_id, kind, title, body, day, ref in facts:
            made += entries.insert(db, staff_id, kind, title[:entries.TITLE_MAX], body, day,
                                   who=entries.SYSTEM, now=now, days=days, source="system",
                                   source_ref=ref) is not None
    return made
