"""Upload attacks against the node portal's report page, one case per attack.

A bound phone posts each file to ``POST /report`` (the real portal app, a real
node database, the real photo pipeline). Refused files answer with their 4xx
and the reason on the page, and leave the disk as it was: the photo spool
(dotfiles, i.e. temporary files, included), the outbox, the ``photo_spool``
and ``local_reports`` tables, and the system temp directory (pointed at a
directory of the test's own, so anything the portal or Werkzeug left there
would show). A file that does decode as an image although it carries
something else (a polyglot: a JPEG or GIF with a ZIP, a JAR or HTML/JS
appended, script in a comment, 2.4 MB of EXIF) is accepted only as a clean
JPEG re-encoded from its pixels: none of the payload's bytes, no metadata
segment, named by its sha256. File names and content types are never
trusted, so a photo with a path for a name is stored under its hash alone.
"""

import hashlib
import io
import re
import struct
import tempfile
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass
from typing import Callable

import pytest
from PIL import Image

from edge.camera.pipeline import MAX_BYTES

from ..scale import report
from ..test_portal import (  # noqa: F401 - fixtures
    app, arp, db_path, leases, phone, query, records, text,
)
from ..test_portal_bind import bind

PAYLOAD_MARKERS = (b"PK\x03\x04", b"EVIL-PAYLOAD", b"<script", b"alert(", b"Exif",
                   b"<html", b"%PDF")
TALLY = Counter()


# --- the files ----------------------------------------------------------------------

