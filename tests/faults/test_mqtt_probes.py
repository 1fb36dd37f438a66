"""MQTT probes with a node's own credentials against the broker config that
``rounds-provision site init`` writes (TLS, password file, per-node ACL),
beyond what tests/test_provision_nodes.py already checks.

What Mosquitto 2.0.11 does, as checked here: a publish outside the node's ACL
gets PUBACK 135 and reaches no one, retained or not; a subscription to ``#``
(or ``$SYS/#``, or a shared ``$share/...`` one) is granted, and the read ACL
is applied to each message, so only the node's own and the site's downlink
arrive; a publish to a topic with a wildcard or a NUL is a protocol error and
ends the connection. A client id is not tied to a user unless the broker is
told so: with the hub's client id and a node's password Mosquitto 2.0.11
drops the hub and gives the node the hub's session (whose queued messages
its ACL then discards). The generated config sets
``use_username_as_clientid``, which closes that: every client's id is its
user name.
"""

import json
import socket
import ssl
import struct
from collections import Counter

import pytest

from provisioning.broker import Mosquitto
from provisioning.site import load_site
from runtime.mqttclient import make_client, session_properties
from runtime.settings import MqttSettings

from ..scale import report
from ..support import free_port
from ..test_provision_nodes import Peer, run

SITE = "test"
ROOT = f"rounds/v1/{SITE}"
HUB_CLIENT_ID = f"rounds-hub-{SITE}"  # what hub/ingest/subscriber.py connects as
TALLY = Counter()


def up(node, kind="batch"):
    return f"{ROOT}/node/{node}/up/{kind}"


def down(node, kind="config"):
    return f"{ROOT}/node/{node}/down/{kind}"


ROSTER = f"{ROOT}/down/roster"


@pytest.fixture(scope="module", autouse=True)
def tally():
    yield
    report("attacks_mqtt", {"tried": TALLY["tried"], "refused": TALLY["refused"]})


def refused(ok: bool) -> bool:
    TALLY["tried"] += 1
    TALLY["refused"] += bool(ok)
    return ok


class Client(Peer):
    """A Peer (tests/test_provision_nodes.py) with the client id of our choosing."""

    def __init__(self, settings: MqttSettings, client_id: str | None = None):
        super().__init__(settings)
        if client_id is not None:
            wired = self.client
            self.client = make_client(client_id, settings)
            for name in ("on_connect", "on_disconnect", "on_message", "on_subscribe",
                         "on_publish"):
                setattr(self.client, name, getattr(wired, name))

    def connect_persistent(self):
        """Connect as ingest does: clean start off, a session that outlives it."""
        self.client.connect(self.settings.host, self.settings.port, clean_start=False,
                            properties=session_properties(3600))
        self.client.loop_start()
        return self.connacks.get(timeout=10)


def publish(peer: Peer, topic: str, payload: bytes, retain: bool = False):
    """Publish at QoS 1; the PUBACK's reason code."""
    info = peer.client.publish(topic, payload, qos=1, retain=retain)
    with peer.acked:
        assert peer.acked.wait_for(lambda: info.mid in peer.pubacks, 10), "no PUBACK"
        return peer.pubacks.pop(info.mid)


class Fleet:
    """A provisioned site (nodes n1, n2) and its broker; one peer per user at a
    time, as the broker allows (a user's earlier peer is closed first)."""

    def __init__(self, root):
        site_dir, self.port = root / "site", free_port()
        run(site_dir, "site", "init", "--site", SITE, "--name", "Probe Hospital", "--hub-host",
            "localhost", "--mqtt-port", self.port, "--bind", "127.0.0.1",
            "--hub-db", root / "hub.db")
        run(site_dir, "zone", "add", "ward-3", "--name", "Ward 3")
        for node in ("n1", "n2"):
            run(site_dir, "node", "add", node, "--zone", "ward-3")
        self.site = load_site(site_dir)
        self.broker = Mosquitto(self.site.broker_conf, self.port,
                                log=root / "mosquitto.log").start()
        self.peers: dict[str, Peer] = {}

    def settings(self, user: str) -> MqttSettings:
        if user == "hub":
            return MqttSettings.from_dict(self.site.hub_config()["mqtt"])
        config = json.loads((self.site.bundles_dir / user / "node.json").read_text())
        return MqttSettings.from_dict({**config["mqtt"], "tls_ca": str(self.site.ca_crt)})

    def release(self, user: str) -> None:
        """Close ``user``'s peer: a connection of the same user would replace it."""
        if user in self.peers:
            self.peers.pop(user).close()

    def peer(self, user: str) -> Peer:
        self.release(user)
        peer = self.peers[user] = Peer(self.settings(user))
        assert str(peer.connect()) == "Success", user
        return peer

    def close(self):
        for peer in self.peers.values():
            peer.close()
        self.broker.stop()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    fleet = Fleet(tmp_path_factory.mktemp("probes"))
    yield fleet
    fleet.close()


