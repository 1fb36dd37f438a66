"""Facts about the node that its status message reports."""

import os
import shutil

VERSION = "0.1.0"
# systemd-timesyncd touches this file once the clock has been synchronised.
_TIMESYNC_FLAG = "/run/systemd/timesync/synchronized"


def clock_synced() -> bool:
    return os.path.exists(_TIMESYNC_FLAG)


def disk_free(path) -> int:
    """Free bytes on the file system holding ``path``."""
    return shutil.disk_usage(path).free
