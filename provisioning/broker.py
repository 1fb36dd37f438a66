"""Mosquitto for a site: config file, ACL and password file (rendered from
the templates in ``firmware-config/mosquitto``), reloading a running broker
by SIGHUP, and a broker process for the demo and the tests."""

import base64
import getpass
import hashlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from string import Template

TEMPLATES = Path(__file__).resolve().parent.parent / "firmware-config" / "mosquitto"
_PBKDF2_ITERATIONS = 101  # what mosquitto_passwd writes for "$7$"


def password_hash(password: str, *, salt: bytes | None = None) -> str:
    """A password in Mosquitto's own ``$7$`` (PBKDF2-SHA512) file format."""
    salt = salt or secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _PBKDF2_ITERATIONS)
    b64 = base64.b64encode
    return f"$7${_PBKDF2_ITERATIONS}${b64(salt).decode()}${b64(digest).decode()}"


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def ingest_worker_user(hub_user: str, index: int) -> str:
    """The MQTT user of ingest worker ``index`` > 1 (``rounds-hub ingest
    --workers``; worker 1 is the hub user): ``hub.2``, ``hub.3``, ... A node
    id cannot hold a dot (nodes.NODE_ID), so no node can take one's name."""
    return f"{hub_user}.{index}"


def is_ingest_worker(user: str, hub_user: str) -> bool:
    return re.fullmatch(rf"{re.escape(hub_user)}\.[1-9][0-9]*", user) is not None


def render_acl(site: str, hub_user: str, nodes) -> str:
    """The ACL text: the hub reads and writes the whole site; each node (MQTT
    user = node id) gets its own ``user`` block and nothing else. A node not
    listed here (revoked) has no topic at all. Ingest workers among ``nodes``
    (``hub.<i>``, ``is_ingest_worker``) get a worker's block instead: read
    every node's uplink, write acks."""
    node_template = Template((TEMPLATES / "acl-node.tmpl").read_text())
    worker_template = Template((TEMPLATES / "acl-worker.tmpl").read_text())
    workers = [user for user in nodes if is_ingest_worker(user, hub_user)]
    blocks = "".join(node_template.substitute(site=site, node=node) for node in nodes
                     if node not in workers)
    worker_blocks = "".join(worker_template.substitute(site=site, user=user)
                            for user in workers)
    return Template((TEMPLATES / "acl.tmpl").read_text()).substitute(
        site=site, hub_user=hub_user, worker_blocks=worker_blocks, node_blocks=blocks)


def render_conf(*, site: str, port: int, bind: str, password_file, acl_file, data_dir,
                persistence: bool = True, log_dest: str = "stderr", run_as: str | None = None,
                pid_file=None, tls: dict | None = None,
                username_as_clientid: bool = False, include_dir=None) -> str:
    """The mosquitto.conf text. ``tls`` (cafile, certfile, keyfile) makes the
    listener TLS-only (TLS 1.2 or later); ``pid_file`` lets a change be
    applied by SIGHUP (``reload``). ``username_as_clientid``: the broker
    takes each client's user name as its client id, so that no client can
    take over another's session (with the hub's client id and a node's
    password, Mosquitto would drop the hub and hand its queued messages to
    the node's ACL, which discards them); each user then has one connection
    at a time, as a site has (one ``rounds-hub ingest``, one sync per node).
    ``include_dir``: the broker also reads every ``*.conf`` there (the
    hospital group's bridge, provisioning/bridge.py); the text is then this
    config's without it plus ``include_lines(include_dir)``."""
    tls_lines = "" if not tls else "".join([
        "# TLS only on this listener (TLS 1.2 or later); clients check the site CA.\n",
        f"cafile {tls['cafile']}\n", f"certfile {tls['certfile']}\n",
        f"keyfile {tls['keyfile']}\n", "tls_version tlsv1.2\n"])
    clientid_lines = "" if not username_as_clientid else (
        "# Each client's id is its user name: no one takes over another's session.\n"
        "use_username_as_clientid true\n")
    return Template((TEMPLATES / "mosquitto.conf.tmpl").read_text()).substitute(
        site=site, port=port, bind=bind, password_file=password_file, acl_file=acl_file,
        persistence="true" if persistence else "false", data_dir=data_dir,
        log_dest=log_dest, tls_lines=tls_lines, clientid_lines=clientid_lines,
        run_as=run_as or getpass.getuser(), include_lines=include_lines(include_dir),
        pid_line=f"pid_file {pid_file}\n" if pid_file else "",
    )