def drain(peer: Peer, wait: float = 0.4) -> set:
    return set(peer.received(wait=wait))


# --- publishing -----------------------------------------------------------------------

def test_a_node_publishes_nothing_outside_its_own_uplink(fleet):
    hub, n1 = fleet.peer("hub"), fleet.peer("n1")
    hub.subscribe(f"{ROOT}/#")
    drain(hub)
    forged = [up("n2"), up("n2", "photo"), up("n2", "status"), down("n2", "ack"),
              down("n1", "ack"), down("n1"), ROSTER, f"{ROOT}/down/config",
              f"{ROOT}/node/n1", f"{ROOT}/node/n1/upload/batch", f"{ROOT}/node/n1up/batch",
              "rounds/v1/other-site/node/n1/up/batch", "$SYS/broker/version",
              "$share/g/x", "/" + up("n1")]
    for topic in forged:
        for retain in (False, True):
            reason = publish(n1, topic, b"forged", retain)
            assert refused(str(reason) == "Not authorized"), (topic, retain, reason)
    assert not n1.publish(up("n1"), b"own").is_failure  # the control
    assert drain(hub) == {(up("n1"), b"own")}, "a forged message was delivered"


def test_a_node_cannot_plant_or_clear_retained_downlink(fleet):
    hub = fleet.peer("hub")
    retained = {ROSTER: b'{"version": 7}', down("n1"): b'{"zone": "ward-3"}',
                down("n2"): b'{"zone": "ward-3", "node": "n2"}'}
    for topic, payload in retained.items():
        assert not publish(hub, topic, payload, retain=True).is_failure
    n1 = fleet.peer("n1")
    for topic in retained:
        for payload in (b'{"version": 999, "staff": []}', b""):  # forge, or clear it
            assert refused(str(publish(n1, topic, payload, True)) == "Not authorized"), topic
    # Someone subscribing later gets what the hub left: for n1 its own and the site's.
    fresh = fleet.peer("n1")
    fresh.subscribe(f"{ROOT}/down/#")
    fresh.subscribe(down("n1", "#"))
    assert set(fresh.collect(2)) | drain(fresh) == {(ROSTER, retained[ROSTER]),
                                                   (down("n1"), retained[down("n1")])}
    watcher = fleet.peer("hub")
    watcher.subscribe(f"{ROOT}/#")
    assert set(watcher.collect(3)) | drain(watcher) == set(retained.items())


# --- subscribing ----------------------------------------------------------------------

WIDE = ("#", "+/#", "rounds/#", f"{ROOT}/#", f"{ROOT}/node/+/up/#", f"{ROOT}/node/#",
        "$SYS/#", "$SYS/broker/version", f"$share/g/{ROOT}/node/+/up/#", "$share/g/#")


def test_a_node_subscribed_to_everything_reads_only_its_own_downlink(fleet):
    n1, n2, hub = fleet.peer("n1"), fleet.peer("n2"), fleet.peer("hub")
    granted = [n1.subscribe(topic) for topic in WIDE]
    # Mosquitto 2.0.11 grants them all; what it delivers is filtered per message.
    assert all(not rc.is_failure for codes in granted for rc in codes), granted
    drain(n1, 0.3)  # retained messages of its own downlink, from the test before
    traffic = [(n2, up("n2"), b"n2 batch"), (n2, up("n2", "status"), b"n2 status"),
               (hub, down("n2", "ack"), b"n2 ack"), (hub, down("n2"), b"n2 config"),
               (hub, f"{ROOT}/node/n2/down/x", b"n2 other"),
               (hub, down("n1", "ack"), b"n1 ack"), (hub, ROSTER, b"roster")]
    for sender, topic, payload in traffic:
        assert not sender.publish(topic, payload).is_failure, topic
    got = drain(n1, 0.6)
    mine = {(down("n1", "ack"), b"n1 ack"), (ROSTER, b"roster")}
    assert got == mine, got - mine
    TALLY.update(tried=len(WIDE), refused=len(WIDE))
    assert not [t for t, _ in got if t.startswith("$SYS")]


# --- raw MQTT: what paho would not send -----------------------------------------------

