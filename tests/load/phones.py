"""A lecture hall of phones, run inside the test's "phone" network namespace.

    python -m tests.load.phones plan.json      (in the namespace; root)

Each phone is a macvlan interface on the namespace's end of the veth, with
its own MAC, so to the node it is a separate station on the Wi-Fi. At its
``arrive`` time (epoch seconds) a phone:

1. comes up and gets a lease from the node's dnsmasq with a real DHCP client
   (busybox udhcpc: DISCOVER, REQUEST), and takes that address;
2. opens the portal over HTTP from that address and interface (the portal
   knows it by the MAC behind the address in dnsmasq's lease file) and does
   what its person would: ``tap`` checks in with one tap when the page offers
   it (presence may already have checked the phone in: then the page says so
   and there is nothing to tap), ``bind`` binds the phone with staff number
   and PIN (a first-timer), ``none`` (a visitor's phone) only looks;
3. while in the room, sends an ARP request to the node every ``heartbeat``
   seconds, as an idle phone on Wi-Fi does now and then.

At its ``leave`` time (or never) it goes silent and its interface is deleted.
At ``until`` everything stops and one JSON document is written to ``results``:
per phone its address, the portal's answers, and when it really arrived and left.

The plan (JSON): ``node_ip``, ``portal_port``, ``lower`` (the veth end),
``heartbeat``, ``until``, ``workdir``, ``results`` and ``phones``: a list of ``{"name",
"mac", "arrive", "leave" (or null), "action", "staff_id", "pin"}``.
"""

import http.client
import json
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

from scapy.layers.l2 import ARP, Ether
from scapy.packet import raw

_TOKEN = re.compile(rb'name="csrf_token"\s+value="([^"]+)"')
UDHCPC_SCRIPT = '#!/bin/sh\n[ "$1" = bound ] && env > "{out}/$interface.lease"\nexit 0\n'


def sh(*argv, timeout=30) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          timeout=timeout)


class BoundConnection(http.client.HTTPConnection):
    """HTTP from one phone: its address, and out of its own interface
    (SO_BINDTODEVICE), so the frames carry its MAC."""

    def __init__(self, host, port, interface: str, source: str, timeout=20):
        super().__init__(host, port, timeout=timeout)
        self.interface, self.source = interface, source

    def connect(self):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.interface.encode())
        sock.bind((self.source, 0))
        sock.connect((self.host, self.port))
        self.sock = sock


