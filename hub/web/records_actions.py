"""What the "records" area's pages (hub/web/records.py) and API
(hub/web/records_api.py) both do: the roles they require, the signed-in
account as ``hub.records.review`` sees it, an entry as shown, the HTTP
status of a refusal, and each change (a decision, a bulk approval, a filing,
a resubmission) in its write transaction with its audit row.
"""

from datetime import datetime, timezone

from flask import abort, current_app
from flask_babel import gettext as _
from flask_login import current_user

from hub.config import review_settings
from hub.db import write_transaction
from hub.records import entries, review
from hub.records.errors import Conflict, Forbidden, NotFound, RecordError

from hub.web.auth import actor, audited
from hub.web.context import get_db, hospital_tz

DECIDERS = ("dept_reviewer", "branch_reviewer", "committee_reviewer")
REVIEWERS = ("office", *DECIDERS)
LINKED = ("staff", *REVIEWERS)  # any account linked to a staff number has entries
BULK_MAX = 500
FIELDS = ("kind", "title", "body", "occurred_on")


def current_settings() -> dict:
    return review_settings(current_app.config.get("REVIEW"))


def current_account() -> dict:
    return {"username": current_user.username, "role": current_user.role,
            "department": current_user.department, "branch": current_user.branch,
            "staff_id": current_user.staff_id}


def status_of(exc: RecordError) -> int:
    for kind, status in ((NotFound, 404), (Forbidden, 403), (Conflict, 409)):
        if isinstance(exc, kind):
            return status
    return 400


def says(exc: RecordError) -> str:
    """A domain error in the reader's language."""
    return _(exc.message, **exc.params)


def own_staff_id() -> str:
    if not current_user.staff_id:
        abort(403, description="this account is not linked to a staff member")
    return current_user.staff_id


def detail(entry: dict) -> dict:
    """An entry as shown: where it stands, its history, whether this account
    decides it now."""
    db, settings = get_db(), current_settings()
    return {**review.shown(entry, settings, datetime.now(timezone.utc)),
            "history": review.history(db, entry["id"], settings),
            "may_decide": review.refusal(current_account(), entry, settings) is None}


def visible(record_id: int) -> dict:
    try:
        return review.visible_entry(get_db(), current_account(), record_id)
    except NotFound:
        abort(404, description=f"unknown record entry: {record_id}")


# -- the changes, audited ------------------------------------------------------------

def decide(record_id: int, action, reason) -> dict:
    db = get_db()
    with write_transaction(db):
        entry = review.decide(db, record_id, current_account(), action, reason,
                              settings=current_settings())
        _audit_decision(entry, action, reason)
    return entry


def _audit_decision(entry: dict, action: str, reason: str) -> None:
    step = review.history(get_db(), entry["id"], current_settings())[-1]
    audited("record.decision", f"record:{entry['id']}", decision=action,
            level=step["level_name"], reason=(reason or "").strip(), staff_id=entry["staff_id"],
            state=entry["state"])


def approve_many(ids: list[int]) -> tuple[list[dict], list[tuple[int, RecordError]]]:
    """Approve each of ``ids`` this account decides now; the others are
    refused with the reason, in the same transaction."""
    db, settings, account = get_db(), current_settings(), current_account()
    done, refused = [], []
    with write_transaction(db):
        for record_id in dict.fromkeys(ids):
            try:
                entry = review.decide(db, record_id, account, "approve", settings=settings)
            except RecordError as exc:
                refused.append((record_id, exc))
                continue
            _audit_decision(entry, "approve", "")
            done.append(entry)
    return done, refused


def file_entry(form: dict) -> dict:
    db, settings = get_db(), current_settings()
    with write_transaction(db):
        entry = entries.file_entry(db, own_staff_id(), form.get("kind"), form.get("title"),
                                   form.get("body"), form.get("occurred_on"), who=actor(),
                                   days=settings["days_per_level"], tz=hospital_tz())
        audited("record.file", f"record:{entry['id']}", kind=entry["kind"],
                staff_id=entry["staff_id"])
    return entry


def resubmit(record_id: int, form: dict) -> dict:
    db, settings = get_db(), current_settings()
    with write_transaction(db):
        entry = entries.resubmit(db, record_id, own_staff_id(), form.get("title"),
                                 form.get("body"), form.get("occurred_on"), who=actor(),
                                 days=settings["days_per_level"], tz=hospital_tz())
        audited("record.resubmit", f"record:{record_id}", staff_id=entry["staff_id"])
    return entry
