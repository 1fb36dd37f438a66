"""Writing the site's files with safe modes, atomically.

Directories are 0700, secrets and private keys 0600, certificates and other
public files 0644. A file is written to a temporary name in its directory
and renamed over the old one, so a crash never leaves half a password file
for the broker to read at its next reload. ``owner`` (uid, gid) hands a file
to another account (the broker's) when we run as root.
"""

import os
import tempfile
from pathlib import Path

DIR = 0o700
SECRET = 0o600
PUBLIC = 0o644
SCRIPT = 0o755

Owner = tuple[int, int] | None


def ensure_dir(path, mode: int = DIR, owner: Owner = None) -> Path:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)
    _chown(path, owner)
    return path


def write_file(path, data: str | bytes, mode: int, owner: Owner = None) -> Path:
    """Write ``data`` to ``path`` with ``mode`` (never wider, not even for a moment)."""
    path = Path(path)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        if owner is not None:
            os.fchown(fd, *owner)
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _chown(path: Path, owner: Owner) -> None:
    if owner is not None and (path.stat().st_uid, path.stat().st_gid) != owner:
        os.chown(path, *owner)
