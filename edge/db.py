"""The node's SQLite database, shared by the portal, presence and sync
processes (WAL, so readers never block the writer; synchronous=FULL, so a
committed record survives a power cut)."""

import errno
import sqlite3
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils
from sqlite_utils import Migrations

from runtime.sqlite import open_database

migrations = Migrations("rounds-edge")


@migrations()
def m001_outbox(db):
    db.execute(
        """CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            type TEXT NOT NULL,
            body TEXT NOT NULL,
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ'))
        )"""
    )
    db["kv"].create({"key": str, "value": str}, pk="key")
    db["local_checkins"].create(
        {"staff_id": str, "event_id": str, "ts": str, "record_id": str},
        pk=("staff_id", "event_id"),
    )


@migrations()
def m002_pin_failures(db):
    """Failed portal PIN attempts per staff number, for the rate limit.

    ``ts`` is a wire timestamp (fixed width, UTC), so text order is time order.
    """
    db["pin_failures"].create({"id": int, "staff_id": str, "ts": str}, pk="id")
    db["pin_failures"].create_index(["staff_id", "ts"])



@migrations()
def m003_devices(db):
    """Phones known to this node: bindings made here (device HMAC -> staff)
    and the raw MACs currently released from the captive portal. Raw MACs
    live only here and in the kernel's nftables set; they never leave."""
    db["bindings_local"].create({"device": str, "staff_id": str, "bound_at": str},
                                pk="device")
    db["released"].create({"mac": str, "until": str}, pk="mac")


@migrations()
def m004_portal_pin_failures_device(db):
    """Failed portal PIN attempts also per device (DESIGN.md: "rate-limited
    per device and per staff number"): ``device`` is the device HMAC, or
    ``ip:<address>`` for a client whose MAC is unknown."""
    db["pin_failures"].add_column("device", str)
    db["pin_failures"].create_index(["device", "ts"])


@migrations()
def m005_presence_open(db):
    """The open presence intervals of bound phones (``edge.presence.tracker``),
    so that a restart of ``rounds-edge presence`` continues an interval (same
    record id) instead of ending it. Keyed by the device HMAC: the MAC itself
    is not stored, and unbound devices never get a row."""
    db["presence_open"].create({"device": str, "record_id": str, "staff_id": str,
                                "zone": str, "first_seen": str, "last_seen": str},
                               pk="device")



@migrations()
def m006_photo_spool(db):
    """Processed (privacy-safe) photos waiting for the hub's ack; the files
    themselves are in the spool directory, named by their sha256."""
    db["photo_spool"].create({"sha256": str, "report_id": str, "path": str,
                              "created_at": str}, pk="sha256")


@migrations()
def m007_local_reports(db):
    """Reports filed at this node, for the reporter's "my reports" page (the
    ticket states come down from the hub in the node's config)."""
    db["local_reports"].create({"report_id": str, "staff_id": str, "category": str,
                                "note": str, "photos": int, "ts": str}, pk="report_id")
    db["local_reports"].create_index(["staff_id", "ts"])


@migrations()
def m008_local_survey_counts(db):
    """Survey responses taken at this node per task, survey taker and local
    day, for the "responses today" figures on the survey pages (the outbox
    cannot say: acked records leave it). Old days are pruned as responses
    are saved (``edge/portal/survey.py``)."""
    db["local_survey_counts"].create({"task_id": str, "staff_id": str, "day": str,
                                      "count": int}, pk=("task_id", "staff_id", "day"))


@migrations()
def m009_local_scores(db):
    """The score each person gave each act of a contest at this node, for the
    scoring page ("now 8"; edge/portal/score.py): the latest one, as the hub
    counts it. Pruned with the check-in rows (edge/retention.py)."""
    db["local_scores"].create({"event_id": str, "act": str, "staff_id": str, "value": int,
                               "ts": str}, pk=("event_id", "act", "staff_id"))


@migrations()
def m010_local_registrations(db):
    """Each person's latest registration or cancellation made at this node
    (edge/portal/registration.py): until the hub's config reflects it (its
    record still in the outbox, or the config not yet changed since), the
    portal shows it as "sent, waiting for the hub". Pruned as new ones are
    made, once their event is no longer in the config."""
    db["local_registrations"].create({"event_id": str, "staff_id": str, "action": str,
                                      "record_id": str, "config_version": str,
                                      "taken_at": str}, pk=("event_id", "staff_id"))


@migrations()
def m011_kv_etag(db):
    """A fresh random ``etag`` with every stored document (``edge.state``), so a
    process that has the roster parsed can tell it is current by reading 16
    characters instead of the whole document (hundreds of kB for a hospital).
    The etag goes before the value: SQLite reaches a column stored after a large
    value by walking the value's overflow pages."""
    db["kv"].add_column("etag", str, not_null_default="")
    db.execute("UPDATE kv SET etag = lower(hex(randomblob(8)))")
    db["kv"].transform(column_order=("key", "etag", "value"))


_SQLITE_FULL = 13  # primary result code; extended codes keep it in the low byte


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the node's storage is full: SQLite's SQLITE_FULL
    ("database or disk is full", what it returns when a write meets ENOSPC)
    or an OSError with ENOSPC/EDQUOT from writing a file."""
    if isinstance(exc, sqlite3.Error):
        return (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF == _SQLITE_FULL
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def open_db(path: str | Path) -> sqlite_utils.Database:
    """Open (and migrate) the node database at ``path``."""
    return open_database(path, migrations)


@contextmanager
def immediate(db):
    """A write transaction that takes SQLite's write lock up front.

    A deferred transaction that reads and then writes can fail at once with
    "database is locked" when another process wrote in between (busy_timeout
    does not help there); BEGIN IMMEDIATE waits for the lock instead (up to
    the busy timeout). Nested ``db.atomic()`` blocks become savepoints.
    """
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.conn.execute("COMMIT")
    except BaseException:
        if db.conn.in_transaction:
            db.conn.rollback()
        raise
