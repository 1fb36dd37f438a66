"""Check-in with staff number + PIN, verified offline against the roster.

A right PIN queues one ``checkin`` record per person and event (a second try
says "already checked in"); wrong PINs are rate-limited per staff number.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from flask import Blueprint, Flask, redirect, render_template, request, session, url_for

from edge.state import ROSTER, NodeState
from protocol.clock import iso, parse_iso
from protocol.pins import verify_pin

from . import current_zone, get_db, get_outbox, immediate, message_page

bp = Blueprint("checkin", __name__)

MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
MAX_FIELD = 64  # the record contract's limit for a staff id
NO_EVENT = "day:"  # local_checkins key prefix (+ UTC date) while no event is on
_RESULT = "checkin_result"  # session key carrying the outcome to /done

NO_ROSTER = "This node has not received the staff list from the hub yet."


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


@bp.get("/")
def home():
    return _home_page()


@bp.post("/checkin")
def checkin():
    staff_id = request.form.get("staff_id", "").strip()
    pin = request.form.get("pin", "").strip()
    missing = [label for label, value in (("staff number", staff_id), ("PIN", pin)) if not value]
    if missing:
        return _home_page(400, f"Please enter your {' and '.join(missing)}.", staff_id)
    if len(staff_id) > MAX_FIELD or len(pin) > MAX_FIELD:
        return _home_page(400, "The staff number or PIN is too long.")

    db = get_db()
    state = NodeState(db)
    if state.get(ROSTER) is None:
        return message_page(503, "Not ready yet", NO_ROSTER + " Please try again in a few minutes.")
    zone = current_zone(state)
    if not zone:
        return message_page(503, "Not ready yet", "This node does not know its zone yet.")
    person = _find_staff(state, staff_id)
    if person is None:
        return _home_page(
            404, f"Unknown staff number {staff_id} — ask the civility office to add you.")
    staff_id = person["staff_id"]

    now = datetime.now(timezone.utc)
    attempt = reserve_attempt(db, staff_id, now)
    if attempt.locked_until is not None:
        wait = attempt.locked_until - now
        minutes = max(1, -(-int(wait.total_seconds()) // 60))
        return _home_page(
            429,
            f"Too many wrong PINs for staff number {staff_id}. "
            f"Try again in {minutes} minute{'s' if minutes != 1 else ''}.",
            staff_id, headers={"Retry-After": str(max(1, int(wait.total_seconds())))},
        )
    if not verify_pin(pin, person.get("pin_hash", "")):
        left = attempt.left
        warning = (f"{left} more wrong PIN{'s' if left != 1 else ''} and this staff number "
                   f"is locked for {_minutes(FAILURE_WINDOW)} minutes." if left
                   else f"This staff number is now locked for {_minutes(FAILURE_WINDOW)} minutes.")
        return _home_page(401, f"Wrong PIN for staff number {staff_id}. {warning}", staff_id)
    release_attempt(db, attempt.row_id)

    event = state.active_event(now)
    created, ts = record_checkin(get_outbox(), staff_id, event, zone)
    session[_RESULT] = {
        "name": person.get("name") or staff_id,
        "event": event.get("title") if event else None,
        "ts": ts,
        "already": not created,
    }
    return redirect(url_for("checkin.done"), code=303)


@bp.get("/done")
def done():
    """The outcome of the last check-in, shown once (then back to the form)."""
    result = session.pop(_RESULT, None)
    if result is None:
        return redirect(url_for("checkin.home"), code=303)
    return render_template("done.html", result=result, zone=current_zone(NodeState(get_db())))


def _home_page(status=200, error=None, staff_id="", headers=None):
    state = NodeState(get_db())
    page = render_template(
        "home.html",
        zone=current_zone(state),
        event=state.active_event(),
        roster_ready=state.get(ROSTER) is not None,
        error=error,
        staff_id=staff_id,
    )
    return page, status, headers or {}


def _find_staff(state: NodeState, staff_id: str) -> dict | None:
    """Exact match first; then upper case, since phone keyboards capitalise
    letters in staff numbers inconsistently."""
    return state.staff(staff_id) or (
        state.staff(staff_id.upper()) if staff_id.upper() != staff_id else None)


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)


# --- recording the check-in ---------------------------------------------------

def record_checkin(outbox, staff_id: str, event: dict | None, zone: str) -> tuple[bool, str]:
    """Queue a ``checkin`` record unless this person already checked in to
    this event; returns ``(created, ts of the check-in that counts)``.

    The lookup, the outbox append and the ``local_checkins`` row share one
    transaction on one connection, so two workers cannot both create one.
    """
    event_id = event["id"] if event else None
    ts = iso(datetime.now(timezone.utc))
    key = event_id if event_id is not None else NO_EVENT + ts[:10]  # once a day
    db = outbox.db
    with immediate(db):
        row = db.conn.execute(
            "SELECT ts FROM local_checkins WHERE staff_id = ? AND event_id = ?", (staff_id, key)
        ).fetchone()
        if row is not None:
            return False, row[0]
        record_id = outbox.append({
            "type": "checkin", "ts": ts, "staff_id": staff_id, "event_id": event_id,
            "zone": zone, "method": "portal", "device": None,
        })
        db.conn.execute(
            "INSERT INTO local_checkins (staff_id, event_id, ts, record_id) VALUES (?, ?, ?, ?)",
            (staff_id, key, ts, record_id),
        )
    return True, ts


# --- rate limit on wrong PINs ------------------------------------------------

@dataclass(frozen=True)
class Attempt:
    row_id: int | None          # the reserved failure row, when allowed
    locked_until: datetime | None  # when refused: the time the lock lifts
    left: int = 0               # further failures allowed after this one


def reserve_attempt(db, staff_id: str, now: datetime) -> Attempt:
    """Count this attempt as a failure *before* the PIN is checked.

    Reserving first (and releasing on a right PIN) keeps the limit exact even
    when several workers verify PINs for the same staff number at once; a
    crash mid-check errs on the side of one more counted failure.
    """
    cutoff = iso(now - FAILURE_WINDOW)
    with immediate(db):
        db.conn.execute("DELETE FROM pin_failures WHERE ts < ?", (cutoff,))
        recent = [ts for (ts,) in db.conn.execute(
            "SELECT ts FROM pin_failures WHERE staff_id = ? ORDER BY ts", (staff_id,))]
        if len(recent) >= MAX_FAILURES:
            # The lock lifts once fewer than MAX_FAILURES remain in the window.
            return Attempt(None, parse_iso(recent[-MAX_FAILURES]) + FAILURE_WINDOW)
        cursor = db.conn.execute(
            "INSERT INTO pin_failures (staff_id, ts) VALUES (?, ?)", (staff_id, iso(now)))
    return Attempt(cursor.lastrowid, None, MAX_FAILURES - len(recent) - 1)


def release_attempt(db, row_id: int) -> None:
    """Un-count an attempt whose PIN was right. Earlier failures stay counted,
    so a right PIN does not reset the limit for someone guessing alongside."""
    with immediate(db):
        db.conn.execute("DELETE FROM pin_failures WHERE id = ?", (row_id,))
