"""What a portal request works with: this worker thread's connection to the
node database and its outbox, the node's state (roster, config) read once
per request, the node's clock and the event on now, the zone, and the write
lock that queues writers across threads and worker processes."""

import fcntl
import os
import threading
from contextlib import contextmanager

from flask import current_app, g

from edge.checkins import event_now
from edge.db import immediate as db_immediate
from edge.health import NodeClock
from edge.outbox import Outbox
from edge.state import NodeState


# --- database: one connection per worker thread ------------------------------
# Each gunicorn worker is its own process and an SQLite connection must not be
# shared across threads, so each thread of a worker keeps its own connection
# (opening one, with its migration check, for every request cost more than
# the check-in itself). Between requests it holds no transaction.

def get_outbox() -> Outbox:
    """This thread's Outbox; its ``db`` is this thread's database connection,
    so portal writes and outbox appends can share one transaction."""
    local = current_app.extensions["rounds_portal_db"]
    outbox = getattr(local, "outbox", None)
    if outbox is None:
        outbox = local.outbox = Outbox(current_app.config["NODE_DB"], node_clock())
    g.db_used = True
    return outbox


def get_db():
    return get_outbox().db


def node_clock() -> NodeClock:
    return current_app.config["CLOCK"]


def current_event(state: NodeState | None = None) -> dict | None:
    """The event a check-in made now counts for (``edge.checkins.event_now``:
    none while the node's clock is not set)."""
    clock = node_clock()
    return event_now(state or get_state(), clock.now(), clock.synced())


def clock_unset() -> bool:
    """Whether the node knows its wall clock is not set yet (no NTP so far)."""
    return node_clock().synced() is False


def get_state() -> NodeState:
    """The node's state for this request; each document is read (and parsed)
    at most once per request."""
    if "state" not in g:
        g.state = _RequestState(get_db())
    return g.state


class _RequestState(NodeState):
    def __init__(self, db):
        super().__init__(db)
        self._documents = {}

    def get(self, key):
        if key not in self._documents:
            self._documents[key] = super().get(key)
        return self._documents[key]

    def put(self, key, document):
        self._documents.pop(key, None)
        super().put(key, document)


def close_db(exc=None) -> None:
    """End of request: leave no transaction open on this thread's connection."""
    if g.pop("db_used", False):
        conn = current_app.extensions["rounds_portal_db"].outbox.conn
        if conn.in_transaction:
            conn.rollback()


@contextmanager
def immediate(db):
    """``edge.db.immediate``, with writers queued in order rather than in
    SQLite's busy handler, which sleeps in growing steps (up to 100 ms) and
    made the slowest check-ins under load several times slower: threads of one
    worker on a mutex, gunicorn's worker processes on a lock file (flock wakes
    a waiter as soon as the holder lets go)."""
    with _WRITE_LOCK, _process_lock(current_app.config["NODE_DB"]), db_immediate(db):
        yield db


_WRITE_LOCK = threading.Lock()
_LOCK_FILES: dict[str, int] = {}


@contextmanager
def _process_lock(db_path):
    """An exclusive flock shared by every portal process on this database
    (taken under _WRITE_LOCK, so one thread per process asks for it)."""
    path = f"{db_path}.write-lock"
    fd = _LOCK_FILES.get(path)
    if fd is None:
        fd = _LOCK_FILES[path] = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def current_zone(state: NodeState) -> str | None:
    """The hub's word on this node's zone, else the provisioned one."""
    return state.zone() or current_app.config.get("ZONE")


def zone_label() -> str | None:
    """The zone as shown to people: its name from the hub, else its id."""
    state = get_state()
    return state.zone_name() or current_zone(state)
