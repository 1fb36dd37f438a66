"""The fleet of edge nodes as the facilities team watches it.

A node's row in ``nodes`` is written by ``hub.ingest.store.update_node_status`` from
its retained ``up/status``: ``state`` is "online" (the birth message, then
re-published every 30 s with backlog, disk and clock) or "offline" (the
broker's Last Will, or the node's own goodbye), and ``last_seen`` is when the
hub last received any status from it. A node registered by provisioning that
never connected has neither.

``health`` says what to do about a node:

* ``revoked``: cut off by ``rounds-provision node revoke``; nothing else matters;
* ``never_seen``: registered, but no status ever arrived;
* ``offline``: its last word (or its Last Will) said offline;
* ``silent``: its last status said online but nothing came for more than
  ``SILENT_AFTER`` (10 min) although it re-publishes every 30 s: a hung
  agent, a dead broker link the broker has not noticed yet, or a hub that
  stopped ingesting;
* ``online``: the rest.

``unsynced_records`` counts the records the node made with its wall clock not
yet set (``clock_flags``, hub/ingest/clockfix.py) that reached the hub in the last
``UNSYNCED_WINDOW`` (7 days): a node that keeps booting without a clock shows
here before its attendance goes wrong.
"""

from datetime import datetime, timedelta, timezone

from protocol.clock import parse_iso

from hub.ingest.clockfix import unsynced_counts

SILENT_AFTER = timedelta(minutes=10)
UNSYNCED_WINDOW = timedelta(days=7)
HEALTH = ("online", "offline", "silent", "revoked", "never_seen")

_SQL = ("SELECT n.node, n.zone, z.name, n.state, n.version, n.backlog, n.disk_free, "
        "n.clock_synced, n.status_ts, n.last_seen, n.revoked "
        "FROM nodes n LEFT JOIN zones z ON z.zone = n.zone")
_COLUMNS = ("node", "zone", "zone_name", "state", "version", "backlog", "disk_free",
            "clock_synced", "status_ts", "last_seen", "revoked")


def fleet(db, now: datetime | None = None) -> list[dict]:
    """Every node, by name, each as ``describe`` makes it."""
    now = now or datetime.now(timezone.utc)
    unsynced = unsynced_counts(db, now - UNSYNCED_WINDOW)
    return [describe(row, now, unsynced) for row in db.conn.execute(_SQL + " ORDER BY n.node")]


def get_node(db, node: str, now: datetime | None = None) -> dict | None:
    now = now or datetime.now(timezone.utc)
    row = db.conn.execute(_SQL + " WHERE n.node = ?", (node,)).fetchone()
    return describe(row, now, unsynced_counts(db, now - UNSYNCED_WINDOW)) if row else None


def describe(row, now: datetime, unsynced: dict | None = None) -> dict:
    """A ``nodes`` row as a dict with booleans, ``last_seen_age`` (whole
    seconds since the hub last heard from it, None if never), ``health`` and
    ``unsynced_records`` (from ``unsynced``, ``clockfix.unsynced_counts``)."""
    node = dict(zip(_COLUMNS, row))
    node["unsynced_records"] = ((unsynced or {}).get(node["node"]) or {}).get("flagged", 0)
    node["revoked"] = bool(node["revoked"])
    if node["clock_synced"] is not None:
        node["clock_synced"] = bool(node["clock_synced"])
    seen = _parsed(node["last_seen"])
    node["last_seen_age"] = None if seen is None else max(0, int((now - seen).total_seconds()))
    node["health"] = health(node["state"], seen, node["revoked"], now)
    return node


def health(state: str | None, last_seen: datetime | None, revoked: bool,
           now: datetime) -> str:
    """One of ``HEALTH``; see the module docstring."""
    if revoked:
        return "revoked"
    if last_seen is None:
        return "never_seen"
    if state != "online":
        return "offline"
    if now - last_seen > SILENT_AFTER:
        return "silent"
    return "online"


def summary(nodes: list[dict]) -> dict:
    """How many nodes are in each health state (every state, zeros included)."""
    counts = dict.fromkeys(HEALTH, 0)
    for node in nodes:
        counts[node["health"]] += 1
    return counts


def _parsed(text: str | None) -> datetime | None:
    """The hub writes ``last_seen`` itself (``now_iso``); anything else that
    found its way into the column counts as never seen rather than failing."""
    try:
        return parse_iso(text) if text else None
    except ValueError:
        return None


class NodeError(ValueError):
    pass


def move(db, node: str, zone: str) -> None:
    """Put ``node`` in ``zone``; its retained config follows (hub/ingest/downlink.py),
    and the node records in the new zone from then on."""
    if db.conn.execute("SELECT 1 FROM zones WHERE zone = ?", (zone,)).fetchone() is None:
        raise NodeError(f"unknown zone: {zone}")
    row = db.conn.execute("SELECT revoked FROM nodes WHERE node = ?", (node,)).fetchone()
    if row is None:
        raise LookupError(f"unknown node: {node}")
    if row[0]:
        raise NodeError(f"node {node} is revoked")
    db.conn.execute("UPDATE nodes SET zone = ? WHERE node = ?", (zone, node))
