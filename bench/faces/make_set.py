"""Build the annotated face set for bench/bench_faces.py, deterministically.

Every pixel comes from images whose licence allows it (bench/faces/LICENCES.md):
scikit-image's data images (installed with the test extra) and one public-domain
portrait kept beside this script (sources/grace_hopper.jpg, 61 kB). Nothing is
downloaded. The set is written to bench/faces/build/ (git-ignored), with the
ground truth in build/truth.json:

- ``faces/`` 1600 x 1200 JPEGs (the size the node pipeline detects on): face-free
  scenes with head crops of the three real faces composited in at 24-120 px face
  width (as plain, mirrored, rolled 15-30 degrees, turned ~30 degrees by a perspective
  warp, wearing a drawn surgical mask, darker or defocused), one to eight a scene,
  some in rows like a group photo; twelve scenes with one or two nearer faces
  (121-240 px); the three source photos themselves, whole and printed small.
- ``empty/`` 1600 x 1200 JPEGs with no face: the same backgrounds, the parts of the
  source photos below the faces (the astronaut's suit and helmet, the uniform), and
  drawn ward-like scenes (tiled floor with a spill, a corridor).

A face box is the face itself: hairline or brow top to chin, cheek to cheek (ear
to nose tip for the turned cameraman). Its width in the 1600 px image is the face
size the bands of the benchmark use.

    .venv/bin/python bench/faces/make_set.py [--out DIR] [--scenes 96]

Caveat, said again in bench/README.md: three identities under many transforms is a
regression set, not a sample of the public; the turns other than the cameraman's
are simulated by a flat perspective warp.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from pathlib import Path

import cv2
import numpy as np
from skimage import data

HERE = Path(__file__).resolve().parent
W, H = 1600, 1200
SEED = 20261206
BANDS = ((24, 36), (36, 48), (48, 72), (72, 121))
VARIANTS = ("plain", "mirror", "roll", "yaw", "mask", "mask_roll", "mask_yaw", "dark",
            "defocus")

# Face boxes (x, y, w, h) in each source image, read off a 20 px grid by eye.
FACES = {
    "astronaut": (183, 78, 83, 90),   # Eileen Collins, frontal, smiling
    "hopper": (168, 150, 195, 180),   # Grace Hopper, frontal, glasses, cap
    "cameraman": (180, 112, 75, 83),  # turned ~60 degrees, camera at the nose
}
# Where each source photo has no face left: rows from this y down.
FACE_FREE_BELOW = {"astronaut": 200, "hopper": 360}


def _rgb(gray: np.ndarray) -> np.ndarray:
    return np.dstack([gray] * 3) if gray.ndim == 2 else gray[..., :3]


def sources() -> dict[str, np.ndarray]:
    hopper = cv2.imread(str(HERE / "sources" / "grace_hopper.jpg"), cv2.IMREAD_COLOR)
    if hopper is None:
        raise SystemExit("bench/faces/sources/grace_hopper.jpg is missing")
    return {"astronaut": data.astronaut(), "hopper": cv2.cvtColor(hopper, cv2.COLOR_BGR2RGB),
            "cameraman": _rgb(data.camera())}


def backgrounds(src: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Face-free RGB scenes (CC0 or public domain, see LICENCES.md)."""
    bg = {name: _rgb(getattr(data, name)()) for name in (
        "brick", "chelsea", "clock", "coffee", "coins", "grass", "gravel",
        "hubble_deep_field", "immunohistochemistry", "retina", "rocket", "text", "horse",
        "cell")}
    bg["horse"] = bg["horse"].astype(np.uint8) * 255 if bg["horse"].dtype == bool else bg["horse"]
    bg["astronaut_suit"] = src["astronaut"][FACE_FREE_BELOW["astronaut"]:]
    bg["hopper_uniform"] = src["hopper"][FACE_FREE_BELOW["hopper"]:]
    bg["cameraman_field"] = src["cameraman"][230:, 300:]
    bg["ward_floor"] = _ward_floor()
    bg["corridor"] = _corridor()
    return bg


