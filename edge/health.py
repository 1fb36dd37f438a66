"""Facts about the node that its status message and its records report."""

import os
import shutil
from functools import lru_cache

from protocol.clock import now_iso
from protocol.records import Clock

VERSION = "0.1.0"
# systemd-timesyncd touches this file once the clock has been synchronised
# (ROUNDS_TIMESYNC_FLAG names another file, for a node using another NTP
# client, and for tests).
_TIMESYNC_FLAG = "/run/systemd/timesync/synchronized"
_BOOT_ID = "/proc/sys/kernel/random/boot_id"


def _flag() -> str:
    return os.environ.get("ROUNDS_TIMESYNC_FLAG", _TIMESYNC_FLAG)


def clock_synced() -> bool | None:
    """True once NTP has set the clock, False before; None where no time
    daemon we know of runs (no flag directory): then nothing is flagged."""
    flag = _flag()
    if os.path.exists(flag):
        return True
    return False if os.path.isdir(os.path.dirname(flag)) else None


@lru_cache(maxsize=1)
def boot_id() -> str:
    try:
        with open(_BOOT_ID) as f:
            return f.read().strip()
    except OSError:
        return "unknown"


def clock() -> Clock | None:
    """This node's clock now, for a batch envelope (None when unknown)."""
    synced = clock_synced()
    return None if synced is None else Clock(now_iso(), synced, boot_id())


def stamp_unsynced(record: dict) -> dict:
    """Mark a record made while the clock is not yet set (see protocol Clock)."""
    if clock_synced() is False:
        record.setdefault("clock_synced", False)
        record.setdefault("boot", boot_id())
    return record


def disk_free(path) -> int:
    """Free bytes on the file system holding ``path``."""
    return shutil.disk_usage(path).free
