"""One-machine demo: Mosquitto, the hub (ingest + web), one simulated node
(sync + portal + presence) and scripted phones that check in to a lecture
happening now.

Everything lives in a fresh data directory; every process is a real one,
started the way a node or hub starts it, and Ctrl-C stops them all. The site
is provisioned as a technician provisions one: ``rounds-provision site init``
(site secret, CA, Mosquitto over TLS, hub.json), then, once the hub's history
is seeded (``demo.seed``: three months of it, so every dashboard page has
data) and the broker runs, ``rounds-provision node add`` for the demo's node.
The hub runs with the site's hub.json and the node with its bundle's
node.json; the few keys the demo changes (Pi paths that become demo paths,
the simulated radio) are printed with the reason.
"""

import http.client
import http.cookiejar
import io
import json
import os
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timezone
from pathlib import Path

from provisioning.broker import Mosquitto
from provisioning.files import SECRET, write_file
from provisioning.site import load_site
from runtime.daemon import die_with_parent

from .seed import (DEMO_ACCOUNTS, DEPARTMENT_NAMES, LECTURE_TITLE, NAMES, NODE, SITE,
                   SITE_NAME, STAFF_LOGIN, ZONE, demo_pin, phone_of, seed_hub, staff_name)

# Bound phones whose owners never open the portal: the node's presence sees
# them arrive (hostapd's AP-STA-CONNECTED) and checks them in by itself. Two of
# them leave early and end up partial.
PRESENCE_ONLY = (1, 3, 5, 9, 11, 13)
LEAVE_EARLY = (5, 13)
# Expected at the lecture (emergency, pharmacy) but never come: "not arrived".
STAY_AWAY = (17, 18)
VISITORS = 4  # unbound devices: only counted in the per-minute occupancy
# What `rounds-provision` runs (the console script may not be on PATH).
PROVISION = (sys.executable, "-m", "provisioning.cli")
# How long the processes get to stop after SIGTERM, all at once, before the
# rest of their process groups (gunicorn's workers too) are killed: the whole
# stop stays within the 10 s a person waits after Ctrl-C.
STOP_GRACE = 6.0


def _demo_photo(seed: int) -> bytes:
    """A phone-camera-sized photo of 'a problem' (shapes on a floor)."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    image = Image.new("RGB", (1600, 1200), (rng.randrange(150, 220),) * 3)
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = rng.randrange(1400), rng.randrange(1000)
        draw.ellipse((x, y, x + rng.randrange(60, 300), y + rng.randrange(40, 200)),
                     fill=tuple(rng.randrange(256) for _ in range(3)))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88)
    return out.getvalue()


def _multipart(fields: dict, files: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
             .encode() for k, v in fields.items()]
    for name, filename, data in files:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                     f'filename="{filename}"\r\nContent-Type: image/jpeg\r\n\r\n'.encode()
                     + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _get_json(url: str, token: str):
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)
    except (urllib.error.URLError, ValueError):
        return None


def _post_json(url: str, document: dict, token: str) -> dict:
    request = urllib.request.Request(url, data=json.dumps(document).encode(), method="POST",
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)
    except (urllib.error.URLError, ValueError):
        return {}


def _wait_json(fetch, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = fetch()
        if found:
            return found
        time.sleep(0.5)
    return None


class _AccessPoint:
    """The demo's simulated Wi-Fi access point: edge's stand-in for hostapd's
    control interface, run as its own process (the hub does not import the
    node's code) and told by line on its stdin which phones join and leave."""

    def __init__(self, path: Path, log_path: Path):
        log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edge.presence.hostapd_peer", "--stdin", str(path)],
            stdin=subprocess.PIPE, stdout=log, stderr=log, start_new_session=True,
            preexec_fn=die_with_parent())
        deadline = time.monotonic() + 10
        while not path.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the simulated access point did not start; see {log_path}")
            time.sleep(0.05)

    def _say(self, line: str) -> None:
        self.proc.stdin.write(f"{line}\n".encode())
        self.proc.stdin.flush()

    def connect(self, mac: str) -> None:
        self._say(f"connect {mac}")

    def disconnect(self, mac: str) -> None:
        self._say(f"disconnect {mac}")

    def close(self) -> None:
        """Tell it to stop (``Demo.stop`` waits for it with the others)."""
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.terminate()


