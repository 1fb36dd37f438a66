"""What the hub sends down: the site roster and each node's config with the
schedule of events in its zone. Both are retained, so a node that boots or
reconnects gets the latest at once, and it keeps them for offline use."""

import hashlib
import json
from datetime import datetime, timedelta, timezone

from protocol.clock import iso

from hub.assessment import items, progress
from hub.contests import acts
from hub.fleet import site
from hub.schedule import registration_lists
from hub.surveys import tasks as survey_tasks
from hub.sql import dialect_of
from hub.tickets import tickets

# Events that ended longer ago than this are no longer sent to nodes.
SCHEDULE_PAST = timedelta(days=1)
SCHEDULE_AHEAD = timedelta(days=14)


def _versioned(document: dict) -> dict:
    body = json.dumps(document, sort_keys=True).encode()
    return {"version": hashlib.sha256(body).hexdigest()[:16], **document}


def roster_document(db) -> dict:
    staff = [
        dict(zip(("staff_id", "name", "department", "pin_hash"), row))
        for row in db.conn.execute(
            "SELECT staff_id, name, department, pin_hash FROM staff ORDER BY staff_id")
    ]
    bindings = [
        {"device": device, "staff_id": staff_id}
        for device, staff_id in db.conn.execute(
            "SELECT device, staff_id FROM devices ORDER BY device")
    ]
    return _versioned({"staff": staff, "bindings": bindings})


def node_config_document(db, node: str, now: datetime | None = None) -> dict | None:
    """The retained config for ``node``, or None when it is unknown or revoked."""
    row = db.conn.execute(
        "SELECT n.zone, z.name FROM nodes n LEFT JOIN zones z ON z.zone = n.zone "
        "WHERE n.node = ? AND n.revoked = 0", (node,)).fetchone()
    if row is None or row[0] is None:
        return None
    zone, zone_name = row
    now = now or datetime.now(timezone.utc)
    columns = ("id", "title", "kind", "zones", "start", "end", "credit_hours", "min_presence")
    events = []
    for values in db.conn.execute(
        'SELECT e.id, e.title, e.kind, e.zones, e.start, e."end", e.credit_hours, '
        'e.min_presence FROM events e WHERE EXISTS (SELECT 1 FROM json_each(e.zones) '
        'WHERE value = ?) AND e."end" >= ? AND e.start <= ? ORDER BY e.start',
        (zone, iso(now - SCHEDULE_PAST), iso(now + SCHEDULE_AHEAD)),
    ):
        event = dict(zip(columns, values))
        event["zones"] = json.loads(event["zones"])
        if event["kind"] == "contest":
            event["contest"] = contest_for_node(db, event["id"], now)
        events.append(event)
    categories = [r[0] for r in db.conn.execute(  # in the order the office added them
        f"SELECT category FROM category_settings ORDER BY {dialect_of(db).insertion_order}")]
    wifi = site.wifi(db)
    return _versioned({"node": node, "zone": zone, "zone_name": zone_name, "events": events,
                       **({"wifi": wifi} if wifi else {}),
                       "categories": categories,
                       # Survey tasks open in this zone, with their questionnaires.
                       "surveys": survey_tasks.open_in_zone(db, zone, now),
                       # Events taking registration anywhere (a person signs up
                       # on any node): window, places, who, who is in.
                       "registrations": registration_lists.for_node(db, now),
                       # The state of each ticket reported here, for "my reports".
                       "reports": tickets.reports_for_node(db, node, now)})


def contest_for_node(db, event_id: str, now: datetime) -> dict | None:
    """What a node needs to take scores offline: the scale, the judges and each
    act with its scoring window (``opened_at``/``closes_at``; ``closed_at`` when
    it closed early). The hub counts only scores inside the window anyway."""
    found = acts.contest(db, event_id, now)
    if found is None:
        return None
    rule = found["rule"]
    return {"scale": [rule.scale_min, rule.scale_max], "judges": found["judges"],
            "final": found["frozen_at"] is not None,
            "acts": [{k: a[k] for k in ("act", "title", "performers", "opened_at", "closes_at",
                                        "closed_at", "state")} for a in found["acts"]]}


def assessment_document(db, tz, now: datetime | None = None) -> dict:
    """Everyone's progress against this year's assessment items, for the
    portal's "my record" page: the items' titles and targets, and per staff
    member ``[confirmed, pending, target]`` per item in the items' order.
    Costly (attendance of every event of the year): the ingest sends it every
    ``ASSESSMENT_EVERY`` seconds at most."""
    now = now or datetime.now(timezone.utc)
    year = now.astimezone(tz).year
    found = items.of_year(db, year)
    rows = progress.progress(db, year, tz, now) if found else {}
    return _versioned({"year": year,
                       "items": [{k: i[k] for k in ("id", "title", "title_en", "measure")}
                                 for i in found],
                       "people": {staff: [[r["confirmed"], r["pending"], r["target"]]
                                          for r in person] for staff, person in rows.items()}})


def configured_nodes(db) -> list[str]:
    return [r[0] for r in db.conn.execute(
        "SELECT node FROM nodes WHERE zone IS NOT NULL AND revoked = 0 ORDER BY node")]
