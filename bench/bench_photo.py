"""Node photo pipeline, ms per photo (lower is better): a 12-megapixel JPEG
(scikit-image's astronaut upscaled to 4000 x 3000, quality 90) made safe by
edge.camera.pipeline.process: verify, EXIF orientation, metadata dropped, long
side 1600 px, faces found (edge/camera/faces_v2.py) and blurred, JPEG q85. Median
of --runs on this machine's cores (at most four, as many as a Pi 4 has: OpenCV and
the face detector's threads set to match); the one-core figure is printed beside it.

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

from edge.camera import faces_v2, pipeline

CPUS = sorted(os.sched_getaffinity(0))


def use_cores(n: int) -> str:
    """Run on the first ``n`` CPUs, OpenCV and the face detector with as many threads."""
    os.sched_setaffinity(0, set(CPUS[:n]))
    cv2.setNumThreads(n)
    faces_v2.THREADS = n
    return f"{n} core{'s' if n > 1 else ''}"


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
    where = use_cores(min(4, len(CPUS)))
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
    use_cores(1)
    print(f"on one core: {median_ms(pipeline.process, jpeg, args.runs):.0f} ms",
          file=sys.stderr)
    write_result(
        "photo", "ms", ours, False,
        (f"naive Pillow: full decode, LANCZOS resize to 1600 px, JPEG q85, no face pass "
         f"({where})", peer),
        (f"decode only: full decode of the 12 MP JPEG ({where})", limit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
