"""A real captive network in network namespaces (root; CI runs as root).

    phone ns              node ns                               uplink ns
    eth0  <--veth-->  wlan0 10.42.0.1/24 | eth0 192.0.2.1/30 <--veth--> eth0 192.0.2.2/30
                      rendered nftables, dnsmasq,                lo 198.51.100.10/32
                      `rounds-edge gate`, portal (gunicorn)      HTTP :80 and :8000 "outside"

The phone gets its address from the rendered dnsmasq with a real DHCP client
(busybox udhcpc), then its HTTP request to an outside address lands on the
portal until it is released, after which the same request gets "outside".
Only addresses assigned here are used (TEST-NET-1/2, 10.42.0.0/24).
"""

import json
import re
import shutil
import subprocess
import sys
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from edge.db import open_db
from edge.devices import Devices
from edge.state import NodeState
from protocol.clock import iso
from protocol.pins import hash_pin
from provisioning.nodeconfig import render_node

from .netns import Netns, Process, missing_tools, namespaces, veth, wait_until

ROOT = Path(__file__).resolve().parent.parent
API_URL = "https://portal.rounds.test/api/captive"
OUTSIDE = "198.51.100.10"
NODE_IP = "10.42.0.1"
CURL_DROPPED = 28  # curl's "operation timed out": the SYN went nowhere
GATE_DEADLINE = 5.0


@pytest.fixture(scope="module", autouse=True)
def tools():
    missing = missing_tools("ip", "nft", "dnsmasq", "busybox", "curl")
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: `make test` installs it")


def python_env(**extra) -> dict:
    import os
    return dict(os.environ, PYTHONPATH=str(ROOT), **extra)


def node_settings(tmp_path: Path, uplink: str) -> dict:
    """The node's JSON config: read by the renderer, the gate and the portal."""
    return {
        "site": "test", "node": "n1", "zone": "ward-3", "shape": "ward",
        "db": str(tmp_path / "node.db"),
        "site_secret": "5ec2e7" * 8,
        "wifi": {"interface": "wlan0", "ssid": "Rounds-Staff", "psk": None,
                 "country": "CN", "channel": 6},
        "network": {"address": f"{NODE_IP}/24", "dhcp_range": ["10.42.0.20", "10.42.0.250"],
                    "lease": "15m", "uplink": uplink, "uplink_interface": "eth0",
                    "upstream_dns": "192.0.2.2", "portal_port": 8080,
                    "lease_file": str(tmp_path / "dnsmasq.leases"),
                    "pid_file": str(tmp_path / "dnsmasq.pid")},
        "portal": {"url": f"http://{NODE_IP}/", "api_url": API_URL, "release_seconds": 3600,
                   "leases_file": str(tmp_path / "dnsmasq.leases")},
        "gate": {"interval": 0.2},
    }


def seed_node_db(path: str) -> None:
    """A roster with one staff member and an event on now in the node's zone."""
    db = open_db(path)
    try:
        state = NodeState(db)
        state.put("roster", {"version": "1", "bindings": [], "staff": [
            {"staff_id": "D001", "name": "Dr. Li", "department": "cardiology",
             "pin_hash": hash_pin("2468")}]})
        now = datetime.now(timezone.utc)
        state.put("config", {"version": "1", "node": "n1", "zone": "ward-3",
                             "zone_name": "Ward 3", "events": [{
                                 "id": "e1", "title": "Grand rounds", "kind": "lecture",
                                 "zones": ["ward-3"], "start": iso(now - timedelta(minutes=10)),
                                 "end": iso(now + timedelta(minutes=50)), "credit_hours": 1.0,
                                 "min_presence": 0.75}]})
    finally:
        db.close()


