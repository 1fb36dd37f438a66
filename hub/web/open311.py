"""Open311 GeoReport v2 at /open311/v2, so existing 311 clients can read and
file tickets.

* Services are the report categories (``category_settings``): service_code =
  category, ``metadata`` false (no extra attributes), type ``realtime`` (a
  POST answers the ticket id at once, no token).
* A service request is a **ticket** (``service_request_id`` = ticket id);
  status ``open`` = new/assigned/in_progress, ``closed`` =
  resolved/closed/rejected; ``status_notes`` = the comment of the ticket's
  last state change; ``agency_responsible`` = the department;
  ``requested_datetime`` = when the problem was reported,
  ``updated_datetime`` = last change, never shown before requested_datetime
  (a photo taken after the ticket was filed would otherwise make it so);
  ``expected_datetime`` = due time; ``address`` = the zone's name (with
  building and floor when known); ``lat``/``long`` = the report's point, else
  the zone's coordinates when it has some; ``media_url`` = a link to the
  ticket's first photo (below), null without one.
* **Who may read requests** (``GET requests.*``, ``GET requests/<id>.*``):
  descriptions are free text written by staff and may name patients, and so
  may ``status_notes`` and the photos. A caller with an ``api_key`` (query
  parameter, a key in ``open311_keys``) or a signed-in dashboard account that
  reads tickets there (office and admin: every request; a department
  reviewer: their department's, as on the board) reads everything. Anyone
  else gets 403, unless the hub config says ``"open311": {"public_read":
  true}``: then requests are listed to anyone, with ``description``,
  ``status_notes`` and ``media_url`` null. A wrong ``api_key`` is always 403.
  Request reads are ``Cache-Control: no-store``. ``services.*`` are public.
* ``media_url`` is ``/open311/v2/media/<token>.jpg``: the token is the photo's
  sha256 signed with the app's SECRET_KEY and a timestamp, valid for
  ``open311.media_url_seconds`` (default 3600) from when the request was
  read; it serves only the stored photo, which the node already made safe
  (faces blurred, metadata stripped). An expired or forged token is 403.
* ``GET requests.*``: ``service_request_id`` (comma list; when given the
  other filters are ignored, as the spec says), ``service_code`` (comma list),
  ``start_date``/``end_date`` (W3C date-times with a zone, on
  requested_datetime), ``status`` (open, closed or both). Without dates: the
  last 90 days; at most 1000 requests, newest first.
* ``POST requests.*`` (form fields): ``api_key`` (a key in the
  ``open311_keys`` table; missing or unknown -> 403), ``service_code``,
  ``description`` and either ``lat`` + ``long`` or ``address_string``
  (400 otherwise). It files a ``report`` (node ``open311``, staff
  ``311:<key name>``, no photos) through the same path as a node's report,
  so it is routed, deduplicated and visible to the reporter's tools like any
  other. The zone is the zone named by ``address_string`` (id or name), else
  the nearest zone with coordinates to lat/long, else the address text
  itself (or ``unlocated``). ``jurisdiction_id`` is accepted and ignored
  (one hospital per hub). Submitters earn no volunteer hours.
* Formats: ``.json`` and ``.xml`` for every GET and POST, with the same
  fields. XML is the spec's: ``<service_requests>`` of
  ``<request>``, ``<services>`` of ``<service>``, ``<service_definition>``;
  null fields are empty elements, booleans ``true``/``false``; built with
  ElementTree (so text is escaped), as ``text/xml; charset=utf-8``. Any other
  format is 400.
* Errors are the spec's ``[{"code": <status>, "description": "..."}]``, or
  ``<errors><error><code/><description/></error></errors>`` when the path
  ends in ``.xml``, with that HTTP status, for every path under /open311/v2
  (unknown paths too).
"""

import json
import math
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from xml.etree import ElementTree

from flask import Blueprint, Response, abort, current_app, jsonify, request, send_file, url_for
from flask_login import current_user
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from werkzeug.exceptions import HTTPException

from hub.config import open311_settings
from hub.db import write_transaction
from hub.ingest import photos
from hub.ingest.store import write_batch
from hub.schedule import zones
from hub.tickets import categories, open311_keys, tickets
from protocol.clock import iso, now_iso
from protocol.records import InvalidRecord, validate

