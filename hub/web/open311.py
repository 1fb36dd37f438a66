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
  ``updated_datetime`` = last change, ``expected_datetime`` = due time;
  ``address`` = the zone's name (with building and floor when known);
  ``media_url`` is null until the hub serves photos over HTTP.
* ``GET requests.json``: ``service_request_id`` (comma list; when given the
  other filters are ignored, as the spec says), ``service_code`` (comma list),
  ``start_date``/``end_date`` (W3C date-times with a zone, on
  requested_datetime), ``status`` (open, closed or both). Without dates: the
  last 90 days; at most 1000 requests, newest first.
* ``POST requests.json`` (form fields): ``api_key`` (a key in the
  ``open311_keys`` table; missing or unknown -> 403), ``service_code``,
  ``description`` and either ``lat`` + ``long`` or ``address_string``
  (400 otherwise). It files a ``report`` (node ``open311``, staff
  ``311:<key name>``, no photos) through the same path as a node's report,
  so it is routed, deduplicated and visible to the reporter's tools like any
  other. The zone is the zone named by ``address_string`` (id or name), else
  the nearest zone with coordinates to lat/long, else the address text
  itself (or ``unlocated``). ``jurisdiction_id`` is accepted and ignored
  (one hospital per hub). Submitters earn no volunteer hours.
* Only the ``.json`` format is served. The spec makes XML mandatory; this hub
  answers ``.xml`` (or any other format) with 400 in the spec's error format
  saying so, rather than serving a second, untested encoding.
* Errors are the spec's ``[{"code": <status>, "description": "..."}]`` with
  that HTTP status, for every path under /open311/v2 (unknown paths too).
"""

import json
import math
import uuid
from datetime import datetime, timedelta, timezone

from flask import Blueprint, abort, jsonify, request
from werkzeug.exceptions import HTTPException

from hub.db import write_transaction
from hub.ingest.store import write_batch
from hub.schedule import zones
from hub.tickets import categories, open311_keys, tickets
from protocol.clock import iso, now_iso
from protocol.records import InvalidRecord, validate

from hub.web.context import get_db
from hub.web.params import number

PREFIX = "/open311/v2"
bp = Blueprint("open311", __name__, url_prefix=PREFIX)
NODE = "open311"
DEFAULT_DAYS = 90
MAX_REQUESTS = 1000
UNLOCATED = "unlocated"


def is_open311(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def error_response(exc: HTTPException):
    code = exc.code or 500
    description = "internal server error" if code >= 500 else exc.description
    response = exc.get_response()
    response.set_data(json.dumps([{"code": code, "description": description}]))
    response.content_type = "application/json; charset=utf-8"
    return response


def _json_only(fmt: str) -> None:
    if fmt != "json":
        abort(400, description=f"format {fmt!r} is not supported: this server answers json "
                               "only (use .json)")


# -- services ---------------------------------------------------------------

def _services(db, code=None) -> list[dict]:
    return [{"service_code": c["category"], "service_name": c["label"],
             "description": c["description"] or "", "metadata": False, "type": "realtime",
             "keywords": c["keywords"] or "", "group": c["group_name"] or ""}
            for c in categories.list_categories(db, code)]


@bp.get("/services.<fmt>")
def services(fmt):
    _json_only(fmt)
    return jsonify(_services(get_db()))


@bp.get("/services/<code>.<fmt>")
def service_definition(code, fmt):
    _json_only(fmt)
    if not _services(get_db(), code):
        abort(404, description=f"service_code {code!r} not found")
    return jsonify({"service_code": code, "attributes": []})


# -- requests ---------------------------------------------------------------

def _address(db, zone: str) -> str:
    found = zones.get_zone(db, zone)
    if found is None:
        return zone
    return ", ".join(str(found[part]) for part in ("name", "building", "floor") if found[part])


def _service_request(db, ticket: dict, names: dict) -> dict:
    return {
        "service_request_id": str(ticket["id"]),
        "status": "open" if ticket["state"] in tickets.OPEN_STATES else "closed",
        "status_notes": (tickets.last_comment(db, ticket["id"])
                         if ticket["state"] != "new" else None),
        "service_name": names.get(ticket["category"], ticket["category"]),
        "service_code": ticket["category"],
        "description": ticket["note"] or "",
        "agency_responsible": ticket["department"],
        "service_notice": None,
        "requested_datetime": ticket["reported_at"],
        "updated_datetime": ticket["updated_at"],
        "expected_datetime": ticket["due_at"],
        "address": _address(db, ticket["zone"]),
        "address_id": None,
        "zipcode": None,
        "lat": ticket["lat"],
        "long": ticket["lon"],
        "media_url": None,
    }


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
    _json_only(fmt)
    db = get_db()
    names = categories.labels(db)
    ids = request.args.get("service_request_id")
    if ids:
        wanted = [i.strip() for i in ids.split(",") if i.strip()]
        if not all(number(i) is not None for i in wanted):
            abort(400, description="service_request_id must be a comma-separated list of ids")
        found = tickets.list_tickets(db, ids=[int(i) for i in wanted], limit=MAX_REQUESTS)
        return jsonify([_service_request(db, t, names) for t in found])
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
    found = tickets.list_tickets(db, since=start, until=end, limit=MAX_REQUESTS, **filters)
    return jsonify([_service_request(db, t, names) for t in found])


@bp.get("/requests/<request_id>.<fmt>")
def get_request(request_id, fmt):
    _json_only(fmt)
    db = get_db()
    ticket = tickets.get_ticket(db, number(request_id)) if number(request_id) else None
    if ticket is None:
        abort(404, description=f"service_request_id {request_id!r} not found")
    return jsonify([_service_request(db, ticket, categories.labels(db))])


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
    _json_only(fmt)
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
    return jsonify([{"service_request_id": str(ticket_id), "service_notice": notice,
                     "account_id": None}])