class CaptiveNetwork:
    """The three namespaces with everything running; see the module docstring."""

    def __init__(self, tmp_path: Path, uplink: str, stack: ExitStack):
        self.tmp, self.uplink_mode = tmp_path, uplink
        self.settings = node_settings(tmp_path, uplink)
        self.db_path = self.settings["db"]
        self.lease_file = Path(self.settings["network"]["lease_file"])
        self.phone, self.node, self.uplink = stack.enter_context(
            namespaces("phone", "node", "uplink"))
        self.processes: dict[str, Process] = {}
        self._stack = stack

    def start(self, ip_forward: str | None = None) -> "CaptiveNetwork":
        phone, node, uplink = self.phone, self.node, self.uplink
        veth(node, "wlan0", phone, "eth0")
        veth(node, "eth0", uplink, "eth0")
        node.ip("addr", "add", f"{NODE_IP}/24", "dev", "wlan0")
        node.ip("addr", "add", "192.0.2.1/30", "dev", "eth0")
        node.ip("route", "add", "default", "via", "192.0.2.2")
        uplink.ip("addr", "add", "192.0.2.2/30", "dev", "eth0")
        uplink.ip("addr", "add", f"{OUTSIDE}/32", "dev", "lo")

        config_path = self.tmp / "node.json"
        config_path.write_text(json.dumps(self.settings))
        self.config_path = config_path
        rendered = self.tmp / "rendered"
        render_node(self.settings, rendered)
        node.run("busybox", "sysctl", "-p", rendered / "sysctl.conf")
        if ip_forward is not None:
            node.write_proc("/proc/sys/net/ipv4/ip_forward", ip_forward)
        node.run("nft", "-f", rendered / "nftables.conf")
        seed_node_db(self.db_path)

        # "The outside": two tiny HTTP servers on an address only the uplink has.
        www = self.tmp / "www"
        www.mkdir()
        (www / "index.html").write_text("outside")
        for port in (80, 8000):
            self._process(f"outside-{port}", uplink, [
                sys.executable, "-m", "http.server", str(port), "--bind", OUTSIDE,
                "--directory", www])
        self._process("dnsmasq", node, [
            "dnsmasq", "--keep-in-foreground", f"--conf-file={rendered / 'dnsmasq.conf'}"])
        self._process("gate", node, [sys.executable, "-m", "edge.cli", "--config", config_path,
                                     "gate"], env=python_env())
        self._process("portal", node, [
            sys.executable, "-m", "gunicorn", "--bind", f"{NODE_IP}:8080", "--workers", "2",
            "--access-logfile", "-", "edge.portal:create_app()"],
            env=python_env(ROUNDS_EDGE_CONFIG=str(config_path)))

        for port in (80, 8000):
            wait_until(lambda: uplink.run("curl", "-s", "--max-time", "1",
                                          f"http://{OUTSIDE}:{port}/", check=False).stdout
                       == "outside", 15, what=f"the outside server on port {port}")
        wait_until(lambda: self._alive_or_fail("portal") and node.run(
            "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "1",
            f"http://{NODE_IP}:8080/healthz", check=False).stdout == "200", 30,
            what="the portal under gunicorn")
        wait_until(lambda: self._alive_or_fail("gate") and "gate running"
                   in self.processes["gate"].output(), 15, what="the gate")
        self._alive_or_fail("dnsmasq")
        return self

    def _process(self, name, ns, argv, env=None) -> Process:
        proc = Process(argv, self.tmp / f"{name}.log", ns=ns, env=env, cwd=ROOT)
        self.processes[name] = self._stack.enter_context(proc)
        return proc

    def _alive_or_fail(self, name) -> bool:
        proc = self.processes[name]
        if not proc.alive():
            raise AssertionError(f"{name} exited:\n{proc.output()}")
        return True

    # --- the phone --------------------------------------------------------------

    def dhcp(self) -> dict:
        """A lease from the node's dnsmasq via busybox udhcpc (asking for option
        114, as phones do); the phone's eth0 is configured from it."""
        out = self.tmp / "udhcpc.env"
        script = self.tmp / "udhcpc.sh"
        script.write_text(f'#!/bin/sh\n[ "$1" = bound ] && env > "{out}"\nexit 0\n')
        script.chmod(0o755)
        result = self.phone.run("busybox", "udhcpc", "-i", "eth0", "-f", "-q", "-n",
                                "-t", "10", "-T", "1", "-O", "114", "-s", script,
                                check=False, timeout=60)
        assert result.returncode == 0 and out.exists(), (
            f"no DHCP lease: {result.stdout}{result.stderr}\n"
            f"{self.processes['dnsmasq'].output()}")
        lease = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
        self.phone.ip("addr", "add", f"{lease['ip']}/{lease['mask']}", "dev", "eth0")
        self.phone.ip("route", "add", "default", "via", lease["router"])
        return lease

    def phone_mac(self) -> str:
        link = json.loads(self.phone.ip("-j", "link", "show", "eth0").stdout)
        return link[0]["address"]

    def curl(self, url: str, *args, max_time: float = 3) -> tuple[int, str, str]:
        """(curl's exit code, response headers, body) for ``url`` from the phone."""
        headers, body = self.tmp / "curl.headers", self.tmp / "curl.body"
        for f in (headers, body):
            f.unlink(missing_ok=True)
        result = self.phone.run("curl", "-s", "--max-time", str(max_time), "-D", headers,
                                "-o", body, *args, url, check=False)
        read = lambda f: f.read_text(errors="replace") if f.exists() else ""  # noqa: E731
        return result.returncode, read(headers), read(body)

    def kernel_set(self) -> dict:
        listing = json.loads(self.node.run("nft", "-j", "list", "set", "inet", "rounds",
                                           "released").stdout)
        elems = next(i["set"] for i in listing["nftables"] if "set" in i).get("elem", [])
        return {e["elem"]["val"]: e["elem"] for e in elems}

    def lands_on_portal(self, url=f"http://{OUTSIDE}/") -> bool:
        code, headers, body = self.curl(url)
        return code == 0 and "server: gunicorn" in headers.lower() and "outside" not in body

    def reaches_outside(self, url=f"http://{OUTSIDE}/") -> bool:
        code, _, body = self.curl(url)
        return code == 0 and body == "outside"


