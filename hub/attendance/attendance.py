"""Attendance on the hub database: events, who is expected, and who was there.

Plain functions over a sqlite-utils ``Database``, no web framework, so the
dashboard, the API and the exports share them. Event ``start``/``end`` and
record timestamps are stored as the wire writes them (ISO 8601 UTC with
milliseconds, ``protocol.clock.iso``), so they compare correctly as text.

Attendance per event x staff (``event_attendance``) is derived on every call,
never stored, from three sources:

* the event's **expected** attendees (``event_expected``: departments and
  people, see ``set_expected``), and the people **registered** for it
  (``registrations``, hub/schedule/registration.py; not those waiting);
* **check-ins** naming the event (``checkins.event_id``), by portal or by
  presence;
* **presence** intervals in the event's zone(s), attributed to a person by
  the record's ``staff_id`` or, when that is null, by the hub's current
  binding of the record's ``device`` (the ``devices`` table).

The rules, for an event from ``start`` to ``end`` looked at ``now``:

* Intervals whose times the hub could not trust are ignored: those flagged
  in ``clock_flags`` without a correction (made with a node clock that was
  not set, in a boot the hub has no reference for; or ending before they
  start, which the hub stores as a moment: hub/ingest/clockfix.py), and any with
  ``last_seen < first_seen``. The others are clipped to [start, end] and merged where they
  overlap (two nodes in one hall see the same phone), so time is never
  counted twice. ``dwell`` is the length of the merged intervals;
  ``first_seen``/``last_seen`` are the clipped ends (the time in the event).
* ``required`` = ``min_presence`` (default 0.75) x the duration so far,
  ``min(now, end) - start``: during the lecture the live view is fair to
  people who have been there since the start. While the event is on, someone
  in the room now is held to the duration so far less the 5-minute grace, so
  that one who walked in a minute late is not "partial" a minute later.
* **present**: checked in (portal or presence) and either seen with
  ``dwell >= required``, or checked in from a zone that had no presence
  source during the event (see below); **partial**: checked in or seen, but
  not present; **absent**: expected, and neither checked in nor seen.
  Being seen without any check-in is at most partial: check-in is what a
  person (or their bound phone) does to attend.
* A portal check-in with no presence data: a zone "has a presence source"
  during the event when any presence interval or occupancy minute of that
  zone falls in the event, or someone checked in to the event there by
  presence. Where no source watched (a node without presence sniffing), the
  check-in is all the hub can know, and it counts as present. Where a source
  watched and never saw the person, the check-in alone is partial (their
  phone was never in the room, or it is not bound: re-binding fixes that).
* ``late_minutes``: arrival - start when more than the 5-minute grace, else 0.
  Arrival is ``first_seen``, or the earliest check-in when never seen.
* ``early_leave_minutes``: end - ``last_seen`` when more than the grace and
  the person has left: the event has ended, or the interval holding their
  latest ``last_seen`` is closed (during the event: left, maybe to return).
  0 while their interval is open or when never seen; None for the absent.
* An **open** interval (``closed`` false) says the phone is still there: the
  node refreshes its ``last_seen`` every minute or so and closes it after five
  silent minutes. So an open interval counts up to ``min(now, end)``; one not
  refreshed for ``OPEN_FRESH`` (its node went quiet) counts as closed at its
  ``last_seen``. Without this, every phone that arrived before the start would
  read as "never seen, 0 min" for the lecture's first minute.
* **Settled.** Once an event is older than the presence retention
  (hub/retention.py), its rows are computed one last time and kept
  (``attendance_settled``) before the intervals are pruned; from then on an
  ended event's attendance is read from there, unchanged by later edits.
* **While the event is on** (``now < end``) each row also says where the
  person is *now* (``now``, one of ``LIVE_STATES``; None once it is over):
  ``in_room`` (an open interval, or checked in where no presence source
  watches), ``left`` (seen during the event, no interval open now),
  ``unseen`` (checked in, but the room's presence never saw their phone) or
  ``not_arrived`` (neither). ``status`` is then the verdict so far; once the
  event is over it is the verdict.
* **Registration.** Each row says whether the person is ``registered`` and
  whether they are a ``walk_in``: checked in or seen, but neither expected
  nor registered. ``registration_counts`` counts the registered, the
  registered who are absent and the walk-ins.
"""

import json
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from operator import itemgetter
from typing import Iterable

from sqlite_utils import Database

from hub.attendance.occupancy import minute_bounds
from hub.db import write_transaction
from protocol.clock import iso

