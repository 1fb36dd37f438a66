"""A real sniff in network namespaces (root; CI runs as root).

    phone ns                 node ns
    eth0  <----veth---->  wlan0 10.42.0.1/24
    frames sent with a    `rounds-edge presence` (real process, real BPF
    raw AF_PACKET socket  filter on a packet socket), dnsmasq for the
    or busybox udhcpc     lease-exchange test

The bound phone (its MAC bound in the roster with the node's site secret)
gets an interval, a presence check-in and a release; unbound devices only
count toward occupancy and leave no MAC, HMAC or host name in the node
database files (WAL included).
"""

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import raw

from edge.db import open_db
from edge.outbox import Outbox
from edge.state import NodeState
from protocol.clock import iso
from protocol.pins import device_id, hash_pin
from provisioning.nodeconfig import render_node

from .netns import Netns, Process, missing_tools, namespaces, veth, wait_until
from .test_presence_parse import arp, dhcp

ROOT = Path(__file__).resolve().parent.parent
SECRET_HEX = "5ec2e7" * 8
SECRET = bytes.fromhex(SECRET_HEX)
NODE_IP = "10.42.0.1"
BOUND = "a6:3f:0c:11:7e:42"
UNBOUND = ["fa:16:3e:5a:00:01", "fa:16:3e:5a:00:02", "fa:16:3e:5a:00:03"]
UNBOUND_HOSTNAME = b"Nurse-Zhang-Galaxy"
BUCKET = 3  # seconds per occupancy count in these tests (60 on a node)
AWAY = 4

SENDER = """
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
for frame in sys.stdin.read().split():
    s.send(bytes.fromhex(frame))
"""


@pytest.fixture(scope="module", autouse=True)
def tools():
    missing = missing_tools("ip", "dnsmasq", "busybox")
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: `make test` installs it")


def python_env() -> dict:
    return dict(os.environ, PYTHONPATH=str(ROOT))


def seed(db_path, zone="ward-3"):
    """Roster: D001's phone is BOUND (a hub binding); an event on now."""
    db = open_db(db_path)
    try:
        state = NodeState(db)
        state.put("roster", {"version": "1", "staff": [
            {"staff_id": "D001", "name": "Dr. Li", "department": "cardiology",
             "pin_hash": hash_pin("2468")}],
            "bindings": [{"device": device_id(SECRET, BOUND), "staff_id": "D001"}]})
        now = datetime.now(timezone.utc)
        state.put("config", {"version": "1", "node": "n1", "zone": zone, "events": [{
            "id": "e1", "title": "Grand rounds", "kind": "lecture", "zones": [zone],
            "start": iso(now - timedelta(minutes=10)), "end": iso(now + timedelta(minutes=50)),
            "credit_hours": 1.0, "min_presence": 0.75}]})
    finally:
        db.close()


class SniffNet:
    """phone and node namespaces, a veth between them, the node's config."""

    def __init__(self, tmp_path: Path, phone: Netns, node: Netns, presence: dict | None = None):
        self.tmp, self.phone, self.node = tmp_path, phone, node
        veth(node, "wlan0", phone, "eth0")
        node.ip("addr", "add", f"{NODE_IP}/24", "dev", "wlan0")
        self.db_path = tmp_path / "node.db"
        seed(self.db_path)
        self.settings = {
            "site": "test", "node": "n1", "zone": "ward-3", "shape": "hall",
            "db": str(self.db_path), "site_secret": SECRET_HEX,
            "wifi": {"interface": "wlan0", "ssid": "Rounds-Staff", "psk": None},
            "presence": {"minute": BUCKET, "refresh": 1, "away_after": AWAY,
                         **(presence or {})},
        }
        self.config = tmp_path / "node.json"
        self.config.write_text(json.dumps(self.settings))

    def presence_argv(self, *extra):
        return [sys.executable, "-m", "edge.cli", "--config", self.config, "presence", *extra]

    def start_presence(self, stack) -> Process:
        proc = Process(self.presence_argv(), self.tmp / "presence.log", ns=self.node,
                       env=python_env(), cwd=ROOT)
        stack.append(proc)
        proc.start()
        wait_until(lambda: "presence running" in proc.output() or not proc.alive(), 20,
                   what="rounds-edge presence to start")
        assert proc.alive(), proc.output()
        return proc

    def send(self, frames) -> None:
        self.phone.run(sys.executable, "-c", SENDER, "eth0",
                       input=" ".join(f.hex() for f in frames))

    def records(self, type_=None) -> list[dict]:
        outbox = Outbox(self.db_path)
        try:
            found = [item.record for item in outbox.pending(10_000)]
        finally:
            outbox.close()
        return [r for r in found if type_ is None or r["type"] == type_]

    def db_bytes(self) -> bytes:
        return b"".join(p.read_bytes() for p in self.tmp.glob("node.db*"))


