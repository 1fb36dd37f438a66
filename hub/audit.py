"""The audit log: who changed or looked at what, when. Every state change made
through the dashboard, the API or ``rounds-hub`` writes one row in the same
transaction as the change itself; every look at another person's record or
export of it writes one too (``person.view``, ``export.person``). The app
only ever inserts rows (the ``audit_log`` triggers refuse UPDATE and DELETE).
"""

import json
from contextlib import contextmanager
from datetime import datetime, timezone

from hub.db import delete_batches, is_postgresql
from protocol.clock import iso

_COLUMNS = ("id", "at", "who", "action", "target", "detail")
LOOKS = ("person.view",)  # reads of someone's data, not changes


def record(db, who: str, action: str, target: str | None = None, detail: dict | None = None,
           now: datetime | None = None) -> None:
    """Log ``action`` (e.g. ``ticket.transition``) by ``who`` on ``target``.
    ``detail`` must hold no secret (never a password, PIN or token)."""
    db.conn.execute(
        "INSERT INTO audit_log (at, who, action, target, detail) VALUES (?, ?, ?, ?, ?)",
        (iso(now or datetime.now(timezone.utc)), who, action, target,
         json.dumps(detail or {}, ensure_ascii=False, sort_keys=True)))


def entries(db, limit: int = 200, target: str | None = None, who: str | None = None,
            action: str | None = None, since: str | None = None,
            until: str | None = None, looks: bool = True) -> list[dict]:
    """The newest ``limit`` rows, filtered by exact ``target`` and ``who``, by
    ``action`` (exact, or a prefix ending in ``.``: ``staff.`` is every staff
    action), by time (wire timestamps, ``since`` <= at < ``until``) and, with
    ``looks`` false, without the reads (``LOOKS``)."""
    clauses, params = [], []
    if not looks:
        clauses.append(f"action NOT IN ({', '.join('?' * len(LOOKS))})")
        params += LOOKS
    for column, value in (("target", target), ("who", who)):
        if value:
            clauses.append(f"{column} = ?")
            params.append(value)
    if action:
        if action.endswith("."):
            clauses.append("substr(action, 1, ?) = ?")
            params += [len(action), action]
        else:
            clauses.append("action = ?")
            params.append(action)
    if since:
        clauses.append("at >= ?")
        params.append(since)
    if until:
        clauses.append("at < ?")
        params.append(until)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = db.conn.execute(
        f"SELECT {', '.join(_COLUMNS)} FROM audit_log {where} ORDER BY id DESC LIMIT ?",
        (*params, limit))
    return [{**dict(zip(_COLUMNS, row)), "detail": json.loads(row[5])} for row in rows]


def actions(db) -> list[str]:
    """Every action the log holds, for a filter's choices."""
    return [a for (a,) in db.conn.execute("SELECT DISTINCT action FROM audit_log ORDER BY 1")]


def prune(db, before: str, *, batch: int = 500, dry_run: bool = False) -> int:
    """Delete the rows older than ``before`` (retention: hub/retention.py), the
    only delete the log ever sees: each batch lifts the append-only triggers and
    puts them back, word for word, inside its own transaction."""
    return delete_batches(db, "audit_log", "at < ?", (before,), batch=batch,
                          around=_triggers_lifted, dry_run=dry_run)


@contextmanager
def _triggers_lifted(db):
    if is_postgresql(db):  # transactional DDL: back on at COMMIT or ROLLBACK alike
        db.conn.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
        yield
        db.conn.execute("ALTER TABLE audit_log ENABLE TRIGGER USER")
        return
    triggers = db.conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                               "AND tbl_name = 'audit_log'").fetchall()
    for name, _ in triggers:
        db.conn.execute(f'DROP TRIGGER "{name}"')
    yield
    for _, sql in triggers:
        db.conn.execute(sql)
