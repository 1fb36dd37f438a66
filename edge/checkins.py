"""One ``checkin`` record per person and event, however it was made.

The portal (staff number + PIN, one tap, binding) and presence (a bound phone
seen during the event) both check people in through
``checkin_in_transaction``. The per-person-per-event dedup lives in the node
table ``local_checkins`` (key: staff id + event id, or ``day:<UTC date>``
while no event is on), so someone who tapped on the portal is not checked in
a second time when presence sees their phone, and the other way round.
"""

from datetime import datetime, timezone

from protocol.clock import iso

NO_EVENT = "day:"  # local_checkins key prefix (+ UTC date) while no event is on
METHODS = ("portal", "presence")


def event_now(state, now: datetime, synced: bool | None) -> dict | None:
    """The event a check-in made at ``now`` (the node's wall clock) counts
    for: the zone's event on then (``NodeState.active_event``), but none
    while the node knows its wall clock is not set (``synced`` False, see
    ``edge.health.NodeClock``). A Pi that boots without network at 09:00
    believing it is yesterday evening would otherwise check people in to
    yesterday's lecture (or, set ahead, to tomorrow's). Such check-ins go out
    without an event, flagged with the clock state, and the hub matches them
    to the event on at their corrected time (hub/ingest/clockfix.py)."""
    if synced is False:
        return None
    return state.active_event(now)


def checkin_key(event: dict | None, ts: str) -> str:
    """The ``local_checkins`` key: the event id, or the UTC day while none is on."""
    return event["id"] if event else NO_EVENT + ts[:10]


def checked_in(db, staff_id: str, event: dict | None, ts: str) -> str | None:
    """When this person checked in to ``event`` (on ``ts``'s day while none is on)."""
    row = db.conn.execute(
        "SELECT ts FROM local_checkins WHERE staff_id = ? AND event_id = ?",
        (staff_id, checkin_key(event, ts))).fetchone()
    return row[0] if row else None


def checkin_in_transaction(outbox, staff_id: str, event: dict | None, zone: str,
                           device: str | None, method: str = "portal", *,
                           now: datetime | None = None) -> tuple[bool, str]:
    """Queue a ``checkin`` record unless this person already checked in to
    ``event``; returns ``(created, ts of the check-in that counts)``.

    Call inside the caller's write transaction (BEGIN IMMEDIATE, e.g.
    ``edge.db.immediate`` or the portal's queued one), so that the lookup,
    the outbox append and the ``local_checkins`` row are one atomic step and
    two writers cannot both create one. ``now`` is the moment of the
    check-in (default: the wall clock).
    """
    if method not in METHODS:
        raise ValueError(f"unknown check-in method {method!r}")
    ts = iso(now or datetime.now(timezone.utc))
    key = checkin_key(event, ts)
    db = outbox.db
    row = db.conn.execute(
        "SELECT ts FROM local_checkins WHERE staff_id = ? AND event_id = ?", (staff_id, key)
    ).fetchone()
    if row is not None:
        return False, row[0]
    record_id = outbox.append({
        "type": "checkin", "ts": ts, "staff_id": staff_id,
        "event_id": event["id"] if event else None,
        "zone": zone, "method": method, "device": device,
    })
    db.conn.execute(
        "INSERT INTO local_checkins (staff_id, event_id, ts, record_id) VALUES (?, ?, ?, ?)",
        (staff_id, key, ts, record_id),
    )
    return True, ts
