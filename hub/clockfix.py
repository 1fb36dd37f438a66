"""Records made while a node's clock was wrong: flag them, and correct them
where the hub can.

A node that boots without network keeps a wrong wall clock until NTP sets it.
Records it makes meanwhile carry ``clock_synced: false`` and its boot id. A
batch envelope carries the node's clock at sending (``protocol.records.Clock``).
When that clock is still unsynchronised and in the same boot as a record, the
record's error equals the batch's: ``received_at - sent_at`` (plus network
latency, milliseconds). The hub shifts the record's times by it. A record
whose node has synchronised (or rebooted) since cannot be corrected: it is
kept as sent and flagged. Either way a ``clock_flags`` row keeps the node's
own timestamp and the offset applied, for the nodes page and audits.
"""

from datetime import datetime, timedelta

from protocol.clock import iso, parse_iso
from protocol.records import TIME_FIELDS, Clock


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
    record made with an unsynchronised clock."""
    offset = None
    if clock is not None and clock.synced is False:
        offset = parse_iso(received_at) - parse_iso(clock.sent_at)
    out, flags = [], []
    for record in records:
        if record.get("clock_synced") is not False:
            out.append(record)
        elif offset is not None and record.get("boot") == clock.boot:
            out.append(shifted(record, offset))
            flags.append((record["id"], record["type"], record["ts"], offset.total_seconds()))
        else:
            out.append(record)
            flags.append((record["id"], record["type"], record["ts"], None))
    return out, flags


def unsynced_counts(db, since: datetime) -> dict[str, dict]:
    """Per node: records flagged since ``since``, and how many were corrected."""
    rows = db.conn.execute(
        "SELECT node, count(*), count(offset_seconds) FROM clock_flags WHERE received_at >= ? "
        "GROUP BY node", (iso(since),))
    return {node: {"flagged": flagged, "corrected": corrected}
            for node, flagged, corrected in rows}