@pytest.fixture
def captive(tmp_path):
    with ExitStack() as stack:
        yield lambda uplink="intranet", **kw: CaptiveNetwork(tmp_path, uplink, stack).start(**kw)


def release_in_db(db_path: str, mac: str, seconds: int = 3600) -> None:
    """What the portal does after a good bind: write the node DB, nothing else."""
    db = open_db(db_path)
    try:
        Devices(db, b"").release(mac, seconds)
    finally:
        db.close()


def revoke_in_db(db_path: str, mac: str) -> None:
    db = open_db(db_path)
    try:
        with db.atomic():
            db.conn.execute("DELETE FROM released WHERE mac = ?", (mac,))
    finally:
        db.close()


def test_phone_lease_carries_option_114_and_dns_answers_the_probes(captive):
    net = captive()
    lease = net.dhcp()
    assert bytes.fromhex(lease["opt114"]).decode() == API_URL
    assert 20 <= int(lease["ip"].rsplit(".", 1)[1]) <= 250 and lease["ip"].startswith("10.42.0.")
    assert lease["router"] == NODE_IP and lease["dns"].split() == [NODE_IP]
    assert int(lease["lease"]) == 900  # 15m
    mac = net.phone_mac()
    assert f" {mac} {lease['ip']} " in net.lease_file.read_text(), "the portal reads this file"

    def resolve(name):
        out = net.phone.run("busybox", "nslookup", name, NODE_IP, check=False).stdout
        return re.findall(r"Address:\s*(\d+\.\d+\.\d+\.\d+)$", out, re.M)

    assert NODE_IP in resolve("captive.apple.com")
    assert NODE_IP in resolve("connectivitycheck.gstatic.com")
    assert "131.107.255.255" in resolve("dns.msftncsi.com")
    assert NODE_IP in resolve("portal.rounds.test")  # option 114's host is the node
    # AAAA of a probe name is answered by the node at once (empty), not forwarded.
    aaaa = net.phone.run("busybox", "nslookup", "-type=AAAA", "captive.apple.com", NODE_IP,
                         check=False, timeout=3).stdout
    assert "Address:" in aaaa and not re.search(r"Address:\s*[0-9a-f:]*:[0-9a-f:]*$", aaaa, re.M)


def test_released_mac_gets_through_and_revoked_mac_is_captive_again(captive):
    """The gate alone moves the kernel: the DB says released -> outside reachable."""
    net = captive("intranet")
    net.dhcp()
    mac = net.phone_mac()

    assert net.lands_on_portal(), "an unreleased phone's HTTP must land on the portal"
    assert net.lands_on_portal(f"http://{NODE_IP}/"), "port 80 of the node is the portal"
    code, _, body = net.curl(f"http://{OUTSIDE}:8000/", max_time=2)
    assert code == CURL_DROPPED and body == "", "an unreleased phone's other traffic is dropped"
    assert mac not in net.kernel_set()

    release_in_db(net.db_path, mac, 3600)
    wait_until(net.reaches_outside, GATE_DEADLINE, what="the released phone to reach outside")
    assert net.reaches_outside(f"http://{OUTSIDE}:8000/")
    element = net.kernel_set()[mac]
    assert 3590 <= element["expires"] <= 3600 and element["timeout"] <= 3600

    revoke_in_db(net.db_path, mac)
    wait_until(lambda: mac not in net.kernel_set(), GATE_DEADLINE, what="the gate to remove it")
    assert net.lands_on_portal()
    code, _, _ = net.curl(f"http://{OUTSIDE}:8000/", max_time=2)
    assert code == CURL_DROPPED


