"""What a portal request works with: this worker thread's connection to the
node database and its outbox, the node's state (roster, config) read once
per request, the node's clock and the event on now, and the zone. Writes
go through ``writes.py``."""

from flask import current_app, g

from edge.checkins import event_now
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
    return outbox


_UNSET = object()


def get_db():
    return get_outbox().db


def node_clock() -> NodeClock:
    return current_app.config["CLOCK"]


def current_event() -> dict | None:
    """The event a check-in made now counts for (``edge.checkins.event_now``:
    none while the node's clock is not set); looked up once per request."""
    # g.get: one context lookup (``"x" in g`` then ``g.x`` is two)
    found = g.get("event_now", _UNSET)
    if found is _UNSET:
        found = g.event_now = event_now(get_state(), node_clock().now(), clock_synced())
    return found


def clock_synced() -> bool | None:
    """The node clock's ``synced()``, asked once per request."""
    found = g.get("clock_synced", _UNSET)
    if found is _UNSET:
        found = g.clock_synced = node_clock().synced()
    return found


def clock_unset() -> bool:
    """Whether the node knows its wall clock is not set yet (no NTP so far)."""
    return clock_synced() is False


def get_state() -> NodeState:
    """The node's state for this request; each document is read (and parsed)
    at most once per request."""
    state = g.get("state")
    if state is None:
        state = g.state = _RequestState(get_db())
    return state


class _RequestState(NodeState):
    def __init__(self, db):
        super().__init__(db)
        self._documents = {}

    def _document(self, key):
        if key not in self._documents:
            self._documents[key] = super()._document(key)
        return self._documents[key]

    def put(self, key, document):
        self._documents.pop(key, None)
        super().put(key, document)


def close_db(exc=None) -> None:
    """End of request: leave no transaction open on this thread's connection."""
    outbox = getattr(current_app.extensions["rounds_portal_db"], "outbox", None)
    if outbox is not None and outbox.conn.in_transaction:
        outbox.conn.rollback()


def current_zone(state: NodeState) -> str | None:
    """The hub's word on this node's zone, else the provisioned one."""
    return state.zone() or current_app.config.get("ZONE")


def zone_label() -> str | None:
    """The zone as shown to people: its name from the hub, else its id."""
    state = get_state()
    return state.zone_name() or current_zone(state)
