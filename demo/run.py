"""One-machine demo: Mosquitto, the hub (ingest + web), the simulated
lecture-hall node (sync + portal + presence) and scripted phones that check
in to a lecture happening now; then, next door on the seminar room's node
(sync + portal), a short contest whose audience and judges score three acts
on their phones while the office opens and closes each act's scoring.

Everything lives in a fresh data directory; every process is a real one,
started the way a node or hub starts it, and Ctrl-C stops them all. The site
is provisioned as a technician provisions one: ``rounds-provision site init``
(site secret, CA, Mosquitto over TLS, hub.json), then, once the hub's history
is seeded (``demo.seed``: three months of it, so every dashboard page has
data) and the broker runs, ``rounds-provision node add`` for the demo's node.
The hub runs with the site's hub.json and the node with its bundle's
node.json; the few keys the demo changes (Pi paths that become demo paths,
the simulated radio) are printed with the reason.

The contest has a node of its own because a node's portal counts what a
phone does for the one event on in its zone (``edge.checkins.event_now``):
in the lecture hall, during the lecture, that is the lecture.
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

from hub.contests import acts  # the office's side of the contest, on the hub's database
from hub.db import open_db, write_transaction
from provisioning.broker import Mosquitto
from provisioning.files import SECRET, write_file
from provisioning.site import load_site
from runtime.daemon import die_with_parent

from .seed import (CONTEST_ACTS, CONTEST_ID, CONTEST_JUDGES, CONTEST_NODE, CONTEST_TITLE,
                   CONTEST_ZONE, DEMO_ACCOUNTS, DEPARTMENT_NAMES, LECTURE_TITLE, NAMES, NODE,
                   REVIEW_ACCOUNTS, SITE, SITE_NAME, STAFF_LOGIN, SUPPORT, SURVEY_TASK, ZONE, demo_pin, phone_of,
                   seed_hub, staff_name)

# Bound phones whose owners never open the portal: the node's presence sees
# them arrive (hostapd's AP-STA-CONNECTED) and checks them in by itself. Two of
# them leave early and end up partial.
PRESENCE_ONLY = (1, 3, 5, 9, 11, 13)
LEAVE_EARLY = (5, 13)
# Expected at the lecture (emergency, pharmacy) but never come: "not arrived".
STAY_AWAY = (17, 18)
VISITORS = 4  # unbound devices: only counted in the per-minute occupancy
# The contest's audience, next door: the two who leave the lecture early, the
# two expected there who never came, and the support staff. Its judges
# (demo/seed.py) are administration's, who skip the lecture too.
CONTEST_AUDIENCE = (*LEAVE_EARLY, *STAY_AWAY, *(int(sid[1:]) for sid, *_ in SUPPORT))
JUDGES = tuple(int(sid[1:]) for sid in CONTEST_JUDGES)
# How good each act is (the mean score it draws, 1-10): the CPR act wins.
ACT_QUALITY = {"act-1": 7.4, "act-2": 8.0, "act-3": 8.8}
ACT_SECONDS = 40  # each act's countdown; the office closes it once every phone has scored
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
    except (OSError, ValueError):  # URLError, a refused connection, a timeout; bad JSON
        return None


def _post_json(url: str, document: dict, token: str) -> dict:
    request = urllib.request.Request(url, data=json.dumps(document).encode(), method="POST",
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)
    except (OSError, ValueError):
        return {}


def _fetch(opener, url: str, form: dict | None = None) -> tuple[int, str]:
    """(status, page) of a GET, or of a POST of ``form``; an error page too
    (status 0: no answer)."""
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    try:
        with opener.open(url, data=data, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except OSError:  # no connection, a timeout
        return 0, ""


def _csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


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


def _some_free_port(preferred: int, taken: tuple) -> int:
    """``preferred`` when a server can bind it now (and it is not one of
    ``taken``), else a port the kernel picks. Bound, not connected to: a port
    some connection uses as its own end has no listener but cannot be bound."""
    if preferred not in taken and 0 < preferred < 65536:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", preferred))
                return preferred
            except OSError:
                pass
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
                 phones: int, echo=print, contest_portal_port: int | None = None):
        self.dir, self.echo = Path(data_dir).resolve(), echo
        self.site_dir = self.dir / "site"  # rounds-provision --site-dir
        self.site = None  # the provisioned Site, after prepare()
        self.ap_path = self.dir / "hostapd" / "wlan0"  # the simulated AP's control socket
        self.web_port, self.portal_port, self.broker_port = web_port, portal_port, broker_port
        # The seminar room's portal (the contest): given, or chosen as it starts.
        self.contest_portal_port = contest_portal_port
        self.phones = phones
        self.browsers: dict[tuple[int, int], urllib.request.OpenerDirector] = {}
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.broker: Mosquitto | None = None
        self.ap: _AccessPoint | None = None

    def prepare(self) -> None:
        """A fresh data directory, the site (``site init``) and the hub's seeded history."""
        ports = (self.web_port, self.portal_port, self.broker_port, self.contest_portal_port)
        busy = [p for p in ports if p is not None and not _free(p)]
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
                  "plans (hall-a and seminar-2 among them, for node add), two other nodes (one "
                  "silent, one offline), 12 weeks of reports and tickets, yesterday's training, "
                  "pending hours, a lecture on now, a contest next door, a satisfaction survey "
                  "in two wards with three weeks of responses ...")
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
        self.provision("node", "add", CONTEST_NODE, "--zone", CONTEST_ZONE)
        hub_config = self._hub_config()
        node_config = self._node_config(site.bundles_dir / NODE, self.dir / "node",
                                        range(1, len(NAMES) + 1))
        # The seminar room's node: every scripted phone may come (the support
        # staff's too); no presence there, its audience uses the portal.
        contest_config = self._node_config(site.bundles_dir / CONTEST_NODE,
                                           self.dir / CONTEST_NODE,
                                           range(1, len(NAMES) + len(SUPPORT) + 1),
                                           presence=False)
        py = sys.executable
        hub, node = ["--config", str(hub_config)], ["--config", str(node_config)]
        contest = ["--config", str(contest_config)]
        self.echo(f"Starting the hub (ingest, web), the lecture hall's node {NODE} (sync, "
                  f"presence, portal) and the seminar room's node {CONTEST_NODE} (sync, portal); "
                  f"logs in {_shown(self.dir / 'logs')}")
        self._spawn("ingest", [py, "-m", "hub.cli", *hub, "ingest"])
        self._spawn("web", [py, "-m", "hub.cli", *hub, "web", "--bind",
                            f"127.0.0.1:{self.web_port}"])
        self._spawn("sync", [py, "-m", "edge.cli", *node, "sync"])
        self.ap = _AccessPoint(self.ap_path, self.dir / "logs" / "access-point.log")
        self._spawn("presence", [py, "-m", "edge.cli", *node, "presence"])
        self._spawn("portal", [py, "-m", "edge.cli", *node, "portal", "--bind",
                               f"127.0.0.1:{self.portal_port}", "--workers", "2"])
        self._spawn(f"{CONTEST_NODE}-sync", [py, "-m", "edge.cli", *contest, "sync"])
        if self.contest_portal_port is None:  # chosen now: the lecture hall's + 1 if free
            self.contest_portal_port = _some_free_port(
                self.portal_port + 1, (self.web_port, self.portal_port, self.broker_port))
        self._spawn(f"{CONTEST_NODE}-portal", [py, "-m", "edge.cli", *contest, "portal",
                                               "--bind", f"127.0.0.1:{self.contest_portal_port}",
                                               "--workers", "2"])

    def _hub_config(self) -> Path:
        """The site's hub.json, with cookies that plain HTTP can carry."""
        path = self.site.hub_json
        config = json.loads(path.read_text())
        _set(config, "web.secure_cookies", False)
        write_file(path, json.dumps(config, indent=2) + "\n", SECRET)
        self.echo(f"The hub runs with the site's {_shown(path)}, plus web.secure_cookies = "
                  "false (the demo's dashboard is plain HTTP on 127.0.0.1)")
        return path

    def _node_config(self, bundle: Path, node_dir: Path, phones, presence: bool = True) -> Path:
        """The bundle's node.json, where a Pi path must become a path here and
        the radio a simulated one; every change is printed with its reason.
        ``phones``: the scripted phones in its lease file."""
        config = json.loads((bundle / "node.json").read_text())
        node_dir.mkdir()
        leases = node_dir / "dnsmasq.leases"
        leases.write_text("".join(f"0 {phone_of(n)[1]} {phone_of(n)[0]} phone-{n} *\n"
                                  for n in phones))
        radio = (
            ("presence.sniff", False, "no radio here ..."),
            ("presence.hostapd_ctrl", self.ap_path,
             "... but a simulated access point speaking hostapd's control protocol"),
            ("presence.refresh", 5, "quicker than on a node, for the demo"),
            ("presence.hostapd_poll", 5, "quicker than on a node, for the demo"),
        ) if presence else (
            ("presence.sniff", False, "no radio here, and no presence process: its phones "
             "use the portal"),)
        changes = (
            ("db", node_dir / "node.db", "the node's state directory"),
            ("mqtt.tls_ca", bundle / "ca.crt",
             "the bundle's CA, which first-boot.sh installs on a Pi"),
            ("portal.leases_file", leases,
             "dnsmasq writes it on a Pi; here the demo, for its scripted phones"),
            *radio,
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
                healths = [json.load(urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/healthz", timeout=2))
                    for port in (self.portal_port, self.contest_portal_port)]
                urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/api/v1/health",
                                       timeout=2)
                if all(health.get("roster") for health in healths):
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
                pass
            time.sleep(0.3)
        raise RuntimeError("the demo did not come up in time; see the logs in "
                           f"{self.dir / 'logs'}")

    def browser(self, n: int, port: int) -> urllib.request.OpenerDirector:
        """Phone n's browser on the portal at ``port``: from the phone's own
        address, with its cookies for that portal (kept between pages)."""
        if (n, port) not in self.browsers:
            self.browsers[n, port] = urllib.request.build_opener(
                _FromAddress(phone_of(n)[0]),
                urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        return self.browsers[n, port]

    def phone_checks_in(self, n: int, pin: str, port: int | None = None) -> str:
        """What phone n does: open the portal, post the form it is shown (one tap
        when bound, bind with staff number + PIN when not), follow the redirect."""
        port = port or self.portal_port
        opener = self.browser(n, port)
        base = f"http://127.0.0.1:{port}"
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
                  if n not in PRESENCE_ONLY + STAY_AWAY + JUDGES]
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
            self.echo(f"  phone of D{n:03d}: left the lecture early (partial), for the contest "
                      "next door")

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

    # -- the contest next door ----------------------------------------------------------

    def _score_page(self, n: int) -> tuple[int, str]:
        return _fetch(self.browser(n, self.contest_portal_port),
                      f"http://127.0.0.1:{self.contest_portal_port}/score?lang=en")

    def judge_signs_in(self, n: int) -> str:
        """A judge opens the scoring page: a bound phone is its owner, any other
        signs in with staff number + PIN (no check-in: judges are named)."""
        status, page = self._score_page(n)
        if 'action="/score/sign-in' not in page:
            return f"bound phone, no sign-in needed ({status})"
        form = {"csrf_token": _csrf(page), "staff_id": f"D{n:03d}", "pin": demo_pin(f"D{n:03d}")}
        status, _page = _fetch(self.browser(n, self.contest_portal_port),
                               f"http://127.0.0.1:{self.contest_portal_port}/score/sign-in", form)
        return f"signed in to score with staff number + PIN ({status})"

    def phone_scores(self, n: int, act: str, value: int) -> int:
        """Phone n scores ``act`` on the plain form; answers the status."""
        status, page = self._score_page(n)
        if f'name="act" value="{act}"' not in page:
            return status if status != 200 else 409
        form = {"csrf_token": _csrf(page), "act": act, "value": value}
        status, _page = _fetch(self.browser(n, self.contest_portal_port),
                               f"http://127.0.0.1:{self.contest_portal_port}/score", form)
        return status

    def changes_score(self, act: str, values: dict) -> None:
        """An audience member thinks again: a second score replaces the first
        until the act closes."""
        changer = next((n for n in values if n not in JUDGES), None)
        if changer is None:
            return
        old = values[changer]
        new = old + 2 if old <= 8 else old - 2
        if self.phone_scores(changer, act, new) == 200:
            values[changer] = new
            self.echo(f"  phone of D{changer:03d}: changed its score from {old} to {new} (the "
                      "later one counts)")

    def _contest_row(self, act: str) -> dict | None:
        found = _get_json(f"http://127.0.0.1:{self.web_port}/api/v1/events/{CONTEST_ID}/contest",
                          self.token) or {}
        return next((r for r in found.get("rows", []) if r["act"] == act), None)

    def run_contest(self) -> None:
        """The audience checks in next door, the judges open the scoring page,
        then the office opens each act with a countdown, the phones score it
        (one changes its mind), and the office closes it once every score is
        in; the ranking freezes shortly after the last act."""
        port = self.contest_portal_port
        if not _wait_json(lambda: self._score_page(JUDGES[-1])[0] == 200, 20):
            self.echo(f"  ({CONTEST_NODE} has no contest yet; see the logs)")
            return
        refused = CONTEST_AUDIENCE[2]  # opens the scoring page before checking in
        for n in CONTEST_AUDIENCE:
            if n == refused:
                if self._score_page(n)[0] == 403:
                    self.echo(f"  phone of D{n:03d}: tried to score before checking in: "
                              "refused (403: check in first)")
            how = self.phone_checks_in(n, demo_pin(f"D{n:03d}"), port)
            self.echo(f"  phone of D{n:03d}: {how}")
        for n in JUDGES:
            self.echo(f"  judge D{n:03d} {staff_name(f'D{n:03d}')}: {self.judge_signs_in(n)}")
        db = open_db(self.site.hub_db_path())
        try:
            for number, (act, title, performers) in enumerate(CONTEST_ACTS, 1):
                self.check_alive()
                with write_transaction(db):
                    acts.open_act(db, CONTEST_ID, act, ACT_SECONDS)
                self.echo(f"  office: act {number}/{len(CONTEST_ACTS)} '{title}' ({performers}) "
                          f"open for scoring, {ACT_SECONDS} s countdown")
                self.score_act(act)
                with write_transaction(db):
                    acts.close_act(db, CONTEST_ID, act)
                row = self._contest_row(act) or {}
                judges = row.get("judge_count") or 0
                dropped = ", highest and lowest dropped" if judges >= 3 else ""
                self.echo(f"  office: closed act {number}: judges {row.get('judge_mean')} "
                          f"({judges}{dropped}), audience {row.get('audience_mean')} "
                          f"({row.get('audience_count')}): {row.get('total')}")
        finally:
            db.close()
        url = f"http://127.0.0.1:{self.web_port}/api/v1/events/{CONTEST_ID}/contest"
        final = _wait_json(lambda: (found := _get_json(url, self.token)) and found.get("final")
                           and found, 40)
        if not final:
            self.echo("  (no final ranking yet; see the logs)")
            return
        self.echo("  final ranking, frozen: " + "; ".join(
            f"{r['rank']}. {r['title']} {r['total']}" for r in final["rows"]))

    def score_act(self, act: str) -> None:
        """Every judge and audience phone scores ``act`` once the node shows it
        open; one phone changes its score. Waits for the hub to have them all."""
        if not _wait_json(lambda: f'value="{act}"' in self._score_page(JUDGES[-1])[1], 15):
            self.echo(f"  ({CONTEST_NODE} did not open {act}; see the logs)")
            return
        quality = ACT_QUALITY[act]
        scorers = [*JUDGES, *CONTEST_AUDIENCE]
        random.shuffle(scorers)
        values = {}
        for k, n in enumerate(scorers):
            value = max(1, min(10, round(random.gauss(quality, 0.8 if n in JUDGES else 1.4))))
            if self.phone_scores(n, act, value) == 200:
                values[n] = value
            time.sleep(random.uniform(0.3, 0.9))  # the screen's count goes up one by one
            if k == len(scorers) - 3:  # before the last two: their scores follow it to the hub
                self.changes_score(act, values)
        given = len(values)
        self.echo(f"  {given} phones scored ({len(set(values) & set(JUDGES))} of them judges)")
        _wait_json(lambda: ((self._contest_row(act) or {}).get("scores_in") or 0) >= given, 20)

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
    for username, role, branch, password in REVIEW_ACCOUNTS:
        where = f"the staff of {branch}" if branch else "every entry"
        lines.append(f"  {username} / {password}  ({role}: record entries at its review level, "
                     f"{where}: /records/)")
    lines.append(f"  {STAFF_LOGIN} / {demo_pin(STAFF_LOGIN)}  (staff: {staff_name(STAFF_LOGIN)}'s "
                 "own record; every staff number signs in with its portal PIN, on the portal "
                 "too)")
    return lines


def where_to_look(demo: "Demo") -> list[str]:
    """The lines saying where the survey and the contest show."""
    web = f"http://127.0.0.1:{demo.web_port}"
    task = next((t for t in _get_json(f"{web}/api/v1/surveys", demo.token) or []
                 if t["id"] == SURVEY_TASK), None)
    so_far = (f": {task['count']} of {task['target']} responses, satisfaction index "
              f"{task['index']}" if task else "")
    return [
        f"Survey board: {web}/surveys/   (task {SURVEY_TASK}{so_far}; per question, per ward "
        f"and department by week: {web}/surveys/{SURVEY_TASK}; a low score opened a 'service' "
        "ticket)",
        f"Contest '{CONTEST_TITLE}' next door in {CONTEST_ZONE} (node {CONTEST_NODE}, portal "
        f"http://127.0.0.1:{demo.contest_portal_port}/score): big screen "
        f"{web}/events/{CONTEST_ID}/screen   presenter {web}/events/{CONTEST_ID}/contest",
    ]


def run_demo(data_dir, web_port=8000, portal_port=8080, broker_port=18830, phones=14,
             echo=print, contest_portal_port=None) -> None:
    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)  # the terminal closed
    demo = Demo(data_dir, web_port, portal_port, broker_port, phones, echo, contest_portal_port)
    try:
        demo.prepare()
        demo.start()
        demo.wait_until_ready()
        echo(f"Dashboard: http://127.0.0.1:{web_port}   "
             f"Node portal: http://127.0.0.1:{portal_port}   (Ctrl-C stops everything)")
        for line in credentials(web_port):
            echo(line)
        for line in where_to_look(demo):
            echo(line)
        echo(f"Scripted phones are checking in to '{LECTURE_TITLE}':")
        demo.run_phones()
        echo(f"Next door, '{CONTEST_TITLE}': its audience and judges score three acts on "
             f"their phones (big screen: http://127.0.0.1:{web_port}/events/{CONTEST_ID}/screen):")
        demo.run_contest()
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
