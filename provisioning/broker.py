"""Mosquitto configuration for a site: config file, ACL and password file,
rendered from the templates in ``firmware-config/mosquitto``."""

import base64
import getpass
import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
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


def render_broker(directory, *, site: str, port: int, users: dict[str, str],
                  hub_user: str = "hub", bind: str = "127.0.0.1", persistence: bool = True,
                  log_dest: str = "stderr", run_as: str | None = None) -> Path:
    """Write mosquitto.conf, acl and passwd into ``directory``; return the conf path.

    ``users`` maps MQTT user names (the hub's and each node's) to passwords.
    ``run_as`` is the account the broker drops to when started as root
    (default: the current one, so the files written here stay readable).
    """
    directory = Path(directory)
    (directory / "data").mkdir(parents=True, exist_ok=True)
    password_file, acl_file = directory / "passwd", directory / "acl"
    _write_private(password_file,
                   "".join(f"{user}:{password_hash(pw)}\n" for user, pw in users.items()))
    acl = Template((TEMPLATES / "acl.tmpl").read_text()).substitute(site=site, hub_user=hub_user)
    _write_private(acl_file, acl)
    conf = Template((TEMPLATES / "mosquitto.conf.tmpl").read_text()).substitute(
        site=site, port=port, bind=bind, password_file=password_file, acl_file=acl_file,
        persistence="true" if persistence else "false", data_dir=directory / "data",
        log_dest=log_dest, tls_lines="", run_as=run_as or getpass.getuser(),
    )
    conf_path = directory / "mosquitto.conf"
    conf_path.write_text(conf)
    return conf_path


class Mosquitto:
    """A Mosquitto process for a rendered config: the demo, the tests and the
    benchmarks start their broker with it. Usable as a context manager."""

    def __init__(self, conf: Path, port: int):
        self.conf, self.port, self.proc = Path(conf), port, None

    def start(self, timeout: float = 10.0) -> "Mosquitto":
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen([binary, "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
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
