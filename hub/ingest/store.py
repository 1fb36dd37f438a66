"""Writing ingested records into the hub database.

One batch is one transaction: the records it carries, their quarantined
siblings, and nothing else. A record id seen before is ignored, except that a
``presence`` id extends the interval it names. ``registration`` records are
not stored as rows: each is applied to the event's registrations (places,
waiting list) in ``taken_at`` order inside the batch's transaction
(hub/schedule/registration_records.py, which also makes a repeat change nothing).
"""

import json
from operator import attrgetter
from typing import NamedTuple

from protocol import wire
from protocol.clock import now_iso
from protocol.records import Clock, parse_envelope

from hub.db import write_transaction
from hub.ingest import clockfix
from hub.contests import acts
from hub.schedule import registration_records
from hub.surveys import alerts
from hub.surveys import tasks as survey_tasks

_COMMON = ("id", "node", "ts", "clock_synced", "received_at")
_FIELDS = {
    "binding": ("device", "staff_id"),
    "checkin": ("staff_id", "event_id", "zone", "method", "device"),
    "presence": ("device", "staff_id", "zone", "first_seen", "last_seen", "closed"),
    "occupancy": ("zone", "minute", "devices"),
    "report": ("report_id", "staff_id", "category", "note", "zone", "lat", "lon",
               "photos", "taken_at"),
    "survey_response": ("task_id", "questionnaire", "version", "staff_id", "zone", "answers",
                        "taken_at"),
    "score": ("event_id", "act", "staff_id", "value", "taken_at"),
}
_TABLES = {"binding": "bindings", "checkin": "checkins", "presence": "presence",
           "occupancy": "occupancy", "report": "reports",
           "survey_response": "survey_responses", "score": "scores"}
# A repeated id is ignored, except a presence id, which extends its interval
# (never shrinks it). Scalar max() is SQLite's, defined on PostgreSQL too
# (hub/sql/compat.py); the table's own columns are named with the table:
# PostgreSQL finds a bare name ambiguous beside ``excluded``.
_ON_CONFLICT = {
    "presence": "ON CONFLICT(id) DO UPDATE SET "
                "last_seen = max(presence.last_seen, excluded.last_seen), "
                "closed = max(presence.closed, excluded.closed), "
                "staff_id = coalesce(excluded.staff_id, presence.staff_id)",
}


def _insert_sql(kind: str) -> str:
    columns = _COMMON + _FIELDS[kind]
    return (
        f"INSERT INTO {_TABLES[kind]} ({', '.join(columns)}) "
        f"VALUES ({', '.join('?' * len(columns))}) "
        + _ON_CONFLICT.get(kind, "ON CONFLICT(id) DO NOTHING")
    )


_SQL = {kind: _insert_sql(kind) for kind in _FIELDS}
_BIND_DEVICE = (
    "INSERT INTO devices (device, staff_id, bound_at, node) VALUES (?, ?, ?, ?) "
    "ON CONFLICT(device) DO UPDATE SET staff_id = excluded.staff_id, "
    "bound_at = excluded.bound_at, node = excluded.node "
    "WHERE excluded.bound_at >= devices.bound_at"
)
# One phone per person: a newer binding (a phone that rotated its MAC) replaces
# the older ones; an older binding arriving late (from a node that was offline)
# changes nothing.
_HAS_NEWER = "SELECT 1 FROM devices WHERE staff_id = ? AND device != ? AND bound_at > ?"
_UNBIND_OLDER = "DELETE FROM devices WHERE staff_id = ? AND device != ? AND bound_at <= ?"


def _apply_binding(conn, device: str, staff_id: str, ts: str, node: str) -> None:
    if conn.execute(_HAS_NEWER, (staff_id, device, ts)).fetchone():
        return
    conn.execute(_BIND_DEVICE, (device, staff_id, ts, node))
    conn.execute(_UNBIND_OLDER, (staff_id, device, ts))


def _row(record: dict, node: str, received_at: str) -> tuple:
    synced = record.get("clock_synced")
    values = [record["id"], node, record["ts"], None if synced is None else int(synced),
              received_at]
    for name in _FIELDS[record["type"]]:
        value = record.get(name)
        if name in ("photos", "answers"):
            value = json.dumps(value, ensure_ascii=False)
        elif isinstance(value, bool):
            value = int(value)
        values.append(value)
    return tuple(values)


