"""Durable local queue of records waiting for the hub's acknowledgement.

A record is appended once (or again with the same id, for an open presence
interval whose end moved) and deleted only when the hub's ``down/ack`` names
it. Every append gets a fresh ``seq`` that is never reused, so the sync loop
can walk the queue with a cursor and tell an acked copy from a newer one.
"""

import json
import time
from dataclasses import dataclass

from protocol.ids import record_id
from protocol.records import validate

from . import health
from .db import open_db


@dataclass(frozen=True)
class Item:
    seq: int
    id: str
    body: str  # the record as compact JSON, sent verbatim

    @property
    def record(self) -> dict:
        return json.loads(self.body)


class Outbox:
    def __init__(self, path, clock: health.NodeClock = health.SYSTEM_CLOCK):
        """``clock``: the node's clocks (``edge.health.NodeClock``), which fill
        in ``ts`` and mark records made before NTP has set the wall clock."""
        self.db = open_db(path)
        self.conn = self.db.conn
        self.clock = clock

    def close(self):
        self.db.close()

    def append(self, record: dict) -> str:
        """Queue ``record`` (id and ts are filled in when missing); durable on return."""
        return self.append_many([record])[0]

    def append_many(self, records: list[dict]) -> list[str]:
        """Queue several records in one transaction (one fsync). Records made
        before NTP has set the clock are marked so (``clock_synced: false``,
        the boot id and the monotonic clock), for the hub to flag or correct."""
        rows, again = [], []
        unsynced = self.clock.synced() is False  # one look per call, not per record
        for record in records:
            if "id" in record:  # a record appended again (a moved presence end)
                again.append((record["id"],))
            record = {"id": record_id(time.time_ns() // 1_000_000), "ts": self.clock.now_iso(),
                      **record}
            if unsynced:
                health.stamp_unsynced(record, self.clock)
            validate(record)
            rows.append((record["id"], record["type"], json.dumps(record, separators=(",", ":"))))
        with self.db.atomic():
            if again:
                self.conn.executemany("DELETE FROM outbox WHERE id = ?", again)
            self.conn.executemany("INSERT INTO outbox (id, type, body) VALUES (?, ?, ?)", rows)
        return [r[0] for r in rows]

    def pending(self, limit: int, after_seq: int = 0) -> list[Item]:
        """Unacknowledged records, oldest first, with ``seq > after_seq``."""
        cursor = self.conn.execute(
            "SELECT seq, id, body FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        )
        return [Item(*row) for row in cursor]

    def ack(self, ids) -> int:
        """Delete the records named by ``ids``; returns how many were deleted."""
        with self.db.atomic():
            cursor = self.conn.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])
        return cursor.rowcount

    def ack_sent(self, sent) -> int:
        """Delete exactly these ``(id, seq)`` copies, not a newer copy of the same id."""
        with self.db.atomic():
            cursor = self.conn.executemany(
                "DELETE FROM outbox WHERE id = ? AND seq = ?", list(sent)
            )
        return cursor.rowcount

    def backlog(self) -> int:
        return self.conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
