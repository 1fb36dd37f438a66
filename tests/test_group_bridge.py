"""A hospital group (issue 16): two campus brokers, each made by ``site init``
(TLS) and bridged by ``site bridge``, to one group broker made by ``group
init`` (TLS); real Mosquitto processes on free loopback ports.

What Mosquitto 2.0.11 does here (checked by these tests): the MQTT v5 bridge
forwards a node's uplinks with their user properties, and a retained status
stays retained at the group; the campus's ACL, which has no entry for the
bridge, does not stop it (the ACL does not apply to the broker's own bridge
session); the group's ACL does apply to the campus's bridge user; with
``cleansession false`` the campus queues uplinks while the group is down,
across a restart of its own broker, and sends them when the link is back;
the bridge checks the group broker's host name against its certificate."""

import json
import os
import queue
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hub.cli.main import main as hub_main
from hub.db import open_db
from hub.group.campuses import campus_dsn
from hub.group.ingest import GroupIngest
from protocol.clock import now_iso
from protocol.records import make_envelope
from provisioning.bridge import bridge_user, load_group, render_bridge, render_group_acl
from provisioning.broker import Mosquitto, password_hash, read_passwords, render_conf
from provisioning.cli import main
from provisioning.site import load_site
from runtime.mqttclient import make_client, session_properties
from runtime.settings import MqttSettings

from .support import free_port, wait_for

SITES = ("campus-a", "campus-b")
OPERATOR = ("operator", "operator-secret")  # test only: every right on the group broker


def run(*args, site_dir=None, ok=True):
    prefix = ["--site-dir", str(site_dir)] if site_dir else []
    result = CliRunner().invoke(main, [*prefix, *map(str, args)])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def up(site, kind="batch", node="n1"):
    return f"rounds/v1/{site}/node/{node}/up/{kind}"


def state(site):
    return f"rounds/v1/{site}/bridge/state"


@dataclass
class Message:
    topic: str
    payload: bytes
    retain: bool
    user: dict = field(default_factory=dict)


class Client:
    """A paho MQTT v5 client over TLS that keeps what it receives."""

    def __init__(self, settings: MqttSettings):
        self.settings = settings
        self.client = make_client(f"{settings.username}-{uuid.uuid4().hex[:6]}", settings)
        self.connacks: queue.Queue = queue.Queue()
        self.subacks: queue.Queue = queue.Queue()
        self.pubacks: dict = {}
        self.acked = threading.Condition()
        self.lock = threading.Lock()
        self.messages: list[Message] = []
        self.client.on_connect = lambda c, u, f, rc, p: self.connacks.put(rc)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subacks.put(rcs)
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish

    def _on_message(self, client, userdata, m):
        user = dict(getattr(m.properties, "UserProperty", None) or [])
        with self.lock:
            self.messages.append(Message(m.topic, m.payload, bool(m.retain), user))

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        with self.acked:
            self.pubacks[mid] = reason_code
            self.acked.notify_all()

    def connect(self, *, clean_start=True, expiry=0):
        self.client.connect(self.settings.host, self.settings.port, clean_start=clean_start,
                            properties=session_properties(expiry) if expiry else None)
        self.client.loop_start()
        reason = self.connacks.get(timeout=10)
        assert not reason.is_failure, reason
        return self

    def subscribe(self, *filters):
        self.client.subscribe([(f, 1) for f in filters])
        assert not any(rc.is_failure for rc in self.subacks.get(timeout=10))
        return self

    def publish(self, topic, payload, *, retain=False, user=None) -> str:
        """Publish at QoS 1; the PUBACK's reason code, in words."""
        props = None
        if user:
            props = Properties(PacketTypes.PUBLISH)
            props.UserProperty = list(user.items())
        info = self.client.publish(topic, payload, qos=1, retain=retain, properties=props)
        with self.acked:
            assert self.acked.wait_for(lambda: info.mid in self.pubacks, 10), "no PUBACK"
            return str(self.pubacks.pop(info.mid))

    def got(self, topic=None, prefix=None) -> list[Message]:
        with self.lock:
            return [m for m in self.messages if (topic is None or m.topic == topic)
                    and (prefix is None or m.topic.startswith(prefix))]

    def wait(self, count, timeout=15.0, **match) -> list[Message]:
        wait_for(lambda: len(self.got(**match)) >= count, timeout,
                 message=f"{count} messages {match} (have {len(self.got(**match))})")
        return self.got(**match)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


