"""runtime.gunicorn_worker.AdmittingThreadWorker under a real gunicorn: a
worker whose threads are all busy leaves new connections to one that has a
free thread, and idle keep-alive connections never hold admission."""

import http.client
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.daemon import GUNICORN_WORKER
from tests.support import free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent

# /slow tells the test it started (touching $STARTED), then holds its thread
# until the test touches $RELEASE; every answer names the worker's pid.
APP = """\
import os, time
from pathlib import Path

def app(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        Path(os.environ["STARTED"]).touch()
        deadline = time.monotonic() + 30
        while not os.path.exists(os.environ["RELEASE"]) and time.monotonic() < deadline:
            time.sleep(0.01)
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
"""


@pytest.fixture
def server(tmp_path):
    """``start(workers, threads)`` -> port of a gunicorn with the admitting worker."""
    (tmp_path / "slow_app.py").write_text(APP)
    procs = []

    def start(workers: int, threads: int) -> int:
        port = free_port()
        env = dict(os.environ, STARTED=str(tmp_path / "started"),
                   RELEASE=str(tmp_path / "release"),
                   PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}")
        log = open(tmp_path / "gunicorn.log", "ab")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
             "--workers", str(workers), *GUNICORN_WORKER, "--threads", str(threads),
             "--graceful-timeout", "2", "slow_app:app"],
            cwd=tmp_path, env=env, stdout=log, stderr=log))
        wait_for(lambda: _answers(port), timeout=30, message="gunicorn up")
        return port

    yield start
    (tmp_path / "release").touch()
    for proc in procs:
        proc.terminate()
        proc.wait(15)


def _answers(port) -> bool:
    try:
        _get(port, "/", timeout=1)
        return True
    except OSError:
        return False


def _get(port, path, timeout=5.0) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def _start_slow(port, tmp_path) -> http.client.HTTPConnection:
    """A /slow request that holds one thread until ``release`` is touched."""
    (tmp_path / "started").unlink(missing_ok=True)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/slow")
    wait_for(lambda: (tmp_path / "started").exists(), timeout=10, message="/slow started")
    return conn


def test_a_busy_worker_leaves_new_connections_to_a_free_one(server, tmp_path):
    # Two workers of one thread each: while one serves /slow, every new
    # connection must go to the other and be answered at once. A stock
    # gthread worker takes about half of them and queues them behind /slow
    # (their 5 s timeouts would fail this test).
    port = server(workers=2, threads=1)
    slow = _start_slow(port, tmp_path)
    answered_by = {_get(port, "/") for _ in range(12)}
    (tmp_path / "release").touch()
    busy_worker = slow.getresponse().read().decode()
    slow.close()
    assert len(answered_by) == 1 and busy_worker not in answered_by


def test_idle_keep_alive_connections_do_not_hold_admission(server, tmp_path):
    port = server(workers=1, threads=1)
    idle = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    idle.request("GET", "/")
    pid = idle.getresponse().read().decode()  # kept alive, now idle
    assert _get(port, "/") == pid             # a new connection is still taken
    idle.request("GET", "/")                  # and the idle one still works
    assert idle.getresponse().read().decode() == pid
    idle.close()


def test_admission_resumes_when_the_thread_is_free(server, tmp_path):
    # One worker, one thread: a connection made while /slow runs waits in
    # the kernel's backlog and is answered once /slow is done.
    port = server(workers=1, threads=1)
    slow = _start_slow(port, tmp_path)
    waiting = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    waiting.request("GET", "/")
    (tmp_path / "release").touch()
    pid = slow.getresponse().read().decode()
    assert waiting.getresponse().read().decode() == pid
    slow.close(), waiting.close()
