"""iCalendar (RFC 5545) feeds of events: one per zone, one per department,
and one per person of the events they are registered for
(hub/schedule/registration.py; not those they are waiting for).

Calendar apps subscribe to a URL and cannot sign in, so a feed URL carries
its own capability: ``?token=`` HMAC-SHA256 of the feed's path keyed by the
hub's secret key. Knowing one feed's URL gives nothing else; rotating the
secret key revokes every subscription.

Times are written in UTC (``DTSTART:20250310T010000Z``), which every
calendar app converts to the reader's zone; ``X-WR-TIMEZONE`` names the
hospital's zone for the apps that show a calendar's own zone.
"""

import hashlib
import hmac
import json
from datetime import datetime, timedelta, timezone
from typing import Callable

from icalendar import Calendar, Event

from hub.attendance import attendance
from protocol.clock import iso

FEED_KINDS = ("zone", "department", "person")
# Ended events older than this are left out of a feed.
FEED_PAST = timedelta(days=180)

_EVENT_SQL = ('SELECT e.id, e.title, e.kind, e.zones, e.start, e."end", e.credit_hours '
              'FROM events e WHERE e."end" >= :since AND ')
_BY_KIND = {
    "zone": "EXISTS (SELECT 1 FROM json_each(e.zones) WHERE value = :name)",
    "department": "EXISTS (SELECT 1 FROM event_expected x WHERE x.event_id = e.id "
                  "AND x.kind = 'department' AND x.value = :name)",
    "person": "EXISTS (SELECT 1 FROM registrations r WHERE r.event_id = e.id "
              "AND r.staff_id = :name AND r.state = 'registered')",
}
_COLUMNS = ("id", "title", "kind", "zones", "start", "end", "credit_hours")


def feed_path(kind: str, name: str) -> str:
    """The path (unquoted) a feed is served at and its token signs."""
    if kind not in FEED_KINDS:
        raise ValueError(f"unknown feed kind: {kind}")
    return f"/calendar/{kind}/{name}.ics"


def feed_token(secret: str | bytes, kind: str, name: str) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, feed_path(kind, name).encode(), hashlib.sha256).hexdigest()


def token_ok(secret: str | bytes, kind: str, name: str, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(feed_token(secret, kind, name).encode(),
                                               token.encode("utf-8", "replace"))


def feed_events(db, kind: str, name: str, now: datetime | None = None) -> list[dict]:
    """The events of a zone (held there), of a department (expecting it) or
    of a person (registered for it) that ended at most ``FEED_PAST`` ago, by
    start."""
    now = now or datetime.now(timezone.utc)
    sql = _EVENT_SQL + _BY_KIND[kind] + " ORDER BY e.start, e.id"
    rows = db.conn.execute(sql, {"since": iso(now - FEED_PAST), "name": name})
    events = []
    for row in rows:
        event = dict(zip(_COLUMNS, row))
        try:
            zones = json.loads(event["zones"] or "[]")
        except ValueError:
            zones = []
        event["zones"] = [z for z in zones if isinstance(z, str)] if isinstance(zones, list) \
            else []
        events.append(event)
    return events


def calendar(events: list[dict], *, name: str, site: str, tz_name: str,
             zone_names: dict[str, str], describe: Callable[[dict], str],
             now: datetime | None = None) -> bytes:
    """The feed as iCalendar bytes. ``describe(event)`` writes DESCRIPTION
    (kind, credit hours) in the reader's language."""
    now = now or datetime.now(timezone.utc)
    cal = Calendar()
    cal.add("prodid", f"-//Rounds//{site}//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", name)
    cal.add("x-wr-timezone", tz_name)
    cal.add("refresh-interval", timedelta(hours=1), parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", "PT1H")
    for event in events:
        item = Event()
        item.add("uid", f"{event['id']}@{site}")
        item.add("dtstamp", now)
        item.add("dtstart", attendance.parse_time(event["start"]).astimezone(timezone.utc))
        item.add("dtend", attendance.parse_time(event["end"]).astimezone(timezone.utc))
        item.add("summary", event["title"])
        item.add("location", ", ".join(zone_names.get(z, z) for z in event["zones"]))
        item.add("description", describe(event))
        item.add("categories", [event["kind"]])
        cal.add_component(item)
    return cal.to_ical()
