"""The node's photo pipeline on a real photo with a face (scikit-image's astronaut):
faces blurred, the rest untouched, every metadata block gone, orientation applied,
and every refusal with its 4xx. No mocks: real JPEG/PNG files, real decoders."""

import hashlib
import io

import cv2
import numpy as np
import piexif
import pytest
from PIL import Image, ImageCms, ImageOps
from skimage import data

from edge.camera import faces_v2, pipeline
from edge.camera.pipeline import (LONG_SIDE, MAX_BYTES, PhotoRejected, detect_faces, grow_box,
                                  process, process_file)
from tests.faceproof import assert_faces_gone

LAT = 31 + 13 / 60 + 45.12 / 3600     # 31°13'45.12" N
LON = 121 + 28 / 60 + 30.0 / 3600     # 121°28'30.00" E
XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/'
       b'02/22-rdf-syntax-ns#"><rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/">'
       b'<dc:creator>Dr. Secret Name</dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>')


def upright_photo() -> Image.Image:
    """The astronaut with a red band on its right, upscaled to 2500 x 2000: a real
    face, and a landscape frame whose orientation can be told at a glance."""
    face = data.astronaut()                                   # 512 x 512, RGB
    band = np.zeros((512, 128, 3), np.uint8)
    band[..., 0] = 220
    return Image.fromarray(np.hstack([face, band])).resize((2500, 2000), Image.BICUBIC)


def gps_ifd(lat_ref=b"N", lon_ref=b"E"):
    return {piexif.GPSIFD.GPSLatitudeRef: lat_ref,
            piexif.GPSIFD.GPSLatitude: ((31, 1), (13, 1), (4512, 100)),
            piexif.GPSIFD.GPSLongitudeRef: lon_ref,
            piexif.GPSIFD.GPSLongitude: ((121, 1), (28, 1), (3000, 100))}


def tagged_jpeg(upright: Image.Image, **gps) -> bytes:
    """Stored rotated 90° counter-clockwise with Orientation=6 (display: rotate 90°
    clockwise), plus EXIF with GPS and maker data, an ICC profile, XMP and a comment."""
    stored = upright.rotate(90, expand=True)
    exif = piexif.dump({
        "0th": {piexif.ImageIFD.Orientation: 6, piexif.ImageIFD.Make: b"TestCam",
                piexif.ImageIFD.Artist: b"Dr. Secret Name"},
        "Exif": {piexif.ExifIFD.DateTimeOriginal: b"2025:03:03 08:00:00",
                 piexif.ExifIFD.MakerNote: b"maker-secret"},
        "GPS": gps_ifd(**gps)})
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    out = io.BytesIO()
    stored.save(out, "JPEG", quality=92, exif=exif, icc_profile=icc, xmp=XMP,
                comment=b"patient in bed 12")
    return out.getvalue()


def reference(upright: Image.Image, size) -> np.ndarray:
    """What the pipeline's pixels should be before faces are blurred."""
    rgb = cv2.resize(np.asarray(upright), size, interpolation=cv2.INTER_AREA)
    return rgb.astype(np.int16)


def jpeg_bytes(im: Image.Image, **kw) -> bytes:
    out = io.BytesIO()
    im.save(out, "JPEG", **kw)
    return out.getvalue()


@pytest.fixture(scope="module")
def upright():
    return upright_photo()


@pytest.fixture(scope="module")
def original(upright):
    return tagged_jpeg(upright)


@pytest.fixture(scope="module")
def safe(original):
    return process(original)


def test_input_really_carries_everything_we_strip(original):
    for marker in (b"Exif", b"http://ns.adobe.com/xap", b"ICC_PROFILE", b"Dr. Secret Name",
                   b"patient in bed 12", b"maker-secret"):
        assert marker in original
    assert piexif.load(original)["GPS"]


