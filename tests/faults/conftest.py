"""The fault suite's world: a hub and one node as real processes around the
real Mosquitto of ``tests/conftest.py`` (its ``broker`` fixture).

``FaultSite`` seeds the hub (zone, node, event on now, staff with bound
phones), writes the node and hub configs, and starts or kills the processes
the node and the hub run in production: ``rounds-edge sync``,
``rounds-edge portal`` (gunicorn), ``rounds-hub ingest``. Phones are
loopback addresses (127.0.x.y) with a MAC each in the node's dnsmasq lease
file, so the portal knows them as it would on the Wi-Fi.
"""

import http.client
import json
import os
import signal
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from edge.db import open_db as open_node_db
from hub.db import open_db as open_hub_db
from protocol.clock import iso
from protocol.pins import device_id, hash_pin

from ..conftest import ROOT, SITE, hub_config, node_config
from ..support import free_port, wait_for

SECRET = "5a" * 32
ZONE = "hall-a"
EVENT = "ev-faults"


def phone_address(i: int) -> tuple[str, str]:
    """(loopback source address, MAC) of phone ``i``."""
    return f"127.0.{1 + i // 250}.{1 + i % 250}", f"02:fa:00:00:{i // 256:02x}:{i % 256:02x}"


def staff_id(i: int) -> str:
    return f"F{i:05d}"