class World:
    """The group broker, the campus brokers, and the clients of each."""

    def __init__(self, root: Path):
        self.root, self.clients = root, []
        self.group_dir, self.group_port = root / "group", free_port()
        self.sites, self.brokers = {}, {}

    def group_broker(self) -> Mosquitto:
        g = load_group(self.group_dir)
        return Mosquitto(g.broker_conf, self.group_port, log=self.root / "group.log")

    def campus_broker(self, site) -> Mosquitto:
        s = self.sites[site]
        return Mosquitto(s.broker_conf, s.mqtt_port, log=self.root / f"{site}.log")

    def settings(self, where, user) -> MqttSettings:
        """``where``: "group" or a site; ``user``: group-hub, operator, a bridge user,
        or on a campus hub or n1. Credentials from the files provisioning wrote."""
        if where == "group":
            g = load_group(self.group_dir)
            tls = {"host": "localhost", "port": self.group_port, "tls_ca": str(g.ca_crt)}
            if user == "group-hub":
                return MqttSettings.from_dict(json.loads(g.hub_json.read_text())["mqtt"])
            if user == OPERATOR[0]:
                return MqttSettings.from_dict({**tls, "username": user, "password": OPERATOR[1]})
            site = user.removeprefix("bridge-")
            creds = json.loads(g.credentials(site).read_text())
            return MqttSettings.from_dict({**tls, "username": user,
                                           "password": creds["password"]})
        s = self.sites[where]
        if user == "hub":
            return MqttSettings.from_dict(s.hub_config()["mqtt"])
        node = json.loads((s.bundles_dir / user / "node.json").read_text())["mqtt"]
        return MqttSettings.from_dict({**node, "tls_ca": str(s.ca_crt)})

    def client(self, where, user) -> Client:
        """A new client; the broker takes the user name as client id, so an
        earlier client of the same user there is closed first."""
        for earlier in [c for c in self.clients if c.key == (where, user)]:
            earlier.close()
            self.clients.remove(earlier)
        c = Client(self.settings(where, user))
        c.key = (where, user)
        self.clients.append(c)
        return c

    def group_hub(self) -> Client:
        """The group hub: a persistent session (clean_start False) on every uplink."""
        return self.client("group", "group-hub").connect(clean_start=False, expiry=3600) \
            .subscribe("rounds/v1/+/node/+/up/#", "rounds/v1/+/bridge/state")

    def link_up(self, hub: Client, site, timeout=15.0):
        """Wait until the group hub's latest state of ``site``'s bridge is 1."""
        wait_for(lambda: [m.payload for m in hub.got(topic=state(site))][-1:] == [b"1"],
                 timeout, message=f"{site}'s bridge up at the group")

    def close(self):
        for c in self.clients:
            c.close()
        for b in self.brokers.values():
            b.stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("group")
    w = World(root)
    run("group", "init", w.group_dir, "--name", "Test Hospital Group", "--host", "localhost",
        "--port", w.group_port, "--bind", "127.0.0.1", *[a for s in SITES for a in ("--campus", s)])
    # A test-only operator with every right on the group broker, to try downlinks.
    broker = load_group(w.group_dir).broker_dir
    with open(broker / "passwd", "a") as f:
        f.write(f"{OPERATOR[0]}:{password_hash(OPERATOR[1])}\n")
    with open(broker / "acl", "a") as f:
        f.write(f"\nuser {OPERATOR[0]}\ntopic readwrite rounds/v1/#\n")
    for site in SITES:
        site_dir = root / site
        run("site", "init", "--site", site, "--name", f"Hospital {site}", "--hub-host",
            "localhost", "--mqtt-port", free_port(), "--bind", "127.0.0.1",
            "--hub-db", root / f"{site}-hub.db", site_dir=site_dir)
        run("zone", "add", "ward-1", "--name", "Ward 1", site_dir=site_dir)
        run("node", "add", "n1", "--zone", "ward-1", site_dir=site_dir)
        run("site", "bridge", "--group-ca", w.group_dir / "ca" / "ca.crt", "--credentials",
            w.group_dir / "campuses" / f"{site}.json", "--group-host", "localhost",
            "--group-port", w.group_port, "--restart-timeout", "1", site_dir=site_dir)
        w.sites[site] = load_site(site_dir)
    try:
        w.brokers["group"] = w.group_broker().start()
        for site in SITES:
            w.brokers[site] = w.campus_broker(site).start()
        yield w
    finally:
        w.close()