def test_uplink_none_keeps_even_released_phones_on_the_node(captive):
    # Forwarding on in the kernel: only the ruleset keeps the phone in.
    net = captive("none", ip_forward="1")
    net.dhcp()
    mac = net.phone_mac()
    out = net.phone.run("busybox", "nslookup", "example.org", NODE_IP, check=False).stdout
    assert re.search(rf"Address:\s*{re.escape(NODE_IP)}$", out, re.M), out

    release_in_db(net.db_path, mac, 3600)
    wait_until(lambda: mac in net.kernel_set(), GATE_DEADLINE, what="the gate to add it")
    code, _, body = net.curl(f"http://{OUTSIDE}/", max_time=2)
    assert code == CURL_DROPPED and body == "", "uplink = none: nothing leaves the node"
    assert net.lands_on_portal(f"http://{NODE_IP}/"), "the portal stays reachable"


def test_bind_through_the_portal_releases_the_phone(captive):
    net = captive("intranet")
    net.dhcp()
    assert net.lands_on_portal(), "before binding, outside HTTP lands on the portal"
    assert not net.reaches_outside()

    jar = str(net.tmp / "cookies")
    code, headers, page = net.curl(f"http://{NODE_IP}/", "-c", jar, "-b", jar, "-L")
    assert code == 0, headers
    form = re.search(r'<form[^>]*action="([^"]*/bind)"[^>]*>(.*?)</form>', page, re.S)
    assert form, f"the portal's home page has no bind form (action .../bind):\n{page[:2000]}"
    token = re.search(r'name="csrf_token"\s+value="([^"]+)"|value="([^"]+)"\s+name="csrf_token"',
                      form.group(2))
    assert token, "the bind form carries no csrf_token"
    action = form.group(1)
    url = action if action.startswith("http") else f"http://{NODE_IP}{action}"
    code, headers, page = net.curl(url, "-c", jar, "-b", jar, "-L",
                                   "--data-urlencode", f"csrf_token={token.group(1) or token.group(2)}",
                                   "--data-urlencode", "staff_id=D001",
                                   "--data-urlencode", "pin=2468")
    assert code == 0 and re.search(r"^HTTP/\S+ [23]\d\d", headers, re.M), headers + page

    wait_until(net.reaches_outside, GATE_DEADLINE, what="the bound phone to reach outside")
    assert net.phone_mac() in net.kernel_set()


# --- the gate on its own ----------------------------------------------------------

@pytest.fixture
def gate_node(tmp_path):
    """A node namespace with the rendered ruleset loaded and a config for the gate."""
    with Netns("gate") as node:
        settings = node_settings(tmp_path, "none")
        render_node(settings, tmp_path / "rendered")
        config = tmp_path / "node.json"
        config.write_text(json.dumps(settings))
        yield node, tmp_path / "rendered" / "nftables.conf", config, settings["db"]


def run_gate(node: Netns, config: Path, *args, prefix=(), timeout=30):
    return subprocess.run(node.exec_argv([*prefix, sys.executable, "-m", "edge.cli", "--config",
                                          config, "gate", *args]),
                          capture_output=True, text=True, env=python_env(), cwd=ROOT,
                          timeout=timeout)


def kernel_set(node: Netns) -> dict:
    listing = json.loads(node.run("nft", "-j", "list", "set", "inet", "rounds",
                                  "released").stdout)
    elems = next(i["set"] for i in listing["nftables"] if "set" in i).get("elem", [])
    return {e["elem"]["val"]: e["elem"] for e in elems}


def test_gate_fails_fast_and_clearly(gate_node):
    node, ruleset, config, _ = gate_node
    result = run_gate(node, config, "--once")
    assert result.returncode == 2
    assert "inet rounds released is not there" in result.stderr
    assert "nft -f /etc/rounds/nftables.conf" in result.stderr

    node.run("nft", "-f", ruleset)
    result = run_gate(node, config, "--once", "--nft", "/nonexistent/nft")
    assert result.returncode == 2 and "nft not found" in result.stderr
    assert "nftables" in result.stderr

    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is missing: `make test` installs it"
    result = run_gate(node, config, "--once", prefix=(
        setpriv, "--bounding-set", "-net_admin", "--inh-caps", "-net_admin"))
    assert result.returncode == 2 and "CAP_NET_ADMIN" in result.stderr, result.stderr

    assert run_gate(node, config, "--once").returncode == 0