class Process:
    """A command run as a real process in its own process group (as a
    systemd unit has its own cgroup), so that killing "the portal" kills the
    gunicorn master and its workers together."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict):
        self.name, self.argv, self.log, self.env = name, argv, log, env
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def start(self) -> "Process":
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=log, env=self.env,
                                         cwd=ROOT, start_new_session=True)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole group (this process and the children it forked)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)
        self._reap_group()

    def children(self) -> list[int]:
        try:
            text = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text()
        except OSError:
            return []
        return [int(pid) for pid in text.split()]

    def stop(self) -> None:
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                pass
        if self.proc is not None:
            self.kill()

    def _reap_group(self) -> None:
        """Wait until no process of the group is left (orphaned gunicorn
        workers would keep the portal's port)."""
        def gone():
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                return True
            return False
        wait_for(gone, timeout=10, message=f"{self.name}'s processes gone")


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` (VmRSS in /proc/<pid>/status), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


class FaultSite:
    def __init__(self, tmp_path: Path, broker, phones: int):
        self.tmp, self.broker, self.phones = tmp_path, broker, phones
        self.hub_db = tmp_path / "hub" / "hub.db"
        self.node_db = tmp_path / "n1" / "node.db"
        self.spool_dir = self.node_db.parent / "photos"
        self.leases = tmp_path / "n1" / "dnsmasq.leases"
        self.portal_port = free_port()
        self.env = dict(os.environ, PYTHONPATH=str(ROOT))
        self._seed_hub()
        self._write_node()
        self.hub_config = hub_config(tmp_path, broker)
        self.processes: list[Process] = []

    def _seed_hub(self) -> None:
        now = datetime.now(timezone.utc)
        pin = hash_pin("2468")
        db = open_hub_db(self.hub_db)
        db["zones"].insert({"zone": ZONE, "name": "Lecture hall A"})
        db["nodes"].insert({"node": "n1", "zone": ZONE})
        db["events"].insert({"id": EVENT, "title": "Fault drill", "zones": json.dumps([ZONE]),
                             "start": iso(now - timedelta(minutes=5)),
                             "end": iso(now + timedelta(hours=2))})
        db["staff"].insert_all({"staff_id": staff_id(i), "name": f"Staff {i}",
                                "department": "nursing", "pin_hash": pin}
                               for i in range(self.phones))
        bound_at = iso(now - timedelta(days=1))
        db["devices"].insert_all({"device": device_id(bytes.fromhex(SECRET), phone_address(i)[1]),
                                  "staff_id": staff_id(i), "bound_at": bound_at, "node": "n1"}
                                 for i in range(self.phones))
        db.close()

    def _write_node(self) -> None:
        expiry = int((datetime.now(timezone.utc) + timedelta(hours=2)).timestamp())
        self.leases.parent.mkdir(parents=True, exist_ok=True)
        self.leases.write_text("".join(
            f"{expiry} {mac} {ip} phone{i} *\n"
            for i, (ip, mac) in ((i, phone_address(i)) for i in range(self.phones))))
        self.node_config = node_config(
            self.tmp, self.broker, zone=ZONE, site_secret=SECRET,
            # Quick re-sends after a lost batch, and the status (with the
            # spool's sweep) every 2 s rather than 30.
            sync={"ack_timeout": 3, "status_interval": 2},
            portal={"leases_file": str(self.leases), "arp_file": str(self.tmp / "no-arp")})
        open_node_db(self.node_db).close()

    # --- the processes ---

    def _process(self, name, argv) -> Process:
        process = Process(name, argv, self.tmp / f"{name}.log", self.env)
        self.processes.append(process)
        return process

    def sync(self) -> Process:
        return self._process("sync", [sys.executable, "-m", "edge.cli", "--config",
                                      str(self.node_config), "sync"])

    def portal(self) -> Process:
        return self._process("portal", [sys.executable, "-m", "edge.cli", "--config",
                                        str(self.node_config), "portal", "--bind",
                                        f"127.0.0.1:{self.portal_port}", "--workers", "2"])

    def ingest(self) -> Process:
        return self._process("ingest", [sys.executable, "-m", "hub.cli", "--config",
                                        str(self.hub_config), "ingest"])

    def stop_all(self) -> None:
        for process in self.processes:
            process.stop()

    def portal_up(self) -> bool:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.portal_port, timeout=2)
            conn.request("GET", "/healthz")
            return conn.getresponse().status == 200
        except OSError:
            return False

    def node_ready(self) -> bool:
        """The node holds the hub's roster and its config with the event."""
        conn = sqlite3.connect(self.node_db)
        try:
            rows = dict(conn.execute("SELECT key, value FROM kv WHERE key IN "
                                     "('roster', 'config')").fetchall())
        finally:
            conn.close()
        return staff_id(self.phones - 1) in rows.get("roster", "") and \
            EVENT in rows.get("config", "")

    # --- what each side holds ---

    def hub_rows(self, sql: str, *args) -> list[tuple]:
        conn = sqlite3.connect(self.hub_db)
        try:
            return conn.execute(sql, args).fetchall()
        except sqlite3.OperationalError:
            return []  # the table is not there yet
        finally:
            conn.close()

    def node_rows(self, sql: str, *args) -> list[tuple]:
        conn = sqlite3.connect(self.node_db)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()

    def backlog(self) -> int:
        return self.node_rows("SELECT count(*) FROM outbox")[0][0]

    def spooled(self) -> int:
        return self.node_rows("SELECT count(*) FROM photo_spool")[0][0]

    def spool_files(self) -> list[str]:
        if not self.spool_dir.exists():
            return []
        return sorted(p.name for p in self.spool_dir.iterdir())


@pytest.fixture
def synced_clock(tmp_path, monkeypatch):
    """Records made in this test (and its processes) count as made with a
    synchronised clock, whatever this machine runs: the clock suite is about
    the other case."""
    flag = tmp_path / "timesync-synchronized"
    flag.touch()
    monkeypatch.setenv("ROUNDS_TIMESYNC_FLAG", str(flag))


@pytest.fixture
def fault_site(tmp_path, broker, synced_clock):
    """A seeded hub and node around the real broker; processes stopped after."""
    sites = []

    def make(phones: int) -> FaultSite:
        site = FaultSite(tmp_path, broker, phones)
        sites.append(site)
        return site

    yield make
    for site in sites:
        site.stop_all()


__all__ = ["SITE", "FaultSite", "Process", "phone_address", "rss_kib", "staff_id"]
