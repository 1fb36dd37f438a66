"""Facts about the node that its status message and its records report,
and the node's clocks."""

import os
import shutil
import time
from datetime import datetime, timezone
from functools import lru_cache

from protocol.clock import iso
from protocol.records import Clock

VERSION = "0.1.0"
# systemd-timesyncd touches this file once the clock has been synchronised
# (ROUNDS_TIMESYNC_FLAG names another file, for a node using another NTP
# client, and for tests).
_TIMESYNC_FLAG = "/run/systemd/timesync/synchronized"
_BOOT_ID = "/proc/sys/kernel/random/boot_id"


def _flag() -> str:
    return os.environ.get("ROUNDS_TIMESYNC_FLAG", _TIMESYNC_FLAG)


# Flags seen: the daemon does not take its flag back (it lives in /run, gone
# at the next boot, which no process of this boot sees), so once seen a
# flag is not looked for again; the portal asks on every request.
_seen_flags: set[str] = set()


def clock_synced() -> bool | None:
    """True once NTP has set the clock, False before; None where no time
    daemon we know of runs (no flag directory): then nothing is flagged."""
    flag = _flag()
    if flag in _seen_flags:
        return True
    if os.path.exists(flag):
        _seen_flags.add(flag)
        return True
    return False if os.path.isdir(os.path.dirname(flag)) else None


@lru_cache(maxsize=1)
def boot_id() -> str:
    try:
        with open(_BOOT_ID) as f:
            return f.read().strip()
    except OSError:
        return "unknown"


class NodeClock:
    """The node's clocks, in one place so that tests can drive them.

    A Pi has no battery-backed clock: it boots with a wrong wall clock, which
    jumps when NTP sets it (and may be set by hand, backwards or forwards).
    ``wall()`` is that clock (epoch seconds); ``monotonic()`` counts seconds
    since boot, never jumps and is the same for every process of one boot
    (CLOCK_MONOTONIC); ``synced()`` says whether NTP has set the wall clock.

    A record made while the wall clock is unsynchronised carries its
    ``monotonic()`` reading as ``mono`` with the boot id: the hub, given any
    later batch of the same boot (which carries its own ``mono`` and wall
    clock), knows how long before that batch the record was made, whatever
    the wall clock did in between (hub/ingest/clockfix.py).
    """

    def wall(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def synced(self) -> bool | None:
        return clock_synced()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.wall(), timezone.utc)

    def now_iso(self) -> str:
        return iso(self.now())


SYSTEM_CLOCK = NodeClock()


def clock(node_clock: NodeClock = SYSTEM_CLOCK) -> Clock | None:
    """This node's clock now, for a batch envelope (None when unknown)."""
    synced = node_clock.synced()
    if synced is None:
        return None
    return Clock(node_clock.now_iso(), synced, boot_id(), round(node_clock.monotonic(), 3))


def stamp_unsynced(record: dict, node_clock: NodeClock = SYSTEM_CLOCK) -> dict:
    """Mark a record made while the clock is not yet set (the caller has
    asked ``node_clock.synced()``; see protocol Clock): ``clock_synced:
    false``, the boot id, and the monotonic clock now (``mono``: the record
    is being made now, so its ``ts`` is now)."""
    record.setdefault("clock_synced", False)
    record.setdefault("boot", boot_id())
    record.setdefault("mono", round(node_clock.monotonic(), 3))
    return record


def disk_free(path) -> int:
    """Free bytes on the file system holding ``path``."""
    return shutil.disk_usage(path).free