def _ward_floor() -> np.ndarray:
    """Grey-green vinyl tiles with a brown spill and a bin: a typical report photo."""
    im = np.full((H, W, 3), (176, 184, 170), np.uint8)
    rng = np.random.default_rng(7)
    for y in range(0, H, 150):
        for x in range(0, W, 150):
            shade = int(rng.integers(-12, 12))
            cv2.rectangle(im, (x + 2, y + 2), (x + 147, y + 147),
                          tuple(int(c + shade) for c in (176, 184, 170)), -1)
    cv2.ellipse(im, (700, 650), (260, 140), 12, 0, 360, (120, 86, 52), -1)
    cv2.ellipse(im, (880, 720), (120, 70), -20, 0, 360, (110, 78, 46), -1)
    cv2.rectangle(im, (1250, 200), (1450, 620), (200, 40, 40), -1)
    cv2.rectangle(im, (1230, 180), (1470, 230), (150, 30, 30), -1)
    return im


def _corridor() -> np.ndarray:
    """A corridor in perspective: walls, doors, handrail, ceiling lights."""
    im = np.full((H, W, 3), (214, 218, 222), np.uint8)
    vx, vy = 820, 520
    cv2.fillPoly(im, [np.array([(0, H), (W, H), (vx + 90, vy + 60), (vx - 90, vy + 60)])],
                 (150, 160, 150))
    cv2.fillPoly(im, [np.array([(0, 0), (W, 0), (vx + 90, vy - 60), (vx - 90, vy - 60)])],
                 (240, 240, 236))
    for i, x in enumerate((60, 260, 420)):
        top, bottom = 120 + i * 120, H - 160 - i * 170
        cv2.rectangle(im, (x, top), (x + 110 - i * 25, bottom), (120, 150, 190), -1)
        cv2.circle(im, (x + 90 - i * 25, (top + bottom) // 2), 8, (60, 60, 60), -1)
    cv2.line(im, (0, 700), (vx - 90, vy + 10), (90, 110, 140), 14)
    cv2.line(im, (W, 700), (vx + 90, vy + 10), (90, 110, 140), 14)
    for k in range(1, 6):
        y = int(vy - 60 - (vy - 60) / (k * 1.3))
        cv2.rectangle(im, (vx - 260 // k, y - 8 // k - 2), (vx + 260 // k, y + 8 // k + 2),
                      (255, 255, 250), -1)
    return im


def _cover(im: np.ndarray, rng) -> np.ndarray:
    """Crop to 4:3 (random offset) and resize to W x H, plus a little sensor noise so
    an upscaled background is not smoother than a photo."""
    h, w = im.shape[:2]
    if w / h > W / H:
        cw, ch = int(h * W / H), h
    else:
        cw, ch = w, int(w * H / W)
    x0 = int(rng.integers(0, w - cw + 1))
    y0 = int(rng.integers(0, h - ch + 1))
    crop = im[y0:y0 + ch, x0:x0 + cw]
    out = cv2.resize(crop, (W, H), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    out += rng.normal(0, 3.0, out.shape).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


# --- one face instance ---

def _head(src: np.ndarray, box) -> tuple[np.ndarray, np.ndarray, tuple]:
    """The head around a face box (hair, ears, chin, some neck) with a feathered
    elliptical alpha; returns (patch float32 RGB, alpha float32, box in the patch)."""
    x, y, w, h = box
    x0, x1 = max(0, int(x - 0.45 * w)), min(src.shape[1], int(x + 1.45 * w))
    y0, y1 = max(0, int(y - 0.6 * h)), min(src.shape[0], int(y + 1.45 * h))
    patch = src[y0:y1, x0:x1].astype(np.float32)
    ph, pw = patch.shape[:2]
    alpha = np.zeros((ph, pw), np.float32)
    cx, cy = x - x0 + w / 2, y - y0 + h * 0.42
    cv2.ellipse(alpha, (int(cx), int(cy)), (int(w * 0.92), int(h * 1.0)), 0, 0, 360, 1.0, -1)
    k = max(3, int(w * 0.12) | 1)
    alpha = cv2.GaussianBlur(alpha, (k, k), 0)
    return patch, alpha, (x - x0, y - y0, w, h)


MASK_COLOURS = ((160, 200, 232), (236, 240, 242), (150, 204, 178), (120, 170, 220))


def _draw_mask(patch: np.ndarray, box, colour) -> None:
    """A pleated surgical mask from the middle of the nose to under the chin, with
    its ear loops."""
    x, y, w, h = box
    top, bottom = y + 0.44 * h, y + 1.04 * h
    left, right = x - 0.03 * w, x + 1.03 * w
    pts = np.array([(left, top + 0.06 * h), (x + 0.5 * w, top - 0.04 * h),
                    (right, top + 0.06 * h), (right - 0.04 * w, bottom - 0.12 * h),
                    (x + 0.5 * w, bottom), (left + 0.04 * w, bottom - 0.12 * h)], np.int32)
    cv2.fillPoly(patch, [pts], tuple(float(c) for c in colour), lineType=cv2.LINE_AA)
    darker = tuple(float(c) * 0.8 for c in colour)
    for f in (0.3, 0.5, 0.7):
        yy = int(top + f * (bottom - top))
        cv2.line(patch, (int(left + 0.03 * w), yy), (int(right - 0.03 * w), yy), darker,
                 max(1, int(h * 0.015)), cv2.LINE_AA)
    loop = (235.0, 235.0, 235.0)
    t = max(1, int(w * 0.02))
    cv2.line(patch, (int(left), int(top + 0.06 * h)), (int(x - 0.05 * w), int(y + 0.4 * h)),
             loop, t, cv2.LINE_AA)
    cv2.line(patch, (int(right), int(top + 0.06 * h)), (int(x + 1.05 * w), int(y + 0.4 * h)),
             loop, t, cv2.LINE_AA)


def _rolled(patch, alpha, box, angle):
    ph, pw = patch.shape[:2]
    c = (pw / 2, ph / 2)
    m = cv2.getRotationMatrix2D(c, angle, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(ph * sin + pw * cos) + 2, int(ph * cos + pw * sin) + 2
    m[0, 2] += nw / 2 - c[0]
    m[1, 2] += nh / 2 - c[1]
    patch = cv2.warpAffine(patch, m, (nw, nh), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT)
    alpha = cv2.warpAffine(alpha, m, (nw, nh), flags=cv2.INTER_LINEAR)
    x, y, w, h = box
    fx, fy = m @ np.array([x + w / 2, y + h / 2, 1.0])
    # The box of the rotated face: the bounding box of the rotated ellipse the face is.
    a, b, t = w / 2, h / 2, math.radians(angle)
    hw = math.sqrt((a * math.cos(t)) ** 2 + (b * math.sin(t)) ** 2)
    hh = math.sqrt((a * math.sin(t)) ** 2 + (b * math.cos(t)) ** 2)
    return patch, alpha, (fx - hw, fy - hh, 2 * hw, 2 * hh)


def _turned(patch, alpha, box, right: bool):
    """A ~30 degree turn, simulated: the face narrows to cos 30 of its width and its
    far side shrinks in height (a flat perspective warp, not a 3D model)."""
    ph, pw = patch.shape[:2]
    squeeze, far = 0.85, 0.88
    src = np.float32([(0, 0), (pw, 0), (pw, ph), (0, ph)])
    nw = pw * squeeze
    dy = ph * (1 - far) / 2
    if right:   # the right side recedes
        dst = np.float32([(0, 0), (nw, dy), (nw, ph - dy), (0, ph)])
    else:
        dst = np.float32([(0, dy), (nw, 0), (nw, ph), (0, ph - dy)])
    m = cv2.getPerspectiveTransform(src, dst)
    size = (int(math.ceil(nw)), ph)
    patch = cv2.warpPerspective(patch, m, size, flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REFLECT)
    alpha = cv2.warpPerspective(alpha, m, size, flags=cv2.INTER_LINEAR)
    x, y, w, h = box
    corners = cv2.perspectiveTransform(
        np.float32([[(x, y), (x + w, y), (x + w, y + h), (x, y + h)]]), m)[0]
    x0, y0 = corners.min(axis=0)
    x1, y1 = corners.max(axis=0)
    return patch, alpha, (float(x0), float(y0), float(x1 - x0), float(y1 - y0))


def face_instance(src: dict, name: str, variant: str, width: float, rng):
    """(patch uint8 RGB, alpha float32, face box in the patch) for one face."""
    patch, alpha, box = _head(src[name], FACES[name])
    if variant.startswith("mask"):
        _draw_mask(patch, box, MASK_COLOURS[int(rng.integers(len(MASK_COLOURS)))])
    if variant == "mirror" or rng.random() < 0.5 and variant != "plain":
        patch, alpha = patch[:, ::-1].copy(), alpha[:, ::-1].copy()
        x, y, w, h = box
        box = (patch.shape[1] - x - w, y, w, h)
    if variant.endswith("roll"):
        angle = float(rng.uniform(15, 30)) * (1 if rng.random() < 0.5 else -1)
        patch, alpha, box = _rolled(patch, alpha, box, angle)
    if variant.endswith("yaw"):
        patch, alpha, box = _turned(patch, alpha, box, bool(rng.random() < 0.5))
    scale = width / box[2]
    size = (max(2, round(patch.shape[1] * scale)), max(2, round(patch.shape[0] * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    patch = cv2.resize(patch, size, interpolation=interp)
    alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_LINEAR)
    box = tuple(v * scale for v in box)
    if variant == "dark":
        patch = patch * float(rng.uniform(0.45, 0.65))
    elif variant == "defocus":
        k = max(3, int(width * 0.06) | 1)
        patch = cv2.GaussianBlur(patch, (k, k), 0)
    else:
        patch = patch * float(rng.uniform(0.85, 1.15))
    return np.clip(patch, 0, 255), np.clip(alpha, 0, 1), box


def _paste(scene: np.ndarray, patch, alpha, at) -> None:
    x, y = at
    h, w = patch.shape[:2]
    sx0, sy0, sx1, sy1 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)
    if sx1 <= sx0 or sy1 <= sy0:
        return
    p = patch[sy0 - y:sy1 - y, sx0 - x:sx1 - x]
    a = alpha[sy0 - y:sy1 - y, sx0 - x:sx1 - x, None]
    roi = scene[sy0:sy1, sx0:sx1].astype(np.float32)
    scene[sy0:sy1, sx0:sx1] = np.clip(roi * (1 - a) + p * a, 0, 255).astype(np.uint8)


def _overlaps(box, boxes, margin=0.6) -> bool:
    x, y, w, h = box
    for bx, by, bw, bh in boxes:
        m = margin * max(w, bw)
        if x < bx + bw + m and bx < x + w + m and y < by + bh + m and by < y + h + m:
            return True
    return False


def face_scene(src, bgs, rng, index: int):
    """One scene: a background and 1-8 faces. Every fourth scene is a 'group photo':
    a row of 4-8 faces of one band."""
    bg_name = sorted(bgs)[int(rng.integers(len(bgs)))]
    scene = _cover(bgs[bg_name], rng)
    group = index % 4 == 3
    n = int(rng.integers(4, 9)) if group else int(rng.integers(1, 6))
    band = BANDS[(index // 4) % len(BANDS)]
    faces, boxes = [], []
    names = sorted(FACES)
    for k in range(n):
        b = band if group else BANDS[(index + k) % len(BANDS)]
        width = float(rng.uniform(*b))
        name = names[int(rng.integers(len(names)))]
        variant = VARIANTS[int(rng.integers(len(VARIANTS)))]
        if name == "cameraman" and variant.startswith(("mask", "yaw")):
            variant = "plain"  # already turned, and a camera covers his mouth
        patch, alpha, box = face_instance(src, name, variant, width, rng)
        for _ in range(60):
            if group:
                x = int(80 + k * (W - 160) / n + rng.uniform(0, 20))
                y = int(H * 0.45 + rng.uniform(-40, 40))
            else:
                x = int(rng.uniform(-box[0], W - box[0] - box[2]))
                y = int(rng.uniform(-box[1], H - box[1] - box[3]))
            gt = (x + box[0], y + box[1], box[2], box[3])
            inside = gt[0] >= 0 and gt[1] >= 0 and gt[0] + gt[2] <= W and gt[1] + gt[3] <= H
            if inside and not _overlaps(gt, boxes, 0.25 if group else 0.6):
                break
        else:
            continue
        _paste(scene, patch, alpha, (x, y))
        boxes.append(gt)
        faces.append({"box": [round(v, 1) for v in gt], "source": name, "variant": variant})
    return scene, faces, bg_name


def close_scene(src, bgs, rng, index: int):
    """One or two faces 121-240 px wide: nearer the camera than the bands above."""
    bg_name = sorted(bgs)[int(rng.integers(len(bgs)))]
    scene = _cover(bgs[bg_name], rng)
    faces, boxes = [], []
    names = sorted(FACES)
    for k in range(1 + index % 2):
        name = names[(index + k) % len(names)]
        variant = ("plain", "mask", "roll", "yaw", "mirror", "mask_roll")[(index + k) % 6]
        if name == "cameraman" and variant.startswith(("mask", "yaw")):
            variant = "roll"
        patch, alpha, box = face_instance(src, name, variant, float(rng.uniform(121, 240)), rng)
        for _ in range(60):
            x = int(rng.uniform(-box[0], W - box[0] - box[2]))
            y = int(rng.uniform(-box[1], H - box[1] - box[3]))
            gt = (x + box[0], y + box[1], box[2], box[3])
            if (gt[0] >= 0 and gt[1] >= 0 and gt[0] + gt[2] <= W and gt[1] + gt[3] <= H
                    and not _overlaps(gt, boxes, 0.3)):
                break
        else:
            continue
        _paste(scene, patch, alpha, (x, y))
        boxes.append(gt)
        faces.append({"box": [round(v, 1) for v in gt], "source": name, "variant": variant})
    return scene, faces, bg_name


def whole_photos(src, bgs, rng):
    """The source photos themselves: full frame, and as a print on a wall."""
    out = []
    for name, img in src.items():
        h, w = img.shape[:2]
        s = min(W / w, H / h)
        scene = np.full((H, W, 3), 128, np.uint8)
        rw, rh = round(w * s), round(h * s)
        ox, oy = (W - rw) // 2, (H - rh) // 2
        scene[oy:oy + rh, ox:ox + rw] = cv2.resize(img, (rw, rh), interpolation=cv2.INTER_CUBIC)
        fx, fy, fw, fh = FACES[name]
        out.append((f"photo_{name}", scene, [{"box": [round(ox + fx * s, 1), round(oy + fy * s, 1),
                                                      round(fw * s, 1), round(fh * s, 1)],
                                              "source": name, "variant": "photo"}]))
        # The photo printed small on a wall: face width 30-60 px.
        target = float(rng.uniform(30, 60))
        s2 = target / fw
        scene = _cover(bgs["brick"], rng)
        rw, rh = round(w * s2), round(h * s2)
        ox, oy = int(rng.integers(50, W - rw - 50)), int(rng.integers(50, H - rh - 50))
        scene[oy:oy + rh, ox:ox + rw] = cv2.resize(img, (rw, rh), interpolation=cv2.INTER_AREA)
        out.append((f"print_{name}", scene, [{"box": [round(ox + fx * s2, 1), round(oy + fy * s2, 1),
                                                      round(fw * s2, 1), round(fh * s2, 1)],
                                              "source": name, "variant": "photo"}]))
    return out


def _write(path: Path, rgb: np.ndarray) -> str:
    """JPEG q90, as a phone would send it (the benchmark reads the file back)."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    path.write_bytes(buf.tobytes())
    return hashlib.sha256(buf.tobytes()).hexdigest()[:16]


def build(out: Path, scenes: int = 96) -> dict:
    rng = np.random.default_rng(SEED)
    src = sources()
    bgs = backgrounds(src)
    (out / "faces").mkdir(parents=True, exist_ok=True)
    (out / "empty").mkdir(parents=True, exist_ok=True)
    images = []
    for i in range(scenes):
        scene, faces, bg = face_scene(src, bgs, rng, i)
        name = f"faces/scene_{i:03d}.jpg"
        digest = _write(out / name, scene)
        images.append({"file": name, "faces": faces, "background": bg, "sha": digest})
    for i in range(12):
        scene, faces, bg = close_scene(src, bgs, rng, i)
        name = f"faces/close_{i:03d}.jpg"
        images.append({"file": name, "faces": faces, "background": bg,
                       "sha": _write(out / name, scene)})
    for stem, scene, faces in whole_photos(src, bgs, rng):
        name = f"faces/{stem}.jpg"
        images.append({"file": name, "faces": faces, "background": "photo",
                       "sha": _write(out / name, scene)})
    for bg in sorted(bgs):
        name = f"empty/{bg}.jpg"
        images.append({"file": name, "faces": [], "background": bg,
                       "sha": _write(out / name, _cover(bgs[bg], rng))})
    # Mosaics of four backgrounds: more edges and textures side by side.
    names = sorted(bgs)
    for k in range(8):
        tiles = [cv2.resize(_cover(bgs[names[int(rng.integers(len(names)))]], rng),
                            (W // 2, H // 2), interpolation=cv2.INTER_AREA) for _ in range(4)]
        mosaic = np.vstack([np.hstack(tiles[:2]), np.hstack(tiles[2:])])
        name = f"empty/mosaic_{k}.jpg"
        images.append({"file": name, "faces": [], "background": "mosaic",
                       "sha": _write(out / name, mosaic)})
    truth = {"size": [W, H], "seed": SEED, "bands": BANDS, "face_boxes": FACES,
             "images": images}
    (out / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    return truth


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "build")
    parser.add_argument("--scenes", type=int, default=96)
    args = parser.parse_args()
    truth = build(args.out, args.scenes)
    faces = [f for im in truth["images"] for f in im["faces"]]
    empty = sum(1 for im in truth["images"] if not im["faces"])
    print(f"{len(truth['images'])} images in {args.out}: {len(faces)} faces in "
          f"{len(truth['images']) - empty} images, {empty} face-free images", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
