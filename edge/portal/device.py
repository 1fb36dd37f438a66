"""Which phone is asking, and whose is it?

The phone is the MAC behind ``request.remote_addr`` (dnsmasq's lease file,
then the neighbour table; ``edge.devices.mac_for_ip``), never a cookie alone.
Its id in records is ``Devices.device_id(mac)`` (HMAC with the site secret).
No MAC found (the one-machine demo on localhost, a client on the wired side)
means an "unknown device": check-in by staff number + PIN still works, binding
is not offered.

A phone that is bound (``Devices.staff_for``) is released from the captive
portal on its first request (``RELEASE_SECONDS``), whatever that request is:
usually the OS probe, which then gets its "success" answer, so the sign-in
sheet does not even open. The release is not fsynced (``writes.write``,
``durable=False``): one lost in a power cut is made again on the phone's
next request.
"""

import logging
import sqlite3
from dataclasses import dataclass

from flask import Flask, current_app, g, request

from edge.db import is_disk_full
from edge.devices import Devices, mac_for_ip

from .context import get_db, get_outbox, get_state
from .writes import write

log = logging.getLogger(__name__)
# No phone to look up for these (and no database work either).
_SKIP = {"static", "healthz"}


@dataclass(frozen=True)
class Phone:
    mac: str                 # raw MAC: only for the released set, never in a record
    device: str              # HMAC id, as in records
    staff_id: str | None     # whose phone, when bound


def init_app(app: Flask) -> None:
    app.before_request(identify)


def devices() -> Devices:
    return Devices(get_db(), current_app.config["SITE_SECRET"], get_state())


def identify() -> None:
    """Find the asking phone (``g.phone``) and release it if it is bound."""
    g.phone = None
    if request.endpoint in _SKIP:
        return
    config = current_app.config
    mac = mac_for_ip(request.remote_addr or "", config["LEASES_FILE"], config["ARP_FILE"])
    if mac is None:
        return
    known = devices()
    device = known.device_id(mac)
    staff_id = known.staff_for(device)
    g.phone = Phone(mac, device, staff_id)
    if staff_id is not None and known.released_until(mac) is None:
        seconds, secret = config["RELEASE_SECONDS"], config["SITE_SECRET"]
        try:
            write(get_outbox(), lambda writer: Devices(writer.db, secret).release(mac, seconds),
                  durable=False)
        except sqlite3.OperationalError as exc:
            # A full disk must not take every page down with it: the phone
            # stays captive for now (released on a later request), and the
            # page it asked for is still served.
            if not is_disk_full(exc):
                raise
            log.warning("storage full: phone not released this time (%s)", exc)


def phone() -> Phone | None:
    """The asking phone, or None for an unknown device."""
    return g.get("phone")


def rebound(staff_id: str) -> None:
    """Update ``g.phone`` after this request bound it."""
    g.phone = Phone(g.phone.mac, g.phone.device, staff_id)


def person(staff_id: str) -> dict:
    """The roster entry (name, department) of a phone's owner; a stand-in
    with the staff number when the roster no longer lists them."""
    return get_state().staff(staff_id) or {"staff_id": staff_id, "name": staff_id}


def device_key() -> str:
    """What the per-device PIN limit counts on: the device id, or the client
    address for an unknown device (so /checkin cannot be used from one wired
    client to try PINs across every staff number)."""
    current = phone()
    return current.device if current else "ip:" + (request.remote_addr or "?")
