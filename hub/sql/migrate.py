"""The hub's migration history (``hub.db.HISTORY``) applied to PostgreSQL.

SQLite files are migrated by sqlite-utils (``hub.db.open_db``), which keeps
what it applied in ``_sqlite_migrations``. On PostgreSQL the same functions
run, in the same order, each given a ``MigrationTarget`` (``execute`` with
the statement's DDL in PostgreSQL's types, ``executescript``, ``conn`` for
``executemany``), and what was applied is kept in ``_rounds_migrations``
(name, applied_at), written in the migration's own transaction. An advisory
lock makes hubs and workers starting together on an empty database apply
each migration once. Each run also (re)defines the SQLite functions the
hub's queries use (``hub.sql.compat``).
"""

from datetime import datetime, timezone

from . import compat
from .connection import Connection

MIGRATIONS_TABLE = "_rounds_migrations"
_LOCK = "rounds-migrations"


class MigrationTarget:
    """What a migration function calls on its ``db``, on PostgreSQL."""

    backend = "postgresql"

    def __init__(self, conn: Connection):
        self.conn = conn

    def execute(self, sql: str, params=()):
        return self.conn.execute(self.conn.dialect.ddl(sql), params)

    def executescript(self, script: str) -> None:
        """The script's statements one by one (the hub's scripts have no
        ``;`` inside a literal)."""
        for statement in script.split(";"):
            if statement.strip():
                self.execute(statement)


def applied(conn: Connection) -> list[str]:
    """Names of the migrations applied to this PostgreSQL database, in order."""
    exists = conn.execute("SELECT to_regclass(?) IS NOT NULL", (MIGRATIONS_TABLE,)).fetchone()[0]
    if not exists:
        return []
    return [name for (name,) in conn.execute(
        f"SELECT name FROM {MIGRATIONS_TABLE} ORDER BY applied_at, name")]


def apply(conn: Connection, history) -> list[str]:
    """Apply the migrations of ``history`` not yet applied; returns their names."""
    if conn.backend != "postgresql":
        raise ValueError("hub.sql.migrate is for PostgreSQL; sqlite-utils migrates SQLite")
    conn.execute(f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} "
                 "(name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    done = []
    with conn.write_transaction(lock=_LOCK):
        compat.define(conn.raw)  # SQLite's functions the hub's queries use
        already = set(applied(conn))
        for fn in history:
            if fn.__name__ in already:
                continue
            with conn.write_transaction(lock=_LOCK):  # a savepoint: one migration
                fn(MigrationTarget(conn))
                conn.execute(f"INSERT INTO {MIGRATIONS_TABLE} (name, applied_at) VALUES (?, ?)",
                             (fn.__name__, datetime.now(timezone.utc).isoformat()))
            done.append(fn.__name__)
    return done
