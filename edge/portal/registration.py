"""Registration (报名) on the node's portal: staff register for an event, or
cancel, on a plain form (no JavaScript).

The events come from the hub in the node's config (``"registrations"``: each
event taking registration with its window, places, who may register and the
staff ids ``registered`` and ``waiting`` in order; hub/schedule/registration.py
``for_node``). The node cannot decide places (several nodes take sign-ups at
once), so a registration or a cancellation is a ``registration`` record in the
outbox that the hub applies in ``taken_at`` order, and the page goes on
working while the hub is unreachable.

Each person's state is the hub's (registered; waiting, number N) unless their
latest action here (``local_registrations``) is not reflected in it yet: then
"sent, waiting for the hub", while its record is still in the outbox or the
config has not changed since the action. After that the hub's word stands (it
may have refused the record, or the person changed it on the hub since).

The window is checked on the node's clock: no registration while the clock
is not set. Register while the window is open and you may (your department
or staff number in ``who``, or ``who`` null for everyone); cancel until the
event starts.

Who: a bound phone is its owner; any other phone signs in with staff number
+ PIN (``edge.portal.signin``) for an hour.

Routes: ``GET /register`` (sign-in form, or the person's events),
``POST /register`` (``event_id``, ``action`` register|cancel),
``POST /register/sign-in``, ``POST /register/sign-out``.
"""

import json
import logging
from datetime import datetime, timedelta

from flask import Blueprint, Flask, render_template, request, session
from flask_babel import gettext as _

from edge.state import CONFIG
from protocol.clock import parse_iso

from . import signin
from .context import clock_unset, get_db, get_outbox, get_state, node_clock
from .device import person, phone
from .i18n import redirect_to
from .render import message_page
from .writes import immediate

bp = Blueprint("registration", __name__)
log = logging.getLogger(__name__)
SIGNED_IN_FOR = timedelta(hours=1)
_SIGNED_IN = "registrant"      # session: {"staff_id", "until"}
_SAVED = "registration_saved"  # session: {"title", "action"}, shown once
ACTIVE = ("registered", "waiting", "sent")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.jinja_env.globals["registration_open"] = lambda: any(
        window(e, node_clock().now()) == "open" for e in events())


# --- the events in the node's config ------------------------------------------------

def _usable(event) -> bool:
    try:
        parse_iso(event["opens_at"]), parse_iso(event["closes_at"]), parse_iso(event["start"])
    except (KeyError, TypeError, ValueError):
        return False
    return (isinstance(event.get("event_id"), str)
            and isinstance(event.get("registered"), list)
            and isinstance(event.get("waiting"), list))


def events() -> list[dict]:
    """The events taking registration that the hub sent, usable ones only."""
    found = (get_state().get(CONFIG) or {}).get("registrations") or []
    usable = [e for e in found if isinstance(e, dict) and _usable(e)]
    if len(usable) != len(found):
        log.warning("%d registration event(s) in the node config cannot be used",
                    len(found) - len(usable))
    return usable


def window(event: dict, now: datetime) -> str:
    """``"upcoming"``, ``"open"`` or ``"closed"`` at ``now``."""
    if now < parse_iso(event["opens_at"]):
        return "upcoming"
    return "open" if now < parse_iso(event["closes_at"]) else "closed"


def may_register(event: dict, who: dict) -> bool:
    """Whether ``who`` (a roster entry) may register for ``event``."""
    rule = event.get("who")
    if not isinstance(rule, dict):
        return True
    return (who.get("department") in (rule.get("departments") or [])
            or who["staff_id"] in (rule.get("staff") or []))


def state_of(event: dict, staff_id: str, local: dict | None, version: str | None) -> dict:
    """``{"code", "position"}``: ``code`` ``registered``, ``waiting`` (with its
    ``position``), ``sent`` (a registration not reflected yet), ``cancelling``
    (a cancellation not reflected yet) or None; see the module."""
    if staff_id in event["registered"]:
        hub = {"code": "registered", "position": None}
    elif staff_id in event["waiting"]:
        hub = {"code": "waiting", "position": event["waiting"].index(staff_id) + 1}
    else:
        hub = {"code": None, "position": None}
    if local is None:
        return hub
    reflected = (hub["code"] is not None) == (local["action"] == "register")
    if reflected or not (local["queued"] or local["config_version"] == version):
        return hub
    return {"code": "sent" if local["action"] == "register" else "cancelling", "position": None}


def _local(staff_id: str) -> dict[str, dict]:
    """This person's latest action here per event, and whether its record is
    still in the outbox."""
    rows = get_db().conn.execute(
        "SELECT l.event_id, l.action, l.config_version, o.id IS NOT NULL "
        "FROM local_registrations l LEFT JOIN outbox o ON o.id = l.record_id "
        "WHERE l.staff_id = ?", (staff_id,)).fetchall()
    return {event_id: {"action": action, "config_version": version, "queued": bool(queued)}
            for event_id, action, version, queued in rows}


