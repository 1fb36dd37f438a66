"""Power cut at the node: a writer process SIGKILLed in the middle of outbox
appends and of photo spool writes, many times over.

A child process loops as the node's writers do: batches of records appended
to the outbox, and reports whose photos go to the spool and whose record goes
to the outbox in one transaction (as the portal files them). After each
append or report has returned it writes one line to a log; the test kills it
at a random moment, then checks that the node database opens cleanly
(``PRAGMA integrity_check``), that every append logged before the kill is
there, that every report's photos are in the spool, and that every photo the
spool lists (what the sync would send) is whole: its bytes hash to its name.
Files a killed writer left behind (a temporary file, or a photo whose
transaction never committed) are never listed, and the spool's sweep
removes them.

What SIGKILL proves and what it does not: SIGKILL stops the process between
two instructions, so it proves atomicity at the process level: SQLite's WAL
never shows half a transaction, a spool file appears under its name only
whole (written to a temporary name, then renamed), and a report never names
a photo the spool lacks. It does not lose the kernel's page cache: every
write() made before the kill still reaches the disk. A real power cut loses
what is in the page cache and was not flushed. That part is covered by the
flushes themselves, which the last test checks are there: SQLite in WAL mode
with ``synchronous=FULL`` fsyncs the WAL at every commit (so a commit that
returned is on the disk), and the spool fsyncs the photo before renaming it
and the directory after (so the name never points at data that is not on the
disk). Exercising the page-cache loss itself needs a block device that drops
unflushed writes (dm-flakey, dm-log-writes), which is not done here.
"""

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from edge.db import immediate
from edge.db import open_db
from edge.outbox import Outbox
from edge.photos import PhotoSpool

from ..conftest import ROOT
from ..scale import report, scaled

# Forks one writer per line it reads and reaps it after the test's SIGKILL:
# the imports are paid once, not once per round.
ZYGOTE = """
import json, os, sys
from tests.faults.test_power_cut import write_until_killed
for line in sys.stdin:
    pid = os.fork()
    if pid == 0:
        write_until_killed(*json.loads(line))
        os._exit(0)
    print(pid, flush=True)
    os.waitpid(pid, 0)
    print("reaped", flush=True)
"""


def write_until_killed(db_path: str, spool_dir: str, log_path: str, seed: int) -> None:
    """The child: append and spool until killed, logging each write that returned."""
    rng = random.Random(seed)
    outbox = Outbox(db_path)
    spool = PhotoSpool(outbox.db, spool_dir)
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(log, b"ready\n")
    while True:
        if rng.random() < 0.5:
            ids = outbox.append_many([
                {"type": "checkin", "staff_id": f"S{rng.randrange(10_000):05d}",
                 "event_id": "ev1", "zone": "hall-a", "method": "portal", "device": None}
                for _ in range(rng.randint(1, 50))])
            os.write(log, ("records " + " ".join(ids) + "\n").encode())
        else:
            report_id = str(uuid.uuid4())
            photos = [rng.randbytes(rng.randrange(20_000, 600_000))
                      for _ in range(rng.randint(1, 2))]
            with immediate(outbox.db):  # as the portal files a report
                shas = [spool.put(photo, report_id) for photo in photos]
                record_id = outbox.append({
                    "type": "report", "report_id": report_id, "staff_id": "S00001",
                    "category": "hygiene", "note": None, "zone": "hall-a",
                    "photos": shas, "taken_at": "2025-01-01T00:00:00.000Z"})
            os.write(log, f"report {record_id} {' '.join(shas)}\n".encode())


def logged(log_path: Path) -> tuple[set[str], dict[str, list[str]]]:
    """(record ids, {report record id: photo sha256s}) whose write returned."""
    records, reports = set(), {}
    for line in log_path.read_text().splitlines(keepends=True):
        if not line.endswith("\n"):
            continue  # cut off by the kill: not counted as returned
        kind, *fields = line.split()
        if kind == "records":
            records.update(fields)
        elif kind == "report":
            records.add(fields[0])
            reports[fields[0]] = fields[1:]
    return records, reports


