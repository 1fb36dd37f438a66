"""The portal's writes to the node database: queued, and committed in groups.

SQLite has one writer at a time, and every commit is fsynced. Under a hall's
worth of phones the portal's threads used to queue for that writer one by
one: each write transaction held the lock for the length of its own
statements and fsync, and, worse, for every wait to get the GIL back after
SQLite released it (up to ``sys.getswitchinterval()``, 5 ms, while another
thread rendered a page). Measured under the bench's 50 phones: a write held
the lock ~1.1 ms and waited ~19 ms for it (p50).

``write(fn)`` is the way out for the hot writes (releasing a bound phone,
queueing its check-in). The thread that gets the writer's turn takes every
write queued in its process by then and runs them in *one* transaction, each
in a savepoint of its own, with one commit and one fsync for all
(group commit, "flat combining"): the others find their write done when
their turn comes. A write that raises is rolled back alone (its savepoint)
and its exception is raised in its own request; a failed commit (a full
disk) is raised in every request of the group, none of which was answered
yet, so nothing acknowledged is lost.

``fn`` may run in another request's thread: it gets the writer's ``Outbox``
(whose ``db`` is the writing connection) and must take everything else from
its arguments, never from ``request``, ``g`` or ``session``.

``immediate(db)`` is the plain write transaction for the other writes
(binding, registration, reports...): it takes the same turn, so every write
of a process is in one queue; across gunicorn's worker processes a lock file
queues them (flock wakes a waiter as soon as the holder lets go, unlike
SQLite's busy handler, which sleeps in growing steps of up to 100 ms).
"""

import copy
import fcntl
import os
import sqlite3
import threading
from contextlib import contextmanager
from typing import Callable

from flask import Flask, current_app

from edge.db import immediate as db_immediate
from edge.outbox import Outbox

_EXTENSION = "rounds_portal_writes"


def init_app(app: Flask) -> None:
    app.extensions[_EXTENSION] = WriteQueue(app.config["NODE_DB"])


def write(outbox: Outbox, fn: Callable[[Outbox], object], durable: bool = True):
    """``WriteQueue.write`` on this app's queue."""
    return current_app.extensions[_EXTENSION].write(outbox, fn, durable)


def immediate(db):
    """``WriteQueue.immediate`` on this app's queue."""
    return current_app.extensions[_EXTENSION].immediate(db)


class WriteInterrupted(RuntimeError):
    """The thread writing a group stopped before its commit (nothing saved)."""


class _Write:
    __slots__ = ("fn", "durable", "done", "result", "error", "shared")

    def __init__(self, fn, durable):
        self.fn, self.durable = fn, durable
        self.done, self.result, self.error, self.shared = False, None, None, False

    def outcome(self):
        if self.error is None:
            return self.result
        if self.shared:
            # A failed commit is every waiter's error: each raises its own
            # copy (a raise writes the traceback into the exception object).
            raise copy.copy(self.error)
        raise self.error


class WriteQueue:
    """The writers of one portal process on one node database."""

    def __init__(self, db_path):
        self._turn = threading.Lock()        # held by the thread writing for the process
        self._queue_lock = threading.Lock()  # guards _queue
        self._queue: list[_Write] = []
        self._lock_path = f"{db_path}.write-lock"
        self._lock_fd: int | None = None

    def write(self, outbox: Outbox, fn: Callable[[Outbox], object], durable: bool = True):
        """Run ``fn(writer_outbox)`` in a committed write transaction, possibly
        shared with other requests' writes; returns what ``fn`` returned (or
        raises what it raised) once the transaction is committed. ``outbox``
        is this thread's: it writes when this thread gets the turn.

        ``durable=False`` is for a write that may be lost in a power cut (the
        release of a bound phone, made again on its next request): unless a
        durable write shares its group, the commit is not fsynced (WAL with
        ``synchronous=NORMAL``: consistent, and synced with the next durable
        commit), which saves ~0.1 ms of CPU and the fsync's wait under the lock.
        """
        item = _Write(fn, durable)
        with self._queue_lock:
            self._queue.append(item)
        with self._turn:
            # Either a thread that had the turn before us took our write (and
            # finished it before letting go), or it is still queued.
            if not item.done:
                with self._queue_lock:
                    group = self._queue[:]
                    self._queue.clear()
                self._commit(outbox, group)
        return item.outcome()

    @contextmanager
    def immediate(self, db):
        """``edge.db.immediate`` in this process's queue of writers and under
        the lock file shared by the portal's processes."""
        with self._turn, self._process_lock(), db_immediate(db):
            yield db

    def _commit(self, outbox: Outbox, group: list[_Write]) -> None:
        failure: BaseException | None = WriteInterrupted("the write transaction did not finish")
        durable = any(item.durable for item in group)
        try:
            with self._process_lock(), _synchronous(outbox, durable), db_immediate(outbox.db):
                if len(group) == 1:  # alone: its error rolls the transaction back
                    group[0].result = group[0].fn(outbox)
                else:
                    for item in group:
                        _run_in_savepoint(outbox, item)
            failure = None
        except Exception as exc:  # noqa: BLE001 - handed to the requests that asked
            # A lone write failed, BEGIN or COMMIT failed, or a write's error
            # took the whole transaction with it (SQLite rolls back on a full
            # disk): nothing of the group was saved.
            failure = exc
        finally:
            for item in group:
                if failure is not None:
                    item.result = None
                    if item.error is None:
                        item.error, item.shared = failure, len(group) > 1
                item.done = True

    @contextmanager
    def _process_lock(self):
        """An exclusive flock shared by every portal process on this database
        (taken under _turn, so one thread per process asks for it)."""
        if self._lock_fd is None:
            self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)


def _run_in_savepoint(outbox: Outbox, item: _Write) -> None:
    conn = outbox.conn
    conn.execute("SAVEPOINT portal_write")
    try:
        item.result = item.fn(outbox)
    except Exception as exc:  # noqa: BLE001 - handed to the request that asked
        item.error = exc
        if not conn.in_transaction:
            raise exc if isinstance(exc, sqlite3.Error) else sqlite3.OperationalError(
                f"write failed and ended the transaction: {exc}") from exc
        conn.execute("ROLLBACK TO portal_write")
    conn.execute("RELEASE portal_write")


@contextmanager
def _synchronous(outbox: Outbox, durable: bool):
    """``synchronous=NORMAL`` for a commit that need not be fsynced, then
    back to the connection's FULL (``runtime.sqlite``)."""
    if durable:
        yield
        return
    outbox.conn.execute("PRAGMA synchronous = NORMAL")
    try:
        yield
    finally:
        outbox.conn.execute("PRAGMA synchronous = FULL")
