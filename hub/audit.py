"""The audit log: who changed what, when. Every state change made through the
dashboard, the API or ``rounds-hub`` writes one row in the same transaction
as the change itself."""

import json
from datetime import datetime, timezone

from protocol.clock import iso

_COLUMNS = ("id", "at", "who", "action", "target", "detail")


def record(db, who: str, action: str, target: str | None = None, detail: dict | None = None,
           now: datetime | None = None) -> None:
    """Log ``action`` (e.g. ``ticket.transition``) by ``who`` on ``target``.
    ``detail`` must hold no secret (never a password, PIN or token)."""
    db.conn.execute(
        "INSERT INTO audit_log (at, who, action, target, detail) VALUES (?, ?, ?, ?, ?)",
        (iso(now or datetime.now(timezone.utc)), who, action, target,
         json.dumps(detail or {}, ensure_ascii=False, sort_keys=True)))


def entries(db, limit: int = 200, target: str | None = None) -> list[dict]:
    where, params = ("WHERE target = ?", [target]) if target else ("", [])
    rows = db.conn.execute(
        f"SELECT {', '.join(_COLUMNS)} FROM audit_log {where} ORDER BY id DESC LIMIT ?",
        (*params, limit))
    return [{**dict(zip(_COLUMNS, row)), "detail": json.loads(row[5])} for row in rows]