from hub.web.auth import department_scope
from hub.web.context import get_db, photos_dir
from hub.web.params import number

PREFIX = "/open311/v2"
bp = Blueprint("open311", __name__, url_prefix=PREFIX)
NODE = "open311"
DEFAULT_DAYS = 90
MAX_REQUESTS = 1000
UNLOCATED = "unlocated"
FORMATS = ("json", "xml")
XML_TYPE = "text/xml; charset=utf-8"
# The element of each item of a list, by the list's element (GeoReport v2).
XML_ITEMS = {"service_requests": "request", "services": "service", "errors": "error",
             "attributes": "attribute"}
# Characters XML 1.0 cannot carry, escaped or not.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
MEDIA_SALT = "open311-media"
_SHA256 = re.compile(r"[0-9a-f]{64}")


def is_open311(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def error_response(exc: HTTPException):
    code = exc.code or 500
    description = "internal server error" if code >= 500 else exc.description
    errors = [{"code": code, "description": description}]
    response = exc.get_response()  # keeps headers such as Allow on a 405
    if request.path.endswith(".xml"):
        response.set_data(_xml("errors", errors))
        response.content_type = XML_TYPE
    else:
        response.set_data(json.dumps(errors))
        response.content_type = "application/json; charset=utf-8"
    return response


# -- formats ----------------------------------------------------------------

def _format(fmt: str) -> str:
    if fmt not in FORMATS:
        abort(400, description=f"format {fmt!r} is not supported: use .json or .xml")
    return fmt


def _fill(element: ElementTree.Element, value) -> None:
    if isinstance(value, list):
        for item in value:
            _fill(ElementTree.SubElement(element, XML_ITEMS[element.tag]), item)
    elif isinstance(value, dict):
        for key, inner in value.items():
            _fill(ElementTree.SubElement(element, key), inner)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:  # None stays an empty element
        element.text = _NOT_XML.sub("\ufffd", str(value))


def _xml(root: str, value) -> bytes:
    element = ElementTree.Element(root)
    _fill(element, value)
    return ElementTree.tostring(element, encoding="utf-8", xml_declaration=True)


def _answer(fmt: str, root: str, value) -> Response:
    """``value`` as JSON, or as XML under ``root`` (the spec's element name)."""
    if fmt == "xml":
        return Response(_xml(root, value), content_type=XML_TYPE)
    return jsonify(value)


# -- services ---------------------------------------------------------------

def _services(db, code=None) -> list[dict]:
    return [{"service_code": c["category"], "service_name": c["label"],
             "description": c["description"] or "", "metadata": False, "type": "realtime",
             "keywords": c["keywords"] or "", "group": c["group_name"] or ""}
            for c in categories.list_categories(db, code)]


@bp.get("/services.<fmt>")
def services(fmt):
    return _answer(_format(fmt), "services", _services(get_db()))


@bp.get("/services/<code>.<fmt>")
def service_definition(code, fmt):
    _format(fmt)
    if not _services(get_db(), code):
        abort(404, description=f"service_code {code!r} not found")
    return _answer(fmt, "service_definition", {"service_code": code, "attributes": []})


# -- who may read -------------------------------------------------------------

def _settings() -> dict:
    return open311_settings(current_app.config.get("OPEN311"))


def _reader() -> tuple[Callable[[dict], bool], str | None]:
    """(whether the caller may read a ticket's staff-written text, the
    department the requests are limited to); 403 for a caller who may not
    read requests at all (module docstring)."""
    api_key = request.args.get("api_key")
    if api_key is not None:
        if open311_keys.key_name(get_db(), api_key) is None:
            abort(403, description="api_key is invalid")
        return (lambda ticket: True), None
    public = _settings()["public_read"]
    if current_user.is_authenticated and current_user.may("office", "dept_reviewer"):
        scope = department_scope()
        if scope is None:
            return (lambda ticket: True), None
        return (lambda ticket: ticket["department"] == scope), (None if public else scope)
    if not public:
        abort(403, description="reading requests needs an api_key (or signing in to the "
                               "dashboard)")
    return (lambda ticket: False), None


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


# -- requests ---------------------------------------------------------------

def _address(zone: dict | None, zone_id: str) -> str:
    if zone is None:
        return zone_id
    return ", ".join(str(zone[part]) for part in ("name", "building", "floor") if zone[part])


def _serializer() -> URLSafeTimedSerializer:
    # itsdangerous ships with Flask: a signed, timestamped token with no new
    # dependency and no hand-rolled HMAC; the salt keeps these tokens apart
    # from anything else signed with SECRET_KEY (the session cookie).
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=MEDIA_SALT)


