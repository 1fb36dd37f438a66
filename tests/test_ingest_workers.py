"""``rounds-hub ingest --workers N`` (hub/ingest/workers.py): N processes
share the nodes' uplinks through an MQTT v5 shared subscription, each with
its own user and persistent session, against a real Mosquitto run as a site
runs it (the user name as client id) and a real hub database (the kill test:
on both backends, a SQLite file and a PostgreSQL database).

What Mosquitto 2.0.11 does with a shared subscription (checked here): it
hands each message to the members of the group in turn, and a member that
is down gets its share queued in its session. Its ACL file does not check
subscriptions at all: a node's SUBSCRIBE to the workers' filter is granted,
and it is the read ACL, checked per message, that keeps the uplinks from
it. A node that names the workers' group joins it, and the broker drops
the share it hands that node: hence the group name is a secret of hub.json.
"""

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge.outbox import Outbox
from hub.cli.main import main as hub_main
from hub.db import open_db, write_transaction
from hub.sql import Error as sql_errors
from hub.sql import is_dsn
from protocol import topics
from provisioning.broker import Mosquitto, read_passwords, render_broker
from provisioning.cli import main as provision_main
from provisioning.site import load_site
from runtime.mqttclient import session_properties
from runtime.settings import MqttSettings

from .conftest import PASSWORDS, ROOT, SITE, hub_db_settings, running_sync, write_config
from .support import free_port, wait_for
from .test_provision_nodes import Peer

WORKER_PASSWORDS = {"hub.2": "w2-secret", "hub.3": "w3-secret"}
USERS = {**PASSWORDS, **WORKER_PASSWORDS}
GROUP = "rounds-ingest-0f3c9a7e5b1d4c2a"  # hub.json's secret group, as site init makes one


class SiteBroker(Mosquitto):
    """Mosquitto with the generated config and ACL for the hub, its two
    extra ingest workers and nodes n1, n2, taking user names as client ids."""

    def __init__(self, directory: Path, port: int):
        super().__init__(render_broker(directory, site=SITE, port=port, users=USERS,
                                       username_as_clientid=True,
                                       log_dest=f"file {directory / 'mosquitto.log'}"), port)

    def settings(self, user: str) -> MqttSettings:
        return MqttSettings(host="127.0.0.1", port=self.port, username=user,
                            password=USERS[user])


@pytest.fixture
def broker(tmp_path):
    with SiteBroker(tmp_path / "broker", free_port()) as b:
        yield b


def workers_config(tmp_path, broker, db=None, **mqtt) -> Path:
    """hub.json with the credentials of workers 2 and 3 and the group name;
    the database ``db`` (default: the file ``hub/hub.db``)."""
    return write_config(tmp_path / "hub" / "hub.json", {
        "site": SITE, **hub_db_settings(db or tmp_path / "hub" / "hub.db", tmp_path),
        "mqtt": {"host": "127.0.0.1", "port": broker.port, "username": "hub",
                 "password": PASSWORDS["hub"], "share_group": GROUP,
                 "workers": [{"username": u, "password": p}
                             for u, p in WORKER_PASSWORDS.items()], **mqtt}})


class Supervisor:
    """``rounds-hub ingest --workers N`` as a real process, with its log."""

    def __init__(self, config: Path, log: Path, count: int):
        self.log = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hub.cli", "--config", str(config), "ingest",
                 "--workers", str(count)], stdout=out, stderr=out, cwd=ROOT,
                env=dict(os.environ, PYTHONPATH=str(ROOT)))

    def workers(self) -> dict[int, int]:
        """worker index -> pid, of the supervisor's live children."""
        found = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:  # ended meanwhile
                continue
            fields = stat.rpartition(")")[2].split()
            if int(fields[1]) == self.proc.pid and fields[0] != "Z" and b"--worker" in argv:
                found[int(argv[argv.index(b"--worker") + 1])] = int(entry.name)
        return found

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def lines(self, needle: str) -> list[str]:
        return [line for line in self.text().splitlines() if needle in line]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


def checkins(node: str, count: int) -> list[dict]:
    return [{"type": "checkin", "staff_id": f"{node}-{i:05d}", "event_id": None,
             "zone": "hall-a", "method": "portal", "device": None} for i in range(count)]


def hub_ids(target) -> list[str]:
    """The check-in ids stored at the hub ([] before the ingest made its tables)."""
    try:
        db = open_db(target, migrate=False)
    except sql_errors:
        return []
    try:
        return [r[0] for r in db.conn.execute("SELECT id FROM checkins")]
    except sql_errors:
        return []  # not created yet
    finally:
        db.close()


