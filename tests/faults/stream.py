"""A steady stream of what a node takes in, with a tally of what it accepted.

- Phones (``PortalPhone``): HTTP clients of the real portal, each from its own
  loopback address (its MAC is in the node's lease file, and the hub's roster
  binds it to a staff member). A phone opens the portal (session cookie and
  CSRF token), checks in with one tap and, every few phones, files a report
  with real JPEGs through the portal's report form (so the photo pipeline and
  the spool run). A check-in or report counts as *accepted* only when the
  portal answered with its 303; a phone whose request failed (the portal was
  killed under it) tries again, as a person would.
- Presence (``PresenceWriter``): intervals appended to the node outbox the
  way ``rounds-edge presence`` does it: opened, re-sent with the same id as
  ``last_seen`` moves, finally closed. Accepted = ``Outbox.append`` returned.

``Stream`` runs both until stopped and keeps the tally the fault tests check
the hub against.
"""

import http.client
import io
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlencode, urlsplit

from PIL import Image, ImageDraw

from edge.outbox import Outbox
from protocol.clock import iso
from protocol.pins import device_id

from .conftest import SECRET, ZONE, phone_address, staff_id

_TOKEN = re.compile(rb'name="csrf_token"[^>]*value="([^"]+)"')


def unique_jpeg(seed: int, size=(640, 480)) -> bytes:
    """A real JPEG no other seed gives (so every report has its own photos)."""
    rng = random.Random(seed)
    image = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        draw.rectangle((x, y, x + rng.randrange(20, 200), y + rng.randrange(20, 200)),
                       fill=tuple(rng.randrange(256) for _ in range(3)))
    draw.text((10, 10), f"photo {seed}", fill=(0, 0, 0))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def multipart(fields: dict, files: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body (as a browser's form upload) and its content type."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                     f"{value}\r\n".encode())
    for name, filename, body in files:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                     f'filename="{filename}"\r\nContent-Type: image/jpeg\r\n\r\n'.encode()
                     + body + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class PortalPhone:
    """Phone ``i`` on the node's Wi-Fi, talking to the portal at ``port``."""

    def __init__(self, port: int, i: int):
        self.port, self.i = port, i
        self.address = phone_address(i)[0]
        self.cookies: dict[str, str] = {}

    def _request(self, method, path, body=None, content_type=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30,
                                          source_address=(self.address, 0))
        try:
            headers = {}
            if self.cookies:
                headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            if content_type:
                headers["Content-Type"] = content_type
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            for cookie in response.msg.get_all("Set-Cookie") or []:
                name, _, value = cookie.split(";")[0].partition("=")
                self.cookies[name.strip()] = value
            return response.status, response.getheader("Location", ""), data
        finally:
            conn.close()

    def _token(self, path: str) -> str:
        status, _, page = self._request("GET", path)
        found = _TOKEN.search(page)
        if status != 200 or not found:
            raise OSError(f"GET {path} answered {status} without a form")
        return found.group(1).decode()

    def checkin(self) -> bool:
        """One-tap check-in; True when the portal accepted it (303 to /done)."""
        token = self._token("/?lang=en")
        status, location, _ = self._request("POST", "/checkin/tap",
                                            urlencode({"csrf_token": token}),
                                            "application/x-www-form-urlencoded")
        return status == 303 and urlsplit(location).path == "/done"

    def report(self, photos: list[bytes]) -> str | None:
        """File a report; the report id the portal accepted it under, or None."""
        token = self._token("/report?lang=en")
        body, content_type = multipart(
            {"csrf_token": token, "category": "hygiene", "note": f"Spill near bed {self.i}"},
            [("photos", f"IMG_{self.i:04d}_{k}.jpg", photo) for k, photo in enumerate(photos)])
        status, location, _ = self._request("POST", "/report", body, content_type)
        if status != 303:
            return None
        return parse_qs(urlsplit(location).query).get("sent", [None])[0]


@dataclass
class Tally:
    """What the node accepted, as the phones and the presence writer saw it."""
    checkins: set = field(default_factory=set)        # staff ids answered 303
    reports: dict = field(default_factory=dict)       # report id -> photos sent
    presence: dict = field(default_factory=dict)      # record id -> final record appended
    presence_appends: int = 0                         # appends, re-sends included
    failed_requests: int = 0                          # refused or cut off; tried again

    def records(self) -> int:
        return len(self.checkins) + len(self.reports) + len(self.presence)


class PresenceWriter:
    """Presence intervals of bound phones, appended to the node outbox: a
    new interval now and then, open ones re-sent with a later ``last_seen``
    (same id), old ones closed. ``finish`` closes every open one."""

    def __init__(self, node_db, tally: Tally, rng: random.Random, lock: threading.Lock,
                 phones: int):
        self.outbox = Outbox(node_db)
        self.tally, self.rng, self.lock, self.phones = tally, rng, lock, phones
        self.open: dict[str, dict] = {}

    def _append(self, record: dict) -> None:
        self.outbox.append(record)
        with self.lock:
            self.tally.presence[record["id"]] = record
            self.tally.presence_appends += 1

    def step(self) -> None:
        now = iso(datetime.now(timezone.utc))
        choice = self.rng.random()
        if len(self.open) < 5 or choice < 0.3:
            i = self.rng.randrange(self.phones)
            record = {"id": str(uuid.uuid4()), "type": "presence", "ts": now,
                      "device": device_id(bytes.fromhex(SECRET), phone_address(i)[1]),
                      "staff_id": staff_id(i), "zone": ZONE, "first_seen": now,
                      "last_seen": now, "closed": False}
            self.open[record["id"]] = record
        elif choice < 0.85:
            record = self.open[self.rng.choice(list(self.open))]
            record.update(last_seen=now, ts=now)
        else:
            record = self.open.pop(self.rng.choice(list(self.open)))
            record.update(last_seen=now, ts=now, closed=True)
        self._append(dict(record))

    def finish(self) -> None:
        now = iso(datetime.now(timezone.utc))
        for record in self.open.values():
            record.update(last_seen=now, ts=now, closed=True)
            self._append(dict(record))
        self.open.clear()
        self.outbox.close()


class Stream:
    """Phones and presence together, until ``stop()``.

    ``checkins_per_second`` paces the phones (each check-in is one phone);
    every ``report_every``-th phone also files a report with one or two
    photos. ``presence_per_second`` paces the presence appends.
    """

    def __init__(self, site, seed: int, *, checkins_per_second=8.0, report_every=4,
                 presence_per_second=20.0, clients=3):
        self.site, self.rng = site, random.Random(seed)
        self.checkins_per_second, self.report_every = checkins_per_second, report_every
        self.presence_per_second, self.clients = presence_per_second, clients
        self.tally = Tally()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.next_phone = 0
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []

    def start(self) -> "Stream":
        targets = [self._phones] * self.clients + [self._presence]
        self.threads = [threading.Thread(target=self._guard, args=(t,), daemon=True)
                        for t in targets]
        for thread in self.threads:
            thread.start()
        return self

    def stop(self) -> Tally:
        self.stopping.set()
        for thread in self.threads:
            thread.join(120)
            assert not thread.is_alive(), "a stream thread did not finish"
        if self.errors:
            raise self.errors[0]
        return self.tally

    def _guard(self, target) -> None:
        try:
            target()
        except BaseException as exc:  # handed to stop(), which re-raises it in the test
            self.errors.append(exc)

    def _take_phone(self) -> int | None:
        with self.lock:
            if self.next_phone >= self.site.phones:
                return None
            self.next_phone += 1
            return self.next_phone - 1

    def _until_accepted(self, attempt):
        """Try ``attempt`` until it is accepted; None if the stream stops first."""
        while True:
            try:
                result = attempt()
            # Refused, reset or cut off (a worker killed between the answer's
            # head and its body: http.client's IncompleteRead): the portal is down.
            except (OSError, http.client.HTTPException):
                result = None
            if result:
                return result
            with self.lock:
                self.tally.failed_requests += 1
            if self.stopping.wait(0.2):
                return None

    def _phones(self) -> None:
        pause = self.clients / self.checkins_per_second
        while not self.stopping.is_set():
            i = self._take_phone()
            if i is None:
                return
            started = time.monotonic()
            phone = PortalPhone(self.site.portal_port, i)
            if self._until_accepted(phone.checkin):
                with self.lock:
                    self.tally.checkins.add(staff_id(i))
            if i % self.report_every == 0:
                count = 1 + (i // self.report_every) % 2  # one or two photos
                photos = [unique_jpeg(i * 10 + k) for k in range(count)]
                report_id = self._until_accepted(lambda: phone.report(photos))
                if report_id:
                    with self.lock:
                        self.tally.reports[report_id] = len(photos)
            self.stopping.wait(max(0.0, pause - (time.monotonic() - started)))

    def _presence(self) -> None:
        writer = PresenceWriter(self.site.node_db, self.tally, self.rng, self.lock,
                                self.site.phones)
        try:
            while not self.stopping.wait(1 / self.presence_per_second):
                writer.step()
        finally:
            writer.finish()
