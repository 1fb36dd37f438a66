"""Fixtures: a real Mosquitto per test on a free port, real SQLite files in
tmp_path, the node and hub daemons run in threads or as processes, and the
hub's database and web app for the dashboard tests (``hub_db``, ``hub_app``)."""

import json
import os
import shutil
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from edge.sync import NodeSync
from hub.db import open_db
from hub.ingest.subscriber import Ingest
from provisioning.broker import Mosquitto, render_broker
from runtime.settings import MqttSettings

from .hubweb import make_app
from .pg import make_fixtures
from .pgtables import TablesConnection
from .support import free_port, wait_for  # noqa: F401 - re-exported for the tests

SITE = "test"
# A throwaway PostgreSQL cluster for the session and a fresh database per test
# (tests/pg.py), for whatever asks for them.
pg_cluster, pg_dsn = make_fixtures()
# Whether this machine's clock is NTP-synchronised must not change what the
# tests see: unless a test says otherwise, the node's time daemon is
# "unknown" (no flag directory), so no record is flagged (edge/health.py).
os.environ.setdefault("ROUNDS_TIMESYNC_FLAG", "/nonexistent/rounds-timesync/synchronized")
PASSWORDS = {"hub": "hub-secret", "n1": "n1-secret", "n2": "n2-secret"}
ROOT = Path(__file__).resolve().parent.parent


class Broker(Mosquitto):
    """A real Mosquitto with the generated Rounds config and ACL."""

    def __init__(self, directory: Path, port: int):
        if not shutil.which("mosquitto") and not Path("/usr/sbin/mosquitto").exists():
            pytest.fail("mosquitto is not installed (make test installs it)")
        super().__init__(render_broker(directory, site=SITE, port=port, users=PASSWORDS,
                                       log_dest=f"file {directory / 'mosquitto.log'}"), port)

    def settings(self, user: str, password: str | None = None) -> MqttSettings:
        return MqttSettings(host="127.0.0.1", port=self.port, username=user,
                            password=password or PASSWORDS[user])


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path / "broker", free_port())
    b.start()
    yield b
    b.stop()


@pytest.fixture
def hub_db_path(tmp_path):
    return tmp_path / "hub" / "hub.db"


@pytest.fixture(params=["sqlite", "postgresql"])
def hub_target(request, tmp_path):
    """The hub database of a test that runs on both backends (issue 16): a
    SQLite file's path, then a fresh migrated PostgreSQL database's DSN.
    ``hub.db.open_db`` opens and migrates either."""
    if request.param == "sqlite":
        return tmp_path / "hub.db"
    return request.getfixturevalue("pg_hub_dsn")


@pytest.fixture
def node_db_path(tmp_path):
    return tmp_path / "n1" / "node.db"


# The backend of the ``hub_db``/``hub_app`` tests: SQLite, or with
# ROUNDS_TEST_HUB_BACKEND=postgresql (make test's second pass, make test-pg) a
# fresh PostgreSQL database per test.
HUB_BACKEND = os.environ.get("ROUNDS_TEST_HUB_BACKEND", "sqlite")


def pytest_collection_modifyitems(config, items):
    """On the PostgreSQL pass, only the tests on the hub's database fixtures
    (``hub_location``: ``hub_db``, ``hub_app``) run; the rest ran on the
    SQLite pass, and the ``hub_target`` tests run on both backends there."""
    if HUB_BACKEND != "postgresql":
        return
    kept = [item for item in items if "hub_location" in getattr(item, "fixturenames", ())]
    config.hook.pytest_deselected(items=[item for item in items if item not in kept])
    items[:] = kept


@pytest.fixture(scope="session")
def pg_hub_template(pg_cluster):
    """A migrated, empty hub database on the session's PostgreSQL, copied for
    each test that asks for ``pg_hub_dsn`` (a copy takes a fraction of the
    migrations' time)."""
    dsn = pg_cluster.create_database("hub_template")
    open_db(dsn).close()
    return "hub_template"


