"""Deleting what the ingest stored once its time is up (the policy and the
schedule: hub/retention.py). Each function deletes the rows older than
``before`` (a wire timestamp) in short batches (hub.db.delete_batches) and
returns how many; ``dry_run`` only counts them."""

import json

from hub.db import delete_batches


def prune_presence(db, before: str, keep=(), *, batch: int = 500,
                   dry_run: bool = False) -> int:
    """Presence intervals that ended before ``before``, but those in a zone of
    ``keep`` ((zone, since) pairs: events still on) ending at or after its
    ``since``; and the clock flags of the intervals gone. Settle the events they
    served first (hub.attendance.settle)."""
    removed = delete_batches(
        db, "presence", "last_seen < ? AND NOT EXISTS (SELECT 1 FROM json_each(?) k "
        "WHERE json_extract(k.value, '$[0]') = presence.zone "
        "AND presence.last_seen >= json_extract(k.value, '$[1]'))",
        (before, json.dumps(list(keep))), batch=batch, dry_run=dry_run)
    if not dry_run:
        delete_batches(db, "clock_flags", "type = 'presence' AND record_id NOT IN "
                       "(SELECT id FROM presence)", batch=batch)
    return removed


def prune_occupancy(db, before: str, *, batch: int = 500, dry_run: bool = False) -> int:
    """Occupancy minutes (head counts per zone) before ``before``."""
    return delete_batches(db, "occupancy", "minute < ?", (before,), batch=batch,
                          dry_run=dry_run)


def prune_checkins(db, before: str, *, batch: int = 500, dry_run: bool = False) -> int:
    """Check-ins made before ``before`` (only when the hospital sets a period for
    attendance records: they feed appraisals)."""
    removed = delete_batches(db, "checkins", "ts < ?", (before,), batch=batch,
                             dry_run=dry_run)
    if not dry_run:
        delete_batches(db, "clock_flags", "type = 'checkin' AND record_id NOT IN "
                       "(SELECT id FROM checkins)", batch=batch)
    return removed


def prune_quarantine(db, before: str, *, batch: int = 500, dry_run: bool = False) -> int:
    """Payloads set aside before ``before``."""
    return delete_batches(db, "quarantine", "received_at < ?", (before,), batch=batch,
                          dry_run=dry_run)
