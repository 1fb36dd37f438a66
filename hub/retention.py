"""How long the hub keeps each kind of data, and the job that removes what is
past its time (``rounds-hub retention run``, daily by the systemd timer in
firmware-config/hub/).

China's PIPL asks for purpose limitation, the minimum necessary and storage
limited in time (art. 6, 19); the hospital may shorten or lengthen each period
in ``hub.json``::

    "retention": {"presence_days": 90, "resolved_ticket_photos_days": 180, ...}

A period is a whole number of days; ``null`` keeps that kind for good (the
default only for attendance and hours, which feed appraisals and promotion
files and are kept as the hospital's own rules say). ``KINDS`` holds each
default with the reason for it; the staff page "what Rounds holds about you"
shows the same table (hub/web/people.py).

The job works area by area, each area deleting from its own tables in short
batches (hub.db.delete_batches), and writes one ``retention.delete`` row to
the audit log per kind it removed something of (how many, and the cut-off).
Order matters once: events are settled (hub.attendance.settle) before the
presence intervals they were computed from are pruned.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from hub import audit
from hub.attendance import settle
from hub.db import write_transaction
from hub.ingest import photos, pruning
from hub.people import accounts
from hub.tickets import hours, tickets
from protocol.clock import iso
from runtime.settings import ConfigError

N_ = str  # marks a message for extraction; translated where it is shown
WHO = "retention"  # the audit log's "who" for the job


@dataclass(frozen=True)
class Kind:
    key: str              # in hub.json's "retention"
    default: int | None   # days; None: kept for good
    minimum: int          # the shortest period the hub accepts
    what: str             # N_: what is held
    why: str              # N_: why this long


KINDS = (
    Kind("presence_days", 90, 1, N_("Wi-Fi sightings of your bound phone (presence intervals)"),
         N_("They show where a person was, minute by minute. Attendance is settled from "
            "them first and kept; a quarter leaves time to correct an attendance record.")),
    Kind("occupancy_days", 400, 1, N_("Head counts per zone and minute (no names)"),
         N_("Counts name no one; a year and a month allows a year-on-year comparison "
            "of busy hours.")),
    Kind("resolved_ticket_photos_days", 180, 1,
         N_("Photos of resolved, closed or rejected tickets (from the ticket's last change)"),
         N_("A photo can show people even with faces blurred; half a year covers "
            "reopened complaints and the quarterly reviews. The ticket's text and "
            "history stay.")),
    Kind("unattached_photos_days", 30, 1, N_("Photos no report refers to"),
         N_("A photo whose report never arrived serves no ticket; a month covers a "
            "node that comes back late.")),
    Kind("quarantine_days", 30, 1, N_("Malformed messages set aside by the hub"),
         N_("They may hold personal data and exist only to find a fault; a month "
            "is time to look.")),
    Kind("login_failures_days", 30, 1, N_("Failed dashboard sign-ins"),
         N_("Kept only to slow down guessing and to look into an attack.")),
    Kind("audit_log_days", 1095, 1095, N_("The audit log (who looked at or changed what)"),
         N_("PIPL art. 56 asks for records of personal-information processing to be kept "
            "at least three years; a shorter period is refused.")),
    Kind("attendance_days", None, 365,
         N_("Check-ins, settled attendance and decided volunteer hours"),
         N_("They count towards appraisals, titles and awards: kept as the hospital's "
            "rules say (no period set: kept).")),
)
BY_KEY = {kind.key: kind for kind in KINDS}


def settings(section: dict | None) -> dict[str, int | None]:
    """Days per kind key, defaults filled in; ConfigError on an unknown key or a
    value that is not a whole number of days at or above the kind's minimum."""
    if section is None:
        section = {}
    if not isinstance(section, dict):
        raise ConfigError('retention must be an object, e.g. {"presence_days": 90}')
    unknown = sorted(set(section) - set(BY_KEY))
    if unknown:
        raise ConfigError(f"retention has unknown keys: {', '.join(unknown)} "
                          f"(known: {', '.join(BY_KEY)})")
    result = {kind.key: kind.default for kind in KINDS}
    for key, days in section.items():
        kind = BY_KEY[key]
        if days is not None and (isinstance(days, bool) or not isinstance(days, int)
                                 or days < kind.minimum):
            raise ConfigError(f"retention.{key} must be a whole number of days of at least "
                              f"{kind.minimum}, or null to keep for good")
        result[key] = days
    return result


def cutoffs(policy: dict[str, int | None], now: datetime) -> dict[str, str | None]:
    """The wire timestamp before which each kind goes (None: kept)."""
    return {key: None if days is None else iso(now - timedelta(days=days))
            for key, days in policy.items()}


def run(db, policy: dict[str, int | None], now: datetime | None = None, *,
        dry_run: bool = False, batch: int = 500) -> dict[str, int]:
    """Remove everything past its time; returns how many of each were removed
    (or, with ``dry_run``, would be), ``settled_events`` included."""
    now = now or datetime.now(timezone.utc)
    cut = cutoffs(policy, now)
    done: dict[str, int] = {}
    step = {"batch": batch, "dry_run": dry_run}
    if cut["presence_days"]:
        before = cut["presence_days"]
        done["settled_events"] = settle.settle_ended(db, before, now, dry_run=dry_run)
        done["presence_days"] = pruning.prune_presence(
            db, before, settle.still_needed(db, before, now), **step)
    if cut["occupancy_days"]:
        done["occupancy_days"] = pruning.prune_occupancy(db, cut["occupancy_days"], **step)
    holds = tickets.photo_holds(db, cut["resolved_ticket_photos_days"])
    removed = photos.expire(db, holds, cut["unattached_photos_days"], **step)
    done["resolved_ticket_photos_days"] = removed["resolved"]
    done["unattached_photos_days"] = removed["unattached"]
    if cut["quarantine_days"]:
        done["quarantine_days"] = pruning.prune_quarantine(db, cut["quarantine_days"], **step)
    if cut["login_failures_days"]:
        done["login_failures_days"] = accounts.prune_login_failures(
            db, cut["login_failures_days"], **step)
    if cut["attendance_days"]:
        before = cut["attendance_days"]
        done["attendance_days"] = (pruning.prune_checkins(db, before, **step)
                                   + settle.prune_settled(db, before, **step)
                                   + hours.prune(db, before, **step))
    if cut["audit_log_days"]:
        done["audit_log_days"] = audit.prune(db, cut["audit_log_days"], **step)
    if not dry_run:
        with write_transaction(db):
            for key, count in done.items():
                if count and key in BY_KEY:
                    audit.record(db, WHO, "retention.delete", key,
                                 {"removed": count, "before": cut[key]}, now=now)
    return done