def encoded(fmt: str, size=(64, 48), mode="RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (200, 60, 30) if mode == "RGB" else 7).save(out, fmt)
    return out.getvalue()


def jpeg(size=(64, 48)) -> bytes:
    return encoded("JPEG", size)


def jar() -> bytes:
    """A ZIP laid out as a Java archive (what a GIFAR carries)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nMain-Class: Evil\n")
        z.writestr("Evil.class", b"\xca\xfe\xba\xbe" + b"EVIL-PAYLOAD" * 20)
    return out.getvalue()


def with_segment(image: bytes, marker: bytes, body: bytes) -> bytes:
    """``image`` (a JPEG) with a segment put right after its SOI marker."""
    return image[:2] + marker + struct.pack(">H", len(body) + 2) + body + image[2:]


def exif_block(size: int) -> bytes:
    tiff = b"II*\x00\x08\x00\x00\x00" + b"\x00\x00" + b"\x00\x00\x00\x00"  # empty IFD0
    return b"Exif\x00\x00" + tiff + b"EVIL-PAYLOAD"[:1] * (size - len(tiff) - 6)


def huge_exif(count: int = 40) -> bytes:
    """``count`` APP1 segments of 60 KB each: 2.4 MB of EXIF on a 64 x 48 photo."""
    image = jpeg()
    segments = b"".join(b"\xff\xe1" + struct.pack(">H", 60_002) + exif_block(60_000)
                        for _ in range(count))
    return image[:2] + segments + image[2:]


def exif_loop() -> bytes:
    """EXIF whose IFD0 names itself as the Exif IFD and as the next IFD."""
    ifd = struct.pack("<H", 1) + struct.pack("<HHII", 0x8769, 4, 1, 8) + struct.pack("<I", 8)
    return with_segment(jpeg(), b"\xff\xe1", b"Exif\x00\x00II*\x00\x08\x00\x00\x00" + ifd)


def jpeg_claiming(width: int, height: int) -> bytes:
    """A 16 x 16 JPEG whose frame header (SOF0) claims ``width`` x ``height``."""
    image = bytearray(jpeg((16, 16)))
    sof = image.index(b"\xff\xc0")
    image[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(image)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    return (b"\x89PNG\r\n\x1a\n"
            + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + png_chunk(b"IEND", b""))


def gif_claiming(width: int, height: int) -> bytes:
    image = bytearray(encoded("GIF", (8, 8), "P"))
    image[6:10] = struct.pack("<HH", width, height)  # the logical screen
    return bytes(image)


def png_text_bomb() -> bytes:
    """A PNG with a zTXt chunk that inflates to 50 MB."""
    image = encoded("PNG")
    bomb = png_chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"\x00" * 50_000_000, 9))
    return image[:33] + bomb + image[33:]  # after the signature and IHDR


PDF = (b"%PDF-1.4\n1 0 obj << /Type /Catalog /OpenAction << /S /JavaScript "
       b"/JS (app.alert(1)) >> >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
SVG = (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10" '
       b'onload="alert(1)"><script>alert(1)</script><rect width="10" height="10"/></svg>')
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00\x00\x00\x08mdat" * 8
EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n(x) (y) run showpage\n%%EOF\n"
SCRIPT = b"#!/bin/sh\nrm -rf / --no-preserve-root\n" * 20


@dataclass(frozen=True)
class Attack:
    name: str
    files: Callable[[], list]  # [(file name, bytes, content type)]
    status: int  # 303: accepted, and only as a clean JPEG
    reason: str = ""  # on the page when refused


def one(filename: str, body: Callable[[], bytes], content_type="image/jpeg"):
    return lambda: [(filename, body(), content_type)]


ATTACKS = [
    # not an image, whatever the name and the content type say
    Attack("shell script named .jpg", one("photo.jpg", lambda: SCRIPT), 400, "not a photo"),
    Attack("PDF sent as image/jpeg", one("scan.jpg", lambda: PDF), 400, "not a photo"),
    Attack("HTML sent as text/html", one("x.jpg", lambda: HTML, "text/html"), 400,
           "not a photo"),
    Attack("SVG with script", one("icon.svg", lambda: SVG, "image/svg+xml"), 400, "not a photo"),
    Attack("HEIC", one("IMG_0001.HEIC", lambda: HEIC, "image/heic"), 400, "not a photo"),
    Attack("ZIP named .jpg", one("archive.jpg", jar), 400, "not a photo"),
    Attack("EPS (would run Ghostscript)", one("x.eps", lambda: EPS, "application/postscript"),
           400, "not a photo"),
    Attack("TIFF (a decoder we do not open)", one("x.tif", lambda: encoded("TIFF"), "image/tiff"),
           400, "not a photo"),
    Attack("empty file", one("empty.jpg", lambda: b""), 400, "not a photo"),
    # decompression bombs: tiny files claiming 2.5 gigapixels
    Attack("PNG bomb 50000x50000", one("bomb.png", lambda: png_claiming(50_000, 50_000),
                                       "image/png"), 422, "too many pixels"),
    Attack("JPEG bomb 50000x50000", one("bomb.jpg", lambda: jpeg_claiming(50_000, 50_000)),
           422, "too many pixels"),
    Attack("GIF bomb 65535x65535", one("bomb.gif", lambda: gif_claiming(65_535, 65_535),
                                       "image/gif"), 422, "too many pixels"),
    Attack("PNG zTXt bomb (50 MB of text)", one("text.png", png_text_bomb, "image/png"), 400,
           "not a photo"),
    Attack("three photos and one bomb", lambda: [
        *[(f"ok{i}.jpg", jpeg(), "image/jpeg") for i in range(3)],
        ("bomb.png", png_claiming(50_000, 50_000), "image/png")], 422, "too many pixels"),
    # truncated and oversize
    Attack("truncated JPEG", one("cut.jpg", lambda: jpeg((400, 300))[:900]), 400, "incomplete"),
    Attack("truncated PNG", one("cut.png", lambda: encoded("PNG", (400, 300))[:-20],
                                "image/png"), 400, "incomplete"),
    Attack("photo over 20 MB", one("big.jpg", lambda: jpeg() + bytes(MAX_BYTES + 1024)), 413,
           "too large"),
    Attack("request over the portal's limit", one("huge.jpg", lambda: bytes(82 * 2**20)), 413,
           "Too much data"),
    # names: never used for anything but the message
    Attack("path name ../../etc/passwd.jpg", one("../../etc/passwd.jpg", lambda: SCRIPT), 400,
           "passwd.jpg was not accepted"),
    Attack("path name ..\\x.jpg", one("..\\x.jpg", lambda: SCRIPT), 400, "not a photo"),
    Attack("file name with NUL", one("a\x00.php.jpg", lambda: SCRIPT), 400, "not a photo"),
    Attack("file name of 5000 characters", one("n" * 5000 + ".jpg", lambda: SCRIPT), 400,
           "not a photo"),
    Attack("file name with markup", one('<img src=x onerror=alert(1)>.jpg', lambda: SCRIPT),
           400, "not a photo"),
    Attack("photo named ../../etc/passwd.jpg", one("../../etc/passwd.jpg", jpeg), 303),
    Attack("photo named ..\\..\\boot.ini", one("..\\..\\boot.ini", jpeg), 303),
    Attack("photo with a NUL and 5000 characters in its name",
           one("\x00" + "p" * 5000 + ".jpg", jpeg), 303),
    Attack("photo sent as text/html", one("x.html", jpeg, "text/html"), 303),
    # polyglots that decode as an image: accepted only clean
    Attack("JPEG + ZIP", one("poly.jpg", lambda: jpeg() + jar()), 303),
    Attack("JPEG + HTML/JS", one("poly.jpg", lambda: jpeg() + HTML), 303),
    Attack("GIFAR (GIF + JAR)", one("gifar.gif", lambda: encoded("GIF", mode="P") + jar(),
                                    "image/gif"), 303),
    Attack("JPEG with script in a comment", one("c.jpg", lambda: with_segment(
        jpeg(), b"\xff\xfe", b"<script>alert(1)</script>" + HTML)), 303),
    Attack("40 APP1 segments of 60 KB", one("exif.jpg", huge_exif), 303),
    Attack("EXIF IFD that points at itself", one("loop.jpg", exif_loop), 303),
]


# --- the portal and its disk -----------------------------------------------------------

@pytest.fixture
def system_tmp(tmp_path, monkeypatch):
    """The system temp directory, made the test's own (Werkzeug spools big
    uploads there; nothing of the portal may stay)."""
    directory = tmp_path / "system-tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


def disk(db_path, system_tmp) -> dict:
    spool = db_path.parent / "photos"
    return {"spool": sorted(p.name for p in spool.iterdir()) if spool.exists() else [],
            "outbox": records(db_path),
            "photo_spool": query(db_path, "SELECT sha256 FROM photo_spool ORDER BY 1"),
            "local_reports": query(db_path, "SELECT report_id FROM local_reports"),
            "system_tmp": sorted(p.name for p in system_tmp.iterdir())}


def post(client, files):
    page = client.get("/report").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client.post("/report", content_type="multipart/form-data", data={
        "csrf_token": token, "category": "hygiene", "note": "upload attack",
        "photos": [(io.BytesIO(body), name, kind) for name, body, kind in files]})


def assert_clean_jpeg(path, sent: bytes) -> None:
    """A JPEG re-encoded from pixels: nothing of what was sent beside them."""
    data = path.read_bytes()
    assert path.name == hashlib.sha256(data).hexdigest() + ".jpg"
    assert data.startswith(b"\xff\xd8") and data.endswith(b"\xff\xd9")
    for marker in PAYLOAD_MARKERS:
        assert marker not in data, marker
    assert data[:-2].find(sent[-64:]) == -1, "the end of what was sent survives"
    segments, at = [], 2
    while data[at] == 0xFF and data[at + 1] != 0xDA:  # walk the headers up to the scan
        segments.append(data[at + 1])
        at += 2 + int.from_bytes(data[at + 2:at + 4], "big")
    assert not [m for m in segments if 0xE1 <= m <= 0xEF or m == 0xFE], \
        f"metadata segments left: {[hex(m) for m in segments]}"
    with Image.open(path) as image:
        assert image.format == "JPEG" and not image.getexif()
        assert not {"exif", "comment", "icc_profile", "xmp"} & set(image.info)


@pytest.fixture(scope="module", autouse=True)
def tally():
    yield TALLY
    report("attacks_upload", {"tried": TALLY["tried"], "refused": TALLY["refused"],
                              "accepted_clean": TALLY["accepted_clean"]})


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_upload_attack(attack, phone, db_path, system_tmp):
    bind(phone)
    files = attack.files()
    before = disk(db_path, system_tmp)
    response = post(phone, files)
    TALLY["tried"] += 1
    assert response.status_code == attack.status, text(response)[:300]
    after = disk(db_path, system_tmp)
    assert after["system_tmp"] == [], "temporary files left behind"
    if attack.status != 303:
        assert attack.reason in text(response)
        assert "<script" not in response.get_data(as_text=True)
        assert "<img src=x" not in response.get_data(as_text=True)
        assert after == before, "a refused upload changed the disk"
        TALLY["refused"] += 1
        return
    new = sorted(set(after["spool"]) - set(before["spool"]))
    assert len(new) == len(files) and not [n for n in after["spool"] if n.startswith(".")]
    [report_record] = [r for r in after["outbox"] if r["type"] == "report"]
    assert sorted(f"{sha}.jpg" for sha in report_record["photos"]) == new
    for name, (_, sent, _) in zip(new, files):
        assert_clean_jpeg(db_path.parent / "photos" / name, sent)
    TALLY["accepted_clean"] += 1
