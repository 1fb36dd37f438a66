"""The load suite: a lecture hall of phones and a hospital's day of nodes,
against the real processes (reduced in ``make test``, full with ``make load``).

Shared here: the ``load`` marker, a node clock marked as synchronised (so no
record is "corrected" at the hub and node→hub latency is plain arithmetic
on one machine clock), a Mosquitto with any number of node users, and
read-only peeks into SQLite files other processes are writing.
"""

import os
import sqlite3
import sys
from pathlib import Path

import pytest

from provisioning.broker import Mosquitto, render_broker
from runtime.settings import MqttSettings

from ..conftest import SITE
from ..support import free_port

ROOT = Path(__file__).resolve().parent.parent.parent


def pytest_configure(config):
    config.addinivalue_line("markers", "load: the load suite (tests/load; `make load` runs "
                            "it at full size)")


@pytest.fixture(autouse=True)
def synced_clock(tmp_path, monkeypatch):
    """Every node process started by the test sees an NTP-synchronised clock."""
    flag = tmp_path / "timesync-synchronized"
    flag.touch()
    monkeypatch.setenv("ROUNDS_TIMESYNC_FLAG", str(flag))
    return flag


def python_env(**extra) -> dict:
    return dict(os.environ, PYTHONPATH=str(ROOT), **extra)


def python_argv(module: str, *args) -> list[str]:
    return [sys.executable, "-m", module, *[str(a) for a in args]]


class FleetBroker(Mosquitto):
    """A real Mosquitto with the generated config, ACL and a password file
    holding the hub and every node of the fleet."""

    def __init__(self, directory: Path, passwords: dict[str, str]):
        self.passwords = dict(passwords)
        port = free_port()
        super().__init__(render_broker(directory, site=SITE, port=port, users=self.passwords,
                                       log_dest=f"file {directory / 'mosquitto.log'}"), port)

    def settings(self, user: str) -> MqttSettings:
        return MqttSettings(host="127.0.0.1", port=self.port, username=user,
                            password=self.passwords[user])

    def mqtt_config(self, user: str) -> dict:
        """The ``mqtt`` section of a node or hub config for ``user``."""
        s = self.settings(user)
        return {"host": s.host, "port": s.port, "username": s.username, "password": s.password}


def rows(db_path, sql: str, *args) -> list[tuple]:
    """Rows of ``sql`` from a database another process writes; [] while the
    file or table does not exist yet."""
    if not Path(db_path).exists():
        return []
    conn = sqlite3.connect(db_path, timeout=30)
    try:
        return conn.execute(sql, args).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise
    finally:
        conn.close()


def percentile(sorted_values: list, p: float):
    """The ``p``-th percentile (nearest rank) of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * p // 100))
    return sorted_values[int(rank) - 1]
