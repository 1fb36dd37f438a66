"""Rendering helpers of the portal's pages: times in the node's time zone,
and the one-message pages (errors, a full storage)."""

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import current_app, render_template
from flask_babel import gettext as _

from protocol.clock import parse_iso


def local_time(timestamp: str | datetime) -> datetime:
    """A wire timestamp in the node's time zone."""
    name = current_app.config.get("TIMEZONE")
    moment = parse_iso(timestamp) if isinstance(timestamp, str) else timestamp
    return moment.astimezone(ZoneInfo(name) if name else None)


def hhmm(timestamp: str | datetime) -> str:
    """A wire timestamp as HH:MM in the node's time zone."""
    return local_time(timestamp).strftime("%H:%M")


def when(timestamp: str) -> str:
    """A wire timestamp as YYYY-MM-DD HH:MM in the node's time zone."""
    return local_time(timestamp).strftime("%Y-%m-%d %H:%M")


def minutes_until(moment: datetime, now: datetime) -> int:
    """Whole minutes until ``moment``, rounded up, at least 1."""
    return max(1, -(-int((moment - now).total_seconds()) // 60))


def message_page(status: int, title: str, message: str, headers=None):
    return render_template("message.html", title=title, message=message), status, headers or {}


def storage_full_page(status: int = 503):
    """The page for a write the node's full storage refused."""
    return message_page(
        status, _("This node's storage is full"),
        _("Nothing was saved. Please try again in a few minutes; if it keeps "
          "happening, tell the facilities team."))