# --- the bridge carries each campus's uplinks to the group hub ------------------------

def test_each_campus_uplinks_reach_the_group_hub_with_their_site(world):
    hub = world.group_hub()
    for site in SITES:
        world.link_up(hub, site)
    campus_hubs = {site: world.client(site, "hub").connect().subscribe(
        f"rounds/v1/{site}/node/+/up/#") for site in SITES}
    for site in SITES:
        n1 = world.client(site, "n1").connect()
        assert n1.publish(up(site), f"batch from {site}".encode()) == "Success"
        assert n1.publish(up(site, "photo"), b"\xff\xd8jpeg", user={
            "report_id": f"r-{site}", "sha256": "ab" * 32}) == "Success"
        assert n1.publish(up(site, "status"), b'{"state":"online"}', retain=True) == "Success"
    for site in SITES:
        [batch] = hub.wait(1, topic=up(site))
        assert batch.payload == f"batch from {site}".encode()
        [photo] = hub.wait(1, topic=up(site, "photo"))
        assert photo.payload == b"\xff\xd8jpeg"
        assert photo.user == {"report_id": f"r-{site}", "sha256": "ab" * 32}  # v5 properties
        hub.wait(1, topic=up(site, "status"))
        # The campus's own hub still gets everything: the bridge is a second consumer.
        assert [m.topic for m in campus_hubs[site].wait(3)] == [
            up(site), up(site, "photo"), up(site, "status")]
    # The status is retained at the group too: a later subscriber gets each campus's.
    late = world.client("group", OPERATOR[0]).connect().subscribe("rounds/v1/+/node/+/up/status")
    got = late.wait(2)
    assert sorted((m.topic, m.payload, m.retain) for m in got) == [
        (up(site, "status"), b'{"state":"online"}', True) for site in SITES]
    # Nothing arrived at the group under a topic it should not have.
    assert all(m.topic.split("/")[2] in SITES for m in hub.got())


def test_nothing_comes_in_from_the_group(world):
    """The bridge has only an "out" topic: not even a message on the very
    topics it sends out, published on the group broker, reaches the campus."""
    assert [line.split()[2] for line in world.sites["campus-a"].broker_dir.joinpath(
        "bridge.d", "rounds-group.conf").read_text().splitlines()
        if line.startswith("topic ")] == ["out"]
    campus_hub = world.client("campus-a", "hub").connect().subscribe("rounds/v1/campus-a/#")
    time.sleep(0.3)
    campus_hub.messages.clear()  # the retained ones
    operator = world.client("group", OPERATOR[0]).connect()
    # No one at the group, the bridges included, subscribes to a campus's downlinks.
    for topic in ("rounds/v1/campus-a/node/n1/down/config", "rounds/v1/campus-a/down/roster",
                  "rounds/v1/campus-a/node/n1/down/ack"):
        assert operator.publish(topic, b"from the group") == "No matching subscribers", topic
    assert operator.publish(up("campus-a"), b"from the group") == "Success"  # the group hub's
    # The control: the campus hub's subscription works (a node's uplink arrives).
    assert world.client("campus-a", "n1").connect().publish(up("campus-a"), b"local") == "Success"
    campus_hub.wait(1)
    time.sleep(1.0)  # time for anything the bridge would bring in
    assert [(m.topic, m.payload) for m in campus_hub.got()] == [(up("campus-a"), b"local")]