def test_gate_loads_updates_and_removes(gate_node):
    node, ruleset, config, db_path = gate_node
    node.run("nft", "-f", ruleset)
    a, b, gone, stray = ("02:00:00:00:00:0a", "02:00:00:00:00:0b", "02:00:00:00:00:0c",
                         "02:00:00:00:00:0d")
    release_in_db(db_path, a, 600)
    release_in_db(db_path, b, 7200)
    release_in_db(db_path, gone, 60)
    db = open_db(db_path)
    with db.atomic():  # one expired, one not a MAC at all: neither reaches nft
        db.conn.execute("UPDATE released SET until = ? WHERE mac = ?",
                        (iso(datetime.now(timezone.utc) - timedelta(seconds=1)), gone))
        db.conn.execute("INSERT INTO released (mac, until) VALUES (?, ?)",
                        ("aa:bb } ; flush ruleset", iso(datetime.now(timezone.utc)
                                                         + timedelta(hours=1))))
    db.close()
    node.run("nft", "add", "element", "inet", "rounds", "released", f"{{ {stray} timeout 1h }}")

    result = run_gate(node, config, "--once")
    assert result.returncode == 0, result.stderr
    kernel = kernel_set(node)
    assert set(kernel) == {a, b}, kernel
    assert 590 <= kernel[a]["expires"] <= 600 and 7190 <= kernel[b]["expires"] <= 7200
    assert node.run("nft", "list", "tables").stdout.strip() == "table inet rounds"

    log = config.parent / "gate.log"
    with Process([sys.executable, "-m", "edge.cli", "--config", config, "gate"], log, ns=node,
                 env=python_env(), cwd=ROOT) as gate:
        wait_until(lambda: "gate running" in gate.output(), 15, what="the gate")
        release_in_db(db_path, a, 5000)  # extended: the kernel timeout follows
        wait_until(lambda: kernel_set(node)[a]["expires"] > 4000, GATE_DEADLINE,
                   what="the extended timeout")
        revoke_in_db(db_path, b)
        wait_until(lambda: b not in kernel_set(node), GATE_DEADLINE, what="b removed")
        node.run("nft", "-f", ruleset)  # a firewall reload empties the set ...
        wait_until(lambda: set(kernel_set(node)) == {a}, GATE_DEADLINE, what="refilled set")
        assert gate.alive(), gate.output()
    assert log.read_text().count("is not a MAC") == 1, "said once, not every pass"


def test_gate_needs_cap_net_admin_and_nothing_else(gate_node, tmp_path):
    """The gate holding CAP_NET_ADMIN alone (every other capability dropped from
    the bounding set, as rounds-gate.service does) does its job, and without it
    refuses clearly. It stays uid 0 here so that it can read this checkout,
    wherever CI cloned it; the unit also runs it as the unprivileged user."""
    node, ruleset, _, _ = gate_node
    node.run("nft", "-f", ruleset)
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is missing: `make test` installs it"
    db_path = tmp_path / "gate-only" / "node.db"
    db_path.parent.mkdir()
    release_in_db(str(db_path), "02:00:00:00:00:0e", 900)
    config = tmp_path / "gate-only" / "node.json"
    config.write_text(json.dumps({"node": "n1", "db": str(db_path)}))
    only_net_admin = (setpriv, "--bounding-set", "-all,+net_admin", "--inh-caps", "-all",
                      "--no-new-privs")
    result = run_gate(node, config, "--once", prefix=only_net_admin)
    assert result.returncode == 0, result.stderr
    assert set(kernel_set(node)) == {"02:00:00:00:00:0e"}
    no_caps = (setpriv, "--bounding-set", "-all", "--inh-caps", "-all", "--no-new-privs")
    result = run_gate(node, config, "--once", prefix=no_caps)
    assert result.returncode == 2 and "CAP_NET_ADMIN" in result.stderr


def test_netns_helper_leaves_nothing_behind(tmp_path):
    """A namespace goes away with what runs in it, even when the test fails."""
    with pytest.raises(RuntimeError, match="boom"):
        with Netns("leak") as ns:
            name = ns.name
            sleeper = Process(["sleep", "600"], tmp_path / "sleep.log", ns=ns).start()
            assert name in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                          text=True).stdout
            raise RuntimeError("boom")
    assert sleeper.proc.wait(10) is not None
    assert name not in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                      text=True).stdout
