"""Opening a Rounds SQLite database the one way node and hub both rely on:
WAL (readers never block the writer), synchronous=FULL (a commit survives a
power cut), a busy timeout, and migrations applied under a file lock so that
processes starting together on a fresh file do not race to create it."""

import fcntl
import logging
import sqlite3
import threading
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


log = logging.getLogger(__name__)


class Checkpointer:
    """Copies a busy writer's WAL back into the database from a thread and
    connection of its own.

    SQLite's automatic checkpoint runs inside the commit that takes the WAL
    past 1,000 pages, so the writer stops to copy pages and fsync the main
    file: on the hub's ingest that cost a fifth of its throughput. With
    ``writer``'s auto-checkpoint off, this thread runs a PASSIVE checkpoint
    every ``interval`` seconds instead (it never blocks the writer or waits
    for readers; SQLite releases the GIL while it copies and syncs), and
    ``journal_size_limit`` gives the WAL file its space back. Durability is
    unchanged: every commit is still synced to the WAL first.
    """

    def __init__(self, writer: sqlite_utils.Database, path, interval: float = 0.5):
        self.path, self.interval = str(path), interval
        writer.execute("PRAGMA wal_autocheckpoint = 0")
        writer.execute("PRAGMA journal_size_limit = 67108864")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="checkpoint", daemon=True)

    def start(self) -> "Checkpointer":
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop after one last checkpoint."""
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            while True:
                stopping = self._stop.wait(self.interval)
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as exc:  # e.g. a full disk: try again later
                    log.warning("checkpoint failed: %s", exc)
                if stopping:
                    return
        finally:
            conn.close()

    def __enter__(self) -> "Checkpointer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
