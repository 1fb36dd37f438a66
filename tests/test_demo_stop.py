"""The demo leaves nothing behind: after SIGTERM (what `kill` and systemd
send; Ctrl-C is tests/test_demo.py's) every process it started ends within
10 s, and after a SIGKILL of the demo itself, which can clean up nothing, its
children end on their own (PR_SET_PDEATHSIG). Both free every port, so the
next `make demo` starts."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .support import free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
STOP_WITHIN = 10.0  # seconds: the promise to a person at the terminal


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (children of children too), from /proc."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # ended while we looked
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses
        parents[int(entry.name)] = int(stat[stat.rindex(")") + 2:].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_the_demo_leaves_no_process_and_no_port(tmp_path, sig):
    ports = {"web": free_port(), "portal": free_port(), "broker": free_port()}
    out = open(tmp_path / "demo.out", "wb")
    demo = subprocess.Popen(
        [sys.executable, "-m", "demo", "--data-dir", str(tmp_path / "demo"),
         "--web-port", str(ports["web"]), "--portal-port", str(ports["portal"]),
         "--broker-port", str(ports["broker"]), "--phones", "2"],
        cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    children = set()
    try:
        wait_for(lambda: b"Dashboard: " in (tmp_path / "demo.out").read_bytes(), timeout=180,
                 message="the demo to be ready")
        children = descendants(demo.pid)
        names = {Path(f"/proc/{pid}/comm").read_text().strip() for pid in children
                 if alive(pid)}
        # Mosquitto, ingest, web (gunicorn + workers), sync, presence, portal, the AP.
        assert "mosquitto" in names and len(children) >= 9, names
        assert all(listening(port) for port in ports.values())
        sent = time.monotonic()
        os.kill(demo.pid, sig)
        wait_for(lambda: not any(alive(pid) for pid in children | {demo.pid})
                 and not any(listening(port) for port in ports.values()),
                 timeout=STOP_WITHIN + 20, interval=0.1, message="every process to end")
        took = time.monotonic() - sent
    finally:
        for pid in children | {demo.pid}:  # never leave a failed run's processes behind
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        demo.wait(30)
        out.close()
    assert took <= STOP_WITHIN, f"the last process ended {took:.1f} s after {sig.name}"
    if sig == signal.SIGTERM:
        assert demo.returncode == 0
        assert b"Stopped." in (tmp_path / "demo.out").read_bytes()
