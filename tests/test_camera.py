"""The node camera: a video file (and an image file) stand in for the camera on the
same ``cv2.VideoCapture`` code path, and every frame goes through the pipeline."""

import hashlib
import io
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from skimage import data

from edge.camera.capture import CaptureError, capture_frame
from edge.camera.pipeline import detect_faces, grow_box, process
from edge.cli import main as edge_main
from tests.faceproof import assert_faces_gone


def frame_bgr() -> np.ndarray:
    """A 1280 x 960 frame with the astronaut's face in it (BGR, as OpenCV has it)."""
    face = cv2.resize(data.astronaut(), (960, 960), interpolation=cv2.INTER_CUBIC)
    canvas = np.full((960, 1280, 3), 90, np.uint8)
    canvas[:, 160:1120] = face
    return cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cam") / "camera.avi"
    frame = frame_bgr()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10,
                             (frame.shape[1], frame.shape[0]))
    assert writer.isOpened()
    for i in range(6):
        shifted = frame.copy()
        shifted[:8, :] = 40 * i          # frames differ a little
        writer.write(shifted)
    writer.release()
    assert path.stat().st_size > 10_000
    return path


def test_capture_from_video_file_through_the_pipeline(video):
    jpeg = capture_frame(video)
    frame = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))
    assert frame.shape == (960, 1280, 3)
    before = detect_faces(frame)
    assert before, "the captured frame shows a face"
    photo = process(jpeg)
    assert photo.faces >= 1
    assert (photo.width, photo.height) == (1280, 960)
    out = np.asarray(Image.open(io.BytesIO(photo.jpeg)).convert("RGB"))
    assert_faces_gone(frame, out, [grow_box(b, 1280, 960) for b in before], detect_faces(out))


def test_warmup_skips_frames_and_survives_a_short_source(video):
    first = np.asarray(Image.open(io.BytesIO(capture_frame(video))))
    later = np.asarray(Image.open(io.BytesIO(capture_frame(str(video), warmup=3))))
    assert first[:8].mean() < later[:8].mean()            # frame 3 has the brighter strip
    capture_frame(video, warmup=50)                       # only 6 frames: uses the last


def test_image_file_stands_in_for_a_camera(tmp_path):
    path = tmp_path / "still.jpg"
    cv2.imwrite(str(path), frame_bgr())
    photo = process(capture_frame(path))
    assert photo.faces >= 1


def test_unopenable_sources_are_clear_errors(tmp_path):
    with pytest.raises(CaptureError, match="no such file"):
        capture_frame(tmp_path / "missing.avi")
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(CaptureError, match="cannot open|no frame"):
        capture_frame(junk)
    with pytest.raises(CaptureError, match="camera 97"):
        capture_frame(97)                                 # no /dev/video97 here
    with pytest.raises(CaptureError, match="camera 97"):
        capture_frame("97")                               # as given on the command line


def test_snap_cli_end_to_end(video, tmp_path):
    out = tmp_path / "photos"
    result = CliRunner().invoke(edge_main, ["snap", "--source", str(video), "--out", str(out),
                                            "--zone", "ward-3"])
    assert result.exit_code == 0, result.output
    sha, faces, zone, path = result.output.split()
    assert faces.startswith("faces=") and int(faces[6:]) >= 1
    assert zone == "zone=ward-3"
    written = Path(path)
    assert written == out / f"{sha}.jpg" and written.exists()
    assert [p.name for p in out.iterdir()] == [f"{sha}.jpg"]
    assert hashlib.sha256(written.read_bytes()).hexdigest() == sha
    assert b"Exif" not in written.read_bytes()


def test_snap_cli_console_script_and_errors(video, tmp_path):
    script = Path(sys.executable).with_name("rounds-edge")
    done = subprocess.run([str(script), "snap", "--source", str(video), "--out",
                           str(tmp_path / "o")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "zone=-" in done.stdout
    bad = subprocess.run([str(script), "snap", "--source", str(tmp_path / "nope.avi"), "--out",
                          str(tmp_path / "o")], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert "no such file" in bad.stderr
