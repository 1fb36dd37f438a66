"""Staff number + PIN, verified offline against the roster, with wrong PINs
rate-limited per staff number and per device (DESIGN.md, "Identity and
privacy").

Limits: 5 wrong PINs per staff number and 10 per device (any staff numbers)
within 15 minutes; beyond either, 429 with the time the lock lifts. The PIN
is never logged, never put in a URL and never stored.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask_babel import gettext as _
from flask_babel import ngettext

from edge.state import ROSTER, NodeState
from protocol.clock import iso, parse_iso
from protocol.pins import verify_pin

from .context import current_zone, get_db, get_state, node_clock
from .render import hhmm, minutes_until
from .writes import immediate

MAX_FAILURES = 5          # per staff number
MAX_DEVICE_FAILURES = 10  # per device, across staff numbers
FAILURE_WINDOW = timedelta(minutes=15)
MAX_FIELD = 64  # the record contract's limit for a staff id


@dataclass(frozen=True)
class Refusal:
    """Why a staff number + PIN was not accepted, as the page should say it."""
    status: int
    message: str
    staff_id: str = ""           # to fill the form in again
    headers: dict = field(default_factory=dict)
    whole_page: bool = False     # the node is not ready: no form to show again


@dataclass(frozen=True)
class Staff:
    person: dict                 # the roster entry
    zone: str

    @property
    def staff_id(self) -> str:
        return self.person["staff_id"]

    @property
    def name(self) -> str:
        return self.person.get("name") or self.person["staff_id"]


def authenticate(form, device_key: str) -> "Staff | Refusal":
    """Check the ``staff_id`` and ``pin`` of a posted ``form``."""
    staff_id = form.get("staff_id", "").strip()
    pin = form.get("pin", "").strip()
    if not staff_id and not pin:
        return Refusal(400, _("Please enter your staff number and PIN."))
    if not staff_id:
        return Refusal(400, _("Please enter your staff number."))
    if not pin:
        return Refusal(400, _("Please enter your PIN."), staff_id)
    if len(staff_id) > MAX_FIELD or len(pin) > MAX_FIELD:
        return Refusal(400, _("The staff number or PIN is too long."))

    db = get_db()
    state = get_state()
    if state.get(ROSTER) is None:
        return Refusal(503, sentences(
            _("This node has not received the staff list from the hub yet."),
            _("Please try again in a few minutes.")), whole_page=True)
    zone = current_zone(state)
    if not zone:
        return Refusal(503, sentences(_("This node does not know its zone yet."),
                                      _("Please try again in a few minutes.")), whole_page=True)
    person = find_staff(state, staff_id)
    if person is None:
        return Refusal(404, _("Unknown staff number %(staff_id)s — ask the civility office "
                              "to add you.", staff_id=staff_id), staff_id)
    staff_id = person["staff_id"]

    now = node_clock().now()
    attempt = reserve_attempt(db, staff_id, device_key, now)
    if attempt.locked_until is not None:
        return _locked(attempt, staff_id, now)
    if not verify_pin(pin, person.get("pin_hash", "")):
        return Refusal(401, _wrong_pin(attempt, staff_id), staff_id)
    release_attempt(db, attempt.row_id)
    return Staff(person, zone)


def find_staff(state: NodeState, staff_id: str) -> dict | None:
    """Exact match first; then upper case, since phone keyboards capitalise
    letters in staff numbers inconsistently."""
    return state.staff(staff_id) or (
        state.staff(staff_id.upper()) if staff_id.upper() != staff_id else None)


def _locked(attempt: "Attempt", staff_id: str, now: datetime) -> Refusal:
    minutes = minutes_until(attempt.locked_until, now)
    until = hhmm(attempt.locked_until)
    if attempt.by_device:
        message = ngettext(
            "Too many wrong PINs from this phone. Try again in %(num)d minute (at %(until)s).",
            "Too many wrong PINs from this phone. Try again in %(num)d minutes (at %(until)s).",
            minutes, until=until)
    else:
        message = ngettext(
            "Too many wrong PINs for staff number %(staff_id)s. "
            "Try again in %(num)d minute (at %(until)s).",
            "Too many wrong PINs for staff number %(staff_id)s. "
            "Try again in %(num)d minutes (at %(until)s).",
            minutes, staff_id=staff_id, until=until)
    wait = max(1, int((attempt.locked_until - now).total_seconds()))
    return Refusal(429, message, staff_id, {"Retry-After": str(wait)})


def _wrong_pin(attempt: "Attempt", staff_id: str) -> str:
    window = int(FAILURE_WINDOW.total_seconds() // 60)
    wrong = _("Wrong PIN for staff number %(staff_id)s.", staff_id=staff_id)
    if attempt.left == 0 and attempt.by_device:
        warning = ngettext("This phone is now locked for %(num)d minute.",
                           "This phone is now locked for %(num)d minutes.", window)
    elif attempt.left == 0:
        warning = ngettext("This staff number is now locked for %(num)d minute.",
                           "This staff number is now locked for %(num)d minutes.", window)
    elif attempt.by_device:
        warning = ngettext(
            "%(num)d more wrong PIN from this phone and it is locked for %(window)d minutes.",
            "%(num)d more wrong PINs from this phone and it is locked for %(window)d minutes.",
            attempt.left, window=window)
    else:
        warning = ngettext(
            "%(num)d more wrong PIN and this staff number is locked for %(window)d minutes.",
            "%(num)d more wrong PINs and this staff number is locked for %(window)d minutes.",
            attempt.left, window=window)
    return sentences(wrong, warning)


def sentences(first: str, then: str) -> str:
    """Two sentences as the language writes them (Chinese: no space between)."""
    return _("%(first)s %(then)s", first=first, then=then)


# --- rate limit on wrong PINs ------------------------------------------------

@dataclass(frozen=True)
class Attempt:
    row_id: int | None             # the reserved failure row, when allowed
    locked_until: datetime | None  # when refused: the time the lock lifts
    left: int = 0                  # further failures allowed after this one
    by_device: bool = False        # the device's limit is the nearer one


def reserve_attempt(db, staff_id: str, device_key: str, now: datetime) -> Attempt:
    """Count this attempt as a failure *before* the PIN is checked.

    Reserving first (and releasing on a right PIN) keeps both limits exact
    even when several workers verify PINs at once; a crash mid-check errs on
    the side of one more counted failure.
    """
    cutoff = iso(now - FAILURE_WINDOW)
    with immediate(db):
        db.conn.execute("DELETE FROM pin_failures WHERE ts < ?", (cutoff,))
        by_staff = [ts for (ts,) in db.conn.execute(
            "SELECT ts FROM pin_failures WHERE staff_id = ? ORDER BY ts", (staff_id,))]
        by_device = [ts for (ts,) in db.conn.execute(
            "SELECT ts FROM pin_failures WHERE device = ? ORDER BY ts", (device_key,))]
        # A lock lifts once fewer than the limit remain in the window.
        locks = []
        if len(by_staff) >= MAX_FAILURES:
            locks.append((parse_iso(by_staff[-MAX_FAILURES]) + FAILURE_WINDOW, False))
        if len(by_device) >= MAX_DEVICE_FAILURES:
            locks.append((parse_iso(by_device[-MAX_DEVICE_FAILURES]) + FAILURE_WINDOW, True))
        if locks:
            until, device = max(locks)
            return Attempt(None, until, by_device=device)
        cursor = db.conn.execute(
            "INSERT INTO pin_failures (staff_id, device, ts) VALUES (?, ?, ?)",
            (staff_id, device_key, iso(now)))
    staff_left = MAX_FAILURES - len(by_staff) - 1
    device_left = MAX_DEVICE_FAILURES - len(by_device) - 1
    return Attempt(cursor.lastrowid, None, min(staff_left, device_left),
                   by_device=device_left < staff_left)


def release_attempt(db, row_id: int) -> None:
    """Un-count an attempt whose PIN was right. Earlier failures stay counted,
    so a right PIN does not reset the limit for someone guessing alongside."""
    with immediate(db):
        db.conn.execute("DELETE FROM pin_failures WHERE id = ?", (row_id,))

