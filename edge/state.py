"""What the node knows from the hub, kept for offline use: the roster
(``down/roster``) and this node's config with its schedule (``down/config``).
Both arrive as retained JSON documents and are stored whole in ``kv``."""

import json
from datetime import datetime, timedelta, timezone

from protocol.clock import parse_iso

ROSTER = "roster"
CONFIG = "config"
# A phone may check in this long before an event starts.
EARLY_CHECKIN = timedelta(minutes=30)


class NodeState:
    def __init__(self, db):
        self.db = db

    def put(self, key: str, document: dict) -> None:
        with self.db.atomic():
            self.db.conn.execute(
                "INSERT INTO kv (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(document)),
            )

    def get(self, key: str) -> dict | None:
        row = self.db.conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def staff(self, staff_id: str) -> dict | None:
        """The roster entry for ``staff_id`` (with ``pin_hash``), or None."""
        roster = self.get(ROSTER) or {}
        for person in roster.get("staff", []):
            if person.get("staff_id") == staff_id:
                return person
        return None

    def zone(self) -> str | None:
        return (self.get(CONFIG) or {}).get("zone")

    def zone_name(self) -> str | None:
        """The zone as people call it ("Lecture hall A"), when the hub gave one."""
        return (self.get(CONFIG) or {}).get("zone_name")

    def active_event(self, now: datetime | None = None) -> dict | None:
        """The event in this node's zone that is on now (or about to start)."""
        now = now or datetime.now(timezone.utc)
        best = None
        for event in (self.get(CONFIG) or {}).get("events", []):
            start, end = parse_iso(event["start"]), parse_iso(event["end"])
            if start - EARLY_CHECKIN <= now <= end and (best is None or start < parse_iso(best["start"])):
                best = event
        return best