GRACE = timedelta(minutes=5)
DEFAULT_MIN_PRESENCE = 0.75
STATUSES = ("present", "partial", "absent")
LIVE_STATES = ("in_room", "unseen", "left", "not_arrived")
OPEN_FRESH = timedelta(minutes=10)  # away (5 min) + refresh (1 min) + sync slack
EXPECTED_KINDS = ("department", "staff")

_EVENT_COLUMNS = 'e.id, e.title, e.kind, e.zones, e.start, e."end", e.credit_hours, e.min_presence'
_CHECKED_IN = "(SELECT COUNT(DISTINCT c.staff_id) FROM checkins c WHERE c.event_id = e.id)"
# Text bounds a little wider than the event: a timestamp without milliseconds
# ("...:00Z") sorts after "...:00.000Z"; the exact test is done in Python.
_SLACK = timedelta(seconds=1)


def day_bounds(day: date, tz: tzinfo) -> tuple[str, str]:
    """The wire timestamps of local midnight starting ``day`` and the next one."""
    start = datetime.combine(day, time.min, tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)
    return iso(start), iso(end)


def parse_time(text: str) -> datetime:
    """A stored timestamp as an aware datetime (naive ones are taken as UTC)."""
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=timezone.utc)


def _event(row: dict) -> dict:
    event = dict(row)
    try:
        zones = json.loads(event["zones"] or "[]")
    except ValueError:
        zones = []
    event["zones"] = zones if isinstance(zones, list) else []
    return event


def list_events(db: Database, day: date | None = None, tz: tzinfo | None = None, *,
                counts: bool = True, now: datetime | None = None) -> list[dict]:
    """Events ordered by start, each with ``checked_in`` (distinct staff) and,
    unless ``counts`` is false, ``present``/``partial``/``absent``/``expected``
    counts as of ``now``.

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
    events = [_event(row) for row in db.query(sql, params)]
    if counts:
        for event in events:
            counts_of = count_statuses(attendance_of(db, event, now))
            del counts_of["now"]
            event.update(counts_of)
    return events


def get_event(db: Database, event_id: str) -> dict | None:
    """One event with its ``checked_in`` count, or None when unknown."""
    sql = f"SELECT {_EVENT_COLUMNS}, {_CHECKED_IN} AS checked_in FROM events e WHERE e.id = ?"
    rows = list(db.query(sql, [event_id]))
    return _event(rows[0]) if rows else None


# --- expected attendees ---------------------------------------------------------


def set_expected(db: Database, event_id: str, departments: Iterable[str] = (),
                 staff: Iterable[str] = ()) -> None:
    """Replace who ``event_id`` expects: everyone in ``departments`` (matched
    exactly against ``staff.department``, as the roster spells it) plus the
    people in ``staff`` (staff ids, in the roster or not yet).

    Raises ValueError for an unknown event or an empty name.
    """
    rows = [("department", d) for d in departments] + [("staff", s) for s in staff]
    for kind, value in rows:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"expected {kind}: an empty or non-text value {value!r}")
    with write_transaction(db):
        if not db.conn.execute("SELECT 1 FROM events WHERE id = ?", (event_id,)).fetchone():
            raise ValueError(f"unknown event: {event_id}")
        db.conn.execute("DELETE FROM event_expected WHERE event_id = ?", (event_id,))
        db.conn.executemany(
            "INSERT INTO event_expected (event_id, kind, value) VALUES (?, ?, ?) "
            "ON CONFLICT (event_id, kind, value) DO NOTHING",
            [(event_id, kind, value.strip()) for kind, value in rows])


def get_expected(db: Database, event_id: str) -> dict:
    """``{"departments": [...], "staff": [...]}`` that ``event_id`` expects, sorted."""
    found: dict = {"departments": [], "staff": []}
    for kind, value in db.conn.execute(
            "SELECT kind, value FROM event_expected WHERE event_id = ? ORDER BY kind, value",
            (event_id,)):
        found["departments" if kind == "department" else "staff"].append(value)
    return found


def expected_staff(db: Database, event_id: str) -> set[str]:
    """The staff ids ``event_id`` expects: its departments' staff, its people
    and those registered for it (``registered_staff``)."""
    sql = """
        SELECT s.staff_id FROM staff s JOIN event_expected x
            ON x.kind = 'department' AND x.value = s.department
        WHERE x.event_id = :event
        UNION
        SELECT value FROM event_expected WHERE event_id = :event AND kind = 'staff'
        UNION
        SELECT staff_id FROM registrations WHERE event_id = :event AND state = 'registered'
    """
    return {row[0] for row in db.conn.execute(sql, {"event": event_id})}


def registered_staff(db: Database, event_id: str) -> set[str]:
    """The staff ids registered for ``event_id`` (not those on its waiting list)."""
    return {row[0] for row in db.conn.execute(
        "SELECT staff_id FROM registrations WHERE event_id = ? AND state = 'registered'",
        (event_id,))}


# --- attendance -------------------------------------------------------------------


def merge_intervals(intervals: Iterable[tuple[datetime, datetime]]) -> list[tuple]:
    """Sorted, non-overlapping union of ``(start, end)`` intervals."""
    merged: list[list] = []
    for lo, hi in sorted(intervals):
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return [tuple(m) for m in merged]


def _first_checkins(db: Database, event_id: str) -> dict[str, dict]:
    """Each person's earliest check-in to the event, plus the zones of all theirs."""
    sql = """
        SELECT c.staff_id, c.ts, c.method, c.node, c.zone FROM checkins c
        WHERE c.event_id = ? ORDER BY c.ts, c.id
    """
    firsts: dict[str, dict] = {}
    for staff_id, ts, method, node, zone in db.conn.execute(sql, (event_id,)):
        first = firsts.setdefault(staff_id, {"checked_in_at": ts, "method": method,
                                             "node": node, "zones": set()})
        first["zones"].add(zone)
    return firsts


