"""Network namespaces, veth pairs and processes for the tests (root only).

Every helper is a context manager that cleans up on the way out, also when
the test fails: processes are stopped (by their pid), namespaces deleted
(which deletes their interfaces). Names are unique per test run, so runs in
parallel or leftovers of a killed run never collide. No pytest in here.
"""

import itertools
import os
import shutil
import signal
import subprocess
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

_RUN = uuid.uuid4().hex[:6]
_COUNTER = itertools.count()

# Debian package of each tool the namespace tests run.
TOOLS = {"ip": "iproute2", "nft": "nftables", "dnsmasq": "dnsmasq-base",
         "busybox": "busybox", "curl": "curl"}


def missing_tools(*names: str) -> list[str]:
    """The tools (of ``TOOLS``) not installed, as 'tool (package)'; also
    'root' when not running as root (network namespaces need it)."""
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    missing = [f"{name} ({TOOLS.get(name, name)})" for name in names
               if not shutil.which(name, path=path)]
    if os.geteuid() != 0:
        missing.append("root (network namespaces; CI runs as root)")
    return missing


def unique_name(role: str) -> str:
    return f"rt{_RUN}{next(_COUNTER)}-{role}"


def sh(*argv, check=True, timeout=30, **kwargs) -> subprocess.CompletedProcess:
    """Run ``argv`` (a list, no shell); on failure raise with its output."""
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                            timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} failed ({result.returncode}): "
                           f"{result.stdout}{result.stderr}")
    return result


class Netns:
    """A network namespace with its loopback up."""

    def __init__(self, role: str):
        self.name = unique_name(role)

    def exec_argv(self, argv) -> list[str]:
        return ["ip", "netns", "exec", self.name, *[str(a) for a in argv]]

    def run(self, *argv, check=True, timeout=30, **kwargs) -> subprocess.CompletedProcess:
        return sh(*self.exec_argv(argv), check=check, timeout=timeout, **kwargs)

    def ip(self, *args, check=True) -> subprocess.CompletedProcess:
        return sh("ip", "-n", self.name, *args, check=check)

    def write_proc(self, path: str, value: str) -> None:
        """Write a per-namespace /proc/sys value (e.g. ip_forward) in this namespace."""
        self.run("busybox", "sh", "-c", 'echo "$1" > "$2"', "_", value, path)

    def __enter__(self) -> "Netns":
        sh("ip", "netns", "add", self.name)
        try:
            self.ip("link", "set", "lo", "up")
        except BaseException:
            self.delete()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.delete()

    def delete(self) -> None:
        # Anything still running in here was started by the tests: stop it by pid.
        pids = sh("ip", "netns", "pids", self.name, check=False).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        sh("ip", "netns", "del", self.name, check=False)


def veth(a: Netns, a_name: str, b: Netns, b_name: str) -> None:
    """A veth pair: ``a_name`` in ``a``, ``b_name`` in ``b``, both up (goes
    away with the namespaces)."""
    a.ip("link", "add", a_name, "type", "veth", "peer", "name", b_name, "netns", b.name)
    a.ip("link", "set", a_name, "up")
    b.ip("link", "set", b_name, "up")


class Process:
    """A long-running process (in a namespace when ``ns`` is given), its
    output in ``log``; stopped on exit."""

    def __init__(self, argv, log: Path, ns: Netns | None = None, env=None, cwd=None):
        self.argv = ns.exec_argv(argv) if ns else [str(a) for a in argv]
        self.log, self.env, self.cwd = Path(log), env, cwd
        self.proc = None

    def start(self) -> "Process":
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=self.env, cwd=self.cwd,
                                         start_new_session=True)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self) -> "Process":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@contextmanager
def namespaces(*roles: str):
    """Several namespaces at once: ``with namespaces("phone", "node") as (p, n)``."""
    created = []
    try:
        for role in roles:
            created.append(Netns(role).__enter__())
        yield created
    finally:
        for ns in reversed(created):
            ns.delete()


def wait_until(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Poll ``predicate`` until it returns something true (returned), else raise."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