def _version() -> str | None:
    return (get_state().get(CONFIG) or {}).get("version")


def listing(who: dict, now: datetime) -> list[dict]:
    """The events ``who`` may register for, or has a state for, with that
    state and what they can do now."""
    local, version = _local(who["staff_id"]), _version()
    found = []
    for event in events():
        state = state_of(event, who["staff_id"], local.get(event["event_id"]), version)
        eligible = may_register(event, who)
        if not eligible and state["code"] is None:
            continue
        is_open = window(event, now)
        found.append({**event, **state, "window": is_open,
                      "full": event.get("capacity") is not None
                      and len(event["registered"]) >= event["capacity"],
                      "can_register": eligible and is_open == "open"
                      and state["code"] in (None, "cancelling"),
                      "can_cancel": state["code"] in ACTIVE
                      and now < parse_iso(event["start"])})
    found.sort(key=lambda e: (not (e.get("required") and e["code"] is None), e["start"]))
    return found


# --- who is asking -------------------------------------------------------------------

def _who() -> dict | None:
    """The roster entry of the bound phone's owner or of the person signed in."""
    current = phone()
    if current is not None and current.staff_id:
        return person(current.staff_id)
    return signin.signed_in(_SIGNED_IN, SIGNED_IN_FOR)


def _signin_page(status=200, error=None, staff_id="", headers=None):
    return render_template("register_signin.html", error=error, staff_id=staff_id), status, \
        headers or {}


@bp.get("/register")
def page():
    who = _who()
    if who is None:
        return _signin_page()
    now = node_clock().now()
    bound = phone() is not None and phone().staff_id == who["staff_id"]
    return render_template("register.html", who=who, events=listing(who, now), bound=bound,
                           saved=session.pop(_SAVED, None))


@bp.post("/register/sign-in")
def sign_in():
    return signin.sign_in(_SIGNED_IN, SIGNED_IN_FOR, _signin_page, "registration.page")


@bp.post("/register/sign-out")
def sign_out():
    signin.forget(_SIGNED_IN)
    return redirect_to("registration.page")


# --- register or cancel ----------------------------------------------------------------

def _refusal(event: dict | None, who: dict, action: str, now: datetime):
    """The page saying why ``action`` cannot be taken now, or None."""
    if event is None:
        return message_page(404, _("Event not found"),
                            _("This node has no event taking registration by that name."))
    if clock_unset():
        return message_page(503, _("Not ready yet"),
                            _("This node's clock is not set yet, so it cannot take "
                              "registrations. Please try again in a few minutes."))
    if action == "cancel":
        if now >= parse_iso(event["start"]):
            return message_page(409, _("Too late to cancel"),
                                _("The event has started: the registration can no longer be "
                                  "cancelled."))
        return None
    if not may_register(event, who):
        return message_page(403, _("Not open to you"),
                            _("Registration for this event is not open to you."))
    if window(event, now) == "upcoming":
        return message_page(409, _("Not open yet"),
                            _("Registration for this event has not opened yet."))
    if window(event, now) == "closed":
        return message_page(409, _("Registration closed"),
                            _("Registration for this event has closed."))
    return None


@bp.post("/register")
def act():
    who = _who()
    if who is None:
        return redirect_to("registration.page")
    action = request.form.get("action")
    if action not in ("register", "cancel"):
        return message_page(400, _("Please try again"), _("Choose to register or to cancel."))
    event_id = request.form.get("event_id", "")
    event = next((e for e in events() if e["event_id"] == event_id), None)
    now = node_clock().now()
    refused = _refusal(event, who, action, now)
    if refused is not None:
        return refused
    local = _local(who["staff_id"]).get(event_id)
    code = state_of(event, who["staff_id"], local, _version())["code"]
    if (action == "register") == (code in ACTIVE):
        return redirect_to("registration.page")  # already so: nothing to send
    _save(event, who["staff_id"], action)
    session[_SAVED] = {"title": event.get("title") or event_id, "action": action}
    return redirect_to("registration.page")


def _save(event: dict, staff_id: str, action: str) -> None:
    """Queue the record and remember the action, in one transaction; forget
    the actions of events the hub no longer sends."""
    now = node_clock().now_iso()
    outbox = get_outbox()
    with immediate(outbox.db):
        record_id = outbox.append({"type": "registration", "event_id": event["event_id"],
                                   "staff_id": staff_id, "action": action, "taken_at": now})
        outbox.db.conn.execute(
            "INSERT INTO local_registrations (event_id, staff_id, action, record_id, "
            "config_version, taken_at) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (event_id, staff_id) DO UPDATE SET action = excluded.action, "
            "record_id = excluded.record_id, config_version = excluded.config_version, "
            "taken_at = excluded.taken_at",
            (event["event_id"], staff_id, action, record_id, _version(), now))
        sent = json.dumps([e["event_id"] for e in events()])
        outbox.db.conn.execute("DELETE FROM local_registrations WHERE event_id NOT IN "
                               "(SELECT value FROM json_each(?))", (sent,))