@contextmanager
def checkins_held(target):
    """Every write into ``checkins`` waits while this is open: SQLite's one
    write lock (BEGIN IMMEDIATE), or on PostgreSQL the table locked against
    writers (workers storing check-ins take no common lock there)."""
    db = open_db(target, migrate=False)
    try:
        with write_transaction(db):
            if is_dsn(target):
                db.conn.execute("LOCK TABLE checkins IN EXCLUSIVE MODE")
            yield
    finally:
        db.close()


def test_three_workers_share_the_stream_and_a_killed_one_loses_nothing(broker, tmp_path,
                                                                       hub_target):
    """Two nodes send 4,000 check-ins in batches of 25 to three workers.
    Mid-stream the test holds the database's write lock until both nodes
    have their whole window (16 batches) unacknowledged, so every worker is
    blocked in a commit holding messages it has not acked, and SIGKILLs
    worker 2. The supervisor starts it again, its session hands it back what
    it held and what was queued meanwhile. The nodes never re-send (their
    ack timeout is longer than the test), so every record at the hub came
    through the workers' sessions: each stored once, every one acked."""
    config = workers_config(tmp_path, broker, hub_target)
    db_path = hub_target
    supervisor = Supervisor(config, tmp_path / "ingest.log", 3)
    sent = {}
    try:
        wait_for(lambda: len(supervisor.lines("subscribed to $share/")) == 3, timeout=30,
                 message="three workers subscribed")
        assert sorted(supervisor.workers()) == [1, 2, 3]
        assert len(supervisor.lines("subscribed to rounds/")) == 0
        for node in ("n1", "n2"):
            outbox = Outbox(tmp_path / node / "node.db")
            sent[node] = outbox.append_many(checkins(node, 2_000))
            outbox.close()
        with ExitStack() as stack:
            links = [stack.enter_context(running_sync(
                broker, tmp_path / node / "node.db", node=node, batch_size=25, ack_timeout=120))
                for node in ("n1", "n2")]
            wait_for(lambda: len(hub_ids(db_path)) >= 500, message="stream under way")
            with checkins_held(db_path):
                wait_for(lambda: all(len(link.current) == link.window for link in links),
                         timeout=8, message="both windows unacknowledged")
                time.sleep(0.3)  # the last batches reach their workers
                victim = supervisor.workers()[2]
                os.kill(victim, signal.SIGKILL)
                held = len(hub_ids(db_path))
            wait_for(lambda: supervisor.workers().get(2) not in (None, victim), timeout=15,
                     message="worker 2 started again")
            wait_for(lambda: len(hub_ids(db_path)) == 4_000, timeout=40, message="all 4,000")
            for node in ("n1", "n2"):
                wait_for(lambda: Outbox(tmp_path / node / "node.db").backlog() == 0,
                         message=f"{node}'s outbox drained by acks")
        assert held < 4_000 - 16 * 25, "the kill came too late to test anything"
        received = hub_ids(db_path)
        assert len(received) == len(set(received)) == 4_000
        assert set(received) == set(sent["n1"]) | set(sent["n2"])
        assert supervisor.lines("worker 2 (pid ")[-1].endswith(
            "was killed by SIGKILL; starting it again in 1 s")
        connects = supervisor.lines("[worker 2] hub.ingest.subscriber INFO connected as")
        assert [line.rpartition("session present: ")[2] for line in connects] == \
            ["False)", "True)"], "worker 2 came back to its own session"
        assert "rounds-hub-test-2" in connects[-1]
    finally:
        code = supervisor.stop()
    assert code == 0, supervisor.text()[-3000:]
    assert supervisor.workers() == {}, "SIGTERM reached every worker"
    assert "Traceback" not in supervisor.text()


def test_fewer_workers_end_the_sessions_of_the_others(broker, tmp_path):
    """A site ran three workers and now runs two: worker 3's session is still
    in the group, and the broker would queue a third of the uplinks there for
    as long as the session lives. ``--workers 2`` ends it first, so every
    batch reaches a running worker without the node sending it again."""
    config = workers_config(tmp_path, broker)
    left = Peer(broker.settings("hub.3"))  # worker 3 of the earlier run
    left.client.connect("127.0.0.1", broker.port, clean_start=False,
                        properties=session_properties(3600))
    left.client.loop_start()
    assert not left.connacks.get(timeout=10).is_failure
    assert not left.subscribe(topics.shared_nodes_up(SITE, GROUP))[0].is_failure
    left.close()  # its session stays, in the group

    supervisor = Supervisor(config, tmp_path / "ingest.log", 2)
    try:
        wait_for(lambda: len(supervisor.lines("subscribed to $share/")) == 2, timeout=30,
                 message="two workers subscribed")
        assert supervisor.lines("ended the session of rounds-hub-test-3")
        outbox = Outbox(tmp_path / "n1" / "node.db")
        ids = outbox.append_many(checkins("n1", 300))
        outbox.close()
        with running_sync(broker, tmp_path / "n1" / "node.db", batch_size=10, ack_timeout=120):
            wait_for(lambda: len(hub_ids(tmp_path / "hub" / "hub.db")) == 300, timeout=20,
                     message="all 300 without a re-send")
        assert sorted(hub_ids(tmp_path / "hub" / "hub.db")) == sorted(ids)
    finally:
        assert supervisor.stop() == 0