def test_faces_found_before_and_gone_after(upright, safe):
    ref = reference(upright, (safe.width, safe.height)).astype(np.uint8)
    before = detect_faces(ref)
    assert before, "the detector must find the astronaut's face in the input"
    assert safe.faces >= 1
    out = np.asarray(Image.open(io.BytesIO(safe.jpeg)).convert("RGB"))
    regions = [grow_box(b, safe.width, safe.height) for b in before]
    assert_faces_gone(ref, out, regions, detect_faces(out))


def test_pixels_outside_face_boxes_nearly_unchanged(upright, safe):
    ref = reference(upright, (safe.width, safe.height))
    out = np.asarray(Image.open(io.BytesIO(safe.jpeg)).convert("RGB"), dtype=np.int16)
    assert out.shape == ref.shape
    boxes = detect_faces(ref.astype(np.uint8))
    assert boxes
    outside = np.ones(out.shape[:2], bool)
    for box in boxes:
        x0, y0, x1, y1 = grow_box(box, safe.width, safe.height)
        # 8 px more: a JPEG block straddling the edge of the blurred region
        outside[max(0, y0 - 8):y1 + 8, max(0, x0 - 8):x1 + 8] = False
        inside = np.abs(out[y0:y1, x0:x1] - ref[y0:y1, x0:x1]).mean()
        assert inside > 8, f"face region barely changed (mean abs diff {inside:.1f})"
    assert outside.mean() > 0.7
    diff = np.abs(out - ref)[outside]
    assert diff.mean() < 2.0, diff.mean()
    assert np.percentile(diff, 99) < 12


def test_no_metadata_left(safe):
    jpeg = safe.jpeg
    for marker in (b"Exif", b"http://ns.adobe.com/xap", b"ICC_PROFILE", b"Dr. Secret Name",
                   b"patient in bed 12", b"maker-secret", b"TestCam", b"Photoshop"):
        assert marker not in jpeg, marker
    im = Image.open(io.BytesIO(jpeg))
    assert not {"exif", "icc_profile", "xmp", "XML:com.adobe.xmp", "comment", "photoshop",
                "mp", "mpoffset"} & set(im.info), im.info
    assert len(im.getexif()) == 0
    assert im.getexif().get_ifd(0x8825) == {}
    try:
        loaded = piexif.load(jpeg)
    except Exception:  # noqa: BLE001 - "no EXIF at all" is a pass too
        return
    assert not any(loaded[k] for k in ("0th", "Exif", "GPS", "Interop", "1st"))
    assert loaded.get("thumbnail") is None


def test_orientation_applied(upright, safe):
    # stored portrait (2000 x 2500) with Orientation=6; shown landscape
    assert (safe.width, safe.height) == (1600, 1280)
    out = np.asarray(Image.open(io.BytesIO(safe.jpeg)).convert("RGB"), dtype=np.int16)
    band = out[:, -150:]                       # the red band is on the right, upright
    assert band[..., 0].mean() > 200 and band[..., 1:].mean() < 20
    assert out[:, :150, 0].mean() < 150         # and not on the left
    ref = reference(upright, (1600, 1280))
    assert np.abs(out - ref).mean() < 5  # blurred faces differ; a turned frame by ~50


def test_long_side_sha_and_gps(safe):
    assert max(safe.width, safe.height) <= LONG_SIDE
    assert Image.open(io.BytesIO(safe.jpeg)).size == (safe.width, safe.height)
    assert Image.open(io.BytesIO(safe.jpeg)).format == "JPEG"
    assert safe.sha256 == hashlib.sha256(safe.jpeg).hexdigest()
    assert safe.gps is not None
    assert safe.gps == pytest.approx((LAT, LON), abs=1e-6)


def test_gps_south_west_is_negative_and_absent_gps_is_none(upright):
    small = upright.resize((500, 400))
    exif = piexif.dump({"GPS": gps_ifd(lat_ref=b"S", lon_ref=b"W")})
    photo = process(jpeg_bytes(small, exif=exif))
    assert photo.gps == pytest.approx((-LAT, -LON), abs=1e-6)
    assert process(jpeg_bytes(small)).gps is None
    assert (photo.width, photo.height) == (500, 400)     # never upscaled


