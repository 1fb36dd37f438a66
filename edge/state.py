"""What the node knows from the hub, kept for offline use: the roster
(``down/roster``) and this node's config with its schedule (``down/config``).
Both arrive as retained JSON documents and are stored whole in ``kv``.

A hospital's roster is thousands of people and the portal consults it on
every request, so each process keeps the last parsed copy of each document
with lookup indexes beside it, reused while the document's ``etag`` (a fresh
random value with every ``put``) is unchanged: a request reads 16 characters,
not the whole roster. Documents returned by ``get`` are shared: treat them as
read-only.
"""

import json
import secrets
from datetime import datetime, timedelta, timezone

from protocol.clock import parse_iso

ROSTER = "roster"
CONFIG = "config"
ASSESSMENT = "assessment"  # everyone's progress against the year's items (site-wide)
# A phone may check in this long before an event starts.
EARLY_CHECKIN = timedelta(minutes=30)


# key -> (etag, parsed document, {index name: dict}); per process. Etags are
# random, so documents of different databases in one process never mix.
_parsed: dict[str, tuple[str, dict, dict]] = {}


class NodeState:
    def __init__(self, db):
        self.db = db

    def put(self, key: str, document: dict) -> None:
        with self.db.atomic():
            self.db.conn.execute(
                "INSERT INTO kv (key, value, etag) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value, etag = excluded.etag",
                (key, json.dumps(document), secrets.token_hex(8)),
            )

    def _document(self, key: str) -> tuple[dict, dict] | None:
        """(document, its indexes), parsed at most once per stored version."""
        row = self.db.conn.execute("SELECT etag FROM kv WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        cached = _parsed.get(key)
        if cached is None or cached[0] != row[0]:
            value, etag = self.db.conn.execute(
                "SELECT value, etag FROM kv WHERE key = ?", (key,)).fetchone()
            cached = _parsed[key] = (etag, json.loads(value), {})
        return cached[1], cached[2]

    def get(self, key: str) -> dict | None:
        found = self._document(key)
        return found[0] if found else None

    def _index(self, key: str, name: str, build) -> dict | list:
        """``build(document)``, computed once per stored version of ``key``
        (an empty dict while there is no such document)."""
        found = self._document(key)
        if found is None:
            return {}
        document, indexes = found
        if name not in indexes:
            indexes[name] = build(document)
        return indexes[name]

    def _roster_index(self, name: str, list_key: str, field: str) -> dict:
        """``{entry[field]: entry}`` over the roster's ``list_key``, built once per roster."""
        return self._index(ROSTER, name, lambda roster: {
            entry.get(field): entry for entry in roster.get(list_key, [])
            if isinstance(entry, dict)})

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
        for start, end, event in self._index(CONFIG, "event_times", _event_times):
            if start - EARLY_CHECKIN <= now <= end:
                return event  # the earliest-starting one: the list is sorted
        return None


def _event_times(config: dict) -> list[tuple[datetime, datetime, dict]]:
    """``(start, end, event)`` for the config's events, by start (stable)."""
    times = [(parse_iso(e["start"]), parse_iso(e["end"]), e) for e in config.get("events", [])]
    return sorted(times, key=lambda t: t[0])