@pytest.fixture
def net(tmp_path):
    processes = []
    with namespaces("phone", "node") as (phone, node):
        try:
            yield SniffNet(tmp_path, phone, node), processes
        finally:
            for proc in processes:
                proc.stop()


def wait_for_bucket_start(margin=0.3):
    """Sleep until just after an occupancy bucket starts (the node's clock is ours)."""
    now = time.time()
    time.sleep(BUCKET - now % BUCKET + margin)
    return int(time.time() // BUCKET * BUCKET)


def test_bound_phone_interval_checkin_and_unbound_only_counted(net):
    n, processes = net
    presence = n.start_presence(processes)

    bucket = wait_for_bucket_start()
    n.send([dhcp("discover", mac=BOUND, options=[("hostname", b"Dr-Li-iPhone")]),
            dhcp("request", mac=BOUND, options=[("requested_addr", "10.42.0.23")]),
            arp(mac=BOUND, psrc="10.42.0.23", pdst=NODE_IP),
            dhcp("discover", mac=UNBOUND[0], options=[("hostname", UNBOUND_HOSTNAME)]),
            arp(mac=UNBOUND[1], psrc="10.42.0.77", pdst=NODE_IP),
            arp(mac=UNBOUND[1], psrc="10.42.0.77", pdst=NODE_IP),
            dhcp("request", mac=UNBOUND[2], options=[("requested_addr", "10.42.0.78")]),
            # the node must not count these: a server's reply, other traffic
            dhcp("offer", mac="fa:16:3e:5a:00:99", op=2, sport=67, dport=68),
            raw(Ether(src="fa:16:3e:5a:00:98", dst="ff:ff:ff:ff:ff:ff")
                / IP(src="10.42.0.98", dst="10.42.0.255") / UDP(sport=5000, dport=9999))])

    [opened] = wait_until(lambda: n.records("presence"), 10, what="the bound phone's interval")
    assert opened["device"] == device_id(SECRET, BOUND) and opened["staff_id"] == "D001"
    assert opened["zone"] == "ward-3"
    [checkin] = wait_until(lambda: n.records("checkin"), 5, what="the presence check-in")
    assert checkin["method"] == "presence" and checkin["event_id"] == "e1"
    assert checkin["staff_id"] == "D001" and checkin["device"] == opened["device"]

    minute = iso(datetime.fromtimestamp(bucket, timezone.utc))
    counted = wait_until(lambda: [r for r in n.records("occupancy") if r["minute"] == minute],
                         BUCKET + 5, what="the occupancy of the bucket")
    assert [r["devices"] for r in counted] == [4], "1 bound + 3 unbound; not the reply's"

    # Silent for AWAY seconds: the interval closes, same id.
    [closed] = wait_until(lambda: [r for r in n.records("presence") if r["closed"]], AWAY + 5,
                          what="the interval to close")
    assert closed["id"] == opened["id"] and closed["first_seen"] == opened["first_seen"]
    assert len(n.records("presence")) == 1 and len(n.records("checkin")) == 1
    assert presence.alive(), presence.output()
    presence.stop()
    assert presence.proc.returncode == 0, presence.output()

    # Privacy: nothing of the unbound devices in the database files, WAL included.
    blobs = n.db_bytes()
    for mac in UNBOUND:
        for needle in (mac, mac.upper(), mac.replace(":", ""), device_id(SECRET, mac)):
            assert needle.encode() not in blobs, f"{needle} is stored"
        assert bytes.fromhex(mac.replace(":", "")) not in blobs
    assert UNBOUND_HOSTNAME not in blobs and b"Dr-Li-iPhone" not in blobs
    assert device_id(SECRET, BOUND).encode() in blobs, "the grep finds what is there"
    db = open_db(n.db_path)
    try:
        assert db.conn.execute("SELECT mac FROM released").fetchall() == [(BOUND,)]
        assert db.conn.execute("SELECT count(*) FROM presence_open").fetchone()[0] == 0
    finally:
        db.close()
    log = presence.output()
    assert "dropped by the kernel" in log and " 0 dropped" in log, log
    for mac in UNBOUND + [BOUND]:
        assert mac not in log and device_id(SECRET, mac) not in log


def test_a_real_dnsmasq_lease_exchange_is_a_sighting(net):
    """busybox udhcpc in the phone namespace gets a lease from dnsmasq (the
    node's rendered config) in the node namespace: the bound phone's DHCP
    DISCOVER/REQUEST alone open its interval and check it in."""
    n, processes = net
    n.phone.ip("link", "set", "eth0", "address", BOUND)
    settings = {**n.settings, "network": {
        "address": f"{NODE_IP}/24", "dhcp_range": ["10.42.0.20", "10.42.0.250"],
        "lease": "15m", "uplink": "none", "lease_file": str(n.tmp / "dnsmasq.leases"),
        "pid_file": str(n.tmp / "dnsmasq.pid")}}
    settings["shape"] = "hall"
    render_node(settings, n.tmp / "rendered")
    dnsmasq = Process(["dnsmasq", "--keep-in-foreground",
                       f"--conf-file={n.tmp / 'rendered' / 'dnsmasq.conf'}"],
                      n.tmp / "dnsmasq.log", ns=n.node)
    processes.append(dnsmasq)
    dnsmasq.start()
    n.start_presence(processes)
    assert n.records("presence") == []

    script = n.tmp / "udhcpc.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    result = n.phone.run("busybox", "udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", "10",
                         "-T", "1", "-s", script, check=False, timeout=60)
    assert result.returncode == 0, f"no lease: {result.stderr}{dnsmasq.output()}"
    assert f" {BOUND} " in (n.tmp / "dnsmasq.leases").read_text()

    [opened] = wait_until(lambda: n.records("presence"), 10, what="the interval")
    assert opened["device"] == device_id(SECRET, BOUND) and not opened["closed"]
    [checkin] = wait_until(lambda: n.records("checkin"), 5, what="the presence check-in")
    assert checkin["method"] == "presence"