@pytest.fixture
def pg_hub_dsn(pg_cluster, pg_hub_template):
    """A fresh, migrated hub database on PostgreSQL; dropped after the test."""
    dsn = pg_cluster.create_database(template=pg_hub_template)
    yield dsn
    pg_cluster.drop_database(dsn.rsplit("/", 1)[1])


@pytest.fixture
def hub_location(request, tmp_path):
    """Where this test's hub database is: ``tmp_path / "hub.db"``, or on the
    PostgreSQL pass a fresh migrated database's DSN (``pg_hub_dsn``)."""
    if HUB_BACKEND == "postgresql":
        return request.getfixturevalue("pg_hub_dsn")
    return tmp_path / "hub.db"


def hub_db_settings(location, tmp_path) -> dict:
    """hub.json's database keys for ``location``: ``{"db": path}``, or for a
    PostgreSQL DSN also the session key and photos directory a hub on a
    database server names itself."""
    if isinstance(location, str) and location.startswith("postgresql://"):
        return {"db": location, "secret_key": "test-hub-secret",
                "photos_dir": str(tmp_path / "photos")}
    return {"db": str(location)}


@pytest.fixture
def hub_db(hub_location):
    """A new hub database for a dashboard test (``hub_location``; photos in
    ``tmp_path / "photos"``), migrated, closed after the test. A test module
    adds its own data in a ``db`` fixture on it."""
    database = open_db(hub_location)
    if HUB_BACKEND == "postgresql":  # migrated; now with the tests' table calls
        database.close()
        database = TablesConnection.open(hub_location)
    yield database
    database.close()


@pytest.fixture
def hub_app(tmp_path, hub_location, hub_db):
    """The real web app on ``hub_db``'s database (``tests/hubweb.py`` make_app)."""
    return make_app(hub_location, PHOTOS_DIR=str(tmp_path / "photos"))


@contextmanager
def running_ingest(broker, db_path, **kwargs):
    worker = Ingest(site=SITE, db_path=db_path, mqtt=broker.settings("hub"), **kwargs)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        assert worker.subscribed.wait(10), "ingest did not subscribe"
        yield worker
    finally:
        worker.stop()
        thread.join(10)


@contextmanager
def running_sync(broker, db_path, node="n1", **kwargs):
    kwargs.setdefault("ack_timeout", 3.0)
    link = NodeSync(site=SITE, node=node, db_path=db_path, mqtt=broker.settings(node), **kwargs)
    stop = threading.Event()
    errors = []

    def run():
        try:
            link.run(stop)
        except Exception as exc:  # surfaced to the test below
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield link
    finally:
        stop.set()
        link.wake.set()
        thread.join(10)
    if errors:
        raise errors[0]


def write_config(path: Path, document: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


def node_config(tmp_path, broker, node="n1", **extra) -> Path:
    mqtt = broker.settings(node)
    return write_config(tmp_path / node / "node.json", {
        "site": SITE, "node": node, "zone": "hall-a", "db": str(tmp_path / node / "node.db"),
        "mqtt": {"host": mqtt.host, "port": mqtt.port, "username": node,
                 "password": mqtt.password}, **extra})


def hub_config(tmp_path, broker, **extra) -> Path:
    mqtt = broker.settings("hub")
    return write_config(tmp_path / "hub" / "hub.json", {
        "site": SITE, "db": str(tmp_path / "hub" / "hub.db"),
        "mqtt": {"host": mqtt.host, "port": mqtt.port, "username": "hub",
                 "password": mqtt.password}, **extra})


class Daemon:
    """A ``rounds-edge``/``rounds-hub`` command run as a real process."""

    def __init__(self, module: str, config: Path, command: str, log: Path):
        self.argv = [sys.executable, "-m", module, "--config", str(config), command]
        self.log = log
        self.proc = None

    def start(self):
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=log, env=env, cwd=ROOT)
        return self

    def kill(self):
        self.proc.kill()
        self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def daemons():
    started = []

    def start(module, config, command, log):
        daemon = Daemon(module, config, command, log).start()
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()
