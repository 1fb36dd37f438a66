"""Registrations taken on nodes (hub/schedule/registration.py holds the
rules), applied at ingest.

Nodes cannot decide places (several take sign-ups at once): a portal sends
``registration`` records (event, person, ``register`` or ``cancel``,
``taken_at``) that the ingest applies in ``taken_at`` order
(``apply_records``), each as of its ``taken_at``. A re-sent or late record
never undoes a later action of the same person: a ``register`` older than
their cancellation, or a ``cancel`` older than their registration, changes
nothing; so records need no id table to be applied once in effect. What the
hub cannot take (``refusal``: an unknown event, an event without
registration, an unknown or ineligible person, outside the window) is
quarantined with the reason. Functions never commit.
"""

from hub import audit
from hub.schedule import registration
from hub.schedule.registration import RegistrationError
from protocol.clock import parse_iso


def refusal(db, record: dict) -> str | None:
    """Why the hub cannot take a ``registration`` record (it is then
    quarantined), or None. Checked as of the record's ``taken_at``."""
    try:
        registration.checked(db, record["event_id"], record["staff_id"], record["action"],
                             record["taken_at"])
    except RegistrationError as exc:
        return _reason(exc, record)
    return None


def _reason(exc: RegistrationError, record: dict) -> str:
    return (f"registration: {exc} ({record['action']} by {record['staff_id']!r} "
            f"for {record['event_id']!r})")


def apply_record(db, record: dict, node: str) -> dict | None:
    """Apply one ``registration`` record as of its ``taken_at``; answers what
    changed (``{"state"}`` or ``cancel``'s answer), None when nothing did: a
    repeat, or an action older than the person's latest one (see the
    module). Raises RegistrationError."""
    event_id, staff_id, at = record["event_id"], record["staff_id"], record["taken_at"]
    found = registration.stored(db, event_id, staff_id)
    via = f"node:{node}"
    if record["action"] == "register":
        if found and (found[0] in registration.ACTIVE or found[2] > at):
            return None  # already in, or cancelled after this was taken
        return {"state": registration.register(db, event_id, staff_id, parse_iso(at), via)}
    if found is None or found[0] not in registration.ACTIVE or found[1] > at:
        return None  # nothing to cancel, or registered again after this was taken
    return registration.cancel(db, event_id, staff_id, parse_iso(at), via)


def apply_records(db, node: str, records: list[dict]) -> list[tuple[dict, str]]:
    """Apply a batch's ``registration`` records in ``taken_at`` order, each
    change with its audit row (by the person, via the node); answers the
    records refused, with the reason, for the quarantine."""
    refused = []
    for record in sorted(records, key=lambda r: (r["taken_at"], r["id"])):
        try:
            changed = apply_record(db, record, node)
        except RegistrationError as exc:
            refused.append((record, _reason(exc, record)))
            continue
        if changed is not None:
            audit.record(db, record["staff_id"], f"registration.{record['action']}",
                         f"event:{record['event_id']}",
                         {"via": f"node:{node}", "record": record["id"],
                          "taken_at": record["taken_at"], **changed})
    return refused