def test_other_formats_and_modes_come_out_as_rgb_jpeg(upright):
    small = upright.resize((400, 320))
    rgba = small.convert("RGBA")
    rgba.putalpha(128)
    for im, fmt in ((rgba, "PNG"), (small.convert("P"), "GIF"), (small, "WEBP"),
                    (small.convert("L"), "BMP")):
        out = io.BytesIO()
        im.save(out, fmt)
        photo = process(out.getvalue())
        back = Image.open(io.BytesIO(photo.jpeg))
        assert back.format == "JPEG" and back.mode == "RGB" and back.size == (400, 320), fmt


def test_big_jpeg_is_reduced_while_decoding_and_kept_under_the_packet_limit():
    noise = np.random.default_rng(1).integers(0, 256, (3000, 4000, 3), dtype=np.uint8)
    photo = process(jpeg_bytes(Image.fromarray(noise), quality=95))
    assert (photo.width, photo.height) == (1600, 1200)
    assert len(photo.jpeg) <= pipeline.MAX_JPEG_BYTES     # pure noise: needs a lower quality


# --- refusals ---

def assert_rejected(data, status):
    with pytest.raises(PhotoRejected) as info:
        process(data)
    assert info.value.status == status
    assert info.value.reason and info.value.reason[0].isupper() and info.value.reason.endswith(".")
    return info.value


def test_not_an_image_is_400(tmp_path):
    rejected = assert_rejected(b"<html>this is not a photo</html>", 400)
    assert "not a photo" in rejected.reason
    assert_rejected(b"", 400)
    # a TIFF is a real image, but not a format phones upload: refused by content
    out = io.BytesIO()
    Image.new("RGB", (10, 10)).save(out, "TIFF")
    assert_rejected(out.getvalue(), 400)