def test_a_refused_worker_stops_them_all_with_exit_2(broker, tmp_path):
    config = workers_config(tmp_path, broker, workers=[
        {"username": "hub.2", "password": "w2-secret"}, {"username": "hub.3", "password": "no"}])
    supervisor = Supervisor(config, tmp_path / "ingest.log", 3)
    try:
        supervisor.proc.wait(30)
    finally:
        supervisor.stop()
    assert supervisor.proc.returncode == 2
    assert supervisor.lines("worker 3 was refused")
    assert "rounds-hub ingest: broker refused the hub: Not authorized" in supervisor.text()
    assert supervisor.workers() == {}
    assert "w2-secret" not in supervisor.text()


def test_workers_beyond_the_configured_credentials_are_a_clear_error(broker, tmp_path):
    config = workers_config(tmp_path, broker)
    result = CliRunner().invoke(hub_main, ["--config", str(config), "ingest", "--workers", "4"])
    assert result.exit_code == 1
    assert "--workers 4 needs MQTT credentials for 3 more worker(s)" in result.output
    assert "--ingest-workers 4" in result.output


# --- the broker's ACL for the workers, as rounds-provision writes it ---------------

def provision(site_dir, *args):
    result = CliRunner().invoke(provision_main, ["--site-dir", str(site_dir), *map(str, args)])
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def site(tmp_path):
    """A site provisioned for three ingest workers, nodes n1 and n2, its broker running."""
    site_dir, port = tmp_path / "site", free_port()
    provision(site_dir, "site", "init", "--site", SITE, "--name", "Test Hospital", "--hub-host",
              "localhost", "--mqtt-port", port, "--bind", "127.0.0.1", "--hub-db",
              tmp_path / "hub.db", "--ingest-workers", 3)
    provision(site_dir, "zone", "add", "ward-3", "--name", "Ward 3")
    for node in ("n1", "n2"):
        provision(site_dir, "node", "add", node, "--zone", "ward-3")
    site = load_site(site_dir)
    with Mosquitto(site.broker_conf, port, log=tmp_path / "mosquitto.log"):
        peers = []

        def peer(user):
            mqtt = site.hub_config()["mqtt"]
            if user.startswith("hub"):
                creds = {"username": "hub", "password": mqtt["password"]} if user == "hub" \
                    else next(w for w in mqtt["workers"] if w["username"] == user)
                settings = MqttSettings.from_dict({**mqtt, **creds})
            else:
                node = json.loads((site.bundles_dir / user / "node.json").read_text())
                settings = MqttSettings.from_dict({**node["mqtt"], "tls_ca": str(site.ca_crt)})
            p = Peer(settings)
            peers.append(p)
            assert not p.connect().is_failure, user
            return p

        yield site, peer
        for p in peers:
            p.close()


def up(node, kind="batch"):
    return topics.node_up(SITE, node, kind)


def test_site_init_writes_a_user_per_worker_and_node_add_keeps_them(site):
    site, _ = site
    mqtt = site.hub_config()["mqtt"]
    assert mqtt["username"] == "hub"
    assert [w["username"] for w in mqtt["workers"]] == ["hub.2", "hub.3"]
    assert mqtt["share_group"].startswith("rounds-ingest-") and len(mqtt["share_group"]) > 40
    assert set(read_passwords(site.passwd)) == {"hub", "hub.2", "hub.3", "n1", "n2"}
    acl = site.acl.read_text()  # rewritten by each node add
    for user in ("hub.2", "hub.3"):
        block = acl.split(f"user {user}\n")[1].split("\n\n")[0].splitlines()
        assert block == [f"topic read rounds/v1/{SITE}/node/+/up/#",
                         f"topic write rounds/v1/{SITE}/node/+/down/ack"]
    # Again with as many, or fewer: nothing changes; with more: added, the rest kept.
    args = ["site", "init", "--site", SITE, "--name", "Test Hospital", "--hub-host", "localhost"]
    assert "nothing changed" in provision(site.dir, *args, "--ingest-workers", 2).output
    before = site.hub_config()["mqtt"]
    result = provision(site.dir, *args, "--ingest-workers", 4)
    assert "hub.4" in result.output and "reloaded" in result.output
    after = site.hub_config()["mqtt"]
    assert after["workers"][:2] == before["workers"] and after["workers"][2]["username"] == "hub.4"
    assert after["share_group"] == before["share_group"] and "user hub.4" in site.acl.read_text()