def test_the_kernel_filter_passes_only_dhcp_and_arp_from_others(net):
    """Capture on its own: 300 non-matching frames and the node's own
    outgoing ARP never reach the socket; the 4 matching ones do."""
    n, _ = net
    probe = """
import json, subprocess, sys, time
from edge.presence.capture import Capture
with Capture("wlan0") as cap:
    print("ready", flush=True)
    sys.stdin.readline()
    # the node's own ARP request goes out on wlan0 (outgoing: filtered out)
    subprocess.run(["ip", "neigh", "flush", "dev", "wlan0"])
    subprocess.run(["busybox", "ping", "-c", "1", "-W", "1", "10.42.0.200"],
                   capture_output=True)
    frames = []
    deadline = time.time() + 1.5
    while time.time() < deadline:
        frames += cap.read_burst(0.2)
    packets, drops = cap.stats()
    print(json.dumps({"frames": [f.hex() for f, _ in frames], "packets": packets,
                      "drops": drops}), flush=True)
"""
    proc = subprocess.Popen(n.node.exec_argv([sys.executable, "-c", probe]),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env=python_env(), cwd=ROOT)
    try:
        assert proc.stdout.readline().strip() == "ready"
        noise = [raw(Ether(src=UNBOUND[0], dst="ff:ff:ff:ff:ff:ff")
                     / IP(src="10.42.0.50", dst="10.42.0.255") / UDP(sport=4000 + i, dport=9999))
                 for i in range(300)]
        matching = [arp(mac=UNBOUND[0]), dhcp("discover", mac=UNBOUND[1]),
                    dhcp("request", mac=UNBOUND[2]), arp(mac=UNBOUND[1], op=2)]
        n.send(noise[:150] + matching[:2] + noise[150:] + matching[2:])
        proc.stdin.write("go\n")
        proc.stdin.flush()
        result = json.loads(proc.stdout.readline())
    finally:
        proc.kill()
        proc.wait(10)
    assert result["frames"] == [f.hex() for f in matching]
    assert result["packets"] == 4 and result["drops"] == 0


