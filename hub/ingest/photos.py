"""Photos at the hub: verified, content-addressed on disk, with a perceptual
hash for spotting the same problem photographed twice.

A photo arrives as an ``up/photo`` message whose ``sha256`` user property
must match its bytes and whose bytes must decode as an image; anything else
is quarantined, never stored. Files live at ``<dir>/<sha[:2]>/<sha>.jpg``,
written through an fsynced temporary file, so a crash never leaves a torn one.

The ``photos`` table (sha256, size, path, received_at, dhash, removed_at) is
read and written here only; the rest of the hub asks the functions at the end.
A photo removed under the retention rules (``expire``) keeps its row, so that a
late report naming it is not left waiting, with ``removed_at`` set and no file.
"""

import hashlib
import io
import json
import os
from pathlib import Path
from typing import NamedTuple

from PIL import Image

from hub.db import write_transaction
from protocol.clock import now_iso


# The node's limit (edge/camera/pipeline.py sends at most 1600 px a side).
MAX_PIXELS = 50_000_000


class BadPhoto(ValueError):
    """The photo's bytes do not match its name or are not an image."""


class Verified(NamedTuple):
    """A photo that passed ``verify``: its name and its difference hash."""
    sha256: str
    dhash: str


def verify(payload: bytes, claimed_sha256: str | None) -> Verified:
    """Check the photo's name and decode it once, whole; raise BadPhoto saying
    why not. Its difference hash comes from that decode, outside any write
    transaction (a photo's decode is the slow part of its ingest)."""
    if not claimed_sha256:
        raise BadPhoto("photo without a sha256 user property")
    actual = hashlib.sha256(payload).hexdigest()
    if actual != claimed_sha256:
        raise BadPhoto(f"photo hash mismatch: named {claimed_sha256[:16]}…, "
                       f"bytes hash to {actual[:16]}…")
    try:
        with Image.open(io.BytesIO(payload)) as image:
            if image.width * image.height > MAX_PIXELS:
                raise BadPhoto(f"photo has too many pixels ({image.width} × {image.height})")
            image.verify()
        # verify() checks little of a JPEG: decode it all, so that a
        # truncated one is refused here.
        with Image.open(io.BytesIO(payload)) as image:
            image.load()
            return Verified(actual, _dhash(image))
    except BadPhoto:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder complaint means "not an image"
        raise BadPhoto(f"photo does not decode as an image: {type(exc).__name__}: {exc}") \
            from None


def _dhash(image: Image.Image) -> str:
    """64-bit difference hash (16 hex): near-identical photos differ in few bits."""
    small = image.convert("L").resize((9, 8), Image.Resampling.LANCZOS)
    pixels = small.tobytes()  # mode L: one byte a pixel
    bits = 0
    for row in range(8):
        for col in range(8):
            left, right = pixels[row * 9 + col], pixels[row * 9 + col + 1]
            bits = (bits << 1) | (left > right)
    return f"{bits:016x}"


def store(directory, sha256: str, payload: bytes) -> Path:
    """Write the photo content-addressed (idempotent); returns its path."""
    folder = Path(directory) / sha256[:2]
    path = folder / f"{sha256}.jpg"
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{sha256}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


# -- the photos table ---------------------------------------------------------------

def record(db, photo: Verified, size: int, path: Path) -> None:
    """The row of a stored photo; a photo received before keeps its row."""
    db.conn.execute(
        "INSERT INTO photos (sha256, size, path, received_at, dhash) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT(sha256) DO NOTHING",
        (photo.sha256, size, str(path), now_iso(), photo.dhash))


def arrived(db, shas) -> set[str]:
    """Those of ``shas`` whose photo has arrived."""
    rows = db.conn.execute(
        "SELECT sha256 FROM photos WHERE sha256 IN (SELECT value FROM json_each(?))",
        (json.dumps(sorted(set(shas))),))
    return {sha for (sha,) in rows}


def dhashes(db, shas) -> list[str | None]:
    """The stored difference hashes of those of ``shas`` that have arrived."""
    shas = list(shas)
    if not shas:
        return []
    rows = db.conn.execute(
        f"SELECT dhash FROM photos WHERE sha256 IN ({', '.join('?' * len(shas))})", shas)
    return [value for (value,) in rows]


def path_of(db, sha256: str) -> str | None:
    """Where the photo's file was stored (None when unknown or removed)."""
    row = db.conn.execute("SELECT path FROM photos WHERE sha256 = ? AND removed_at IS NULL",
                          (sha256,)).fetchone()
    return row[0] if row else None


def removed_at(db, sha256: str) -> str | None:
    """When the photo was removed under the retention rules (None if it was not)."""
    row = db.conn.execute("SELECT removed_at FROM photos WHERE sha256 = ?",
                          (sha256,)).fetchone()
    return row[0] if row else None


def expire(db, holds: dict[str, bool], unattached_before: str | None, *, batch: int = 500,
           dry_run: bool = False) -> dict[str, int]:
    """Remove the photos whose time is up: ``unattached``, those no report
    names (not in ``holds``) received before ``unattached_before`` (None: never);
    ``resolved``, those ``holds`` maps to False (hub.tickets.tickets.photo_holds).
    In batches: mark the rows removed and commit, then delete the files, then
    forget their paths; a run killed in between is finished by the next one.
    Returns how many of each."""
    named = json.dumps(sorted(holds))
    released = json.dumps(sorted(sha for sha, keep in holds.items() if not keep))
    rows = db.conn.execute(
        "SELECT p.sha256, CASE WHEN p.sha256 IN (SELECT value FROM json_each(:named)) "
        "THEN 1 END FROM photos p WHERE p.removed_at IS NULL AND "
        "((p.sha256 NOT IN (SELECT value FROM json_each(:named)) AND p.received_at < :before) "
        "OR p.sha256 IN (SELECT value FROM json_each(:released)))",
        {"named": named, "released": released, "before": unattached_before or ""}).fetchall()
    counts = {"unattached": sum(1 for _, held in rows if held is None)}
    counts["resolved"] = len(rows) - counts["unattached"]
    if dry_run:
        return counts
    now = now_iso()
    for start in range(0, len(rows), batch):
        with write_transaction(db):
            db.conn.executemany("UPDATE photos SET removed_at = ? WHERE sha256 = ?",
                                [(now, sha) for sha, _ in rows[start:start + batch]])
    _delete_removed_files(db, batch)
    return counts


def _delete_removed_files(db, batch: int) -> None:
    while True:
        found = db.conn.execute("SELECT sha256, path FROM photos WHERE removed_at IS NOT NULL "
                                "AND path IS NOT NULL LIMIT ?", (batch,)).fetchall()
        for _, path in found:
            Path(path).unlink(missing_ok=True)
        with write_transaction(db):
            db.conn.executemany("UPDATE photos SET path = NULL WHERE sha256 = ?",
                                [(sha,) for sha, _ in found])
        if len(found) < batch:
            return
