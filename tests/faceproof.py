"""What "the face is gone" means in a test, for photos out of the node pipeline.

Asking the node's own detector whether a face is left is not the proof: BlazeFace
reads context (hair, collar, the shape of a head on shoulders), and now and then
(a few photos in a hundred, with the fresh noise) it finds the head in a blurred
mosaic, where nothing that identifies the person is left. So a face is gone when:

- every box the detector finds afterwards is about a region that was blurred:
  its centre lies in the region, or the region's centre lies in the box (at a
  larger scale it may frame the blurred head with its shoulders, a box whose
  centre is below the region: 1 photo in 100). A face the pipeline missed has
  no blurred region there at all;
- inside every blurred region the photo's fine structure is gone (it does not
  correlate with the original's), and
- OpenCV's Haar cascades, which find faces by their eyes, nose and mouth, find
  the face in the original and nothing in the blurred region.
"""

import cv2
import numpy as np

# Fine structure is measured at a 3 px scale: in a smaller region the mosaic's cells
# are a few pixels wide themselves, and the measure says nothing.
MEASURED_SIDE = 96
_CASCADES = ("haarcascade_frontalface_default.xml", "haarcascade_frontalface_alt2.xml")


def haar_faces(rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Frontal faces by feature (eyes, nose, mouth), both cascades, 3 neighbours."""
    gray = cv2.equalizeHist(cv2.cvtColor(rgb.astype(np.uint8), cv2.COLOR_RGB2GRAY))
    found = []
    for name in _CASCADES:
        cascade = cv2.CascadeClassifier(cv2.data.haarcascades + name)
        found += [tuple(int(v) for v in box)
                  for box in cascade.detectMultiScale(gray, 1.1, 3, minSize=(24, 24))]
    return found


def inside(box, region, slack: int = 0) -> bool:
    """Whether the centre of ``box`` (x, y, w, h) lies in ``region`` (x0, y0, x1, y1)."""
    x, y, w, h = box
    x0, y0, x1, y1 = region
    cx, cy = x + w / 2, y + h / 2
    return x0 - slack <= cx <= x1 + slack and y0 - slack <= cy <= y1 + slack


def about(box, region) -> bool:
    """Whether ``box`` (x, y, w, h) is about ``region`` (x0, y0, x1, y1): the
    box's centre in the region, or the region's centre in the box."""
    x, y, w, h = box
    x0, y0, x1, y1 = region
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return inside(box, region) or (x <= cx <= x + w and y <= cy <= y + h)


def fine_structure_kept(ref: np.ndarray, out: np.ndarray, region) -> float:
    """Correlation of the fine structure (image less its 3 px Gaussian) of ``out``
    with ``ref``'s inside ``region``: ~1 where untouched, ~0 where blurred."""
    x0, y0, x1, y1 = region
    # 8 px in from each edge: JPEG blocks straddling the edge mix in the sharp side
    x0, y0, x1, y1 = x0 + 8, y0 + 8, x1 - 8, y1 - 8

    def fine(m):
        g = cv2.cvtColor(m[y0:y1, x0:x1].astype(np.uint8), cv2.COLOR_RGB2GRAY)
        g = g.astype(np.float64)
        return (g - cv2.GaussianBlur(g, (0, 0), 3)).ravel()

    return float(np.corrcoef(fine(ref), fine(out))[0, 1])


def assert_faces_gone(ref: np.ndarray, out: np.ndarray, regions, detected_after) -> None:
    """The three conditions of this module's docstring, for one photo."""
    haar_before = haar_faces(ref)
    assert [b for b in haar_before for r in regions if inside(b, r)], \
        "the Haar cascades must find a face in the original for their word to count"
    missed = [b for b in detected_after if not any(about(b, r) for r in regions)]
    assert not missed, f"faces found outside every blurred region: {missed}"
    for region in regions:
        x0, y0, x1, y1 = region
        if min(x1 - x0, y1 - y0) < MEASURED_SIDE:
            continue
        kept = fine_structure_kept(ref, out, region)
        assert abs(kept) < 0.1, f"fine structure kept in {region}: {kept:.2f}"
    haar_after = haar_faces(out)
    assert not [b for b in haar_after for r in regions if inside(b, r)], haar_after