def test_truncated_jpeg_is_400(upright):
    whole = jpeg_bytes(upright.resize((800, 640)), quality=90)
    assert "incomplete" in assert_rejected(whole[: len(whole) // 2], 400).reason
    assert_rejected(whole[:600], 400)


def test_truncated_png_is_400(upright):
    out = io.BytesIO()
    upright.resize((800, 640)).save(out, "PNG")
    assert "incomplete" in assert_rejected(out.getvalue()[: len(out.getvalue()) // 2],
                                           400).reason


def test_too_many_bytes_is_413():
    rejected = assert_rejected(b"\xff\xd8\xff\xe0" + b"\0" * MAX_BYTES, 413)
    assert "20 MB" in rejected.reason


@pytest.mark.parametrize("side", [10_000, 15_000])
def test_decompression_bomb_is_422(side):
    # 100 / 225 megapixels in a few kB (1-bit, all zero); 15000² is over Pillow's
    # own hard limit (DecompressionBombError), 10000² only over ours
    out = io.BytesIO()
    Image.new("1", (side, side)).save(out, "PNG")
    bomb = out.getvalue()
    assert len(bomb) < 100_000
    rejected = assert_rejected(bomb, 422)
    assert "megapixels" in rejected.reason


def test_jpeg_over_50_megapixels_is_422():
    out = io.BytesIO()
    Image.new("L", (8000, 6400), 128).save(out, "JPEG", quality=50)   # 51.2 MP
    assert_rejected(out.getvalue(), 422)


def test_process_file_deletes_the_original_accepted_or_not(tmp_path, original):
    good = tmp_path / "IMG_0001.jpg"
    good.write_bytes(original)
    photo = process_file(good)
    assert photo.faces >= 1 and not good.exists()

    cases = [(b"GIF89a but not really", 400),
             (original[: len(original) // 3], 400),
             (b"\xff\xd8" + b"\0" * (MAX_BYTES + 10), 413)]
    out = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(out, "PNG")
    cases.append((out.getvalue(), 422))
    for i, (content, status) in enumerate(cases):
        path = tmp_path / f"upload-{i}.jpg"
        path.write_bytes(content)
        with pytest.raises(PhotoRejected) as info:
            process_file(path)
        assert info.value.status == status
        assert not path.exists(), f"case {i} left the original behind"


def test_exif_transpose_reference_matches_manual_rotation(upright, original):
    # the test's own assumption: Orientation=6 on the stored image shows it upright
    shown = ImageOps.exif_transpose(Image.open(io.BytesIO(original)))
    assert shown.size == upright.size


def _cells(region: np.ndarray) -> np.ndarray:
    rh, rw = region.shape[:2]
    cell = max(2, max(rw, rh) // pipeline.PIXEL_CELLS)
    return cv2.resize(region.astype(np.float32), (max(1, rw // cell), max(1, rh // cell)),
                      interpolation=cv2.INTER_AREA)


def test_the_blur_keeps_no_detail_and_not_even_the_faces_averages(upright, original):
    """Irreversible (issue 13): nothing finer than a cell is left in a face, and the
    cells' colours carry fresh noise, so two runs on one photo differ there and only
    there, and neither gives back the face's own cell averages."""
    first, second = process(original), process(original)
    ref = reference(upright, (first.width, first.height))
    a, b = (np.asarray(Image.open(io.BytesIO(p.jpeg)).convert("RGB"), dtype=np.int16)
            for p in (first, second))
    boxes = detect_faces(ref.astype(np.uint8))
    box = max(boxes, key=lambda b: b[2] * b[3])  # the astronaut's face
    x0, y0, x1, y1 = grow_box(box, first.width, first.height)
    face_ref, face_a, face_b = (m[y0:y1, x0:x1] for m in (ref, a, b))
    # detail: the fine structure (image less its 3 px Gaussian) of the face is gone,
    # while the same measure below the face finds the photo's own
    def detail_kept(out, y_a, y_b):
        def fine(m):
            g = cv2.cvtColor(m.astype(np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float64)
            return (g - cv2.GaussianBlur(g, (0, 0), 3)).ravel()
        return np.corrcoef(fine(ref[y_a:y_b, x0:x1]), fine(out[y_a:y_b, x0:x1]))[0, 1]
    assert abs(detail_kept(a, y0, y1)) < 0.1
    assert detail_kept(a, y1 + 20, y1 + 300) > 0.8
    # noise: the cell colours differ from the face's averages and between runs
    assert np.abs(_cells(face_a) - _cells(face_ref)).mean() > 5
    assert np.abs(_cells(face_a) - _cells(face_b)).mean() > 5
    outside = np.ones(a.shape[:2], bool)
    for other in boxes:
        u0, v0, u1, v1 = grow_box(other, first.width, first.height)
        # 16 px more: the JPEG's 16 px colour blocks straddling the region's edge
        outside[max(0, v0 - 16):v1 + 16, max(0, u0 - 16):u1 + 16] = False
    assert np.array_equal(a[outside], b[outside])


@pytest.mark.parametrize("broken", ["missing", "altered"])
def test_a_photo_is_refused_when_the_face_detector_cannot_run(original, tmp_path, monkeypatch,
                                                             broken):
    """Fail safe (issue 13): never a photo passed on unblurred."""
    model = tmp_path / "blazeface.tflite"
    if broken == "altered":
        model.write_bytes(faces_v2.MODEL.read_bytes()[:-1] + b"\0")
    monkeypatch.setattr(faces_v2, "_local", type(faces_v2._local)())  # no loaded network
    monkeypatch.setattr(faces_v2, "MODEL", model)
    with pytest.raises(PhotoRejected) as refused:
        process(original)
    assert refused.value.status == 503
    assert "cannot blur faces" in refused.value.reason