def test_a_campus_cannot_write_as_another_campus_at_the_group(world):
    """The group's ACL applies to campus-a's bridge user: it may write only
    campus-a's uplinks and link state. Its broker is stopped meanwhile (the
    group takes the user name as client id: a second session of the same
    user would take over the bridge's)."""
    hub = world.group_hub()
    world.brokers["campus-a"].stop()
    # Stopping its broker ends the bridge; the group hub sees the link down.
    wait_for(lambda: [m.payload for m in hub.got(topic=state("campus-a"))][-1:] == [b"0"],
             10, message="campus-a's bridge down at the group")
    as_a = world.client("group", bridge_user("campus-a")).connect()
    for topic in (up("campus-b"), up("campus-b", "status"), state("campus-b"),
                  "rounds/v1/campus-a/node/n1/down/config", "rounds/v1/campus-a/down/roster",
                  "rounds/v1/other/node/n1/up/batch"):
        assert as_a.publish(topic, b"forged by campus-a") == "Not authorized", topic
    assert as_a.publish(up("campus-a"), b"own") == "Success"  # the control
    hub.wait(1, topic=up("campus-a"))
    time.sleep(0.5)
    assert not [m for m in hub.got() if m.payload == b"forged by campus-a"]
    as_a.close()
    world.clients.remove(as_a)
    world.brokers["campus-a"] = world.campus_broker("campus-a").start()
    wait_for(lambda: [m.payload for m in hub.got(topic=state("campus-a"))][-1:] == [b"1"],
             15, message="campus-a's bridge back at the group")


