"""Disk full on the node: its database and photo spool on a small tmpfs that a
filler file fills while the real portal (gunicorn), sync and ingest run.

What must hold (issue 8, "Disk full on the node"):

- nearly full (less free than the portal's check-in reserve): photo reports
  are refused with 507 and a reason on the page, in Chinese and in English;
  check-ins go on;
- truly full (not one block free): a check-in either goes through (SQLite
  may still have room in its write-ahead log) or gets a 503 saying the
  storage is full, never a 500, and a refused one leaves nothing behind;
  the sync process, whose acks cannot be written, stays up;
- nothing queued before the fill is lost, no half-written photo is left in
  the spool, and when the filler is removed the next report and check-in go
  through and everything reaches the hub, with nothing restarted.
"""

import errno
import hashlib
import http.client
import io
import os
import re
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from urllib3 import encode_multipart_formdata

from edge.db import open_db as open_node_db
from edge.photos import PhotoSpool

from ..scale import report, scaled
from ..support import wait_for
from .conftest import EVENT, phone_address, staff_id

MIB = 1024 * 1024
TMPFS_SIZE = scaled("8m", "16m")
RESERVE = scaled(1, 3) * MIB       # the portal's check-in reserve (portal.disk_reserve) here
HEADROOM = scaled(640 * 1024, 2 * MIB)  # left free "nearly full": below the reserve, and
                                        # room for the check-ins then (~30 KB each)
PHONES = scaled(40, 120)
EARLY = scaled(6, 30)        # check-ins queued before the fill
NEARLY = scaled(8, 30)       # check-ins while nearly full (all must go through)
FULL = scaled(6, 30)         # check-in attempts while truly full

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root "
                                "(CI runs as root)")


@contextmanager
def tmpfs(mount: Path, size: str):
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs",
                    str(mount)], check=True)
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)]).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], check=True)


@pytest.fixture
def small_disk(tmp_path):
    """The node's directory (database, WAL, photo spool) on a small tmpfs."""
    with tmpfs(tmp_path / "n1", TMPFS_SIZE) as mount:
        yield mount


def free_bytes(path: Path) -> int:
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


