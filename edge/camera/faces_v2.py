"""Face boxes for the photo pipeline: MediaPipe's BlazeFace (short range) run on
overlapping tiles by OpenCV, each find confirmed by a second look at the right scale.

``detect_faces(image_bgr)`` returns ``[(x, y, w, h), ...]`` in the image's pixels and
raises :class:`FaceDetectorUnavailable` when the model cannot be loaded, so that the
pipeline refuses the photo rather than send it unblurred.

Why this detector (bench/bench_faces.py; bench/README.md has the table): on 384 faces
24-390 px wide in 1600 x 1200 photos (masked, rolled, turned; three real identities
composited, bench/faces/make_set.py) it blurs 0.997 of the faces of 24 px or more (0.99
of those of 24-35 px), against 0.047 for the Haar pass on a 400 px copy it replaces,
0.64 for Haar frontal + alt2 + profile at full resolution (3-4 s a photo) and 0.25-0.53
for dlib's HOG; it blurs 1.1 % of a face-free photo on average (worst 10.8 %). A 12 MP
photo takes 174-190 ms through the pipeline on the 2-core bench VM (Haar: 112 ms), 298 ms
on one core. Haar misses masked and rolled faces and costs seconds at full resolution;
YuNet ships in no package.

How: BlazeFace sees 128 x 128 pixels and finds faces from about 12 % of its input up,
so a face of 24 px needs a tile of at most 200 px. Pass 1 runs the model on the whole
image, on 600 px tiles and on 200 px tiles every 175 px (1 + 9 + 64 runs for 1600 x
1200) and keeps every find scoring FIND or more; pass 2 crops a square of three face
widths around each find and keeps it when the model, looking again, scores a face
there at CONFIRM or more. Images larger than WORK_SIDE are searched on a copy of that
size. The tiles are shared between THREADS threads, each with its own network.

The model file (edge/camera/models/blazeface_short_range.tflite, 229 kB, Apache-2.0,
see the README there) is read with ``cv2.dnn.readNetFromTFLite``: nothing beyond
opencv-python-headless is needed, on x86_64 or on a Pi's aarch64. Nothing is
downloaded, ever.
"""

from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

MODEL = Path(__file__).resolve().parent / "models" / "blazeface_short_range.tflite"
MODEL_SHA256 = "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633"
INPUT = 128              # the model's input side
TILE, STEP = 200, 175    # pass 1 tiles: a 24 px face is 15 px in the model's input
MID_TILE, MID_STEP = 600, 500  # and 9 larger ones for faces of 100-250 px
FIND = 0.3               # pass 1 score to look again
CONFIRM = 0.6            # pass 2 score to blur
CONTEXT = 3.0            # pass 2 crop side, in face widths
NMS_IOU = 0.3
WORK_SIDE = 1600         # larger images are searched on a copy this size
# Tiles are shared between this many threads (cv2.dnn lets go of the GIL): both cores
# of the VM the bench runs on, the four of a Pi 4.
THREADS = max(1, min(4, os.cpu_count() or 1))


class FaceDetectorUnavailable(RuntimeError):
    """The face model cannot be loaded: no photo may leave the node unblurred."""


def _anchors() -> np.ndarray:
    """MediaPipe's SSD anchors for this model: centres of a 16 x 16 grid (2 anchors a
    cell) and an 8 x 8 grid (6 a cell), in [0, 1]; all of size 1."""
    out = []
    for grid, per_cell in ((16, 2), (8, 6)):
        ys, xs = np.mgrid[0:grid, 0:grid]
        centres = np.stack([(xs + 0.5) / grid, (ys + 0.5) / grid], -1).reshape(-1, 1, 2)
        out.append(np.repeat(centres, per_cell, axis=1).reshape(-1, 2))
    return np.concatenate(out).astype(np.float32)


_ANCHORS = _anchors()
_local = threading.local()
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _net():
    """This thread's network (a cv2.dnn.Net is not shared between threads)."""
    net = getattr(_local, "net", None)
    if net is None:
        try:
            blob = MODEL.read_bytes()
        except OSError as exc:
            raise FaceDetectorUnavailable(f"face model {MODEL} cannot be read: {exc}") from exc
        if hashlib.sha256(blob).hexdigest() != MODEL_SHA256:
            raise FaceDetectorUnavailable(f"face model {MODEL} is not the expected file")
        try:
            net = cv2.dnn.readNetFromTFLite(str(MODEL))
            names = net.getUnconnectedOutLayersNames()
            net.setInput(np.zeros((1, 3, INPUT, INPUT), np.float32))
            outs = dict(zip(names, net.forward(names)))
            shapes = {k: v.shape for k, v in outs.items()}
        except (cv2.error, AttributeError) as exc:
            raise FaceDetectorUnavailable(f"OpenCV cannot run the face model: {exc}") from exc
        if shapes != {"regressors": (1, 896, 16), "classificators": (1, 896, 1)}:
            raise FaceDetectorUnavailable(f"face model gives unexpected outputs {shapes}")
        _local.net = net = (net, names)
    return net


