"""Records made while a node's clock was wrong: flag them, and correct them
where the hub can.

A node that boots without network keeps a wrong wall clock until NTP sets it,
and the clock may jump (NTP steps it, someone sets it by hand). Records it
makes meanwhile carry ``clock_synced: false``, its boot id and ``mono``, its
monotonic clock (seconds since boot, never jumps). A batch envelope carries
the node's clock at sending (``protocol.records.Clock``), with its own
``mono``. For a record of the batch's boot, ``batch mono - record mono`` is
how long before the batch it was made, so its true time is the batch's true
time (its ``sent_at`` once the node is synchronised, else the hub's receipt,
plus network latency) minus that. The hub shifts the record's times by the
difference. Without ``mono`` (older nodes), while the batch's clock is still
unsynchronised in the same boot, the record's error is taken to be the
batch's: ``received_at - sent_at``. A record of another boot cannot be
corrected: it is kept as sent and flagged. Either way a ``clock_flags`` row
keeps the node's own timestamp and the offset applied (NULL when none), for
the nodes page and audits.

Two guards follow from a clock that jumps: a presence interval that ends
before it starts is stored as a moment (``last_seen`` = ``first_seen``) and
flagged, never as negative dwell; and a check-in made with the clock unset
is matched to its event by its corrected time (``match_events``).
"""

from datetime import datetime, timedelta

from protocol.clock import iso, parse_iso
from protocol.records import TIME_FIELDS, Clock, validate


def _shift(text: str, offset: timedelta, minute: bool = False) -> str:
    moved = parse_iso(text) + offset
    if minute:
        moved = moved.replace(second=0, microsecond=0)
    return iso(moved)


def shifted(record: dict, offset: timedelta) -> dict:
    out = {**record, "ts": _shift(record["ts"], offset)}
    for name in TIME_FIELDS.get(record["type"], ()):
        out[name] = _shift(record[name], offset, minute=name == "minute")
    return out


def correct(records: list[dict], clock: Clock | None,
            received_at: str) -> tuple[list[dict], list[tuple]]:
    """``(records, flags)``: the records with the correctable ones shifted, and
    a ``clock_flags`` row ``(record_id, type, node_ts, offset_seconds)`` per
    record made with an unsynchronised clock, or whose interval ends before
    it starts (clamped: see ``_no_negative_dwell``)."""
    received = parse_iso(received_at)
    batch_offset = None
    if clock is not None and clock.synced is False:
        batch_offset = received - parse_iso(clock.sent_at)
    out, flags = [], []
    for record in records:
        flag = None
        if record.get("clock_synced") is False:
            offset = _offset(record, clock, received, batch_offset)
            moved = None if offset is None else _corrected(record, offset)
            flag = (record["id"], record["type"], record["ts"],
                    None if moved is None else offset.total_seconds())
            record = moved or record
        record, negative = _no_negative_dwell(record)
        if negative and flag is None:
            flag = (record["id"], record["type"], record["ts"], None)
        out.append(record)
        if flag is not None:
            flags.append(flag)
    return out, flags


def _offset(record: dict, clock: Clock | None, received: datetime,
            batch_offset: timedelta | None) -> timedelta | None:
    """How far ``record``'s node clock was off, when the hub can tell (see
    protocol.records.Clock): by the monotonic clock, for a record of the
    batch's boot; else, without ``mono``, by the batch's own offset."""
    if clock is None or record.get("boot") != clock.boot:
        return None
    mono = record.get("mono")
    if mono is not None and clock.mono is not None:
        if mono > clock.mono:
            return None  # not of this boot after all: nothing to go by
        batch_time = parse_iso(clock.sent_at) if clock.synced else received
        made = batch_time - timedelta(seconds=clock.mono - mono)
        return made - parse_iso(record["ts"])
    return batch_offset


def _no_negative_dwell(record: dict) -> tuple[dict, bool]:
    """A presence interval that ends before it starts (a node clock that
    jumped back while it was open) is stored as a moment, never as negative
    dwell: ``last_seen`` is clamped to ``first_seen``. Returns (record,
    whether it was clamped)."""
    if record["type"] != "presence" or record["last_seen"] >= record["first_seen"]:
        return record, False
    return {**record, "last_seen": record["first_seen"]}, True


# The node lets a phone check in this long before an event starts
# (edge/state.py EARLY_CHECKIN); the hub matches by the same window.
EARLY_CHECKIN = timedelta(minutes=30)
_EVENT_AT = """
    SELECT id FROM events
    WHERE EXISTS (SELECT 1 FROM json_each(events.zones) WHERE value = :zone)
      AND start <= :early AND "end" >= :ts
    ORDER BY start, id LIMIT 1
"""


def match_events(conn, records: list[dict], flags: list[tuple]) -> list[dict]:
    """Check-ins made with an unsynchronised clock, matched to their event
    by the hub's time, not the node's.

    A node whose clock is not set does not know which event is on (a Pi that
    boots at 09:00 thinking it is yesterday evening would find yesterday's
    lecture): it sends such check-ins without an event (edge/checkins.py).
    Once ``correct`` has moved one to its true time, it belongs to the event
    of its zone on at that time (with the node's early check-in window); a
    check-in that could not be corrected belongs to no event (its time is not
    known). Flagged rows stay in ``clock_flags`` either way.
    """
    corrected = {rid: offset is not None for rid, kind, _, offset in flags if kind == "checkin"}
    if not corrected:
        return records
    out = []
    for record in records:
        if record["id"] in corrected and record["type"] == "checkin":
            event = None
            if corrected[record["id"]]:
                ts = parse_iso(record["ts"])
                row = conn.execute(_EVENT_AT, {"zone": record["zone"], "ts": record["ts"],
                                               "early": iso(ts + EARLY_CHECKIN)}).fetchone()
                event = row[0] if row else None
            record = {**record, "event_id": event}
        out.append(record)
    return out


def _corrected(record: dict, offset: timedelta) -> dict | None:
    """``record`` shifted by ``offset``, or None when that would take a time
    out of the range records may carry (a node clock wrong by centuries)."""
    try:
        return validate(shifted(record, offset))
    except (OverflowError, ValueError):
        return None


def unsynced_counts(db, since: datetime) -> dict[str, dict]:
    """Per node: records flagged since ``since``, and how many were corrected."""
    rows = db.conn.execute(
        "SELECT node, count(*), count(offset_seconds) FROM clock_flags WHERE received_at >= ? "
        "GROUP BY node", (iso(since),))
    return {node: {"flagged": flagged, "corrected": corrected}
            for node, flagged, corrected in rows}