class _FromAddress(urllib.request.HTTPHandler):
    """Open HTTP connections from a given loopback address (a phone's)."""

    def __init__(self, address: str):
        super().__init__()
        self.address = address

    def http_open(self, req):
        return self.do_open(lambda host, **kw: http.client.HTTPConnection(
            host, source_address=(self.address, 0), **kw), req)


def _free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _shown(path) -> str:
    """A path as the demo prints it (and passes it to rounds-provision):
    relative to the working directory when it is inside it."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _shown_value(value) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, str) and value.startswith("/"):
        return _shown(value)
    return json.dumps(value)


def _set(config: dict, key: str, value):
    """Set a dotted ``key`` of ``config``; answers the old value (None: unset)."""
    *parents, leaf = key.split(".")
    for parent in parents:
        config = config.setdefault(parent, {})
    old, config[leaf] = config.get(leaf), value
    return old


class Demo:
    def __init__(self, data_dir: Path, web_port: int, portal_port: int, broker_port: int,
                 phones: int, echo=print):
        self.dir, self.echo = Path(data_dir).resolve(), echo
        self.site_dir = self.dir / "site"  # rounds-provision --site-dir
        self.site = None  # the provisioned Site, after prepare()
        self.ap_path = self.dir / "hostapd" / "wlan0"  # the simulated AP's control socket
        self.web_port, self.portal_port, self.broker_port = web_port, portal_port, broker_port
        self.phones = phones
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.broker: Mosquitto | None = None
        self.ap: _AccessPoint | None = None

    def prepare(self) -> None:
        """A fresh data directory, the site (``site init``) and the hub's seeded history."""
        busy = [p for p in (self.web_port, self.portal_port, self.broker_port) if not _free(p)]
        if busy:
            raise RuntimeError(f"port(s) {busy} already in use on 127.0.0.1")
        shutil.rmtree(self.dir, ignore_errors=True)
        (self.dir / "logs").mkdir(parents=True)
        self.echo("Provisioning the demo site as a technician does:")
        self.provision("site", "init", "--site", SITE, "--name", SITE_NAME,
                       "--hub-host", "localhost", "--mqtt-port", self.broker_port,
                       "--bind", "127.0.0.1", "--hub-db", _shown(self.dir / "hub.db"))
        self.site = load_site(self.site_dir)
        self.echo("Seeding the hub with three months of use: 24 staff, 7 zones on 4 floor "
                  "plans (hall-a among them, for node add), two other nodes (one silent, one "
                  "offline), 12 weeks of reports and tickets, yesterday's training, pending "
                  "hours, a lecture on now ...")
        started = time.monotonic()
        self.token = seed_hub(self.site.hub_db_path(), datetime.now(timezone.utc),
                              bytes.fromhex(self.site.secret()))
        self.echo(f"  seeded in {time.monotonic() - started:.1f} s")
        token_file = self.dir / "office.token"  # for scripts and tests; 0600
        token_file.touch(0o600)
        token_file.write_text(self.token)

    def provision(self, *args) -> None:
        """Run ``rounds-provision --site-dir <site> ARGS`` (argv, no shell) and
        print the command and its output as it goes."""
        argv = ["--site-dir", _shown(self.site_dir), *map(str, args)]
        self.echo(f"$ {shlex.join(['rounds-provision', *argv])}")
        proc = subprocess.Popen([*PROVISION, *argv], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                preexec_fn=die_with_parent())
        with proc.stdout:
            for line in proc.stdout:
                self.echo(f"  {line.rstrip()}")
        if proc.wait() != 0:
            raise RuntimeError(f"`rounds-provision {' '.join(map(str, args[:2]))}` failed "
                               f"(exit {proc.returncode}); its output is above")

    def start(self) -> None:
        """Mosquitto with the site's config, ``node add`` (which reloads it), then
        the hub and the node with the configs provisioning wrote."""
        site = self.site
        self.echo(f"$ mosquitto -c {_shown(site.broker_conf)}   (TLS only, on "
                  f"127.0.0.1:{self.broker_port}; log in {_shown(self.dir / 'logs')})")
        self.broker = Mosquitto(site.broker_conf, self.broker_port,
                                log=self.dir / "logs" / "mosquitto.log",
                                preexec_fn=die_with_parent()).start()
        self.provision("node", "add", NODE, "--zone", ZONE)
        hub_config = self._hub_config()
        node_config = self._node_config(site.bundles_dir / NODE)
        py = sys.executable
        hub, node = ["--config", str(hub_config)], ["--config", str(node_config)]
        self.echo(f"Starting the hub (ingest, web) and the node (sync, presence, portal); "
                  f"logs in {_shown(self.dir / 'logs')}")
        self._spawn("ingest", [py, "-m", "hub.cli", *hub, "ingest"])
        self._spawn("web", [py, "-m", "hub.cli", *hub, "web", "--bind",
                            f"127.0.0.1:{self.web_port}"])
        self._spawn("sync", [py, "-m", "edge.cli", *node, "sync"])
        self.ap = _AccessPoint(self.ap_path, self.dir / "logs" / "access-point.log")
        self._spawn("presence", [py, "-m", "edge.cli", *node, "presence"])
        self._spawn("portal", [py, "-m", "edge.cli", *node, "portal", "--bind",
                               f"127.0.0.1:{self.portal_port}", "--workers", "2"])

    def _hub_config(self) -> Path:
        """The site's hub.json, with cookies that plain HTTP can carry."""
        path = self.site.hub_json
        config = json.loads(path.read_text())
        _set(config, "web.secure_cookies", False)
        write_file(path, json.dumps(config, indent=2) + "\n", SECRET)
        self.echo(f"The hub runs with the site's {_shown(path)}, plus web.secure_cookies = "
                  "false (the demo's dashboard is plain HTTP on 127.0.0.1)")
        return path

    def _node_config(self, bundle: Path) -> Path:
        """The bundle's node.json, where a Pi path must become a path here and
        the radio a simulated one; every change is printed with its reason."""
        config = json.loads((bundle / "node.json").read_text())
        node_dir = self.dir / "node"
        node_dir.mkdir()
        leases = node_dir / "dnsmasq.leases"
        leases.write_text("".join(f"0 {phone_of(n)[1]} {phone_of(n)[0]} phone-{n} *\n"
                                  for n in range(1, len(NAMES) + 1)))
        changes = (
            ("db", node_dir / "node.db", "the node's state directory"),
            ("mqtt.tls_ca", bundle / "ca.crt",
             "the bundle's CA, which first-boot.sh installs on a Pi"),
            ("portal.leases_file", leases,
             "dnsmasq writes it on a Pi; here the demo, for its scripted phones"),
            ("presence.sniff", False, "no radio here ..."),
            ("presence.hostapd_ctrl", self.ap_path,
             "... but a simulated access point speaking hostapd's control protocol"),
            ("presence.refresh", 5, "quicker than on a node, for the demo"),
            ("presence.hostapd_poll", 5, "quicker than on a node, for the demo"),
            ("sync.ack_timeout", 5, "resend sooner than a node does, for the demo"),
        )
        path = node_dir / "node.json"
        self.echo(f"The node runs with its bundle's {_shown(bundle / 'node.json')}, copied to "
                  f"{_shown(path)} with these keys changed:")
        for key, value, why in changes:
            value = str(value) if isinstance(value, Path) else value
            old = _set(config, key, value)
            self.echo(f"  {key}: {_shown_value(old)} -> {_shown_value(value)}   ({why})")
        write_file(path, json.dumps(config, indent=2) + "\n", SECRET)
        return path

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.dir / "logs" / f"{name}.log", "ab")
        self.procs.append((name, subprocess.Popen(argv, stdout=log, stderr=log,
                                                  start_new_session=True,
                                                  preexec_fn=die_with_parent())))

    def check_alive(self) -> None:
        for name, proc in [("mosquitto", self.broker.proc), *self.procs,
                           *([("access-point", self.ap.proc)] if self.ap else [])]:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}; "
                                   f"see {self.dir / 'logs' / (name + '.log')}")

    def wait_until_ready(self, timeout=60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                health = json.load(urllib.request.urlopen(
                    f"http://127.0.0.1:{self.portal_port}/healthz", timeout=2))
                urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/api/v1/health",
                                       timeout=2)
                if health.get("roster"):
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
                pass
            time.sleep(0.3)
        raise RuntimeError("the demo did not come up in time; see the logs in "
                           f"{self.dir / 'logs'}")

    def phone_checks_in(self, n: int, pin: str) -> str:
        """What phone n does: open the portal, post the form it is shown (one tap
        when bound, bind with staff number + PIN when not), follow the redirect."""
        address = phone_of(n)[0]
        opener = urllib.request.build_opener(
            _FromAddress(address), urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        base = f"http://127.0.0.1:{self.portal_port}"
        page = opener.open(base + "/?lang=en", timeout=10).read().decode()
        if 'action="/checkin/tap"' in page:
            path, form, how = "/checkin/tap", {}, "one tap (bound phone)"
        elif 'action="/bind"' in page:
            path, how = "/bind", "bound this phone and checked in"
            form = {"staff_id": f"D{n:03d}", "pin": pin}
        else:
            return "already checked in: presence saw the bound phone arrive, no tap needed"
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        data = urllib.parse.urlencode({"csrf_token": token, **form}).encode()
        try:
            opener.open(base + path, data=data, timeout=10).read()
            return how
        except urllib.error.HTTPError as exc:
            return f"refused ({exc.code}: wrong PIN)" if exc.code == 401 else f"refused ({exc.code})"

    def run_phones(self) -> None:
        """The lecture: phones arrive (join the Wi-Fi), some use the portal, two leave."""
        for n in PRESENCE_ONLY:
            self.ap.connect(phone_of(n)[1])
            self.echo(f"  phone of D{n:03d}: joined the Wi-Fi (bound: checked in by presence)")
            time.sleep(random.uniform(0.2, 0.6))
        for v in range(VISITORS):
            self.ap.connect(f"02:0f:00:00:00:{v:02x}")
        self.echo(f"  {VISITORS} unbound devices joined (counted in occupancy, not stored)")
        people = [n for n in range(1, len(NAMES) + 1)
                  if n not in PRESENCE_ONLY and n not in STAY_AWAY]
        random.shuffle(people)
        for k, n in enumerate(people[: self.phones]):
            self.check_alive()
            self.ap.connect(phone_of(n)[1])
            pin = demo_pin(f"D{n:03d}") if k % 7 != 3 else "9999"  # now and then a typo
            self.echo(f"  phone of D{n:03d}: {self.phone_checks_in(n, pin)}")
            time.sleep(random.uniform(0.3, 1.2))
        self.file_reports()
        time.sleep(10)  # the lecture goes on a little before two people slip out
        for n in LEAVE_EARLY:
            self.ap.disconnect(phone_of(n)[1])
            self.echo(f"  phone of D{n:03d}: left the lecture early (partial)")

    def phone_reports(self, n: int, category: str, note: str, photo: bytes) -> int:
        """Phone n (bound) files a snap-and-report with one photo; returns the status."""
        opener = urllib.request.build_opener(
            _FromAddress(phone_of(n)[0]),
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        base = f"http://127.0.0.1:{self.portal_port}"
        page = opener.open(base + "/report?lang=en", timeout=10).read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        body, content_type = _multipart(
            {"csrf_token": token, "category": category, "note": note},
            [("photos", "IMG_0001.jpg", photo)])
        request = urllib.request.Request(base + "/report", data=body,
                                         headers={"Content-Type": content_type})
        try:
            return opener.open(request, timeout=30).status
        except urllib.error.HTTPError as exc:
            return exc.code

    def file_reports(self) -> None:
        """Snap-and-report from the lecture hall, then the civility office at work."""
        spill, sign = _demo_photo(1), _demo_photo(2)
        for n, category, note, photo in (
                (1, "hygiene", "入口楼梯上洒了咖啡", spill),
                (3, "hygiene", "入口处地面湿滑", spill),
                (9, "signage", "2 号门上方的安全出口指示灯不亮", sign)):
            status = self.phone_reports(n, category, note, photo)
            self.echo(f"  phone of D{n:03d}: reported {category!r} with a photo ({status})")
        api = f"http://127.0.0.1:{self.web_port}/api/v1"
        ticket = _wait_json(lambda: [t for t in (_get_json(f"{api}/tickets?zone={ZONE}",
                                                           self.token) or [])
                                     if t["category"] == "hygiene"], 30)
        if not ticket:
            self.echo("  (the hub has no ticket yet; see the logs)")
            return
        ticket = ticket[0]
        _post_json(f"{api}/tickets/{ticket['id']}/transition",
                   {"to": "assigned", "comment": "已派保洁人员"}, self.token)
        entries = (_get_json(f"{api}/hours?state=pending", self.token) or {}).get("entries", [])
        for entry in entries[:1]:
            _post_json(f"{api}/hours/{entry['id']}/decision", {"approve": True}, self.token)
        self.echo(f"  civility office: ticket {ticket['id']} ({ticket['department']}) assigned; "
                  f"the reporter's volunteer hours approved")

    def stop(self) -> None:
        """SIGTERM to every process at once; whatever has not ended after
        ``STOP_GRACE`` seconds is killed with its whole process group (each
        child leads its own session, so the group holds gunicorn's workers).
        If the demo itself is killed, ``die_with_parent`` ends them instead."""
        procs = [proc for _, proc in self.procs]
        if self.ap:
            self.ap.close()
            procs.append(self.ap.proc)
        if self.broker and self.broker.proc:
            procs.append(self.broker.proc)
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for proc in procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # its stragglers, or all of it
            except ProcessLookupError:
                pass
            proc.wait()


ROLE_NOTES = {"admin": "everything, accounts too", "office": "every page, every department",
              "dept_reviewer": "only {department} tickets and the hours of its staff"}


def credentials(web_port: int) -> list[str]:
    """The sign-in lines the demo prints: one account per line, as
    ``  <username> / <password>  (<role>: what it sees)``."""
    lines = [f"Sign in at http://127.0.0.1:{web_port}/login as:"]
    for username, role, department, staff_id, password in DEMO_ACCOUNTS:
        name = DEPARTMENT_NAMES[department][0] if department else None
        note = ROLE_NOTES[role].format(department=name)
        if staff_id:
            note += f"; {staff_name(staff_id)}, {staff_id}"
        lines.append(f"  {username} / {password}  ({role}: {note})")
    lines.append(f"  {STAFF_LOGIN} / {demo_pin(STAFF_LOGIN)}  (staff: {staff_name(STAFF_LOGIN)}'s "
                 "own record; every staff number signs in with its portal PIN, on the portal "
                 "too)")
    return lines


def run_demo(data_dir, web_port=8000, portal_port=8080, broker_port=18830, phones=14,
             echo=print) -> None:
    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)  # the terminal closed
    demo = Demo(data_dir, web_port, portal_port, broker_port, phones, echo)
    try:
        demo.prepare()
        demo.start()
        demo.wait_until_ready()
        echo(f"Dashboard: http://127.0.0.1:{web_port}   "
             f"Node portal: http://127.0.0.1:{portal_port}   (Ctrl-C stops everything)")
        for line in credentials(web_port):
            echo(line)
        echo(f"Scripted phones are checking in to '{LECTURE_TITLE}':")
        demo.run_phones()
        echo("All scripted phones are done; the demo keeps running until Ctrl-C.")
        while True:
            demo.check_alive()
            time.sleep(1)
    except KeyboardInterrupt:
        echo("Stopping ...")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the stop short
        demo.stop()
        echo("Stopped.")