class Phone:
    def __init__(self, spec: dict, plan: dict):
        self.spec, self.plan = spec, plan
        self.name, self.mac = spec["name"], spec["mac"]
        self.ip = None
        self.result = {"name": self.name, "mac": self.mac, "ip": None, "arrived_at": None,
                       "left_at": None, "http": [], "outcome": None, "error": None}

    # --- joining the Wi-Fi -------------------------------------------------------

    def create(self) -> None:
        """The interface exists (down) from the start: coming up is arriving."""
        result = sh("ip", "link", "add", self.name, "link", self.plan["lower"], "address",
                    self.mac, "type", "macvlan", "mode", "bridge")
        if result.returncode != 0:
            raise RuntimeError(f"macvlan {self.name}: {result.stderr}")

    def arrive(self) -> None:
        self.result["arrived_at"] = time.time()
        sh("ip", "link", "set", self.name, "up")
        workdir = Path(self.plan["workdir"])
        lease_file = workdir / f"{self.name}.lease"
        dhcp = sh("busybox", "udhcpc", "-i", self.name, "-f", "-q", "-n", "-t", "8", "-T", "1",
                  "-s", workdir / "udhcpc.sh", timeout=60)
        if dhcp.returncode != 0 or not lease_file.exists():
            raise RuntimeError(f"no DHCP lease: {dhcp.stdout[-300:]}{dhcp.stderr[-300:]}")
        lease = dict(line.split("=", 1) for line in lease_file.read_text().splitlines()
                     if "=" in line)
        self.ip = lease["ip"]
        added = sh("ip", "addr", "add", f"{self.ip}/{lease['mask']}", "dev", self.name)
        if added.returncode != 0:
            raise RuntimeError(f"ip addr add {self.ip}: {added.stderr}")
        self.result["ip"] = self.ip

    def leave(self) -> None:
        self.result["left_at"] = time.time()
        sh("ip", "link", "del", self.name)

    # --- the portal -----------------------------------------------------------------

    def request(self, method, path, body=None, cookie=None):
        conn = BoundConnection(self.plan["node_ip"], self.plan["portal_port"], self.name,
                               self.ip)
        headers = {"User-Agent": "Mozilla/5.0 (Linux; Android 14) load-test phone"}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if cookie:
            headers["Cookie"] = cookie
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            page = response.read()
        finally:
            conn.close()
        self.result["http"].append(f"{method} {path.split('?')[0]} {response.status}")
        return response, page

    def use_portal(self) -> None:
        action = self.spec["action"]
        response, page = self.request("GET", "/?lang=en")
        if response.status != 200:
            raise RuntimeError(f"start page answered {response.status}")
        if action == "none":
            self.result["outcome"] = "looked"
            return
        cookie = (response.getheader("Set-Cookie") or "").split(";")[0]
        token = _TOKEN.search(page)
        if action == "tap":
            if b"You are checked in" in page:
                self.result["outcome"] = "already checked in by presence"
                return
            if b'action="/checkin/tap"' not in page or token is None:
                raise RuntimeError(f"no one-tap form on the start page: {page[:400]!r}")
            form, path, expect = {"csrf_token": token.group(1).decode()}, "/checkin/tap", None
        elif action == "bind":
            if b'action="/bind"' not in page or token is None:
                raise RuntimeError(f"no bind form on the start page: {page[:400]!r}")
            form = {"csrf_token": token.group(1).decode(), "staff_id": self.spec["staff_id"],
                    "pin": self.spec["pin"]}
            path, expect = "/bind", b"This phone is bound"
        else:
            raise ValueError(f"unknown action {action!r}")
        response, page = self.request("POST", path, urlencode(form), cookie)
        if response.status != 303:
            raise RuntimeError(f"{path} answered {response.status}: {page[:300]!r}")
        location = response.getheader("Location", "")
        response, page = self.request("GET", location[location.find("/", 8):] if "://"
                                      in location else location, cookie=cookie)
        if response.status != 200 or (expect and expect not in page):
            raise RuntimeError(f"after {path}: {response.status} {page[:300]!r}")
        if action == "bind":
            self.result["outcome"] = "bound and checked in"
        elif b"Already checked in" in page:
            self.result["outcome"] = "tapped: already checked in"
        else:
            self.result["outcome"] = "tapped: checked in"

    def heartbeat_frame(self) -> bytes:
        return raw(Ether(src=self.mac, dst="ff:ff:ff:ff:ff:ff")
                   / ARP(op=1, hwsrc=self.mac, psrc=self.ip, pdst=self.plan["node_ip"]))


class Hall:
    """Every phone on its schedule, and the heartbeats of those in the room."""

    def __init__(self, plan: dict):
        self.plan = plan
        self.phones = [Phone(spec, plan) for spec in plan["phones"]]
        self.in_room: dict[str, bytes] = {}  # name -> heartbeat frame
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def run(self) -> list[dict]:
        workdir = Path(self.plan["workdir"])
        script = workdir / "udhcpc.sh"
        script.write_text(UDHCPC_SCRIPT.format(out=workdir))
        script.chmod(0o755)
        for phone in self.phones:
            phone.create()
        print("ready", flush=True)
        beats = threading.Thread(target=self._heartbeats, daemon=True)
        beats.start()
        threads = [threading.Thread(target=self._life, args=(p,), daemon=True)
                   for p in self.phones]
        for t in threads:
            t.start()
        self._sleep_until(self.plan["until"])
        self.stop.set()
        for t in threads:
            t.join(30)
        beats.join(10)
        return [p.result for p in self.phones]

    def _sleep_until(self, moment: float) -> bool:
        """False when told to stop first."""
        return not self.stop.wait(max(0.0, moment - time.time()))

    def _life(self, phone: Phone) -> None:
        spec = phone.spec
        if not self._sleep_until(spec["arrive"]):
            return
        try:
            phone.arrive()
            with self.lock:
                self.in_room[phone.name] = phone.heartbeat_frame()
            phone.use_portal()
        except (OSError, RuntimeError, http.client.HTTPException) as exc:
            phone.result["error"] = f"{type(exc).__name__}: {exc}"
        if spec["leave"] is None or not self._sleep_until(spec["leave"]):
            return
        with self.lock:
            self.in_room.pop(phone.name, None)
        phone.leave()

    def _heartbeats(self) -> None:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        sock.bind((self.plan["lower"], 0))
        interval = self.plan["heartbeat"]
        try:
            while not self.stop.wait(interval):
                with self.lock:
                    frames = list(self.in_room.values())
                for frame in frames:
                    sock.send(frame)
        finally:
            sock.close()


def main(argv) -> int:
    plan = json.loads(Path(argv[1]).read_text())
    results = Hall(plan).run()
    Path(plan["results"]).write_text(json.dumps({"phones": results}))
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
