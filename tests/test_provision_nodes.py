"""Nodes provisioned with ``rounds-provision`` against a real Mosquitto that
runs the generated site config: TLS with the site CA, each node's own
credentials and ACL block, reloads by SIGHUP, revocation, replacement.

What Mosquitto 2.0.11 does (checked here): a publish outside the node's
ACL gets PUBACK reason 135 "Not authorized" (MQTT v5) and reaches nobody;
on SIGHUP it re-reads the password file and ACL and disconnects a client
whose user is gone, while every other client stays connected."""

import json
import os
import pwd
import queue
import shutil
import socket
import ssl
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from hub.db import open_db
from provisioning.broker import Mosquitto, read_passwords
from provisioning.cli import main
from provisioning.site import load_site
from runtime.mqttclient import make_client
from runtime.settings import MqttSettings

from .support import free_port, wait_for

SITE = "test"


def run(site_dir, *args, ok=True):
    result = CliRunner().invoke(main, ["--site-dir", str(site_dir), *map(str, args)])
    if ok:
        assert result.exit_code == 0, result.output
    return result


class Peer:
    """A paho client that records what the broker says to it."""

    def __init__(self, settings: MqttSettings):
        self.settings = settings
        self.client = make_client(f"{settings.username}-{uuid.uuid4().hex[:6]}", settings)
        self.connacks: queue.Queue = queue.Queue()
        self.disconnects: list = []
        self.messages: queue.Queue = queue.Queue()
        self.subacks: queue.Queue = queue.Queue()
        self.pubacks: dict = {}
        self.acked = threading.Condition()
        self.client.on_connect = lambda c, u, f, rc, p: self.connacks.put(rc)
        self.client.on_disconnect = lambda c, u, f, rc, p: self.disconnects.append(rc)
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload))
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subacks.put(rcs)
        self.client.on_publish = self._on_publish

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        with self.acked:
            self.pubacks[mid] = reason_code
            self.acked.notify_all()

    def connect(self):
        self.client.connect(self.settings.host, self.settings.port)
        self.client.loop_start()
        return self.connacks.get(timeout=10)

    def publish(self, topic, payload):
        """Publish at QoS 1; the PUBACK's reason code."""
        info = self.client.publish(topic, payload, qos=1)
        with self.acked:
            assert self.acked.wait_for(lambda: info.mid in self.pubacks, 10), "no PUBACK"
            return self.pubacks.pop(info.mid)

    def subscribe(self, topic):
        self.client.subscribe(topic, qos=1)
        return self.subacks.get(timeout=10)

    def received(self, wait=0.0):
        """Everything delivered so far (after ``wait`` seconds)."""
        time.sleep(wait)
        got = []
        while not self.messages.empty():
            got.append(self.messages.get())
        return got

    def collect(self, count, timeout=10.0):
        """The first ``count`` messages delivered (fewer when time runs out)."""
        got, deadline = [], time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            try:
                got.append(self.messages.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        return got

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A site on a free port with zone ward-3, nodes n1 and n2, and its broker running."""
    root = tmp_path_factory.mktemp("fleet")
    site_dir, port = root / "site", free_port()
    run(site_dir, "site", "init", "--site", SITE, "--name", "Test Hospital", "--hub-host",
        "localhost", "--mqtt-port", port, "--bind", "127.0.0.1", "--hub-db", root / "hub.db")
    run(site_dir, "zone", "add", "ward-3", "--name", "Ward 3")
    for node in ("n1", "n2"):
        run(site_dir, "node", "add", node, "--zone", "ward-3")
    site = load_site(site_dir)
    broker = Mosquitto(site.broker_conf, port, log=root / "mosquitto.log").start()
    peers = []

    def peer(user):
        """A client of ``user`` ("hub" or a node), with its credentials from the
        files provisioning wrote (the CA: the site's; a node's bundle holds the
        same, test_provision_bundle.py; it is deleted on revoke). The broker
        takes the user name as client id, so a user's earlier peer is closed
        first (it would take the new one's place on its next reconnect)."""
        for earlier in [p for p in peers if p.settings.username == user]:
            earlier.close()
        if user == "hub":
            settings = MqttSettings.from_dict(site.hub_config()["mqtt"])
        else:
            config = json.loads((site.bundles_dir / user / "node.json").read_text())
            settings = MqttSettings.from_dict(
                {**config["mqtt"], "tls_ca": str(site.ca_crt)})
        p = Peer(settings)
        peers.append(p)
        return p

    yield site, broker, peer
    for p in peers:
        p.close()
    broker.stop()


def up(node, kind="batch"):
    return f"rounds/v1/{SITE}/node/{node}/up/{kind}"


def down(node, kind="config"):
    return f"rounds/v1/{SITE}/node/{node}/down/{kind}"


def test_each_node_publishes_to_its_own_topics_over_tls(world):
    site, broker, peer = world
    hub = peer("hub")
    assert str(hub.connect()) == "Success"
    assert [rc.is_failure for rc in hub.subscribe(f"rounds/v1/{SITE}/node/+/up/#")] == [False]
    for node in ("n1", "n2"):
        client = peer(node)
        assert str(client.connect()) == "Success"
        assert not client.publish(up(node), f"hello from {node}".encode()).is_failure
        assert not client.publish(up(node, "status"), b"{}").is_failure
    got = hub.collect(4) + hub.received(wait=0.3)
    assert sorted(got) == sorted([(up("n1"), b"hello from n1"), (up("n1", "status"), b"{}"),
                                  (up("n2"), b"hello from n2"), (up("n2", "status"), b"{}")])


def test_a_node_cannot_write_to_another_nodes_topics(world):
    site, broker, peer = world
    hub, n1 = peer("hub"), peer("n1")
    hub.connect(), n1.connect()
    hub.subscribe(f"rounds/v1/{SITE}/#")
    for topic in (up("n2"), down("n2"), f"rounds/v1/{SITE}/down/roster", down("n1"),
                  "rounds/v1/other-site/node/n1/up/batch"):
        reason = n1.publish(topic, b"forged")
        assert reason.is_failure and str(reason) == "Not authorized", (topic, reason)
    assert not n1.publish(up("n1"), b"own").is_failure  # the control: its own topic works
    assert hub.received(wait=0.5) == [(up("n1"), b"own")]


def test_a_node_reads_only_its_own_and_the_site_downlink(world):
    """Mosquitto 2.0.11 grants the SUBSCRIBE to another node's down/# (QoS 1)
    and checks the read ACL per message: nothing of it is delivered."""
    site, broker, peer = world
    hub, n1 = peer("hub"), peer("n1")
    hub.connect(), n1.connect()
    for topic in (down("n2", "#"), down("n1", "#"), f"rounds/v1/{SITE}/down/#"):
        n1.subscribe(topic)
    for topic in (down("n2"), down("n2", "ack"), down("n1"), f"rounds/v1/{SITE}/down/roster"):
        assert not hub.publish(topic, topic.encode()).is_failure
    time.sleep(0.5)
    assert sorted(n1.received()) == sorted([(down("n1"), down("n1").encode()),
                                            (f"rounds/v1/{SITE}/down/roster",
                                             f"rounds/v1/{SITE}/down/roster".encode())])


def test_plain_and_anonymous_and_wrong_password_connections_are_refused(world):
    site, broker, peer = world
    # Plain MQTT on the TLS port: a CONNECT in the clear gets no CONNACK.
    connect = b"\x00\x04MQTT\x04\x02\x00\x3c\x00\x04anon"
    with socket.create_connection(("127.0.0.1", broker.port), timeout=5) as raw:
        raw.sendall(b"\x10" + bytes([len(connect)]) + connect)
        try:
            answer = raw.recv(16)
        except (ConnectionResetError, socket.timeout):
            answer = b""
    assert not answer.startswith(b"\x20"), "a plain-text client got a CONNACK"

    ca = str(site.ca_crt)
    for settings in (MqttSettings("localhost", broker.port, tls_ca=ca),  # anonymous
                     MqttSettings("localhost", broker.port, "n1", "wrong", tls_ca=ca),
                     MqttSettings("localhost", broker.port, "ghost", "x", tls_ca=ca)):
        client = Peer(settings)
        try:
            assert client.connect().is_failure, settings.username
        finally:
            client.close()


def test_tls_checks_the_broker_against_the_site_ca(world, tmp_path):
    site, broker, peer = world
    # The broker's certificate names localhost and 127.0.0.1 ...
    context = ssl.create_default_context(cafile=str(site.ca_crt))
    with socket.create_connection(("127.0.0.1", broker.port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
    # ... and a client trusting another CA refuses it.
    other = tmp_path / "other"
    run(other, "site", "init", "--site", "other", "--name", "Other", "--hub-host", "localhost",
        "--hub-db", tmp_path / "hub.db")
    context = ssl.create_default_context(cafile=str(load_site(other).ca_crt))
    with socket.create_connection(("127.0.0.1", broker.port), timeout=5) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            context.wrap_socket(raw, server_hostname="localhost")


def test_revoke_cuts_the_node_off_and_the_other_loses_nothing(world):
    site, broker, peer = world
    # Added while the broker runs: the SIGHUP reload lets them in.
    for node in ("n3", "n4"):
        result = run(site.dir, "node", "add", node, "--zone", "ward-3")
        assert f"SIGHUP to pid {broker.proc.pid}" in result.output
    hub, n3, n4 = peer("hub"), peer("n3"), peer("n4")
    assert str(hub.connect()) == "Success"
    hub.subscribe(up("n4"))
    assert str(n3.connect()) == "Success" and str(n4.connect()) == "Success"

    sent, reasons = [], []

    def publish(count):
        for i in range(count):
            payload = f"{len(sent)}".encode()
            reasons.append(n4.publish(up("n4"), payload))
            sent.append(payload)
            time.sleep(0.01)

    publish(20)
    sender = threading.Thread(target=publish, args=(40,))
    sender.start()  # n4 keeps publishing through the revocation and reload
    result = run(site.dir, "node", "revoke", "n3")
    sender.join(30)
    publish(20)
    assert "revoked" in result.output and "SIGHUP" in result.output

    # The reload dropped n3's connection, and n3 cannot come back.
    wait_for(lambda: n3.disconnects, timeout=10, message="n3 disconnected by the broker")
    n3.client.loop_stop()
    again = Peer(n3.settings)
    try:
        assert again.connect().is_failure
    finally:
        again.close()
    # n4 was never dropped, every PUBACK was a success, and the hub got all 80.
    assert n4.disconnects == [] and not any(r.is_failure for r in reasons)
    got = hub.collect(80) + hub.received(wait=0.3)
    assert sorted(p for _, p in got) == sorted(sent) and len(set(sent)) == 80

    assert "n3" not in read_passwords(site.passwd)
    assert "user n3" not in site.acl.read_text() and "user n4" in site.acl.read_text()
    assert not (site.bundles_dir / "n3").exists(), "a revoked node's bundle is deleted"
    db = open_db(site.hub_db_path())
    try:
        rows = {r["node"]: r["revoked"] for r in db.query("SELECT node, revoked FROM nodes")}
    finally:
        db.close()
    assert rows["n3"] == 1 and rows["n4"] == 0
    listing = run(site.dir, "node", "list").output.splitlines()
    assert any(line.split() == ["n3", "ward-3", "never", "seen", "yes", "no"] for line in listing)
    assert any(line.split() == ["n4", "ward-3", "never", "seen", "no", "yes"] for line in listing)


def test_replace_moves_zone_and_settings_to_new_credentials(world):
    site, broker, peer = world
    run(site.dir, "zone", "add", "hall-a", "--name", "Hall A")
    run(site.dir, "node", "add", "h1", "--zone", "hall-a", "--shape", "hall",
        "--interface", "eth0.42", "--uplink", "intranet", "--upstream-dns", "192.0.2.53")
    old = peer("h1")
    assert str(old.connect()) == "Success"
    result = run(site.dir, "node", "replace", "h1", "h2")
    assert "Node h1 revoked" in result.output and "Node h2 provisioned" in result.output
    wait_for(lambda: old.disconnects, timeout=10, message="h1 dropped")
    old.client.loop_stop()
    new = peer("h2")
    assert str(new.connect()) == "Success"
    assert not new.publish(up("h2"), b"x").is_failure
    assert new.publish(up("h1"), b"x").is_failure
    config = json.loads((site.bundles_dir / "h2" / "node.json").read_text())
    assert (config["node"], config["zone"], config["shape"]) == ("h2", "hall-a", "hall")
    assert config["wifi"]["interface"] == "eth0.42"
    assert config["network"]["uplink"] == "intranet"
    assert config["network"]["upstream_dns"] == "192.0.2.53"
    assert config["mqtt"]["username"] == "h2"


def test_adding_an_existing_node_needs_force_which_changes_its_password(world):
    site, broker, peer = world
    before = (site.bundles_dir / "n1" / "node.json").read_bytes()
    refused = run(site.dir, "node", "add", "n1", "--zone", "ward-3", ok=False)
    assert refused.exit_code == 1 and "--force" in refused.output
    assert (site.bundles_dir / "n1" / "node.json").read_bytes() == before
    old = peer("n1")
    assert str(old.connect()) == "Success"
    old_settings = old.settings
    run(site.dir, "node", "add", "n1", "--zone", "ward-3", "--force")
    wait_for(lambda: old.disconnects, timeout=10, message="the old n1 session dropped")
    old.client.loop_stop()
    stale = Peer(old_settings)
    try:
        assert stale.connect().is_failure, "the old password no longer works"
    finally:
        stale.close()
    assert str(peer("n1").connect()) == "Success"


def test_unknown_zone_or_bad_node_id_changes_nothing(world):
    site, broker, peer = world
    before = (site.passwd.read_bytes(), site.acl.read_bytes())
    result = run(site.dir, "node", "add", "n9", "--zone", "ward-99", ok=False)
    assert result.exit_code == 1
    assert "zone 'ward-99' is not known" in result.output and "zone add ward-99" in result.output
    for bad in ("hub", "n/1", "+", "-x"):
        result = run(site.dir, "node", "add", bad, "--zone", "ward-3", ok=False)
        assert result.exit_code != 0 and "Traceback" not in result.output, bad
    result = run(site.dir, "node", "add", "n9", "--zone", "ward-3", "--psk", "short", ok=False)
    assert result.exit_code == 1 and "wifi.psk" in result.output
    assert (site.passwd.read_bytes(), site.acl.read_bytes()) == before
    assert not (site.bundles_dir / "n9").exists() and not list(site.bundles_dir.glob(".*"))
    result = run(site.dir, "node", "revoke", "nobody", ok=False)
    assert result.exit_code == 1 and "no node 'nobody'" in result.output


@pytest.mark.skipif(os.geteuid() != 0, reason="running the broker as another account needs root")
def test_broker_runs_as_its_own_account_across_node_changes():
    """--broker-user: Mosquitto 2.0 reads its key, password file and ACL and
    writes its pid file after dropping to that account, so they are its own;
    a node added (or revoked) later keeps them so, and the reload works."""
    # Outside pytest's tmp_path, whose parents only root may pass through.
    root = Path(tempfile.mkdtemp(prefix="rounds-broker-user-"))
    try:
        root.chmod(0o711)
        site_dir, port = root / "site", free_port()
        run(site_dir, "site", "init", "--site", SITE, "--name", "Test", "--hub-host",
            "localhost", "--mqtt-port", port, "--bind", "127.0.0.1", "--hub-db",
            root / "hub.db", "--broker-user", "nobody")
        site = load_site(site_dir)
        run(site_dir, "zone", "add", "ward-3", "--name", "Ward 3")
        with Mosquitto(site.broker_conf, port, log=root / "mosquitto.log") as broker:
            wait_for(lambda: site.pid_file.exists(), timeout=5, message="the pid file")
            nobody = pwd.getpwnam("nobody").pw_uid
            status = Path(f"/proc/{broker.proc.pid}/status").read_text().splitlines()
            uids = next(line for line in status if line.startswith("Uid:")).split()[1:]
            assert uids == [str(nobody)] * 4, "the broker dropped to --broker-user"
            result = run(site_dir, "node", "add", "n1", "--zone", "ward-3")
            assert f"SIGHUP to pid {broker.proc.pid}" in result.output
            assert site.passwd.stat().st_uid == nobody
            config = json.loads((site.bundles_dir / "n1" / "node.json").read_text())
            client = Peer(MqttSettings.from_dict({**config["mqtt"], "tls_ca": str(site.ca_crt)}))
            try:
                assert str(client.connect()) == "Success", (root / "mosquitto.log").read_text()
            finally:
                client.close()
    finally:
        shutil.rmtree(root)


def test_an_ingest_workers_credentials_cannot_be_revoked_as_a_node(tmp_path):
    site_dir = tmp_path / "site"
    run(site_dir, "site", "init", "--site", SITE, "--name", "Test Hospital", "--hub-host",
        "localhost", "--mqtt-port", free_port(), "--hub-db", tmp_path / "hub.db",
        "--ingest-workers", 2)
    site = load_site(site_dir)
    assert "hub.2" in read_passwords(site.passwd)
    result = run(site_dir, "node", "revoke", "hub.2", ok=False)
    assert result.exit_code == 1 and "no node 'hub.2'" in result.output
    assert "hub.2" in read_passwords(site.passwd)
