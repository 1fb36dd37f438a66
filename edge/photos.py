"""The node's photo spool: privacy-safe photos waiting for the hub.

A photo is written to ``<spool>/<sha256>.jpg`` through a temporary file that
is fsynced and renamed (and the directory fsynced), and only then recorded in
the ``photo_spool`` table, so a power cut never leaves a half-written file
that is later sent. The sync loop sends each as an ``up/photo`` message and
deletes file and row when the hub's ``down/ack`` names its sha256.

A writer killed between writing a file and committing its row (the portal
killed mid-report, a power cut) leaves a file no row names: a temporary file,
or a whole photo of a report that was never queued. ``pending`` never lists
it; ``sweep`` (run by the sync loop) deletes it, so the spool gives its
space back.
"""

import hashlib
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from protocol.clock import iso

from .db import immediate


@dataclass(frozen=True)
class SpooledPhoto:
    sha256: str
    report_id: str
    path: Path

    def read(self) -> bytes:
        return self.path.read_bytes()


class PhotoSpool:
    def __init__(self, db, directory):
        self.db, self.dir = db, Path(directory)

    def put(self, jpeg: bytes, report_id: str, created: list | None = None) -> str:
        """Keep ``jpeg`` for ``report_id`` durably; returns its sha256.

        When the file system is full the write fails with OSError (ENOSPC) and
        leaves nothing behind. A file this call wrote is appended to
        ``created``, so that a caller whose transaction then fails can remove
        it again (``discard``) rather than leave a file no row names.

        Call it inside the caller's write transaction (BEGIN IMMEDIATE, as the
        portal does, so the report record commits with its photos) or outside
        any, and it takes the write lock itself: the file is always written
        under the write lock, which is how ``sweep`` tells a file left by a
        dead writer from one about to be committed."""
        if not self.db.conn.in_transaction:
            with immediate(self.db):
                return self.put(jpeg, report_id, created)
        sha = hashlib.sha256(jpeg).hexdigest()
        self.dir.mkdir(parents=True, exist_ok=True)
        final = self.dir / f"{sha}.jpg"
        if not final.exists():
            tmp = self.dir / f".{sha}.{os.getpid()}.{threading.get_ident()}.tmp"
            try:
                with open(tmp, "wb") as f:
                    f.write(jpeg)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, final)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            if created is not None:
                created.append(final)
            directory = os.open(self.dir, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        with self.db.atomic():
            self.db.conn.execute(
                "INSERT INTO photo_spool (sha256, report_id, path, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(sha256) DO NOTHING",
                (sha, report_id, str(final), iso(datetime.now(timezone.utc))))
        return sha

    def discard(self, files) -> None:
        """Remove files ``put`` created for a report that was not queued after
        all (its transaction rolled back), unless a row names them by now."""
        for path in files:
            known = self.db.conn.execute("SELECT 1 FROM photo_spool WHERE path = ?",
                                         (str(path),)).fetchone()
            if known is None:
                Path(path).unlink(missing_ok=True)

    def pending(self, limit: int, exclude=()) -> list[SpooledPhoto]:
        rows = self.db.conn.execute(
            "SELECT sha256, report_id, path FROM photo_spool ORDER BY created_at, sha256")
        found = []
        for sha, report_id, path in rows:
            if sha not in exclude:
                found.append(SpooledPhoto(sha, report_id, Path(path)))
                if len(found) >= limit:
                    break
        return found

    def ack(self, shas) -> int:
        """Forget the photos the hub now holds; returns how many were known."""
        done = 0
        for sha in shas:
            row = self.db.conn.execute("SELECT path FROM photo_spool WHERE sha256 = ?",
                                       (sha,)).fetchone()
            if row is None:
                continue
            with self.db.atomic():
                self.db.conn.execute("DELETE FROM photo_spool WHERE sha256 = ?", (sha,))
            Path(row[0]).unlink(missing_ok=True)
            done += 1
        return done

    def sweep(self) -> int:
        """Delete the files no row names (left by a writer killed between its
        file and its commit); returns how many. Under the write lock, so no
        live writer is between the two."""
        if not self.dir.is_dir():
            return 0
        removed = 0
        with immediate(self.db):
            known = {f"{sha}.jpg" for (sha,) in
                     self.db.conn.execute("SELECT sha256 FROM photo_spool")}
            for entry in os.scandir(self.dir):
                if (entry.name.endswith((".jpg", ".tmp")) and entry.name not in known
                        and entry.is_file(follow_symlinks=False)):
                    os.unlink(entry.path)
                    removed += 1
        return removed

    def count(self) -> int:
        return self.db.conn.execute("SELECT count(*) FROM photo_spool").fetchone()[0]
