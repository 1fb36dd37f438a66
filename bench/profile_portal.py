"""The flame graph of the portal's check-ins under the portal bench's load:
bench/results/portal_flame.svg (bench/README.md, "portal", says what it shows).

py-spy samples every gunicorn worker from outside (``--subprocesses``,
``--nonblocking``: the workers are never paused, so the profile is of the
load as measured), while the same phones as ``bench_portal.py`` open the
page and tap, after the same warm-up. Needs ptrace rights (root, or
``kernel.yama.ptrace_scope`` 0).

    .venv/bin/python bench/profile_portal.py [--checkins 4000] [--rate 1000]
"""

import argparse
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import RESULTS, ROOT

from bench_portal import checkin, load, node_env, serve

OUTPUT = RESULTS / "portal_flame.svg"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkins", type=int, default=4000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rate", type=int, default=1000, help="samples a second")
    args = parser.parse_args()
    spy = Path(sys.executable).with_name("py-spy")  # the venv's, beside its python
    if not spy.exists():
        raise SystemExit("py-spy not found: it comes with the test extra (make venv)")
    n = args.checkins
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = node_env(tmp, n + args.warmup, 5000)
        with open(tmp / "server.log", "ab") as log:
            server, port = serve("edge.portal:create_app()", env, log)
            try:
                load(checkin, port, range(n, n + args.warmup), args.clients)
                recorder = subprocess.Popen(
                    [spy, "record", "--subprocesses", "--nonblocking", "--gil", "--rate", str(args.rate),
                     "--format", "flamegraph", "--output", str(OUTPUT), "--pid", str(server.pid)],
                    stdout=log, stderr=log)
                try:
                    load(checkin, port, range(n), args.clients)
                finally:
                    recorder.send_signal(signal.SIGINT)  # py-spy writes the graph on SIGINT
                    recorder.wait(60)
            finally:
                server.terminate()
                server.wait(10)
    if recorder.returncode != 0 or not OUTPUT.exists():
        raise SystemExit(f"py-spy failed ({recorder.returncode}); see its output above")
    print(f"wrote {OUTPUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
