"""Bind this phone: staff number + PIN once, and from then on the node knows
the phone (DESIGN.md, "Identity and privacy").

A right PIN, in one transaction: the binding (replacing the person's older
phone, so a phone that rotated its MAC re-binds in this one step), a
``binding`` record, the check-in to the event on now (as ``/checkin``, with
the device id), and the phone's release from the captive portal. Then a 303
to a result page: the navigation after which the phone probes again, sees
"success" and closes its sign-in sheet.
"""

from flask import Blueprint, Flask, current_app, render_template, request
from flask_babel import gettext as _

from edge.checkins import checked_in, checkin_in_transaction
from edge.state import ROSTER

from .auth import Refusal, authenticate
from .context import current_event, get_db, get_outbox, get_state, node_clock
from .device import device_key, devices, person, phone, rebound
from .i18n import redirect_to
from .render import message_page
from .writes import immediate

bp = Blueprint("bind", __name__)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


def bind_page(status=200, error=None, staff_id="", headers=None):
    """The "bind this phone" form (the start page of a phone not bound yet)."""
    state = get_state()
    current = phone()
    page = render_template(
        "bind.html", event=current_event(), roster_ready=state.get(ROSTER) is not None,
        error=error, staff_id=staff_id,
        bound_to=person(current.staff_id) if current and current.staff_id else None)
    return page, status, headers or {}


@bp.get("/bind")
def bind_form():
    """The bind form also for a bound phone ("not you? bind it to yourself")."""
    if phone() is None:
        return redirect_to("checkin.home")
    return bind_page()


@bp.post("/bind")
def bind():
    current = phone()
    if current is None:
        return message_page(
            403, _("This device cannot be bound"),
            _("The node cannot tell which phone this is. Connect to the staff Wi-Fi "
              "to bind your phone, or check in with your staff number and PIN."))
    result = authenticate(request.form, device_key())
    if isinstance(result, Refusal):
        if result.whole_page:
            return message_page(result.status, _("Not ready yet"), result.message)
        return bind_page(result.status, result.message, result.staff_id, result.headers)

    outbox = get_outbox()
    known = devices()
    event = current_event()
    with immediate(outbox.db):
        known.bind(current.device, result.staff_id)
        outbox.append({"type": "binding", "device": current.device,
                       "staff_id": result.staff_id})
        checkin_in_transaction(outbox, result.staff_id, event, result.zone, current.device,
                               now=node_clock().now())
        known.release(current.mac, current_app.config["RELEASE_SECONDS"])
    rebound(result.staff_id)
    return redirect_to("bind.bound")


@bp.get("/bound")
def bound():
    """After binding: whose phone this is now, and the check-in it made."""
    current = phone()
    if current is None or current.staff_id is None:
        return redirect_to("checkin.home")
    event = current_event()
    return render_template("bound.html", person=person(current.staff_id), event=event,
                           checked_in_at=checked_in(get_db(), current.staff_id, event,
                                                    node_clock().now_iso()))
