"""edge/camera/faces_v2.py: finds real faces, small ones too, in full-image pixels;
blurs nothing on a plain image; refuses to work without its model."""

import cv2
import numpy as np
import pytest
from skimage import data

from edge.camera import faces_v2

# The astronaut's face in skimage's 512 x 512 photo (bench/faces/make_set.py).
FACE = (183, 78, 83, 90)


def _bgr(rgb):
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def _covers(box, face, share=0.5) -> bool:
    """The box takes in at least ``share`` of the face (BlazeFace's box is a little
    tighter than ours, and the pipeline grows it before blurring)."""
    x, y, w, h = box
    fx, fy, fw, fh = face
    ix = max(0, min(x + w, fx + fw) - max(x, fx))
    iy = max(0, min(y + h, fy + fh) - max(y, fy))
    return ix * iy >= share * fw * fh


def test_finds_the_astronaut_in_full_image_coordinates():
    big = cv2.resize(data.astronaut(), (1536, 1536), interpolation=cv2.INTER_CUBIC)
    boxes = faces_v2.detect_faces(_bgr(big))
    face = tuple(v * 3 for v in FACE)
    assert any(_covers(b, face) for b in boxes), boxes


def test_finds_a_face_30_px_wide_in_a_1600_px_photo():
    scene = np.full((1200, 1600, 3), 200, np.uint8)
    x, y, w, h = FACE
    head = data.astronaut()[y - 40:y + h + 30, x - 30:x + w + 30]
    k = 30 / w
    small = cv2.resize(head, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    scene[700:700 + small.shape[0], 1100:1100 + small.shape[1]] = small
    boxes = faces_v2.detect_faces(_bgr(scene))
    face = (1100 + round(30 * k), 700 + round(40 * k), 30, round(h * k))
    assert any(_covers(b, face) for b in boxes), boxes


def test_nothing_on_a_plain_image_and_grey_input_works():
    assert faces_v2.detect_faces(np.full((900, 1200, 3), 128, np.uint8)) == []
    assert faces_v2.detect_faces(np.full((300, 400), 90, np.uint8)) == []


def test_a_missing_or_altered_model_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(faces_v2, "_local", type(faces_v2._local)())
    monkeypatch.setattr(faces_v2, "MODEL", tmp_path / "absent.tflite")
    with pytest.raises(faces_v2.FaceDetectorUnavailable):
        faces_v2.detect_faces(np.zeros((100, 100, 3), np.uint8))
    altered = tmp_path / "altered.tflite"
    altered.write_bytes(faces_v2.MODEL_SHA256.encode())
    monkeypatch.setattr(faces_v2, "MODEL", altered)
    with pytest.raises(faces_v2.FaceDetectorUnavailable):
        faces_v2.detect_faces(np.zeros((100, 100, 3), np.uint8))