def _media_url(db, ticket: dict) -> str | None:
    """A signed link to the ticket's first stored photo (None without one)."""
    for sha in tickets.photos_of(db, ticket):
        if photos.path_of(db, sha):
            token = _serializer().dumps(sha)
            return url_for("open311.media", token=token, _external=True)
    return None


def _service_request(db, ticket: dict, names: dict, described: bool) -> dict:
    zone = zones.get_zone(db, ticket["zone"])
    lat, lon = ticket["lat"], ticket["lon"]
    if lat is None and lon is None and zone is not None:
        lat, lon = zone["lat"], zone["lon"]
    notes = tickets.last_comment(db, ticket["id"]) if ticket["state"] != "new" else None
    return {
        "service_request_id": str(ticket["id"]),
        "status": "open" if ticket["state"] in tickets.OPEN_STATES else "closed",
        "status_notes": notes if described else None,
        "service_name": names.get(ticket["category"], ticket["category"]),
        "service_code": ticket["category"],
        "description": (ticket["note"] or "") if described else None,
        "agency_responsible": ticket["department"],
        "service_notice": None,
        "requested_datetime": ticket["reported_at"],
        # Both are stored in the one form that sorts as text (milliseconds, Z).
        "updated_datetime": max(ticket["updated_at"], ticket["reported_at"]),
        "expected_datetime": ticket["due_at"],
        "address": _address(zone, ticket["zone"]),
        "address_id": None,
        "zipcode": None,
        "lat": lat,
        "long": lon,
        "media_url": _media_url(db, ticket) if described else None,
    }


def _requests(fmt: str, db, found: list[dict], may_read) -> Response:
    names = categories.labels(db)
    return _no_store(_answer(fmt, "service_requests",
                             [_service_request(db, t, names, may_read(t)) for t in found]))


def _date(name: str) -> str | None:
    text = request.args.get(name)
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        abort(400, description=f"{name} must be a W3C date-time, e.g. 2026-11-24T08:15:30Z")
    if value.tzinfo is None:
        abort(400, description=f"{name} needs a time zone (Z or +HH:MM)")
    return iso(value)


@bp.get("/requests.<fmt>")
def get_requests(fmt):
    _format(fmt)
    may_read, department = _reader()
    db = get_db()
    ids = request.args.get("service_request_id")
    if ids:
        wanted = [i.strip() for i in ids.split(",") if i.strip()]
        if not all(number(i) is not None for i in wanted):
            abort(400, description="service_request_id must be a comma-separated list of ids")
        found = tickets.list_tickets(db, ids=[int(i) for i in wanted], department=department,
                                     limit=MAX_REQUESTS)
        return _requests(fmt, db, found, may_read)
    filters = {}
    codes = request.args.get("service_code")
    if codes:
        filters["category"] = [c.strip() for c in codes.split(",") if c.strip()]
    statuses = request.args.get("status")
    if statuses:
        wanted = {s.strip() for s in statuses.split(",") if s.strip()}
        if not wanted <= {"open", "closed"}:
            abort(400, description="status must be open, closed or both (comma-separated)")
        filters["state"] = [s for s in tickets.STATES
                            if ("open" if s in tickets.OPEN_STATES else "closed") in wanted]
    start, end = _date("start_date"), _date("end_date")
    if start is None and end is None:
        start = iso(datetime.now(timezone.utc) - timedelta(days=DEFAULT_DAYS))
    if start and end and start > end:
        abort(400, description="start_date must be before end_date")
    found = tickets.list_tickets(db, since=start, until=end, department=department,
                                 limit=MAX_REQUESTS, **filters)
    return _requests(fmt, db, found, may_read)