def _run(rgb: np.ndarray, x0: int, y0: int, side: int, threshold: float) -> list[tuple]:
    """The model on the square (x0, y0, side) of ``rgb`` (zeros outside the image):
    [(x, y, w, h, score)] in ``rgb``'s pixels, score >= threshold."""
    net, names = _net()
    height, width = rgb.shape[:2]
    ix0, iy0 = max(0, x0), max(0, y0)
    ix1, iy1 = min(width, x0 + side), min(height, y0 + side)
    crop = rgb[iy0:iy1, ix0:ix1]
    interpolation = cv2.INTER_AREA if side > INPUT else cv2.INTER_LINEAR
    if crop.shape[:2] == (side, side):
        small = cv2.resize(crop, (INPUT, INPUT), interpolation=interpolation)
    else:  # part of the square is outside the image: scale what is inside, pad with 0
        small = np.zeros((INPUT, INPUT, 3), np.uint8)
        k = INPUT / side
        px0, py0 = round((ix0 - x0) * k), round((iy0 - y0) * k)
        pw = max(1, min(INPUT - px0, round((ix1 - ix0) * k)))
        ph = max(1, min(INPUT - py0, round((iy1 - iy0) * k)))
        small[py0:py0 + ph, px0:px0 + pw] = cv2.resize(crop, (pw, ph),
                                                       interpolation=interpolation)
    net.setInput(cv2.dnn.blobFromImage(small, 1 / 127.5, mean=(127.5, 127.5, 127.5)))
    outs = dict(zip(names, net.forward(names)))
    logits = outs["classificators"].reshape(-1)
    keep = np.nonzero(logits >= np.log(threshold / (1 - threshold)))[0]
    if not len(keep):
        return []
    reg = outs["regressors"].reshape(-1, 16)[keep]
    scores = 1 / (1 + np.exp(-logits[keep]))
    cx = (reg[:, 0] / INPUT + _ANCHORS[keep, 0]) * side + x0
    cy = (reg[:, 1] / INPUT + _ANCHORS[keep, 1]) * side + y0
    w, h = reg[:, 2] / INPUT * side, reg[:, 3] / INPUT * side
    return [(float(a - c / 2), float(b - d / 2), float(c), float(d), float(s))
            for a, b, c, d, s in zip(cx, cy, w, h, scores) if c > 0 and d > 0]


def _nms(dets: list[tuple]) -> list[tuple]:
    if not dets:
        return []
    keep = cv2.dnn.NMSBoxes([[int(x), int(y), int(w), int(h)] for x, y, w, h, _ in dets],
                            [d[4] for d in dets], 0.0, NMS_IOU)
    return [dets[i] for i in np.asarray(keep).reshape(-1)]


def _grid(width: int, height: int, tile: int, step: int) -> list[tuple[int, int, int]]:
    xs = sorted({*range(0, max(1, width - tile), step), max(0, width - tile)})
    ys = sorted({*range(0, max(1, height - tile), step), max(0, height - tile)})
    return [(x, y, tile) for y in ys for x in xs]


def _squares(width: int, height: int) -> list[tuple[int, int, int]]:
    """The whole image (letterboxed) and every tile, as (x0, y0, side)."""
    return ([(0, 0, max(width, height))] + _grid(width, height, MID_TILE, MID_STEP)
            + _grid(width, height, TILE, STEP))


def _confirm(rgb: np.ndarray, det: tuple) -> tuple | None:
    """Look again at a find, centred, at a scale the model sees best."""
    x, y, w, h, _ = det
    side = max(8, int(CONTEXT * max(w, h)))
    cx, cy = x + w / 2, y + h / 2
    again = [d for d in _run(rgb, int(cx - side / 2), int(cy - side / 2), side, CONFIRM)
             if abs(d[0] + d[2] / 2 - cx) < w / 2 and abs(d[1] + d[3] / 2 - cy) < h / 2]
    return max(again, key=lambda d: d[4]) if again else None


def _map(rgb: np.ndarray, fn, items: list) -> list:
    """``fn(rgb, item)`` for every item, shared between THREADS threads."""
    global _pool
    if THREADS <= 1 or len(items) < 2:
        return [fn(rgb, item) for item in items]
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(THREADS - 1, thread_name_prefix="faces")
    parts = [items[i::THREADS] for i in range(THREADS)]
    others = [_pool.submit(lambda part=part: [fn(rgb, item) for item in part])
              for part in parts[1:]]
    results = [fn(rgb, item) for item in parts[0]]
    for other in others:
        results += other.result()
    return results


def detect_faces(image_bgr: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Face boxes (x, y, w, h) in ``image_bgr``'s pixels (a BGR or grey uint8 array).
    Raises FaceDetectorUnavailable when the model cannot be loaded."""
    _net()  # fail before any work, and load it on the calling thread
    if image_bgr.ndim == 2:
        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_GRAY2RGB)
    else:
        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
    height, width = rgb.shape[:2]
    scale = min(1.0, WORK_SIDE / max(height, width))
    if scale < 1.0:
        rgb = cv2.resize(rgb, (round(width * scale), round(height * scale)),
                         interpolation=cv2.INTER_AREA)
    found = _map(rgb, lambda im, sq: _run(im, *sq, FIND), _squares(rgb.shape[1], rgb.shape[0]))
    finds = _nms([d for part in found for d in part])
    faces = _nms([d for d in _map(rgb, _confirm, finds) if d is not None])
    return [(int(round(x / scale)), int(round(y / scale)), int(round(w / scale)),
             int(round(h / scale))) for x, y, w, h, _ in faces]