def _storable(text: str) -> str:
    """``text`` as SQLite can store it: a lone surrogate (valid in JSON
    strings, not in UTF-8) becomes its ``\\udXXX`` escape."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def quarantine_row(topic, node, reason, payload, record_id=None, received_at=None) -> dict:
    if not isinstance(payload, bytes):
        payload = json.dumps(payload, default=str).encode()
    if not isinstance(record_id, str) or len(record_id) > 64 or _storable(record_id) != record_id:
        record_id = None
    reason = _storable(reason)
    return {"received_at": received_at or now_iso(), "topic": topic, "node": node,
            "record_id": record_id, "reason": reason, "payload": payload}


_QUARANTINE = ("INSERT INTO quarantine (received_at, topic, node, record_id, reason, payload) "
               "VALUES (:received_at, :topic, :node, :record_id, :reason, :payload)")

_FLAG_CLOCK = (
    "INSERT INTO clock_flags (record_id, node, type, node_ts, offset_seconds, received_at) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(record_id) DO UPDATE SET "
    "node_ts = excluded.node_ts, offset_seconds = excluded.offset_seconds, "
    "received_at = excluded.received_at")


# Record types the hub checks against what it knows (a task, a contest) before
# storing them; a record that fails is quarantined with the reason.
_REFUSALS = {"survey_response": survey_tasks.refusal, "score": acts.refusal,
             "registration": registration_records.refusal}


def _checked(db, good: list[dict], bad: list) -> tuple[list[dict], list]:
    kept = []
    for record in good:
        check = _REFUSALS.get(record["type"])
        reason = check(db, record) if check else None
        if reason:
            bad.append((record, reason))
        else:
            kept.append(record)
    return kept, bad


def write_batch(db, topic: str, node: str, good: list[dict], bad: list,
                clock: Clock | None = None) -> list[str]:
    """Store a batch in one transaction; return the ids to acknowledge.

    Quarantined records are acknowledged too: they are durable here, and
    sending them again would not make them valid. Records made with the
    node's clock unsynchronised are corrected or flagged (hub/ingest/clockfix.py)
    by ``clock``, the node's clock when it sent the batch; their check-ins
    are matched to the event on at their corrected time, and no presence
    interval is stored ending before it starts.
    """
    received_at = now_iso()
    good, bad = _checked(db, good, list(bad))
    good, clock_flags = clockfix.correct(good, clock, received_at)
    good = clockfix.match_events(db.conn, good, clock_flags)
    by_kind: dict[str, list] = {}
    registrations = [r for r in good if r["type"] == "registration"]
    for record in good:
        if record["type"] != "registration":
            by_kind.setdefault(record["type"], []).append(_row(record, node, received_at))
    for report in alerts.reports_for(db, [r for r in good if r["type"] == "survey_response"]):
        by_kind.setdefault("report", []).append(_row(report, node, received_at))
    quarantined = [
        quarantine_row(topic, node, reason, raw,
                       raw.get("id") if isinstance(raw, dict) else None, received_at)
        for raw, reason in bad
    ]
    conn = db.conn
    # BEGIN IMMEDIATE: a registration counts the places taken before it writes.
    with write_transaction(db):
        for kind, rows in by_kind.items():
            conn.executemany(_SQL[kind], rows)
        if registrations:
            refused = registration_records.apply_records(db, node, registrations)
            if refused:  # acknowledged all the same, as every quarantined record
                conn.executemany(_QUARANTINE, [
                    quarantine_row(topic, node, reason, raw, raw["id"], received_at)
                    for raw, reason in refused])
        bindings = by_kind.get("binding")
        if bindings:
            # row layout: id, node, ts, clock_synced, received_at, device, staff_id
            for row in sorted(bindings, key=lambda r: r[2]):
                _apply_binding(conn, row[5], row[6], row[2], node)
        if quarantined:
            conn.executemany(_QUARANTINE, quarantined)
        if clock_flags:
            conn.executemany(_FLAG_CLOCK, [(rid, node, kind, node_ts, offset, received_at)
                                           for rid, kind, node_ts, offset in clock_flags])
    return [r["id"] for r in good] + [q["record_id"] for q in quarantined if q["record_id"]]


class Stored(NamedTuple):
    """What ``ingest_batch`` stored: the ids to acknowledge, the node's name
    for the batch (echoed in the ack), and whether it held reports."""
    ids: list[str]
    batch: str | None
    reports: bool


def ingest_batch(db, topic: str, node: str, payload: bytes) -> Stored:
    """Parse and store one batch payload in one transaction. A clean batch
    (protocol/wire.py) takes the fast path, ``write_clean``; any other is
    checked record by record (``parse_envelope``), its bad records
    quarantined with their reasons and its clocks corrected
    (``write_batch``). Raises InvalidEnvelope for a payload that is not a
    batch of this node's at all."""
    clean = wire.decode_clean(payload, node)
    if clean is not None:
        write_clean(db, node, clean)
        return Stored(clean.ids, clean.batch, False)
    good, bad, batch, clock = parse_envelope(payload, node)
    ids = write_batch(db, topic, node, good, bad, clock)
    return Stored(ids, batch, any(record["type"] in ("report", "survey_response")
                                  for record in good))


