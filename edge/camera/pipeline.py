"""Make a staff photo privacy-safe on the node, before anything is queued.

``process(data)`` takes the bytes a phone uploaded (or a node camera frame) and
returns a :class:`SafePhoto`: a fresh JPEG built from pixels only (EXIF orientation
applied, every metadata block gone), long side at most ``LONG_SIDE``, faces blurred,
named by its sha256. The GPS position in the original EXIF is read first and
returned beside it, so the report can carry it although the photo does not.

Anything that is not a whole, decodable, reasonably sized image is refused with
:class:`PhotoRejected`, whose ``status`` is the HTTP status to answer with (400, 413
422 or 503) and whose ``message`` is a sentence for people: English marked with ``N_``
(the portal's catalogue translates it where it is shown, edge/portal/report.py),
with its ``%(name)s`` placeholders filled from ``params``; ``reason`` is the
English sentence filled in, for logs and the command line. File name and content
type are never looked at: only decoding decides.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageCms, ImageFile, ImageOps

from edge.camera import faces_v2

MAX_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 50_000_000
LONG_SIDE = 1600
QUALITY = 85
# One photo must fit comfortably in one MQTT packet (up/photo, broker limits).
MAX_JPEG_BYTES = 1_500_000
_FALLBACK_QUALITIES = (75, 65, 50, 35)

# Formats a phone or the node camera produces. Other Pillow decoders (TIFF, PSD,
# EPS, ...) are attack surface we do not need.
FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")  # JPEG includes MPO (iPhone)

# A detector's box is tight (brows to mouth for Haar, eyes to chin for BlazeFace):
# widen it to take in hair, ears and chin.
GROW_X = 0.25
GROW_Y = 0.35
# Each face is reduced to at most this many cells across (see blur_faces).
PIXEL_CELLS = 6
# Noise added to every cell's colour (uniform, +-NOISE levels of 255), drawn from
# the operating system's entropy, so the cells' averages are not the face's either.
NOISE = 24

ImageFile.LOAD_TRUNCATED_IMAGES = False  # the default; a truncated file is refused

log = logging.getLogger(__name__)


def N_(message: str) -> str:
    """Marks a message for extraction; it is translated where it is shown."""
    return message


class PhotoRejected(ValueError):
    """Not accepted as a photo. ``status``: 400 not an image or truncated, 413 too
    many bytes, 422 too many pixels (a decompression bomb), 503 the face detector
    cannot run (no photo is taken at all then). ``message`` and ``params``: the
    sentence for people, to translate then fill; ``reason``: the English sentence
    filled in."""

    def __init__(self, status: int, message: str, **params):
        self.status, self.message, self.params = status, message, params
        self.reason = message % params if params else message
        super().__init__(self.reason)


@dataclass(frozen=True)
class SafePhoto:
    jpeg: bytes
    sha256: str
    gps: tuple[float, float] | None
    faces: int
    width: int
    height: int


# --- refusal ---

def _not_image(exc: BaseException | None = None) -> PhotoRejected:
    """400, worded for people; the decoder's own words go to the log."""
    if exc is not None:
        log.info("photo refused by the decoder: %s: %s", type(exc).__name__, exc)
        text = str(exc).lower()
        if isinstance(exc, EOFError) or "truncat" in text or "broken data stream" in text:
            return PhotoRejected(400, N_("The photo is incomplete: the file ends before "
                                         "the image does. Please send it again."))
    return PhotoRejected(400, N_("The file is not a photo we can read "
                                 "(JPEG, PNG, WebP, GIF or BMP)."))


def _too_many_pixels(width: int | None = None, height: int | None = None) -> PhotoRejected:
    limit = MAX_PIXELS // 1_000_000
    if width and height:
        return PhotoRejected(422, N_("The photo has too many pixels (%(width)d × %(height)d); "
                                     "the limit is %(limit)d megapixels."),
                             width=width, height=height, limit=limit)
    return PhotoRejected(422, N_("The photo has too many pixels; the limit is %(limit)d "
                                 "megapixels."), limit=limit)