def _string(text: bytes) -> bytes:
    return struct.pack(">H", len(text)) + text


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _packet(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + _varint(len(body)) + body


class RawClient:
    """MQTT v5 packets written by hand, over TLS with the site's CA."""

    def __init__(self, fleet, user: str, client_id: str):
        settings = fleet.settings(user)
        context = ssl.create_default_context(cafile=str(fleet.site.ca_crt))
        raw = socket.create_connection(("127.0.0.1", fleet.port), timeout=5)
        self.sock = context.wrap_socket(raw, server_hostname="localhost")
        body = (_string(b"MQTT") + bytes([5, 0xC2]) + struct.pack(">H", 30) + _varint(0)
                + _string(client_id.encode()) + _string(settings.username.encode())
                + _string(settings.password.encode()))
        self.sock.sendall(_packet(0x10, body))
        connack = self.sock.recv(64)
        assert connack[:1] == b"\x20" and connack[3] == 0, connack  # CONNACK, success

    def publish(self, topic: bytes, payload: bytes = b"raw", packet_id: int = 1) -> bytes:
        """Publish at QoS 1; what the broker answers before it goes quiet
        (b"" when it closed the connection)."""
        self.sock.sendall(_packet(0x32, _string(topic) + struct.pack(">H", packet_id)
                                  + _varint(0) + payload))
        answer = b""
        try:
            while True:
                chunk = self.sock.recv(64)
                if not chunk:
                    break
                answer += chunk
        except (socket.timeout, ConnectionResetError, ssl.SSLError):
            pass
        return answer

    def close(self):
        self.sock.close()


BAD_TOPICS = [up("n1").replace("batch", "#").encode(), up("n1").replace("n1", "+").encode(),
              f"{ROOT}/+/n1/up/batch".encode(), up("n1").encode() + b"\x00",
              up("n1").encode() + b"\xff\xfe", b""]


@pytest.mark.parametrize("topic", [*BAD_TOPICS, up("n1").encode()], ids=repr)
def test_a_wildcard_or_malformed_publish_topic_ends_the_connection(fleet, topic):
    """Mosquitto answers DISCONNECT 0x82 (protocol error) or 0x81 (malformed
    packet) at once; the last case is the control: the node's own topic, PUBACK."""
    hub = fleet.peer("hub")
    hub.subscribe(f"{ROOT}/#")
    drain(hub, 0.1)
    fleet.release("n1")
    client = RawClient(fleet, "n1", "n1")
    try:
        client.sock.settimeout(2)
        answer = client.publish(topic)
    finally:
        client.close()
    if topic == up("n1").encode():
        assert answer[:1] == b"\x40" and answer[2:4] == b"\x00\x01", answer  # PUBACK of 1
        assert answer[1] == 2 or answer[4] < 0x80, answer  # no reason code, or a success
        assert drain(hub, 0.3) == {(up("n1"), b"raw")}
        return
    assert refused(answer[:1] == b"\xe0" and answer[2:3] in (b"\x81", b"\x82")), answer
    assert drain(hub, 0.3) == set()


# --- client ids and credentials ---------------------------------------------------------

def test_a_node_cannot_take_the_hubs_client_id_or_session(fleet):
    assert "use_username_as_clientid true" in fleet.site.broker_conf.read_text()
    for user in ("hub", "n1"):
        fleet.release(user)
    ingest = Client(fleet.settings("hub"), HUB_CLIENT_ID)  # as hub/ingest/subscriber.py connects
    try:
        assert str(ingest.connect_persistent()) == "Success"
        ingest.subscribe(f"{ROOT}/node/+/up/#")
        n2 = fleet.peer("n2")
        for client_id in (HUB_CLIENT_ID, "hub", "n2"):
            evil = Client(fleet.settings("n1"), client_id)
            try:
                reason = evil.connect_persistent()
                assert str(reason) == "Success", (client_id, reason)
                evil.subscribe(f"{ROOT}/#")
                assert not n2.publish(up("n2"), client_id.encode()).is_failure
                got = ingest.collect(1)
                assert refused(got == [(up("n2"), client_id.encode())] and not ingest.disconnects
                               and not n2.disconnects), (client_id, got, ingest.disconnects)
                read = {topic for topic, _ in drain(evil, 0.2)}
                assert read <= {down("n1"), ROSTER}, read  # its own downlink, retained
            finally:
                evil.close()
    finally:
        ingest.close()


def test_wrong_and_borrowed_credentials_are_refused(fleet):
    n1, n2 = fleet.settings("n1"), fleet.settings("n2")
    tries = [("n1", n2.password), ("hub", n1.password), ("n1", ""), ("N1", n1.password),
             ("n1 ", n1.password), ("#", n1.password), ("n1/+", n1.password),
             (None, None), ("", n1.password)]
    for username, password in tries:
        settings = MqttSettings("localhost", fleet.port, username, password,
                                tls_ca=str(fleet.site.ca_crt))
        client = Client(settings, HUB_CLIENT_ID)  # and with the hub's client id
        try:
            assert refused(client.connect().is_failure), username
        finally:
            client.close()
    assert not fleet.peer("n1").publish(up("n1"), b"after").is_failure  # n1 itself still can
