"""The node pipeline's face detector until December 2026, kept as the peer that
bench_faces.py measures the chosen one (edge/camera/faces_v2.py) against: Haar
frontal_default + profile (plain and mirrored) on a grayscale copy whose long side
is 400 px, minNeighbors 5 / 4. It found 0.047 of the bench set's faces and 36 of the
43 in the issue's unseen set; the pipeline no longer uses it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

DETECT_SIDE = 400
MIN_FACE = 24
FRONTAL_SCALE, PROFILE_SCALE = 1.2, 1.25
FRONTAL_NEIGHBORS, PROFILE_NEIGHBORS = 5, 4

_cascades: tuple | None = None


def _load():
    global _cascades
    if _cascades is None:
        base = Path(cv2.data.haarcascades)
        _cascades = tuple(cv2.CascadeClassifier(str(base / name)) for name in
                          ("haarcascade_frontalface_default.xml", "haarcascade_profileface.xml"))
    return _cascades


def merge(boxes: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """One box per face: frontal and profile cascades often both find the same one."""
    kept: list[tuple[int, int, int, int]] = []
    for x, y, w, h in sorted(boxes, key=lambda b: -b[2] * b[3]):
        for kx, ky, kw, kh in kept:
            ix = max(0, min(x + w, kx + kw) - max(x, kx))
            iy = max(0, min(y + h, ky + kh) - max(y, ky))
            if ix * iy > 0.4 * min(w * h, kw * kh):
                break
        else:
            kept.append((x, y, w, h))
    return kept


def detect_faces(bgr: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Face boxes (x, y, w, h) in ``bgr``'s pixels."""
    frontal, profile = _load()
    h, w = bgr.shape[:2]
    scale = min(1.0, DETECT_SIDE / max(h, w))
    small = bgr if scale == 1.0 else cv2.resize(
        bgr, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    gray = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))
    sw = gray.shape[1]
    minsize = (MIN_FACE, MIN_FACE)
    found = list(frontal.detectMultiScale(gray, FRONTAL_SCALE, FRONTAL_NEIGHBORS,
                                          minSize=minsize))
    found += list(profile.detectMultiScale(gray, PROFILE_SCALE, PROFILE_NEIGHBORS,
                                           minSize=minsize))
    found += [(sw - x - bw, y, bw, bh) for x, y, bw, bh in
              profile.detectMultiScale(cv2.flip(gray, 1), PROFILE_SCALE, PROFILE_NEIGHBORS,
                                       minSize=minsize)]
    inv = 1.0 / scale
    return merge([(int(x * inv), int(y * inv), int(round(bw * inv)), int(round(bh * inv)))
                  for x, y, bw, bh in found])