def _presence(db: Database, zones: list[str], start: datetime, end: datetime,
              now: datetime) -> dict:
    """Valid presence intervals in ``zones`` overlapping [start, end] as of
    ``now``, per person: ``{staff_id: [(first_seen, last_seen, closed), ...]}``
    unclipped, open ones reaching ``min(now, end)`` (``_as_of``); before the
    start, the open ones of those already in the room."""
    sql = """
        SELECT coalesce(p.staff_id, d.staff_id), p.first_seen, p.last_seen, p.closed
        FROM presence p LEFT JOIN devices d ON d.device = p.device
        WHERE p.zone IN (SELECT value FROM json_each(:zones))
          AND (p.last_seen >= :lo OR (p.closed = 0 AND p.last_seen >= :fresh))
          AND p.first_seen <= :hi
          AND NOT EXISTS (SELECT 1 FROM clock_flags f
                          WHERE f.record_id = p.id AND f.offset_seconds IS NULL)
    """
    params = {"zones": json.dumps(zones), "lo": iso(start - _SLACK), "hi": iso(end + _SLACK),
              "fresh": iso(now - OPEN_FRESH - _SLACK)}
    horizon = min(now, end)
    found: dict[str, list] = {}
    for staff_id, first_seen, last_seen, closed in db.conn.execute(sql, params):
        if staff_id is None:
            continue  # a device nobody is bound to (any more)
        try:
            first, last = parse_time(first_seen), parse_time(last_seen)
        except ValueError:
            continue
        if last < first:
            continue
        last, closed = _as_of(last, bool(closed), now, horizon)
        if (last < start and closed) or first > end:
            continue  # an open one before the start: in the room, waiting
        found.setdefault(staff_id, []).append((first, last, closed))
    return found


def _as_of(last: datetime, closed: bool, now: datetime,
           horizon: datetime) -> tuple[datetime, bool]:
    """(last_seen, closed) of an interval as of ``now``: an open one refreshed
    within ``OPEN_FRESH`` reaches ``horizon``; an older open one is as good as
    closed at its ``last_seen``."""
    if closed:
        return last, True
    if now - last > OPEN_FRESH:
        return last, True
    return max(last, horizon), False


def _presence_sources(db: Database, event_id: str, zones: Iterable[str], start: datetime,
                      end: datetime, now: datetime) -> set[str]:
    """Which of ``zones`` had a presence source during the event: a presence
    interval or an occupancy minute there, or a presence check-in to it.

    One EXISTS probe per zone stops at the first interval or minute found; a
    UNION of the zones of every row in the window read them all (the hall's
    thousands of intervals during a big lecture)."""
    sql = """
        SELECT z.value FROM json_each(:zones) z
        WHERE EXISTS (SELECT 1 FROM presence p WHERE p.zone = z.value
                        AND (p.last_seen >= :lo OR (p.closed = 0 AND p.last_seen >= :fresh))
                        AND p.first_seen <= :hi)
           OR EXISTS (SELECT 1 FROM occupancy o WHERE o.zone = z.value
                        AND o.minute >= :lo_minute AND o.minute < :hi_minute)
        UNION SELECT zone FROM checkins WHERE event_id = :event AND method = 'presence'
    """
    params = {"zones": json.dumps(sorted(set(zones))), "event": event_id,
              "lo": iso(start - _SLACK), "hi": iso(end + _SLACK),
              "fresh": iso(now - OPEN_FRESH - _SLACK)}
    params["lo_minute"], params["hi_minute"] = minute_bounds(start, end)
    return {row[0] for row in db.conn.execute(sql, params)}


