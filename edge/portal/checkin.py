"""The start page and check-in: by staff number + PIN (``/checkin``, any
phone, the only way for an unknown device) or by one tap on a bound phone
(``/checkin/tap``, no PIN).

The start page depends on the phone: unknown device -> the check-in form;
a phone not bound yet -> "bind this phone" (``bind.py``); a bound phone ->
"Hello <name>" with a one-tap check-in for the event on now.

One ``checkin`` record per person and event (a second try says "already
checked in"; while no event is on, once per day).
"""

from flask import Blueprint, Flask, render_template, request, session
from flask_babel import gettext as _

from edge.checkins import checked_in, checkin_in_transaction
from edge.state import ROSTER

from .auth import Refusal, authenticate
from .bind import bind_page
from .context import (
    clock_unset, current_event, current_zone, get_db, get_outbox, get_state, node_clock,
)
from .device import device_key, person, phone
from .i18n import redirect_to
from .render import message_page
from .writes import write

bp = Blueprint("checkin", __name__)

_RESULT = "checkin_result"  # session key carrying the outcome to /done


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


@bp.get("/")
def home():
    current = phone()
    if current is None:
        return _form_page()
    if current.staff_id is None:
        return bind_page()
    return hello_page()


@bp.post("/checkin")
def checkin():
    """Staff number + PIN: works from any phone (the device id is recorded
    when the phone is known), and is the only way for an unknown device."""
    result = authenticate(request.form, device_key())
    if isinstance(result, Refusal):
        if result.whole_page:
            return message_page(result.status, _("Not ready yet"), result.message)
        return _form_page(result.status, result.message, result.staff_id, result.headers)
    current = phone()
    event = current_event()
    created, ts = record_checkin(get_outbox(), result.staff_id, event, result.zone,
                                 current.device if current else None)
    return _done(result.name, event, ts, created)


@bp.post("/checkin/tap")
def tap():
    """One tap on a bound phone: no PIN, the binding says who it is."""
    current = phone()
    if current is None or current.staff_id is None:
        return message_page(403, _("This phone is not bound yet"),
                            _("Bind it with your staff number and PIN first."))
    state = get_state()
    zone = current_zone(state)
    if not zone:
        return message_page(503, _("Not ready yet"), _("This node does not know its zone yet."))
    event = current_event()
    created, ts = record_checkin(get_outbox(), current.staff_id, event, zone, current.device)
    who = person(current.staff_id)
    return _done(who.get("name") or current.staff_id, event, ts, created)


def _done(name: str, event: dict | None, ts: str, created: bool):
    session[_RESULT] = {"name": name, "event": event.get("title") if event else None,
                        "ts": ts, "already": not created, "clock_unset": clock_unset()}
    return redirect_to("checkin.done")


@bp.get("/done")
def done():
    """The outcome of the last check-in, shown once (then back to the start)."""
    result = session.pop(_RESULT, None)
    if result is None:
        return redirect_to("checkin.home")
    return render_template("done.html", result=result, bound=bool(phone() and phone().staff_id))


def _form_page(status=200, error=None, staff_id="", headers=None):
    state = get_state()
    page = render_template("home.html", event=current_event(),
                           roster_ready=state.get(ROSTER) is not None,
                           error=error, staff_id=staff_id)
    return page, status, headers or {}


def hello_page():
    current = phone()
    event = current_event()
    return render_template("hello.html", person=person(current.staff_id), event=event,
                           checked_in_at=checked_in_at(current.staff_id, event))


# --- recording the check-in ---------------------------------------------------
# The dedup itself (``checkin_in_transaction``, ``checkin_key``, ``NO_EVENT``)
# lives in ``edge.checkins``: presence check-ins share it.

def checked_in_at(staff_id: str, event: dict | None) -> str | None:
    """When this person checked in to ``event`` (today, while none is on)."""
    return checked_in(get_db(), staff_id, event, node_clock().now_iso())


def record_checkin(outbox, staff_id: str, event: dict | None, zone: str,
                   device: str | None = None) -> tuple[bool, str]:
    """Queue a ``checkin`` record unless this person already checked in to
    this event; returns ``(created, ts of the check-in that counts)``.

    The lookup, the outbox append and the ``local_checkins`` row share one
    transaction on one connection, so two workers cannot both create one
    (``writes.write``: possibly a transaction shared with other requests').
    """
    now = node_clock().now()
    return write(outbox, lambda writer: checkin_in_transaction(
        writer, staff_id, event, zone, device, "portal", now=now))