def _too_large(size: int) -> PhotoRejected:
    return PhotoRejected(413, N_("The file is too large (%(size)s MB); the limit is "
                                 "%(limit)d MB."),
                         size=f"{size / 1048576:.1f}", limit=MAX_BYTES // 1048576)


def _open(data: bytes) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data), formats=FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels() from None
    except Image.UnidentifiedImageError:
        raise _not_image() from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise _not_image(exc) from None


def _decode(data: bytes) -> Image.Image:
    """Open, verify, check the pixel count, then decode for real (reduced in the
    JPEG decoder when the photo is much larger than the output)."""
    if len(data) > MAX_BYTES:
        raise _too_large(len(data))
    if not data:
        raise _not_image()
    im = _open(data)
    width, height = im.size  # from the header: nothing decoded yet
    if width <= 0 or height <= 0:
        raise _not_image()
    if width * height > MAX_PIXELS:
        raise _too_many_pixels(width, height)
    try:
        im.verify()
    except Exception as exc:  # noqa: BLE001 - any decoder complaint means "not an image"
        raise _not_image(exc) from None
    im = _open(data)  # verify() leaves the image unusable
    if im.format in ("JPEG", "MPO"):
        scale = LONG_SIDE / max(width, height)
        if scale < 1:
            # DCT scaling (1/2, 1/4, 1/8) while decoding; never below the target.
            im.draft("RGB", (max(1, int(width * scale)), max(1, int(height * scale))))
    try:
        im.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels(width, height) from None
    except Exception as exc:  # noqa: BLE001 - truncated, corrupt, or decoder limits
        raise _not_image(exc) from None
    return im


# --- metadata we read before dropping it ---

def _rational(value) -> float:
    if isinstance(value, tuple) and len(value) == 2:
        return float(value[0]) / float(value[1])
    return float(value)


def _gps(im: Image.Image) -> tuple[float, float] | None:
    """(lat, lon) in degrees from the EXIF GPSInfo IFD, or None."""
    try:
        gps = im.getexif().get_ifd(0x8825)  # ExifTags.IFD.GPSInfo
        if not gps or 2 not in gps or 4 not in gps:
            return None

        def degrees(dms, ref, negative):
            parts = [_rational(x) for x in (dms if isinstance(dms, (tuple, list)) else (dms,))]
            value = sum(p / 60 ** i for i, p in enumerate(parts[:3]))
            if isinstance(ref, bytes):
                ref = ref.decode("ascii", "replace")
            return -value if str(ref).strip().upper().startswith(negative) else value

        lat = degrees(gps[2], gps.get(1, "N"), "S")
        lon = degrees(gps[4], gps.get(3, "E"), "W")
    except Exception:  # noqa: BLE001 - malformed GPS is simply no GPS
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or lat != lat or lon != lon:
        return None
    return (round(lat, 7), round(lon, 7))


_SRGB = None


def _to_srgb_rgb(im: Image.Image) -> Image.Image:
    """RGB pixels in sRGB: convert through the embedded ICC profile (phones tag
    Display P3) before the profile is dropped; alpha goes onto white."""
    global _SRGB
    icc = im.info.get("icc_profile")
    if icc and im.mode in ("RGB", "RGBA", "CMYK", "L"):
        try:
            if _SRGB is None:
                _SRGB = ImageCms.createProfile("sRGB")
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            im = ImageCms.profileToProfile(im.convert("RGB") if im.mode == "RGBA" else im,
                                           src, _SRGB, outputMode="RGB")
        except Exception:  # noqa: BLE001 - a broken profile: keep the pixels as they are
            pass
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        top = a.max() or 1.0
        im = Image.fromarray(np.clip(a * (255.0 / top), 0, 255).astype(np.uint8))
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)
    return im.convert("RGB") if im.mode != "RGB" else im


# --- faces ---