def _clean_row(kind: str):
    """A clean record (protocol/wire.py) of ``kind`` as ``_SQL[kind]``'s row,
    the columns in ``_row``'s order. ``clock_synced``: 1 when the node said
    its clock was set, NULL when it did not say (the only two a clean record
    can carry). Flags are stored as 0/1, as ``_row`` stores them (PostgreSQL's
    BIGINT takes no bool): presence's ``closed`` is the one a clean record has."""
    fields = attrgetter(*_FIELDS[kind])
    if kind == "presence":
        closed = _FIELDS[kind].index("closed")
        return lambda r, node, at: (r.id, node, r.ts, 1 if r.clock_synced is True else None, at,
                                    *_flag_at(fields(r), closed))
    return lambda r, node, at: (r.id, node, r.ts, 1 if r.clock_synced is True else None, at,
                                *fields(r))


def _flag_at(values: tuple, index: int) -> tuple:
    return values[:index] + (int(values[index]),) + values[index + 1:]


# wire record type -> (its table's INSERT, its row)
_CLEAN_ROWS = {cls: (_SQL[cls.__struct_config__.tag], _clean_row(cls.__struct_config__.tag))
               for cls in (wire.Binding, wire.Checkin, wire.Presence, wire.Occupancy)}


def write_clean(db, node: str, clean: wire.Clean) -> None:
    """Store a clean batch (protocol/wire.py) in one transaction, with the
    same statements as ``write_batch``, and on SQLite like it under BEGIN
    IMMEDIATE: a binding reads the person's other phones before it writes,
    and with several ingest workers writing, the lock is taken up front
    rather than left to the order of the statements."""
    received_at = now_iso()
    conn = db.conn
    # On PostgreSQL, workers writing records side by side need no common lock
    # (ON CONFLICT on the ids, row locks for a presence update); a binding
    # reads the person's other phones first, so a batch with one takes it.
    with write_transaction(db, lock="hub" if wire.Binding in clean.groups else None):
        for kind, group in clean.groups.items():
            sql, row = _CLEAN_ROWS[kind]
            conn.executemany(sql, [row(r, node, received_at) for r in group])
        for binding in sorted(clean.groups.get(wire.Binding, ()), key=lambda b: b.ts):
            _apply_binding(conn, binding.device, binding.staff_id, binding.ts, node)


def quarantine(db, **fields) -> None:
    with write_transaction(db):
        db.conn.execute(_QUARANTINE, quarantine_row(**fields))


def update_node_status(db, node: str, status: dict) -> None:
    """Record a node's retained ``up/status`` (online/offline, backlog, ...)."""
    with db.atomic():
        db.conn.execute(
            "INSERT INTO nodes (node, state, version, backlog, disk_free, clock_synced, "
            "status_ts, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(node) DO UPDATE SET state = excluded.state, "
            "version = coalesce(excluded.version, nodes.version), "
            "backlog = coalesce(excluded.backlog, nodes.backlog), "
            "disk_free = coalesce(excluded.disk_free, nodes.disk_free), "
            "clock_synced = coalesce(excluded.clock_synced, nodes.clock_synced), "
            "status_ts = excluded.status_ts, last_seen = excluded.last_seen",
            (node, status.get("state"), status.get("version"), status.get("backlog"),
             status.get("disk_free"),
             None if status.get("clock_synced") is None else int(bool(status["clock_synced"])),
             status.get("ts"), now_iso()),
        )