def test_missing_interface_exits_2_with_a_clear_message(net):
    n, _ = net
    result = n.node.run(*n.presence_argv("--interface", "wlan9"), check=False,
                        env=python_env(), cwd=ROOT)
    assert result.returncode == 2, result.stderr
    assert "'wlan9' does not exist" in result.stderr and "presence.interface" in result.stderr


def test_without_cap_net_raw_exits_2_with_a_clear_message(net):
    n, _ = net
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is missing: `make test` installs it"
    no_caps = (setpriv, "--bounding-set", "-all", "--inh-caps", "-all", "--no-new-privs")
    result = n.node.run(*no_caps, *n.presence_argv(), check=False, env=python_env(), cwd=ROOT)
    assert result.returncode == 2, result.stderr
    assert "CAP_NET_RAW" in result.stderr and "rounds-presence.service" in result.stderr
    # ... and holding CAP_NET_RAW alone (as rounds-presence.service does) is enough.
    only_raw = (setpriv, "--bounding-set", "-all,+net_raw", "--inh-caps", "-all",
                "--no-new-privs")
    proc = Process([*only_raw, *n.presence_argv()], n.tmp / "raw-only.log", ns=n.node,
                   env=python_env(), cwd=ROOT)
    with proc:
        wait_until(lambda: "presence running" in proc.output() or not proc.alive(), 20,
                   what="presence with CAP_NET_RAW only")
        assert proc.alive(), proc.output()
        n.send([arp(mac=BOUND)])
        wait_until(lambda: n.records("presence"), 10, what="a sighting with CAP_NET_RAW only")
    assert proc.proc.returncode == 0, proc.output()


def test_interface_down_is_waited_out_and_a_dead_sniffer_is_not_silent(net):
    """The interface going down and up (hostapd restarting the radio) is
    waited out; if the capture thread dies (here: its interface is deleted
    under it), the process says so and exits non-zero for systemd to restart it."""
    n, processes = net
    presence = n.start_presence(processes)
    n.node.ip("link", "set", "wlan0", "down")
    wait_until(lambda: "went down" in presence.output(), 10, what="the warning")
    n.node.ip("link", "set", "wlan0", "up")
    wait_until(lambda: n.send([arp(mac=BOUND)]) or n.records("presence"), 10,
               what="a sighting after the interface came back")
    assert presence.alive(), presence.output()

    n.node.ip("link", "del", "wlan0")
    wait_until(lambda: not presence.alive(), 15, what="the process to exit")
    assert presence.proc.returncode == 1, presence.output()
    assert "the capture thread stopped (CaptureError: network interface 'wlan0' " \
           "disappeared)" in presence.output()
