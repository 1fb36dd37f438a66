"""The node's photo spool: privacy-safe photos waiting for the hub.

A photo is written to ``<spool>/<sha256>.jpg`` through a temporary file that
is fsynced and renamed (and the directory fsynced), and only then recorded in
the ``photo_spool`` table, so a power cut never leaves a half-written file
that is later sent. The sync loop sends each as an ``up/photo`` message and
deletes file and row when the hub's ``down/ack`` names its sha256.
"""

import hashlib
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from protocol.clock import iso


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

    def put(self, jpeg: bytes, report_id: str) -> str:
        """Keep ``jpeg`` for ``report_id`` durably; returns its sha256."""
        sha = hashlib.sha256(jpeg).hexdigest()
        self.dir.mkdir(parents=True, exist_ok=True)
        final = self.dir / f"{sha}.jpg"
        if not final.exists():
            tmp = self.dir / f".{sha}.{os.getpid()}.tmp"
            with open(tmp, "wb") as f:
                f.write(jpeg)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
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

    def count(self) -> int:
        return self.db.conn.execute("SELECT count(*) FROM photo_spool").fetchone()[0]