@bp.get("/requests/<request_id>.<fmt>")
def get_request(request_id, fmt):
    _format(fmt)
    may_read, department = _reader()
    db = get_db()
    ticket = tickets.get_ticket(db, number(request_id)) if number(request_id) else None
    if ticket is None or department not in (None, ticket["department"]):
        abort(404, description=f"service_request_id {request_id!r} not found")
    return _requests(fmt, db, [ticket], may_read)


# -- media --------------------------------------------------------------------

@bp.get("/media/<token>.jpg")
def media(token):
    """The photo a media_url names, while its signature is valid and fresh."""
    try:
        sha = _serializer().loads(token, max_age=_settings()["media_url_seconds"])
    except SignatureExpired:
        abort(403, description="this media link has expired: read the request again")
    except BadSignature:
        abort(403, description="this media link is invalid")
    stored = photos.path_of(get_db(), sha) if _SHA256.fullmatch(str(sha)) else None
    path = _photo_file(stored) if stored else None
    if path is None:
        abort(404, description="unknown photo")
    response = send_file(path, mimetype="image/jpeg", etag=sha, conditional=True)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _photo_file(stored: str) -> Path | None:
    """The stored photo's file, only when it lies inside the photos directory
    (``hub.web.context.photos_dir``)."""
    root = photos_dir()
    try:
        path = Path(stored).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not path.is_relative_to(root.resolve()) or not path.is_file():
        return None
    return path


# -- filing -------------------------------------------------------------------

def _coordinate(name: str, bound: float) -> float | None:
    text = request.form.get(name, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not -bound <= value <= bound:
        abort(400, description=f"{name} must be a number in -{bound:g}..{bound:g}")
    return value


def _zone_for(db, lat, lon, address: str) -> str:
    if address:
        zone = zones.find_zone(db, address)
        if zone:
            return zone
    if lat is not None:
        zone = zones.nearest_zone(db, lat, lon)
        if zone:
            return zone
    return address[:64] if address else UNLOCATED


@bp.post("/requests.<fmt>")
def post_request(fmt):
    _format(fmt)
    db = get_db()
    form = request.form
    api_key = form.get("api_key", "")
    key = open311_keys.key_name(db, api_key) if api_key else None
    if key is None:
        abort(403, description="api_key was not provided or is invalid")
    code = form.get("service_code", "").strip()
    if not code:
        abort(400, description="service_code is required")
    if not _services(db, code):
        abort(404, description=f"service_code {code!r} not found")
    description = form.get("description", "").strip()
    if not description:
        abort(400, description="description is required")
    if len(description) > 2000:
        abort(400, description="description is at most 2000 characters")
    lat, lon = _coordinate("lat", 90), _coordinate("long", 180)
    if (lat is None) != (lon is None):
        abort(400, description="lat and long go together")
    address = form.get("address_string", "").strip()
    if lat is None and not address:
        abort(400, description="a location is required: lat and long, or address_string")
    now = now_iso()
    record = {"id": str(uuid.uuid4()), "type": "report", "ts": now,
              "report_id": str(uuid.uuid4()), "staff_id": f"311:{key}"[:64],
              "category": code, "note": description, "zone": _zone_for(db, lat, lon, address),
              "lat": lat, "lon": lon, "photos": [], "taken_at": now}
    try:
        validate(record)
    except InvalidRecord as exc:
        abort(400, description=str(exc))
    with write_transaction(db):
        write_batch(db, f"{PREFIX}/requests", NODE, [record], [])
        tickets.materialize(db)
        ticket_id, duplicate = tickets.ticket_of_report(db, record["report_id"])
    ticket = tickets.get_ticket(db, ticket_id)
    if duplicate:
        notice = (f"Already reported: added to request {ticket_id} "
                  f"({ticket['reporters']} reporters).")
    else:
        notice = f"Sent to {ticket['department']}; expected by {ticket['due_at']}."
    return _answer(fmt, "service_requests", [{"service_request_id": str(ticket_id),
                                              "service_notice": notice, "account_id": None}])
