"""What phones ask before they show the sign-in sheet: the OS connectivity
probes, the RFC 8908 Captive Portal API, and any other web address (the
nftables redirect sends every plain-HTTP request of a captive phone here).

Probes are answered per device state (DESIGN.md, "What phones really do"):
a released phone gets the exact "success" answer its OS expects, so the sheet
closes (or never opens) and the phone stays on the network; a captive phone
(not released, or no MAC known) gets a 302 to ``PORTAL_URL``, so the sheet
opens on the portal. Every answer here carries ``Cache-Control: no-store``.

RFC 8908 API (``/api/captive``): Android takes the API's URL from DHCP option
114 only when it is ``https`` (and RFC 8908 wants the user portal over TLS
too); a node without a certificate phones trust does not announce option 114
at all and relies on the probes. How TLS is served (a hospital host name and
certificate in front of this app) is set up by the node's OS configuration,
not here; this view answers the same JSON on either scheme.
"""

import json
from datetime import datetime, timezone
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, current_app, redirect, request, url_for

from .device import devices, phone

bp = Blueprint("probes", __name__)

APPLE_SUCCESS = "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>"
FIREFOX_CANONICAL = ('<meta http-equiv="refresh" '
                     'content="0;url=https://support.mozilla.org/kb/captive-portal"/>')
# (path, endpoint, status, body, content type) answered to a released phone
PROBES = (
    ("/hotspot-detect.html", "hotspot_detect", 200, APPLE_SUCCESS, "text/html"),    # Apple
    ("/library/test/success.html", "library_success", 200, APPLE_SUCCESS, "text/html"),
    ("/generate_204", "generate_204", 204, "", None),                  # Android, Chrome
    ("/gen_204", "gen_204", 204, "", None),                            # Android (some)
    ("/connecttest.txt", "connecttest", 200, "Microsoft Connect Test", "text/plain"),  # Windows
    ("/ncsi.txt", "ncsi", 200, "Microsoft NCSI", "text/plain"),        # Windows (older)
    ("/canonical.html", "canonical", 200, FIREFOX_CANONICAL, "text/html"),  # Firefox
    ("/success.txt", "success_txt", 200, "success\n", "text/plain"),   # Firefox
)
CAPTIVE_JSON = "application/captive+json"
MAX_API_BYTES = 4096  # RFC 8908 clients may refuse a longer answer
# Answered whatever Host the request names.
_ANY_HOST = {"healthz", "probes.captive_api", *(f"probes.{p[1]}" for p in PROBES)}


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.before_request(redirect_foreign_host)


def _probe_view(status: int, body: str, content_type: str | None):
    def view():
        if not _released_until():
            return captive_redirect()
        response = Response(body, status=status)
        if content_type:
            response.headers["Content-Type"] = content_type
        else:
            del response.headers["Content-Type"]
        response.headers["Cache-Control"] = "no-store"
        return response
    return view


for _path, _name, *_answer in PROBES:
    bp.add_url_rule(_path, _name, _probe_view(*_answer))


def _released_until() -> datetime | None:
    current = phone()
    return devices().released_until(current.mac) if current else None


def portal_url() -> str:
    """Where a captive phone is sent: ``PORTAL_URL``, else this host's start page."""
    return current_app.config.get("PORTAL_URL") or url_for("checkin.home", _external=True)


def captive_redirect() -> Response:
    response = redirect(portal_url(), code=302)
    response.headers["Cache-Control"] = "no-store"
    return response


def _hostname(url_or_host: str) -> str | None:
    text = url_or_host if "//" in url_or_host else "//" + url_or_host
    try:
        return urlsplit(text).hostname
    except ValueError:
        return None


def redirect_foreign_host():
    """Send a request for any host but the portal's own to ``PORTAL_URL``.

    Host names are compared without the port (the portal may sit behind a
    port redirect); the API's host (``API_URL``) counts as the portal's own.
    """
    config = current_app.config
    if not config.get("PORTAL_URL") or request.endpoint in _ANY_HOST:
        return None
    own = {_hostname(config[key]) for key in ("PORTAL_URL", "API_URL") if config.get(key)}
    if _hostname(request.host) in own:
        return None
    return captive_redirect()


@bp.get("/api/captive")
def captive_api():
    """RFC 8908 Captive Portal API: is this phone captive, and where to sign in.

    ``seconds-remaining`` is given only when the phone is not captive (its
    release is time-limited, ``RELEASE_SECONDS``).
    """
    until = _released_until()
    body = {"captive": until is None, "user-portal-url": portal_url()}
    venue = current_app.config.get("VENUE_INFO_URL")
    if venue:
        body["venue-info-url"] = venue
    if until is not None:
        remaining = (until - datetime.now(timezone.utc)).total_seconds()
        body["seconds-remaining"] = max(0, int(remaining))
    data = json.dumps(body, separators=(",", ":"))
    if len(data.encode()) > MAX_API_BYTES:  # only with absurdly long configured URLs
        body.pop("venue-info-url", None)
        data = json.dumps(body, separators=(",", ":"))
    response = Response(data, status=200)
    response.headers["Content-Type"] = CAPTIVE_JSON
    response.headers["Cache-Control"] = "private, no-store"
    return response
