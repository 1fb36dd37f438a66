"""How long the node keeps what it holds, and the pruning that enforces it.

A node is a box on a ward: whatever it keeps can be carried off with it, so
it keeps each kind of row only as long as it serves a purpose. The hub holds
the lasting record; the node's copies are a queue, a cache or a lock. The
periods are whole days (node config section ``"retention"``); the defaults:

- ``outbox_days`` 90: a record the hub has not taken in 90 days belongs to a
  node cut off that long; keeping raw records on the box forever is the
  greater risk (a quarter is far longer than any outage we plan for).
- ``spool_days`` 30: photos of the wards are the most sensitive thing queued
  and the largest; a month covers any repair, and a problem photographed a
  month ago is stale (its report still reaches the hub, which stops waiting
  for the photo a day later: hub.tickets.tickets.PHOTO_PATIENCE).
- ``local_reports_days`` 90: the reporter's "my reports" list; tickets are due
  within 48 h, so a quarter shows every one through to its end.
- ``local_checkins_days`` 30: the check-in dedup and the "my record" page; the
  hub keeps the attendance record. A row for an event still in the node's
  schedule is kept whatever its age (it stops a second check-in).
  The contest scores given here (``local_scores``, for the scoring page) go
  with them.
- ``pin_failures_days`` 1: the rate limit looks back 15 minutes only.
- ``released`` rows (raw MACs let past the portal) go as soon as their
  ``until`` has passed; one still running is the phone's pass.

``presence_open`` is never pruned: an open interval is live state, closed by
the presence process. Pruning walks each table by rowid in batches of at most
``BATCH`` rows, each batch its own short write transaction (a batch of
reports takes its photos' rows along), so the portal never waits long.
"""

import json
import logging
from contextlib import nullcontext
from datetime import datetime, timedelta
from pathlib import Path

from protocol.clock import iso

from .db import immediate
from .state import CONFIG, NodeState

log = logging.getLogger(__name__)

BATCH = 500
DEFAULTS = {
    "outbox_days": 90,         # unacked for a quarter: the node was cut off; don't hoard
    "spool_days": 30,          # ward photos: most sensitive, largest; stale after a month
    "local_reports_days": 90,  # "my reports": tickets are due in <= 48 h
    "local_checkins_days": 30,  # dedup + "my record"; the hub keeps attendance
    "pin_failures_days": 1,    # the rate limit looks back 15 minutes
}


def settings(section: dict | None) -> dict:
    """The node config's ``retention`` section with the defaults filled in;
    ValueError, saying what is wrong, on an unknown key or a bad value."""
    if section is None:
        return dict(DEFAULTS)
    if not isinstance(section, dict):
        raise ValueError("retention must be an object of periods in days, "
                         'e.g. {"outbox_days": 90}')
    for key, value in section.items():
        if key not in DEFAULTS:
            raise ValueError(f"retention.{key} is not a setting; known: {', '.join(DEFAULTS)}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"retention.{key} must be a whole number of days, at least 1 "
                             f"(got {value!r})")
    return {**DEFAULTS, **section}


def prune(db, spool_dir, settings: dict, now: datetime, *, dry_run=False) -> dict[str, int]:
    """Delete what is past its time (``settings`` as ``settings()`` returns);
    returns the number of rows per kind (``spool``: photos, also those of
    pruned reports). ``dry_run`` counts and deletes nothing."""
    def cutoff(key):
        return (iso(now - timedelta(days=settings[key])),)

    photos: set[str] = set()
    events = [e.get("id") for e in (NodeState(db).get(CONFIG) or {}).get("events", [])
              if isinstance(e, dict) and isinstance(e.get("id"), str)]
    keep = f" AND event_id NOT IN ({', '.join('?' * len(events))})" if events else ""
    counts = {"outbox": _outbox(db, spool_dir, cutoff("outbox_days"), photos, dry_run)}
    _walk(db, "photo_spool", "created_at < ?", cutoff("spool_days"), dry_run, "sha256",
          lambda rows: _drop_photos(db, spool_dir, rows, photos, dry_run))
    counts["spool"] = len(photos)  # a photo of a pruned report is counted once
    counts["local_reports"] = _walk(db, "local_reports", "ts < ?",
                                    cutoff("local_reports_days"), dry_run)
    counts["local_checkins"] = _walk(db, "local_checkins", "ts < ?" + keep,
                                     (*cutoff("local_checkins_days"), *events), dry_run)
    counts["local_scores"] = _walk(db, "local_scores", "ts < ?", cutoff("local_checkins_days"),
                                   dry_run)
    counts["pin_failures"] = _walk(db, "pin_failures", "ts < ?", cutoff("pin_failures_days"),
                                   dry_run)
    counts["released"] = _walk(db, "released", "until < ?", (iso(now),), dry_run)
    for kind, count in counts.items():
        log.info("retention: %s %d %s", kind, count,
                 "would be deleted (dry run)" if dry_run else "deleted")
    return counts


def _walk(db, table, where, args, dry_run, columns="rowid", on_delete=None) -> int:
    """Delete the rows of ``table`` matching ``where``, BATCH at a time in
    rowid order: candidates are read without the write lock, then checked
    again and deleted under it. ``on_delete(rows)`` (the deleted rows'
    ``columns``) runs inside each batch's transaction; a callable it returns
    runs after the commit. Returns how many rows."""
    total, last = 0, 0
    while True:
        rowids = [r for (r,) in db.conn.execute(
            f"SELECT rowid FROM {table} WHERE rowid > ? AND ({where}) ORDER BY rowid "
            f"LIMIT {BATCH}", (last, *args))]
        if not rowids:
            return total
        last = rowids[-1]
        match = f"rowid IN ({', '.join('?' * len(rowids))}) AND ({where})"
        with nullcontext() if dry_run else immediate(db):
            rows = db.conn.execute(f"SELECT {columns} FROM {table} WHERE {match}",
                                   (*rowids, *args)).fetchall()
            if not dry_run:
                db.conn.execute(f"DELETE FROM {table} WHERE {match}", (*rowids, *args))
            then = on_delete(rows) if on_delete else None
        if then:
            then()
        total += len(rows)
        if len(rowids) < BATCH:
            return total


def _outbox(db, spool_dir, args, photos, dry_run) -> int:
    """Outbox records past their time; a ``report`` takes its spooled photos along."""
    def with_photos(rows):
        reports = [json.loads(body).get("report_id") for kind, body in rows if kind == "report"]
        if not reports:
            return None
        marks = ", ".join("?" * len(reports))
        shas = db.conn.execute(f"SELECT sha256 FROM photo_spool WHERE report_id IN ({marks})",
                               reports).fetchall()
        if not dry_run:
            db.conn.execute(f"DELETE FROM photo_spool WHERE report_id IN ({marks})", reports)
        return _drop_photos(db, spool_dir, shas, photos, dry_run)

    return _walk(db, "outbox", "created_at < ?", args, dry_run, "type, body", with_photos)


def _drop_photos(db, spool_dir, rows, photos, dry_run):
    """Count the photos ``rows`` (sha256,) and return what removes their files
    once their rows' deletion has committed (not a file a row names again)."""
    shas = [sha for (sha,) in rows]
    photos.update(shas)

    def unlink():
        for sha in shas:
            if db.conn.execute("SELECT 1 FROM photo_spool WHERE sha256 = ?",
                               (sha,)).fetchone() is None:
                (Path(spool_dir) / f"{sha}.jpg").unlink(missing_ok=True)

    return None if dry_run else unlink
