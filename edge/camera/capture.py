"""The node camera: one frame through OpenCV's ``VideoCapture``.

``source`` is a device index (the node's camera, ``0`` for /dev/video0) or a path
to a video or image file, which stands in for a camera in tests: both go through
the same ``cv2.VideoCapture`` code path. The frame comes back as JPEG bytes, to be
fed to ``pipeline.process`` like any uploaded photo.
"""

from __future__ import annotations

import os

import cv2

CAPTURE_QUALITY = 95  # the pipeline re-encodes at 85; keep this step near-lossless


class CaptureError(RuntimeError):
    """The camera (or file) could not be opened or gave no frame."""


def _source(source):
    """A device index stays an int (also when given as "0" on the command line);
    anything else is a path."""
    if isinstance(source, int):
        return source
    text = os.fspath(source)
    return int(text) if text.isdigit() else text


def capture_frame(source, warmup: int = 0) -> bytes:
    """One frame from ``source`` as JPEG bytes. ``warmup`` frames are read and
    dropped first (a webcam's first frames are dark while exposure settles); if
    the source ends during warm-up, the last frame read is used."""
    src = _source(source)
    if isinstance(src, str) and not os.path.exists(src):
        raise CaptureError(f"cannot open camera source {src!r}: no such file")
    cap = cv2.VideoCapture(src)
    try:
        if not cap.isOpened():
            what = f"camera {src} (/dev/video{src})" if isinstance(src, int) else repr(src)
            raise CaptureError(f"cannot open {what}: is the camera connected, and may this "
                               "user read it (group 'video')?" if isinstance(src, int) else
                               f"cannot open {what} as a video or image")
        frame = None
        for _ in range(max(0, warmup) + 1):
            ok, got = cap.read()
            if not ok or got is None:
                break
            frame = got
    finally:
        cap.release()
    if frame is None or frame.size == 0:
        raise CaptureError(f"camera source {src!r} opened but gave no frame")
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, CAPTURE_QUALITY])
    if not ok:
        raise CaptureError("could not encode the captured frame as JPEG")
    return buf.tobytes()
