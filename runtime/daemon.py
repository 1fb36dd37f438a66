"""Small helpers shared by the commands of edge and hub: logging, signals,
config loading at the CLI edge, serving a Flask app with gunicorn, and
children that end with the process that started them."""

import ctypes
import logging
import os
import signal
import sys
import threading

import click

from .settings import ConfigError, load_json


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    logging.getLogger("paho").setLevel(logging.WARNING)


def stop_on_signals(on_stop) -> threading.Event:
    """Call ``on_stop`` (and set the returned event) on SIGTERM or SIGINT."""
    stopped = threading.Event()

    def handler(signum, frame):
        stopped.set()
        on_stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stopped


def load_config(path, required: tuple[str, ...]) -> dict:
    """The JSON config at ``path``, or a clear CLI error."""
    try:
        return load_json(path, required)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


# Threaded workers: a phone's browser opens speculative connections it may
# never use, and each would hold a sync worker until its timeout. A worker
# takes new connections only while a thread is free (runtime/gunicorn_worker.py).
GUNICORN_WORKER = ("--worker-class", "runtime.gunicorn_worker.AdmittingThreadWorker",
                   "--threads", "8")


def exec_gunicorn(app_factory: str, bind: str, workers: int, config_env: str, config_path,
                  extra_args=()):
    """Replace this process with gunicorn serving ``app_factory``; the app
    finds its config through the environment variable ``config_env``."""
    env = dict(os.environ, **{config_env: os.path.abspath(config_path)})
    argv = [sys.executable, "-m", "gunicorn", "--bind", bind, "--workers", str(workers),
            *GUNICORN_WORKER, "--access-logfile", "-", *extra_args, app_factory]
    os.execve(sys.executable, argv, env)


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent(sig: int = signal.SIGKILL):
    """A ``preexec_fn`` for ``subprocess.Popen``: the child gets ``sig`` when
    the process that started it dies, even by SIGKILL (Linux's
    PR_SET_PDEATHSIG, kept across exec). The kernel ties it to the starting
    thread, so start such children from a thread that lives as long as they
    should. A parent that died between fork and prctl is caught by the
    parent-pid check."""
    parent = os.getpid()

    def arm():
        if _libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            os._exit(126)
        if os.getppid() != parent:
            os._exit(1)

    return arm
