"""Opening a Rounds SQLite database the one way node and hub both rely on:
WAL (readers never block the writer), synchronous=FULL (a commit survives a
power cut), a busy timeout, and migrations applied under a file lock so that
processes starting together on a fresh file do not race to create it."""

import fcntl
from pathlib import Path

import sqlite_utils


def open_database(path, migrations=None) -> sqlite_utils.Database:
    """Open the database at ``path``; with ``migrations``, bring its schema up
    to date first (under the lock). A process that migrated once at start-up
    (a web app) opens its per-request connections without them."""
    path = Path(path)
    if migrations is None:
        return _connect(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".migrate-lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        db = _connect(path)
        migrations.apply(db)
    return db


def _connect(path: Path) -> sqlite_utils.Database:
    db = sqlite_utils.Database(path)
    # Autocommit for lone statements; every multi-statement write is an
    # explicit ``db.atomic()`` (or BEGIN IMMEDIATE), never an implicit,
    # forgotten transaction that holds the write lock.
    db.conn.isolation_level = None
    db.execute("PRAGMA busy_timeout = 10000")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    return db