def include_lines(include_dir) -> str:
    """The end of mosquitto.conf that makes the broker read ``include_dir``
    (empty for None). Last in the file, so that appending it to a config
    rendered without it gives the same text as rendering with it."""
    if include_dir is None:
        return ""
    return ("\n# More sections (the hospital group's bridge: rounds-provision site bridge).\n"
            f"include_dir {include_dir}\n")


def render_broker(directory, *, site: str, port: int, users: dict[str, str],
                  hub_user: str = "hub", bind: str = "127.0.0.1", persistence: bool = True,
                  log_dest: str = "stderr", run_as: str | None = None,
                  username_as_clientid: bool = False) -> Path:
    """Write mosquitto.conf, acl and passwd into ``directory``; return the conf path.

    ``users`` maps MQTT user names (the hub's, its ingest workers' and each
    node's) to passwords. ``username_as_clientid`` as a real site has it.
    ``run_as`` is the account the broker drops to when started as root
    (default: the current one, so the files written here stay readable).
    Plain MQTT, for the demo, the tests and the benchmarks; a real site's
    broker (TLS, pid file) is written by ``rounds-provision site init``.
    """
    directory = Path(directory)
    (directory / "data").mkdir(parents=True, exist_ok=True)
    password_file, acl_file = directory / "passwd", directory / "acl"
    _write_private(password_file,
                   "".join(f"{user}:{password_hash(pw)}\n" for user, pw in users.items()))
    _write_private(acl_file, render_acl(site, hub_user, [u for u in users if u != hub_user]))
    conf = render_conf(site=site, port=port, bind=bind, password_file=password_file,
                       acl_file=acl_file, data_dir=directory / "data", persistence=persistence,
                       log_dest=log_dest, run_as=run_as,
                       username_as_clientid=username_as_clientid)
    conf_path = directory / "mosquitto.conf"
    conf_path.write_text(conf)
    return conf_path


def read_passwords(path) -> dict[str, str]:
    """User -> hash lines of a Mosquitto password file (empty when absent)."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return {}
    entries = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            user, _, hashed = line.partition(":")
            entries[user] = hashed
    return entries


def format_passwords(entries: dict[str, str]) -> str:
    return "".join(f"{user}:{hashed}\n" for user, hashed in entries.items())


@dataclass(frozen=True)
class Reload:
    """What ``reload`` did: ``pid`` signalled (None: no broker running), in words."""
    pid: int | None
    message: str


def reload(pid_file) -> Reload:
    """Apply a changed password file and ACL: SIGHUP to the broker named by
    ``pid_file``, never a restart (clients stay connected; Mosquitto 2.0
    drops only those whose user is gone). The pid is signalled only when it
    is a running mosquitto, so a stale pid file signals nobody."""
    later = "the change applies when it starts"
    try:
        pid = int(Path(pid_file).read_text().strip())
    except FileNotFoundError:
        return Reload(None, f"broker not running (no {pid_file}); {later}")
    except ValueError:
        return Reload(None, f"broker not running ({pid_file} holds no pid); {later}")
    try:
        name = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        name = None
    if name != "mosquitto":
        return Reload(None, f"broker not running (stale {pid_file}: pid {pid} is not "
                            f"mosquitto); {later}")
    os.kill(pid, signal.SIGHUP)
    return Reload(pid, f"broker reloaded (SIGHUP to pid {pid}, not restarted)")


class Mosquitto:
    """A Mosquitto process for a rendered config: the demo, the tests and the
    benchmarks start their broker with it. Usable as a context manager."""

    def __init__(self, conf: Path, port: int, *, log: Path | None = None, preexec_fn=None):
        """``log``: append the broker's own output there (default: discarded);
        ``preexec_fn``: run in the child before exec (e.g. ``die_with_parent()``)."""
        self.conf, self.port, self.proc, self.log = Path(conf), port, None, log
        self.preexec_fn = preexec_fn

    def start(self, timeout: float = 10.0) -> "Mosquitto":
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen([binary, "-c", str(self.conf)], stdout=out,
                                         stderr=subprocess.STDOUT if self.log else out,
                                         start_new_session=True, preexec_fn=self.preexec_fn)
        finally:
            if self.log:
                out.close()
        deadline = time.monotonic() + timeout
        while not self._accepting():
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode} "
                                   f"(config {self.conf})")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"mosquitto did not listen on port {self.port}")
            time.sleep(0.02)
        return self

    def _accepting(self) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def __enter__(self) -> "Mosquitto":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