def integrity(db_path: Path) -> str:
    import sqlite3

    conn = sqlite3.connect(db_path)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def sha_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sigkill_mid_write_leaves_a_clean_database_and_no_partial_photo(tmp_path):
    rounds = scaled(40, 300)
    seed = int(os.environ.get("ROUNDS_FAULT_SEED") or random.SystemRandom().randrange(2**32))
    print(f"\n[faults_power_cut] seed {seed}")
    rng = random.Random(seed)
    db_path, spool_dir = tmp_path / "node.db", tmp_path / "photos"
    open_db(db_path).close()
    zygote = subprocess.Popen([sys.executable, "-c", ZYGOTE], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=ROOT,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)))
    counts = {"kills": 0, "records_returned": 0, "reports_returned": 0, "photos_listed": 0,
              "leftover_files": 0, "swept": 0}
    try:
        for n in range(rounds):
            log_path = tmp_path / f"writer-{n}.log"
            zygote.stdin.write(json.dumps([str(db_path), str(spool_dir), str(log_path),
                                           rng.randrange(2**32)]) + "\n")
            zygote.stdin.flush()
            pid = int(zygote.stdout.readline())
            deadline = time.monotonic() + 30
            while not (log_path.exists() and log_path.read_text().startswith("ready")):
                assert time.monotonic() < deadline, "the writer did not start"
                time.sleep(0.005)
            time.sleep(rng.uniform(0.005, 0.25))
            os.kill(pid, signal.SIGKILL)
            assert zygote.stdout.readline().strip() == "reaped"
            counts["kills"] += 1
            check_after_kill(db_path, spool_dir, log_path, counts)
    finally:
        zygote.stdin.close()
        zygote.wait(30)
    report("faults_power_cut", counts)
    assert counts["records_returned"] > rounds and counts["reports_returned"] > rounds / 4


def check_after_kill(db_path: Path, spool_dir: Path, log_path: Path, counts: dict) -> None:
    assert integrity(db_path) == "ok"
    records, reports = logged(log_path)
    counts["records_returned"] += len(records)
    counts["reports_returned"] += len(reports)
    outbox = Outbox(db_path)
    try:
        spool = PhotoSpool(outbox.db, spool_dir)
        queued = {item.id: item.record for item in outbox.pending(10**9)}
        assert records <= queued.keys(), "an append that returned is gone"
        spooled = {photo.sha256: photo for photo in spool.pending(10**9)}
        for rid, shas in reports.items():
            assert set(shas) <= spooled.keys(), "a report that returned lost a photo"
        for record in queued.values():  # no queued report names a photo the spool lacks
            if record["type"] == "report":
                assert set(record["photos"]) <= spooled.keys()
        for sha, photo in spooled.items():  # what the sync would send is whole
            assert sha_of(photo.path) == sha, f"spooled photo {sha[:12]} is not whole"
        counts["photos_listed"] += len(spooled)
        leftovers = sorted(p.name for p in spool_dir.iterdir()
                           if p.name not in {f"{sha}.jpg" for sha in spooled})
        counts["leftover_files"] += len(leftovers)
        counts["swept"] += spool.sweep()
        assert sorted(p.name for p in spool_dir.iterdir()) == sorted(
            f"{sha}.jpg" for sha in spooled), "the sweep left a file or took a spooled one"
        # The hub acknowledges everything (keeps the disk small for the next round).
        outbox.ack(list(queued))
        spool.ack(list(spooled))
    finally:
        outbox.close()


def test_the_flushes_that_cover_a_real_power_cut_are_there(tmp_path, monkeypatch):
    """What SIGKILL cannot show: the node database commits with a full fsync
    (WAL, synchronous=FULL), and the spool fsyncs a photo before renaming
    it into place and fsyncs the directory after."""
    outbox = Outbox(tmp_path / "node.db")
    try:
        conn = outbox.conn
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        calls = []
        real_fsync, real_replace = os.fsync, os.replace

        def fsync(fd):
            calls.append(("fsync", "dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "file"))
            return real_fsync(fd)

        def replace(src, dst):
            calls.append(("rename", Path(dst).name))
            return real_replace(src, dst)

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "replace", replace)
        sha = PhotoSpool(outbox.db, tmp_path / "photos").put(b"\xff\xd8 photo bytes", "r1")
        assert calls == [("fsync", "file"), ("rename", f"{sha}.jpg"), ("fsync", "dir")]
    finally:
        outbox.close()
