"""The hub's ``nodes`` table as provisioning writes it: a node is registered
with its zone (``revoked = 0``) when added and marked ``revoked = 1`` when
revoked. Its status columns (state, last seen, ...) belong to the hub's
ingest and are left as they are."""

from hub.db import write_transaction

from .zones import require_zone


def register(db, node: str, zone: str) -> None:
    """Insert or update ``node`` in ``zone``; the zone must exist (ZoneError)."""
    with write_transaction(db):
        require_zone(db, zone)
        db.execute("INSERT INTO nodes (node, zone, revoked) VALUES (?, ?, 0) "
                   "ON CONFLICT (node) DO UPDATE SET zone = excluded.zone, revoked = 0",
                   [node, zone])


def revoke(db, node: str) -> bool:
    """Mark ``node`` revoked; False when the hub does not know it."""
    with write_transaction(db):
        cursor = db.execute("UPDATE nodes SET revoked = 1 WHERE node = ?", [node])
    return cursor.rowcount > 0


def rows(db) -> dict[str, dict]:
    """Every node the hub knows: node -> {zone, zone_name, state, last_seen, revoked}."""
    return {row["node"]: row for row in (dict(r) for r in db.query(
        "SELECT n.node, n.zone, z.name AS zone_name, n.state, n.last_seen, n.revoked "
        "FROM nodes n LEFT JOIN zones z ON z.zone = n.zone ORDER BY n.node"))}