def fill(path: Path, leave: int = 0) -> None:
    """Write ``path`` until only about ``leave`` bytes are free (0: until ENOSPC)."""
    with open(path, "ab") as f:
        try:
            while True:
                size = 65536
                if leave:
                    size = min(size, (free_bytes(path.parent) - leave) // 4096 * 4096)
                    if size <= 0:
                        return
                f.write(b"\0" * size)
                f.flush()
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise


def spill_photo() -> bytes:
    image = Image.new("RGB", (1200, 900), (170, 170, 160))
    ImageDraw.Draw(image).ellipse((300, 300, 900, 650), fill=(120, 80, 20))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


class Phone:
    """A phone on the Wi-Fi: its own loopback address (its MAC is in the
    node's lease file), its session cookie, plain HTTP as a browser sends it."""

    def __init__(self, port: int, i: int, lang: str = "en"):
        self.port, self.i, self.lang = port, i, lang
        self.ip, _ = phone_address(i)
        self.cookie = None

    def request(self, method, path, body=None, content_type=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30,
                                          source_address=(self.ip, 0))
        headers = {"Cookie": self.cookie} if self.cookie else {}
        if content_type:
            headers["Content-Type"] = content_type
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            text = response.read().decode()
        finally:
            conn.close()
        cookie = response.getheader("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        return response.status, " ".join(text.split())

    def token(self, path) -> str:
        status, page = self.request("GET", f"{path}?lang={self.lang}")
        assert status == 200, (path, status, page[:300])
        return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)

    def tap(self):
        body, kind = encode_multipart_formdata({"csrf_token": self.token("/")})
        return self.request("POST", "/checkin/tap", body, kind)

    def report(self, jpeg: bytes):
        body, kind = encode_multipart_formdata({
            "csrf_token": self.token("/report"), "category": "hygiene", "note": "Spill",
            "photos": ("IMG_0001.jpg", jpeg, "image/jpeg")})
        return self.request("POST", "/report", body, kind)


def test_disk_full_refuses_reports_keeps_queue_and_recovers(small_disk, fault_site):
    site = fault_site(PHONES)
    config = site.node_config
    config.write_text(config.read_text().replace('"portal": {', f'"portal": {{"disk_reserve": '
                                                                f'{RESERVE}, ', 1))
    assert site.node_db.parent == small_disk
    jpeg = spill_photo()
    ingest, sync, portal = site.ingest().start(), site.sync().start(), site.portal().start()
    wait_for(site.portal_up, message="portal up")
    wait_for(site.node_ready, timeout=30, message="roster and event at the node")
    phones = [Phone(site.portal_port, i) for i in range(PHONES)]
    zh_phone = Phone(site.portal_port, 0, lang="zh")
    taps: dict[int, tuple[int, str]] = {}  # phone -> (status, page)
    reports = []  # report ids the portal accepted

    def reports_at_node():
        return {r for (r,) in site.node_rows("SELECT report_id FROM local_reports")}

    def tap(i):
        taps[i] = phones[i].tap()
        assert taps[i][0] in (303, 503), taps[i]
        return taps[i][0]

    def file_report(phone):
        before = reports_at_node()
        status, page = phone.report(jpeg)
        new = reports_at_node() - before
        if status == 303:
            reports.extend(new)
        else:
            assert not new, "a refused report was queued"
        return status, page

    def spool_is_clean():
        """Only whole photos that a queued report names: no temporary files."""
        named = {f"{sha}.jpg" for (sha,) in site.node_rows("SELECT sha256 FROM photo_spool")}
        assert set(site.spool_files()) <= named, site.spool_files()

    # 1. Ingest down: records pile up in the outbox, as before any outage.
    ingest.stop()
    for i in range(EARLY):
        assert tap(i) == 303
    assert file_report(phones[0])[0] == 303
    queued = {rid for (rid,) in site.node_rows("SELECT id FROM outbox")}
    assert len(queued) == EARLY + 1
    spooled = site.spooled()

    # 2. Nearly full: less than the reserve is free. Reports are refused with
    #    507 and a reason in either language; check-ins go on.
    filler = small_disk / "filler"
    fill(filler, leave=HEADROOM)
    assert free_bytes(small_disk) < RESERVE
    status, page = file_report(phones[1])
    assert status == 507 and "storage is nearly full" in page and "Check-ins still work" in page
    status, page = file_report(zh_phone)
    assert status == 507 and "存储空间" in page and "签到仍可使用" in page
    for i in range(EARLY, EARLY + NEARLY):
        assert tap(i) == 303, taps[i]
    spool_is_clean()

    # 3. Truly full. The hub comes back: it gets everything, but the node
    #    cannot write the acks down (and says nothing about it to phones).
    fill(small_disk / "filler-2")
    assert free_bytes(small_disk) == 0
    ingest.start()
    wait_for(lambda: queued <= {r for (r,) in site.hub_rows(
        "SELECT id FROM checkins UNION SELECT id FROM reports")}, timeout=30,
        message="the records queued before the fill at the hub")
    refused_full = 0
    for i in range(EARLY + NEARLY, EARLY + NEARLY + FULL):
        if tap(i) == 503:
            refused_full += 1
            assert "storage is full" in taps[i][1] and "Nothing was saved" in taps[i][1]
    status, page = file_report(phones[2])
    assert status == 507 and "storage is nearly full" in page
    assert queued <= {rid for (rid,) in site.node_rows("SELECT id FROM outbox")}, \
        "records queued before the fill left the outbox although their acks could not be saved"
    spool_is_clean()
    assert sync.alive() and portal.alive(), "a node process died of the full disk"

    # 4. Space returns: nothing is restarted, the next report and check-in
    #    go through, the acks are applied and everything drains to the hub.
    filler.unlink()
    (small_disk / "filler-2").unlink()
    assert file_report(phones[3])[0] == 303
    last = EARLY + NEARLY + FULL
    assert tap(last) == 303
    wait_for(lambda: site.backlog() == 0 and site.spooled() == 0, timeout=60,
             message="outbox and photo spool drained")
    assert site.spool_files() == []
    assert sync.alive() and portal.alive() and ingest.alive()

    accepted = {i for i, (status, _) in taps.items() if status == 303}
    hub_checkins = site.hub_rows("SELECT staff_id, event_id FROM checkins")
    assert sorted(s for s, _ in hub_checkins) == sorted(staff_id(i) for i in accepted), \
        "the hub's check-ins are not exactly the ones the portal accepted"
    assert {e for _, e in hub_checkins} == {EVENT}
    hub_reports = site.hub_rows("SELECT report_id, photos FROM reports")
    assert sorted(r for r, _ in hub_reports) == sorted(reports) and len(reports) == 2
    photos_named = {sha for _, shas in hub_reports for sha in re.findall(r"[0-9a-f]{64}", shas)}
    stored = dict(site.hub_rows("SELECT sha256, path FROM photos"))
    assert photos_named <= set(stored)
    for sha in photos_named:
        assert hashlib.sha256(Path(stored[sha]).read_bytes()).hexdigest() == sha
    hub_ids = {r for (r,) in site.hub_rows("SELECT id FROM checkins UNION SELECT id FROM reports")}
    report("faults_disk_full", {"queued_before_fill": len(queued), "photos_spooled": spooled,
                         "checkins_nearly_full": NEARLY, "checkin_attempts_full": FULL,
                         "refused_full_503": refused_full, "reports_refused_507": 3,
                         "checkins_at_hub": len(hub_checkins), "reports_at_hub": len(hub_reports),
                         "lost": len(queued - hub_ids)})


def test_a_photo_that_does_not_fit_leaves_no_file_in_the_spool(tmp_path):
    """The spool's own write on a full file system: ENOSPC, and no temporary
    or partial file left that could later be sent; fine again with space."""
    db = open_node_db(tmp_path / "node.db")
    jpeg = spill_photo() * 4  # bytes only: the spool stores what it is given
    try:
        with tmpfs(tmp_path / "spool", "256k") as spool_dir:
            spool = PhotoSpool(db, spool_dir)
            fill(spool_dir / "filler", leave=len(jpeg) // 2)
            created = []
            with pytest.raises(OSError) as refused:
                spool.put(jpeg, "r1", created)
            assert refused.value.errno == errno.ENOSPC
            assert sorted(p.name for p in spool_dir.iterdir()) == ["filler"] and created == []
            assert spool.count() == 0
            (spool_dir / "filler").unlink()
            sha = spool.put(jpeg, "r1", created)
            assert [p.name for p in spool_dir.iterdir()] == [f"{sha}.jpg"] == [created[0].name]
            assert spool.pending(5)[0].read() == jpeg
            spool.ack([sha])
    finally:
        db.close()
