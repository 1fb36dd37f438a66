"""A staff member signed in on this phone for a while, for the pages a bound
phone is not enough for (a survey taker's tablet, a judge's borrowed phone):
the session cookie (signed with the portal's key) holds the staff number and
when the sign-in lapses on the node's clock. A staff number that left the
roster, or a lapse further ahead than allowed (a wall clock set back), is
signed out."""

from datetime import timedelta

from flask import request, session
from flask_babel import gettext as _

from protocol.clock import iso, parse_iso

from .auth import Refusal, authenticate
from .context import get_state, node_clock
from .device import device_key
from .i18n import redirect_to
from .render import message_page


def remember(key: str, staff_id: str, lasting: timedelta) -> None:
    session[key] = {"staff_id": staff_id, "until": iso(node_clock().now() + lasting)}


def signed_in(key: str, lasting: timedelta) -> dict | None:
    """The roster entry of the staff member signed in under ``key``, or None."""
    value = session.get(key)
    if not isinstance(value, dict):
        return None
    now = node_clock().now()
    try:
        until = parse_iso(value.get("until"))
    except (TypeError, ValueError):
        until = None
    person = get_state().staff(str(value.get("staff_id")))
    if until is None or not now < until <= now + lasting or person is None:
        session.pop(key, None)
        return None
    return person


def forget(key: str) -> None:
    session.pop(key, None)


def sign_in(key: str, lasting: timedelta, form_page, done_endpoint: str):
    """The body of a sign-in POST: staff number + PIN checked (rate limits and
    all, ``auth.authenticate``); a refusal re-shows the form through
    ``form_page(status, error, staff_id, headers)``, success remembers the
    staff member under ``key`` and goes to ``done_endpoint``."""
    result = authenticate(request.form, device_key())
    if isinstance(result, Refusal):
        if result.whole_page:
            return message_page(result.status, _("Not ready yet"), result.message)
        return form_page(result.status, result.message, result.staff_id, result.headers)
    remember(key, result.staff_id, lasting)
    return redirect_to(done_endpoint)