def test_uplinks_queue_on_the_campus_while_the_group_is_down(world):
    """Group broker stopped: campus-a's hub gets every uplink at once, the
    campus queues them for the bridge (also across a restart of its own
    broker), and once the group is back its hub's persistent session gets
    them all."""
    n = 20
    hub = world.group_hub()
    world.link_up(hub, "campus-a")
    hub.close()  # its session stays at the group (clean_start False, expiry 1 h)
    world.clients.remove(hub)
    world.brokers["group"].stop()
    campus_hub = world.client("campus-a", "hub").connect().subscribe(up("campus-a"))
    n1 = world.client("campus-a", "n1").connect()
    sent = [f"queued {i}".encode() for i in range(n)]
    for payload in sent[:n // 2]:
        assert n1.publish(up("campus-a"), payload) == "Success"
    assert [m.payload for m in campus_hub.wait(n // 2, timeout=5)] == sent[:n // 2]
    # The campus broker restarts meanwhile: its persistence keeps the bridge's queue.
    world.brokers["campus-a"].stop()
    world.brokers["campus-a"] = world.campus_broker("campus-a").start()
    campus_hub = world.client("campus-a", "hub").connect().subscribe(up("campus-a"))
    n1 = world.client("campus-a", "n1").connect()
    for payload in sent[n // 2:]:
        assert n1.publish(up("campus-a"), payload) == "Success"
    assert [m.payload for m in campus_hub.wait(n // 2, timeout=5)] == sent[n // 2:]
    time.sleep(1.5)  # the bridge keeps trying (restart_timeout 1) and failing
    world.brokers["group"] = world.group_broker().start()  # same port, persistence on
    hub = world.group_hub()
    got = [m.payload for m in hub.wait(n, topic=up("campus-a"))
           if m.payload.startswith(b"queued ")]
    assert sorted(set(got)) == sorted(sent), got
    world.link_up(hub, "campus-a")


def test_uplinks_in_flight_when_the_group_broker_dies_are_sent_again(world):
    """The group broker freezes (SIGSTOP: the bridge's PUBLISHes wait unread
    in its socket, ~750 bytes of Recv-Q in `ss`, and no PUBACK comes back)
    and is killed: the MQTT v5 bridge, whose session the group does not keep
    (Mosquitto 2.0 sends a bridge's CONNECT with no session expiry), still
    sends those uplinks again once the group is back."""
    n = 10
    hub = world.group_hub()
    world.link_up(hub, "campus-a")
    hub.close()
    world.clients.remove(hub)
    group = world.brokers["group"]
    os.kill(group.proc.pid, signal.SIGSTOP)
    try:
        n1 = world.client("campus-a", "n1").connect()
        sent = [f"in flight {i}".encode() for i in range(n)]
        for payload in sent:
            assert n1.publish(up("campus-a"), payload) == "Success"
        time.sleep(0.3)  # the bridge writes them to the frozen broker's socket
    finally:
        group.kill()
    world.brokers["group"] = world.group_broker().start()  # its last saved state
    hub = world.group_hub()
    got = [m.payload for m in hub.wait(n, topic=up("campus-a"))
           if m.payload.startswith(b"in flight ")]
    assert sorted(set(got)) == sorted(sent), got
    world.link_up(hub, "campus-a")


def test_the_bridge_checks_the_group_brokers_host_name(world, tmp_path):
    """A group broker whose certificate does not name the address the bridge
    dials (127.0.0.2; it names localhost and 127.0.0.1) is refused: the
    link never comes up, and the group sees no bridge connect."""
    port = free_port()
    group_dir, site_dir = tmp_path / "group", tmp_path / "campus-c"
    run("group", "init", group_dir, "--name", "Other Group", "--host", "localhost",
        "--port", port, "--bind", "127.0.0.2", "--campus", "campus-c")
    run("site", "init", "--site", "campus-c", "--name", "C", "--hub-host", "localhost",
        "--mqtt-port", free_port(), "--bind", "127.0.0.1", "--hub-db", tmp_path / "hub.db",
        site_dir=site_dir)
    run("site", "bridge", "--group-ca", group_dir / "ca" / "ca.crt", "--credentials",
        group_dir / "campuses" / "campus-c.json", "--group-host", "127.0.0.2",
        "--restart-timeout", "1", site_dir=site_dir)
    site = load_site(site_dir)
    group = Mosquitto(load_group(group_dir).broker_conf, port, log=tmp_path / "group.log")
    campus = Mosquitto(site.broker_conf, site.mqtt_port, log=tmp_path / "campus.log")
    group._accepting = lambda: _accepting("127.0.0.2", port)
    with group, campus:
        wait_for(lambda: "host name verification failed" in
                 (tmp_path / "campus.log").read_text(), 10, message="a refused bridge")
        hub = Client(MqttSettings.from_dict(site.hub_config()["mqtt"])).connect()
        hub.subscribe(state("campus-c"))
        time.sleep(1.5)
        hub.close()
        assert [m.payload for m in hub.got()] in ([b"0"], [])
        assert "bridge-campus-c" not in (tmp_path / "group.log").read_text()


# --- the group hub stores each campus in its own schema -------------------------------

def campus_rows(group_dsn, site, sql):
    db = open_db(campus_dsn(group_dsn, site), migrate=False)
    try:
        return [tuple(row) for row in db.conn.execute(sql)]
    finally:
        db.close()


def test_the_group_hub_stores_each_campus_in_its_own_schema(world, pg_dsn, tmp_path):
    """Both campuses' nodes check the same staff number in at the same zone id
    (the ids a campus chooses are its own); ``rounds-hub group ingest``'s
    GroupIngest, as the group broker's group-hub user, stores each campus's
    record in that campus's schema of one PostgreSQL database, and its status;
    an uplink of a site that is no campus of the group is quarantined in the
    group's own schema. Nothing is sent down from the group."""
    hub_config = json.loads(load_group(world.group_dir).hub_json.read_text())
    assert hub_config["campuses"] == list(SITES)  # written by group init
    ingest = GroupIngest(group_dsn=pg_dsn, campuses=hub_config["campuses"],
                         mqtt=world.settings("group", "group-hub"), photos_dir=tmp_path / "photos")
    thread = threading.Thread(target=ingest.run, daemon=True)
    thread.start()
    try:
        assert ingest.subscribed.wait(15), "the group ingest did not subscribe"
        records = {site: {"id": str(uuid.uuid4()), "type": "checkin", "ts": now_iso(),
                          "staff_id": "D001", "event_id": None, "zone": "ward-1",
                          "method": "portal", "device": None} for site in SITES}
        # The operator watches (the group-hub user is the ingest's: one client id per user)
        operator = world.client("group", OPERATOR[0]).connect().subscribe(
            "rounds/v1/+/bridge/state", "rounds/v1/+/node/+/down/#", "rounds/v1/+/down/#")
        for site in SITES:
            world.link_up(operator, site)
            n1 = world.client(site, "n1").connect()
            assert n1.publish(up(site), make_envelope("n1", [records[site]])) == "Success"
            assert n1.publish(up(site, "status"), json.dumps(
                {"state": "online", "ts": now_iso(), "backlog": 0}).encode(),
                retain=True) == "Success"
        elsewhere = make_envelope("n9", [{**records[SITES[0]], "id": str(uuid.uuid4())}])
        assert operator.publish(up("elsewhere", node="n9"), elsewhere) == "Success"
        for site in SITES:
            wait_for(lambda: campus_rows(pg_dsn, site, "SELECT id, staff_id, zone FROM checkins")
                     == [(records[site]["id"], "D001", "ward-1")], timeout=20,
                     message=f"{site}'s check-in in its schema")
            wait_for(lambda: campus_rows(pg_dsn, site, "SELECT node, state FROM nodes")
                     == [("n1", "online")], message=f"{site}'s node status")
        group_db = open_db(pg_dsn, migrate=False)
        try:
            wait_for(lambda: group_db.conn.execute(
                "SELECT topic, reason FROM quarantine").fetchall() == [
                    (up("elsewhere", node="n9"), "not a campus of this group")],
                message="the stranger's uplink quarantined at the group")
            assert group_db.conn.execute("SELECT count(*) FROM checkins").fetchone()[0] == 0
        finally:
            group_db.close()
        sent_down = [m.topic for m in operator.got() if "/down/" in m.topic]
        assert sent_down == []  # no ack, roster or config from the group hub
    finally:
        ingest.stop()
        thread.join(15)


def _accepting(host, port) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex((host, port)) == 0


# --- the rendered files ---------------------------------------------------------------

def test_without_a_bridge_the_broker_config_is_unchanged(tmp_path):
    args = dict(site="s", port=8883, bind="0.0.0.0", password_file="/b/passwd",
                acl_file="/b/acl", data_dir="/b/data", run_as="mosquitto",
                pid_file="/b/data/mosquitto.pid", username_as_clientid=True,
                tls={"cafile": "/b/ca.crt", "certfile": "/b/s.crt", "keyfile": "/b/s.key"})
    plain = render_conf(**args)
    assert "include_dir" not in plain and plain.endswith("connection_messages true\n")
    assert render_conf(**args, include_dir=None) == plain
    bridged = render_conf(**args, include_dir="/b/bridge.d")
    assert bridged.startswith(plain) and bridged.endswith("\ninclude_dir /b/bridge.d\n")


def test_the_bridge_section():
    text = render_bridge(site="st-mary", host="group.hosp.local", port=8883,
                         cafile="/etc/rounds/site/broker/group-ca.crt",
                         username="bridge-st-mary", password="pw")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines == [
        "connection rounds-group-st-mary", "address group.hosp.local:8883",
        "bridge_protocol_version mqttv50",
        "bridge_cafile /etc/rounds/site/broker/group-ca.crt", "bridge_tls_version tlsv1.2",
        "bridge_insecure false", "remote_username bridge-st-mary", "remote_password pw",
        "remote_clientid bridge-st-mary", "local_clientid bridge.rounds-group",
        "cleansession false", "start_type automatic", "restart_timeout 5 30",
        "keepalive_interval 30", "notifications true",
        "notification_topic rounds/v1/st-mary/bridge/state",
        "topic rounds/v1/st-mary/node/+/up/# out 1"]


def test_the_group_acl():
    lines = [line for line in render_group_acl(["a", "b"]).splitlines()
             if line and not line.startswith("#")]
    assert lines == [
        "user group-hub", "topic read rounds/v1/+/node/+/up/#",
        "topic read rounds/v1/+/bridge/state",
        "user bridge-a", "topic write rounds/v1/a/node/+/up/#",
        "topic write rounds/v1/a/bridge/state",
        "user bridge-b", "topic write rounds/v1/b/node/+/up/#",
        "topic write rounds/v1/b/bridge/state"]


def test_group_init_adds_campuses_and_keeps_the_others(tmp_path):
    group_dir = tmp_path / "group"
    args = ["group", "init", group_dir, "--name", "G", "--host", "group.test"]
    run(*args, "--campus", "a")
    ca = (group_dir / "ca" / "ca.crt").read_bytes()
    a = (group_dir / "campuses" / "a.json").read_text()
    assert "nothing changed" in run(*args, "--campus", "a").output
    result = run(*args, "--campus", "b")
    assert "campuses added: b." in result.output
    group = load_group(group_dir)
    assert group.campuses == ("a", "b")
    assert (group_dir / "ca" / "ca.crt").read_bytes() == ca
    assert (group_dir / "campuses" / "a.json").read_text() == a
    assert sorted(read_passwords(group.broker_dir / "passwd")) == [
        "bridge-a", "bridge-b", "group-hub"]
    for path in (group.hub_json, group.credentials("a"), group.broker_dir / "passwd",
                 group.broker_dir / "acl", group.ca_key, group.broker_dir / "server.key"):
        assert path.stat().st_mode & 0o777 == 0o600, path
    moved = run(*args[:-1], "other.test", "--campus", "c", ok=False)
    assert moved.exit_code == 1 and "host is 'group.test', not 'other.test'" in moved.output
    bad = run(*args, "--campus", "Bad/Site", ok=False)
    assert bad.exit_code == 1 and "--campus 'Bad/Site'" in bad.output
    assert load_group(group_dir).campuses == ("a", "b")


def test_site_bridge_is_idempotent_and_refuses_another_campuses_credentials(tmp_path):
    group_dir, site_dir = tmp_path / "group", tmp_path / "site"
    run("group", "init", group_dir, "--name", "G", "--host", "group.test", "--port", "18884",
        "--campus", "a", "--campus", "b")
    run("site", "init", "--site", "a", "--name", "A", "--hub-host", "localhost",
        "--mqtt-port", "18885", "--hub-db", tmp_path / "hub.db", site_dir=site_dir)
    ca = group_dir / "ca" / "ca.crt"
    wrong = run("site", "bridge", "--group-ca", ca, "--credentials",
                group_dir / "campuses" / "b.json", site_dir=site_dir, ok=False)
    assert wrong.exit_code == 1 and "campus 'b', not of this site 'a'" in wrong.output
    not_ca = run("site", "bridge", "--group-ca", group_dir / "broker" / "server.crt",
                 "--credentials", group_dir / "campuses" / "a.json", site_dir=site_dir, ok=False)
    assert not_ca.exit_code == 1 and "not a CA certificate" in not_ca.output
    site = load_site(site_dir)
    assert not (site.broker_dir / "bridge.d").exists()
    before = site.broker_conf.read_text()
    first = run("site", "bridge", "--group-ca", ca, "--credentials",
                group_dir / "campuses" / "a.json", site_dir=site_dir)
    assert "Restart the broker" in first.output
    conf = (site.broker_dir / "bridge.d" / "rounds-group.conf")
    assert "address group.test:18884" in conf.read_text()  # host and port from the file
    assert conf.stat().st_mode & 0o777 == 0o600  # it holds the bridge's password
    assert site.broker_conf.read_text() == (
        before + f"\n# More sections (the hospital group's bridge: rounds-provision site "
        f"bridge).\ninclude_dir {site.broker_dir.absolute() / 'bridge.d'}\n")
    again = run("site", "bridge", "--group-ca", ca, "--credentials",
                group_dir / "campuses" / "a.json", site_dir=site_dir)
    assert "nothing changed" in again.output
    assert site.broker_conf.read_text().count("include_dir") == 1
    bridged = site.broker_conf.read_text()
    run("site", "init", "--site", "a", "--name", "A", "--hub-host", "localhost",
        "--mqtt-port", "18885", "--hub-db", tmp_path / "hub.db", "--force", site_dir=site_dir)
    assert site.broker_conf.read_text() == bridged  # --force keeps the group bridge


def test_group_ingest_needs_a_postgresql_database_and_its_campuses(tmp_path):
    config = tmp_path / "group-hub.json"
    config.write_text(json.dumps({"mqtt": {}, "campuses": ["a"], "photos_dir": str(tmp_path),
                                  "db": str(tmp_path / "group.db")}))
    result = CliRunner().invoke(hub_main, ["--config", str(config), "group", "ingest"])
    assert result.exit_code == 1 and "postgresql:// DSN" in result.output
    config.write_text(json.dumps({"mqtt": {}, "db": "postgresql://x@127.0.0.1/g"}))
    result = CliRunner().invoke(hub_main, ["--config", str(config), "group", "ingest"])
    assert result.exit_code == 1 and "lacks: campuses, photos_dir" in result.output


def test_a_campus_dsn_names_its_schema_and_keeps_other_options():
    assert campus_dsn("postgresql://g@db/group", "st-mary") == \
        "postgresql://g@db/group?options=-c%20search_path%3D%22site_st-mary%22"
    kept = campus_dsn("postgresql://g@db/group?sslmode=require&options=-c%20work_mem%3D64MB",
                      "north")
    assert kept == ("postgresql://g@db/group?sslmode=require&options=-c%20work_mem%3D64MB"
                    "%20-c%20search_path%3D%22site_north%22")
    for wrong in ("St-Mary", "a;b", "", "-x"):
        with pytest.raises(ValueError):
            campus_dsn("postgresql://g@db/group", wrong)