def detect_faces(rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Face boxes (x, y, w, h) in ``rgb``'s pixels (edge/camera/faces_v2.py).

    Fail safe: when the detector cannot run (model missing or altered, OpenCV
    failing on it) the photo is refused with a 503, never passed on unblurred."""
    try:
        return faces_v2.detect_faces(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    except (faces_v2.FaceDetectorUnavailable, cv2.error) as exc:
        log.error("face detection cannot run, photo refused: %s", exc)
        raise PhotoRejected(503, N_("This node cannot blur faces right now, so it takes "
                                    "no photos. Please file the report without a photo "
                                    "and tell the facilities team.")) from None


def grow_box(box, width: int, height: int) -> tuple[int, int, int, int]:
    """The region blurred for a face box: enlarged by GROW_X/GROW_Y each side,
    clipped to the image. Returns (x0, y0, x1, y1)."""
    x, y, w, h = box
    dx, dy = int(w * GROW_X), int(h * GROW_Y)
    return (max(0, x - dx), max(0, y - dy), min(width, x + w + dx), min(height, y + h + dy))


def blur_faces(rgb: np.ndarray, boxes) -> None:
    """Make each (enlarged) face region unrecoverable, in place.

    A Gaussian blur is a known linear filter: deconvolution brings much of a face
    back, more so from a high-quality JPEG. Pixelation keeps only a few averages,
    so there is nothing left to deconvolve, but a 6-cell mosaic can still be matched
    against photos of candidates (the averages are a fingerprint). So: reduce to at
    most PIXEL_CELLS cells across, add random noise (+-NOISE levels, fresh from the
    OS for every photo) to every cell's colour, and interpolate back up smoothly
    (bilinear costs nothing; a 100 px Gaussian kernel took 20 ms)."""
    height, width = rgb.shape[:2]
    rng = np.random.default_rng()  # seeded from os.urandom: not reproducible
    for box in boxes:
        x0, y0, x1, y1 = grow_box(box, width, height)
        roi = rgb[y0:y1, x0:x1]
        rh, rw = roi.shape[:2]
        if rh < 2 or rw < 2:
            continue
        cell = max(2, max(rw, rh) // PIXEL_CELLS)
        tiny = cv2.resize(roi, (max(1, rw // cell), max(1, rh // cell)),
                          interpolation=cv2.INTER_AREA).astype(np.int16)
        tiny += rng.integers(-NOISE, NOISE + 1, tiny.shape, dtype=np.int16)
        tiny = np.clip(tiny, 0, 255).astype(np.uint8)
        rgb[y0:y1, x0:x1] = cv2.resize(tiny, (rw, rh), interpolation=cv2.INTER_LINEAR)


# --- the pipeline ---

def resize_long_side(rgb: np.ndarray, long_side: int) -> np.ndarray:
    """Downscale so the long side is at most ``long_side`` (never upscale). OpenCV's
    INTER_AREA averages every source pixel (no aliasing) and is ~3x faster here
    than Pillow's LANCZOS on the 2000 px image left by the JPEG draft decode."""
    h, w = rgb.shape[:2]
    if max(h, w) <= long_side:
        return rgb
    scale = long_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _encode(rgb: np.ndarray) -> bytes:
    im = Image.fromarray(rgb, "RGB")  # fresh image: its info is empty
    for quality in (QUALITY, *_FALLBACK_QUALITIES):
        out = io.BytesIO()
        im.save(out, "JPEG", quality=quality, optimize=True)
        jpeg = out.getvalue()
        if len(jpeg) <= MAX_JPEG_BYTES:
            break
    return jpeg


def process(data: bytes) -> SafePhoto:
    """Verify, orient, strip, resize, blur faces, encode. Raises PhotoRejected."""
    data = bytes(data)
    im = _decode(data)
    gps = _gps(im)
    try:
        im = ImageOps.exif_transpose(im) or im
    except Exception:  # noqa: BLE001 - a broken orientation tag: keep as stored
        pass
    im = _to_srgb_rgb(im)
    rgb = np.array(im, dtype=np.uint8)  # a copy: only pixels go on from here
    del im
    rgb = resize_long_side(rgb, LONG_SIDE)
    boxes = detect_faces(rgb)
    blur_faces(rgb, boxes)
    jpeg = _encode(rgb)
    return SafePhoto(jpeg=jpeg, sha256=hashlib.sha256(jpeg).hexdigest(), gps=gps,
                     faces=len(boxes), width=rgb.shape[1], height=rgb.shape[0])


def process_file(path) -> SafePhoto:
    """``process`` the file at ``path``, then delete it, accepted or not."""
    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
        if size > MAX_BYTES:  # do not read 2 GB to say it is too big
            raise _too_large(size)
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
        return process(data)
    finally:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
