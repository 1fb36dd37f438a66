"""What the node knows from the hub, kept for offline use: the roster
(``down/roster``) and this node's config with its schedule (``down/config``).
Both arrive as retained JSON documents and are stored whole in ``kv``.

A hospital's roster is thousands of people and the portal consults it on
every request, so each process keeps the last parsed copy of each document
(reused while the stored text is unchanged) with lookup indexes beside it.
Documents returned by ``get`` are shared: treat them as read-only.
"""

import json
from datetime import datetime, timedelta, timezone

from protocol.clock import parse_iso

ROSTER = "roster"
CONFIG = "config"
ASSESSMENT = "assessment"  # everyone's progress against the year's items (site-wide)
# A phone may check in this long before an event starts.
EARLY_CHECKIN = timedelta(minutes=30)


# key -> (stored text, parsed document, {index name: dict}); per process.
_parsed: dict[str, tuple[str, dict, dict]] = {}


def _document(key: str, text: str) -> tuple[dict, dict]:
    cached = _parsed.get(key)
    if cached is None or cached[0] != text:
        cached = _parsed[key] = (text, json.loads(text), {})
    return cached[1], cached[2]


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
        return _document(key, row[0])[0] if row else None

    def _roster_index(self, name: str, list_key: str, field: str) -> dict:
        """``{entry[field]: entry}`` over the roster's ``list_key``, built once per roster."""
        row = self.db.conn.execute("SELECT value FROM kv WHERE key = ?", (ROSTER,)).fetchone()
        if row is None:
            return {}
        roster, indexes = _document(ROSTER, row[0])
        if name not in indexes:
            indexes[name] = {entry.get(field): entry for entry in roster.get(list_key, [])
                             if isinstance(entry, dict)}
        return indexes[name]

    def staff(self, staff_id: str) -> dict | None:
        """The roster entry for ``staff_id`` (with ``pin_hash``), or None."""
        return self._roster_index("staff", "staff", "staff_id").get(staff_id)

    def bound_staff(self, device: str) -> str | None:
        """Whose phone ``device`` is, by the hub's bindings in the roster."""
        binding = self._roster_index("bindings", "bindings", "device").get(device)
        return binding.get("staff_id") if binding else None

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