def _left(intervals: list[tuple]) -> bool:
    """Whether the interval(s) holding the latest ``last_seen`` are closed."""
    latest = max(last for _, last, _ in intervals)
    return all(closed for _, last, closed in intervals if last == latest)


def _wire(dt: datetime) -> str:
    """``protocol.clock.iso``, twice as fast for the UTC datetimes read back."""
    if dt.tzinfo is timezone.utc:
        return dt.isoformat(timespec="milliseconds")[:-6] + "Z"
    return iso(dt)


def _minutes(delta: timedelta) -> float:
    return round(delta.total_seconds() / 60, 1) if delta else 0.0


def _staff_names(db: Database, staff_ids: Iterable[str]) -> dict[str, tuple]:
    sql = ("SELECT staff_id, name, department FROM staff "
           "WHERE staff_id IN (SELECT value FROM json_each(?))")
    return {sid: (name, dept) for sid, name, dept in
            db.conn.execute(sql, (json.dumps(sorted(staff_ids)),))}


def attendance_of(db: Database, event: dict, now: datetime | None = None) -> list[dict]:
    """Attendance rows for ``event`` (a row from ``get_event``/``list_events``)
    as of ``now`` (default: the current time); see the module docstring.

    One row per person: ``staff_id``, ``name``, ``department`` (None when not
    in the roster), ``status``, ``checked_in_at``/``method``/``node`` of the
    earliest check-in (None when none), ``first_seen``/``last_seen`` (wire
    timestamps, None when never seen), ``dwell_minutes``, ``late_minutes``,
    ``early_leave_minutes`` (None for the absent), ``expected``, ``registered``,
    ``walk_in`` (checked in or seen, neither expected nor registered) and ``now``
    (``LIVE_STATES`` while the event is on, else None). Ordered by ``now``
    while the event is on, else present, partial, absent; then by check-in
    time (none last), then name.
    """
    now = now or datetime.now(timezone.utc)
    start, end = parse_time(event["start"]), parse_time(event["end"])
    if end < start:
        end = start
    if now >= end:
        settled = settled_rows(db, event["id"])
        if settled is not None:
            return settled
    min_presence = event.get("min_presence")
    min_presence = DEFAULT_MIN_PRESENCE if min_presence is None else float(min_presence)
    required = required_in_room = timedelta(0)
    if now > start:
        required = (min(now, end) - start) * min_presence
        required_in_room = max(min(now, end) - start - GRACE, timedelta(0)) * min_presence
    zones = [z for z in event.get("zones") or [] if isinstance(z, str)]

    expected = expected_staff(db, event["id"])
    registered = registered_staff(db, event["id"])
    checkins = _first_checkins(db, event["id"])
    presence = _presence(db, zones, start, end, now) if zones else {}
    checkin_zones = set().union(*(c["zones"] for c in checkins.values()))
    sources = _presence_sources(db, event["id"], set(zones) | checkin_zones, start, end, now)
    on = is_on(event, now)
    people = expected | checkins.keys() | presence.keys()
    names = _staff_names(db, people)

    # Most people are seen in one interval, and many from before the start to
    # after the end: skip the sort and re-format the event's own bounds once.
    stamps = {start: iso(start), end: iso(end)}
    zero = timedelta(0)
    rank = {status: n for n, status in enumerate(STATUSES)}
    live_rank = {state: n for n, state in enumerate(LIVE_STATES)}
    keyed = []  # (sort key, row): by state now (or verdict), check-in time, name
    for staff_id in people:
        checkin = checkins.get(staff_id)
        found = presence.get(staff_id, ())
        intervals = [iv for iv in found if iv[1] >= start]
        if not intervals:
            merged, dwell = (), zero
        elif len(intervals) == 1:
            first, last, _ = intervals[0]
            merged = ((first if first > start else start, last if last < end else end),)
            dwell = merged[0][1] - merged[0][0]
        else:
            merged = merge_intervals((max(first, start), min(last, end))
                                     for first, last, _ in intervals)
            dwell = sum((hi - lo for lo, hi in merged), zero)
        seen = bool(merged)
        in_room = any(not closed for _, _, closed in found)
        unwatched = checkin is not None and bool(checkin["zones"] - sources)
        waiting = now <= start and in_room  # there before the start: nothing to judge yet
        needed = required_in_room if on and in_room else required
        if checkin is not None and (unwatched or waiting or (seen and dwell >= needed)):
            status = "present"
        elif checkin is not None or seen:
            status = "partial"
        else:
            status = "absent"

        late = early = None
        if status != "absent":
            arrival = merged[0][0] if seen else parse_time(checkin["checked_in_at"])
            arrival = min(max(arrival, start), end)
            late = arrival - start if arrival - start > GRACE else zero
            early = zero
            if seen and end - merged[-1][1] > GRACE and (now >= end or _left(intervals)):
                early = end - merged[-1][1]

        name, department = names.get(staff_id, (None, None))
        first_seen = last_seen = None
        if seen:
            lo, hi = merged[0][0], merged[-1][1]
            first_seen = stamps[lo] if lo in stamps else _wire(lo)
            last_seen = stamps[hi] if hi in stamps else _wire(hi)
        checked_in_at = checkin["checked_in_at"] if checkin else None
        live = None
        if on:
            live = ("in_room" if in_room or unwatched else "left" if seen
                    else "unseen" if checkin is not None else "not_arrived")
        order = live_rank[live] if on else rank[status]
        keyed.append(((order, checked_in_at is None, checked_in_at or "", name or "",
                       staff_id), {
            "staff_id": staff_id, "name": name, "department": department,
            "status": status, "now": live,
            "checked_in_at": checked_in_at,
            "method": checkin["method"] if checkin else None,
            "node": checkin["node"] if checkin else None,
            "first_seen": first_seen, "last_seen": last_seen,
            "dwell_minutes": _minutes(dwell),
            "late_minutes": None if late is None else _minutes(late),
            "early_leave_minutes": None if early is None else _minutes(early),
            "expected": staff_id in expected,
            "registered": staff_id in registered,
            "walk_in": status != "absent" and staff_id not in expected,
        }))
    keyed.sort(key=itemgetter(0))
    return [row for _, row in keyed]