def test_force_gives_the_workers_new_passwords_and_keeps_their_group(tmp_path):
    site_dir = tmp_path / "site"
    args = ["site", "init", "--site", SITE, "--name", "Test Hospital", "--hub-host",
            "localhost", "--hub-db", tmp_path / "hub.db"]
    provision(site_dir, *args, "--ingest-workers", 2)
    before = load_site(site_dir).hub_config()["mqtt"]
    provision(site_dir, *args, "--force")  # no --ingest-workers: as many as it has
    after = load_site(site_dir).hub_config()["mqtt"]
    assert [w["username"] for w in after["workers"]] == ["hub.2"]
    assert after["workers"][0]["password"] != before["workers"][0]["password"]
    assert after["share_group"] == before["share_group"]
    assert set(read_passwords(load_site(site_dir).passwd)) == {"hub", "hub.2"}


def test_a_worker_reads_every_uplink_and_writes_acks_and_nothing_else(site):
    site, peer = site
    group = site.hub_config()["mqtt"]["share_group"]
    workers = [peer(user) for user in ("hub", "hub.2", "hub.3")]
    for worker in workers:
        assert not worker.subscribe(topics.shared_nodes_up(SITE, group))[0].is_failure
    n2 = peer("n2")
    n2.subscribe(topics.node_down(SITE, "n2", "#"))
    for i in range(30):
        assert not n2.publish(up("n2"), f"{i}".encode()).is_failure
    shares = [w.collect(10, timeout=5) for w in workers]
    assert sorted(int(payload) for share in shares for _, payload in share) == list(range(30))
    assert [len(share) for share in shares] == [10, 10, 10]  # in turn

    hub2 = workers[1]
    assert not hub2.publish(topics.node_down(SITE, "n2", "ack"), b'{"ids": []}').is_failure
    assert n2.collect(1) == [(topics.node_down(SITE, "n2", "ack"), b'{"ids": []}')]
    for topic in (topics.node_down(SITE, "n2", "config"), topics.site_down(SITE, "roster"),
                  up("n2"), up("n1", "status")):
        reason = hub2.publish(topic, b"forged")
        assert reason.is_failure and str(reason) == "Not authorized", topic


def test_a_node_takes_no_uplink_from_the_workers(site):
    """Mosquitto 2.0.11 grants a node's SUBSCRIBE to any filter; what it may
    read is checked per message. A node subscribed to every node's uplink,
    plainly and shared under the default group name, receives nothing, and
    the workers, whose group it cannot name, lose nothing."""
    site, peer = site
    group = site.hub_config()["mqtt"]["share_group"]
    workers = [peer(user) for user in ("hub", "hub.2")]
    for worker in workers:
        worker.subscribe(topics.shared_nodes_up(SITE, group))
    n1, n2 = peer("n1"), peer("n2")
    for topic in (topics.shared_nodes_up(SITE), topics.all_nodes_up(SITE)):
        n1.subscribe(topic)
    for i in range(20):
        n2.publish(up("n2"), f"{i}".encode())
    assert len(workers[0].collect(10, timeout=5) + workers[1].collect(10, timeout=5)) == 20
    assert n1.received(wait=0.5) == []


def test_a_node_that_named_the_group_would_take_a_share_why_it_is_secret(site):
    """The broker fact the secret group name answers: a node that subscribes
    under the workers' own group joins it (granted), and the broker drops
    every message it hands that node (its read ACL refuses them). A broker
    that refuses the subscription instead passes this test too."""
    site, peer = site
    group = site.hub_config()["mqtt"]["share_group"]
    worker = peer("hub.2")
    worker.subscribe(topics.shared_nodes_up(SITE, group))
    n1, n2 = peer("n1"), peer("n2")
    if n1.subscribe(topics.shared_nodes_up(SITE, group))[0].is_failure:
        return  # a broker that checks subscriptions: the group is closed to nodes
    for i in range(20):
        n2.publish(up("n2"), f"{i}".encode())
    reached = worker.collect(20, timeout=2)
    assert n1.received() == []
    assert len(reached) == 10, "half went to the node, and the broker dropped them"
