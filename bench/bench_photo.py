"""Node photo pipeline, ms per photo (lower is better): a 12-megapixel JPEG
(scikit-image's astronaut upscaled to 4000 x 3000, quality 90) made safe by
edge.camera.pipeline.process: verify, EXIF orientation, metadata dropped, long
side 1600 px, faces found and blurred, JPEG q85. Median of --runs, on one core
(CPU affinity pinned to one CPU, OpenCV limited to one thread).

Peer: the naive Pillow pipeline: full decode, LANCZOS resize to 1600 px, JPEG q85
(no face pass, no DCT-domain reduction, no verify).
Limit: full decode of the 12 MP JPEG alone.

    .venv/bin/python bench/bench_photo.py [--runs 7]
"""

import argparse
import io
import os
import statistics
import sys
import time

from _common import write_result

import cv2
import numpy as np
from PIL import Image
from skimage import data

from edge.camera import pipeline


def one_core() -> str:
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    cv2.setNumThreads(1)
    return f"cpu {cpu}"


def twelve_megapixels() -> bytes:
    big = cv2.resize(data.astronaut(), (4000, 3000), interpolation=cv2.INTER_CUBIC)
    out = io.BytesIO()
    Image.fromarray(big).save(out, "JPEG", quality=90)
    return out.getvalue()


def naive(jpeg: bytes) -> bytes:
    im = Image.open(io.BytesIO(jpeg))
    im.load()
    im = im.convert("RGB").resize((1600, 1200), Image.LANCZOS)
    out = io.BytesIO()
    im.save(out, "JPEG", quality=pipeline.QUALITY, optimize=True)
    return out.getvalue()


def decode_only(jpeg: bytes):
    im = Image.open(io.BytesIO(jpeg))
    im.load()
    return im


def median_ms(fn, arg, runs: int) -> float:
    fn(arg)  # warm: cascades loaded, caches filled
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn(arg)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    where = one_core()
    jpeg = twelve_megapixels()
    safe = pipeline.process(jpeg)
    assert (safe.width, safe.height) == (1600, 1200)
    assert safe.faces >= 1, "the benchmark photo must have a face to blur"
    print(f"{where}; input {len(jpeg) / 1e6:.2f} MB 4000x3000, output "
          f"{len(safe.jpeg) / 1e3:.0f} kB, faces blurred: {safe.faces}", file=sys.stderr)

    ours = median_ms(pipeline.process, jpeg, args.runs)
    peer = median_ms(naive, jpeg, args.runs)
    limit = median_ms(decode_only, jpeg, args.runs)
    rgb = np.asarray(Image.open(io.BytesIO(safe.jpeg)).convert("RGB"))
    faces = median_ms(pipeline.detect_faces, rgb, args.runs)
    print(f"of which face detection on the 1600 px image: {faces:.0f} ms", file=sys.stderr)
    write_result(
        "photo", "ms", ours, False,
        ("naive Pillow: full decode, LANCZOS resize to 1600 px, JPEG q85, no face pass", peer),
        ("decode only: full decode of the 12 MP JPEG", limit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
