"""How many devices each zone held, minute by minute (the ``occupancy`` records).

Nodes count the distinct devices they see per minute (bound or not; nothing
identifying is stored) and send one ``occupancy`` record per zone and minute.
A zone served by several nodes (a big hall with two) is the sum over its
nodes: a phone heard by both is counted twice, the price of never sending a
device's identity up for unbound phones. Should a node send two records for
the same minute (after a restart), its larger count is used, not both.
"""

from datetime import datetime, timedelta

from sqlite_utils import Database

from protocol.clock import iso

MAX_RANGE = timedelta(days=31)


def minute_key(dt: datetime) -> str:
    """The ``YYYY-MM-DDTHH:MM`` (UTC) prefix that names the minute ``dt`` is in."""
    return iso(dt)[:16]


def minute_bounds(start: datetime, end: datetime) -> tuple[str, str]:
    """Text bounds ``(lo, hi)`` such that a stored ``minute`` whose bucket
    overlaps [start, end) satisfies ``lo <= minute < hi``, whatever its
    seconds/milliseconds spelling (``...:00Z`` or ``...:00.000Z``)."""
    ceiling = end + timedelta(seconds=59, microseconds=999_000)
    return minute_key(start), minute_key(ceiling)


def occupancy(db: Database, start: datetime, end: datetime,
              zone: str | None = None) -> list[dict]:
    """Per zone and minute overlapping [start, end): ``{"zone", "minute",
    "devices"}`` summed over the zone's nodes, ordered by zone then minute.
    ``minute`` is a wire timestamp (``YYYY-MM-DDTHH:MM:00.000Z``); minutes
    without records are left out. ``zone`` limits it to one zone."""
    lo, hi = minute_bounds(start, end)
    where = "minute >= :lo AND minute < :hi"
    if zone is not None:
        where += " AND zone = :zone"
    sql = f"""
        SELECT zone, key, SUM(devices) AS devices FROM (
            SELECT zone, node, substr(minute, 1, 16) AS key, MAX(devices) AS devices
            FROM occupancy WHERE {where} GROUP BY zone, node, key
        ) AS per_node GROUP BY zone, key ORDER BY zone, key
    """
    return [{"zone": z, "minute": key + ":00.000Z", "devices": devices}
            for z, key, devices in db.conn.execute(sql, {"lo": lo, "hi": hi, "zone": zone})]