def settled_rows(db: Database, event_id: str) -> list[dict] | None:
    """The event's attendance as it was settled before the presence intervals
    it came from were pruned (hub/attendance/retention.py), or None."""
    row = db.conn.execute("SELECT rows FROM attendance_settled WHERE event_id = ?",
                          (event_id,)).fetchone()
    if row is None:
        return None
    rows = json.loads(row[0])
    for settled in rows:  # settled before rows said so
        settled.setdefault("registered", False)
        settled.setdefault("walk_in", settled["status"] != "absent" and not settled["expected"])
    return rows


def event_attendance(db: Database, event_id: str, now: datetime | None = None) -> list[dict]:
    """``attendance_of`` the event named ``event_id``; [] when it is unknown."""
    event = get_event(db, event_id)
    return [] if event is None else attendance_of(db, event, now)


def is_on(event: dict, now: datetime | None = None) -> bool:
    """Whether ``event`` has not ended at ``now``: its rows say where people are now."""
    return (now or datetime.now(timezone.utc)) < parse_time(event["end"])


def count_statuses(rows: list[dict], on: bool = False) -> dict:
    """``{"present", "partial", "absent", "expected", "now"}`` counts of
    attendance rows; ``now`` counts ``LIVE_STATES`` when the event is ``on``
    (``is_on``), else it is None."""
    counts = {status: 0 for status in STATUSES}
    live = dict.fromkeys(LIVE_STATES, 0)
    for row in rows:
        counts[row["status"]] += 1
        if row["now"] is not None:
            live[row["now"]] += 1
    counts["expected"] = sum(1 for row in rows if row["expected"])
    counts["now"] = live if on else None
    return counts


def registration_counts(rows: list[dict]) -> dict:
    """``{"registered", "registered_absent", "walk_ins"}`` counts of attendance rows."""
    return {"registered": sum(1 for row in rows if row["registered"]),
            "registered_absent": sum(1 for row in rows
                                     if row["registered"] and row["status"] == "absent"),
            "walk_ins": sum(1 for row in rows if row["walk_in"])}


def attendance_report(db: Database, event_id: str, now: datetime | None = None) -> dict | None:
    """``{"event", "counts", "attendance"}`` for one event, or None when
    unknown; for an event taking registration also ``registration``
    (``registration_counts``)."""
    event = get_event(db, event_id)
    if event is None:
        return None
    now = now or datetime.now(timezone.utc)
    rows = attendance_of(db, event, now)
    report = {"event": event, "counts": count_statuses(rows, is_on(event, now)),
              "attendance": rows}
    if db.conn.execute("SELECT 1 FROM event_registration WHERE event_id = ?",
                       (event_id,)).fetchone():
        report["registration"] = registration_counts(rows)
    return report


# --- fleet ----------------------------------------------------------------------------


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
    return db.conn.execute("SELECT count(*) FROM quarantine").fetchone()[0]
