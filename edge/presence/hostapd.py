"""hostapd's control interface: station events and the station list.

On a ward node the Pi's radio runs hostapd with ``ctrl_interface=/run/hostapd``;
its control socket for ``wlan0`` is the unix datagram socket
``/run/hostapd/wlan0``. A client binds a socket of its own (here an
autobound abstract address: nothing on disk, so it works under
``ProtectSystem=strict``/``PrivateTmp``; hostapd answers to whatever address a
request came from), sends text commands and reads text replies:

- ``PING`` -> ``PONG``; ``ATTACH`` -> ``OK`` and from then on unsolicited
  events ``<3>AP-STA-CONNECTED aa:bb:..`` / ``<3>AP-STA-DISCONNECTED aa:bb:..``
  (level prefix ``<N>``), interleaved with replies (``request`` sets events
  that arrive while it waits for a reply aside, as hostapd's own
  ``wpa_ctrl_request`` does);
- ``STA-FIRST`` / ``STA-NEXT <mac>`` -> ``<mac>\\nflags=...\\ninactive_msec=N\\n...``;
  an empty reply or ``FAIL`` ends the list.

``HostapdListener.run`` turns them into the tracker's events: a connect is a
``Sighting`` (kind ``hostapd-connected``), a disconnect a ``Gone``, and every
``poll`` seconds each listed station whose ``inactive_msec`` is below the
away time is a sighting at ``now - inactive_msec`` (kind ``hostapd-station``);
one inactive longer is left to the tracker's own away timer. When hostapd is
not there or restarts, the listener logs it and reconnects (with backoff)
and re-attaches; it never stops the sniffer.
"""

import logging
import socket
import time
from typing import Callable, NamedTuple

from edge.devices import normalise_mac

from .parse import Sighting

log = logging.getLogger("rounds.presence.hostapd")

CONNECTED, DISCONNECTED = "AP-STA-CONNECTED", "AP-STA-DISCONNECTED"
KIND_CONNECTED, KIND_STATION = "hostapd-connected", "hostapd-station"
REPLY_TIMEOUT = 2.0
MAX_MESSAGE = 8192


class Gone(NamedTuple):
    """A device left: hostapd said it disconnected."""
    mac: str
    ts: float
    reason: str = "hostapd-disconnected"


class HostapdError(OSError):
    """The control interface did not answer as hostapd does."""


class HostapdClient:
    """One connection to hostapd's control socket at ``path``."""

    def __init__(self, path: str, timeout: float = REPLY_TIMEOUT):
        self.path, self.timeout = str(path), timeout
        self.sock: socket.socket | None = None
        self.events: list[str] = []  # unsolicited messages read while waiting for a reply

    def connect(self) -> "HostapdClient":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind("")  # Linux autobind: a unique abstract address
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        self.sock = sock
        return self

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None

    def request(self, command: str, timeout: float | None = None) -> str:
        """Send ``command``; its reply (events arriving meanwhile go to ``events``)."""
        if self.sock is None:
            raise HostapdError("not connected")
        self.sock.send(command.encode())
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise HostapdError(f"no answer from hostapd to {command.split()[0]}")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(MAX_MESSAGE)
            except socket.timeout:
                continue
            text = data.decode("utf-8", "replace")
            if _is_event(text):
                self.events.append(text)
                continue
            return text

    def attach(self) -> None:
        for command, expected in (("PING", "PONG"), ("ATTACH", "OK")):
            reply = self.request(command).strip()
            if reply != expected:
                raise HostapdError(f"{command}: hostapd answered {reply[:40]!r}")

    def detach(self) -> None:
        try:
            self.request("DETACH", timeout=0.5)
        except OSError:
            pass

    def receive(self, timeout: float) -> str | None:
        """The next unsolicited event, waiting up to ``timeout`` seconds."""
        if self.events:
            return self.events.pop(0)
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(MAX_MESSAGE)
        except socket.timeout:
            return None
        text = data.decode("utf-8", "replace")
        return text if _is_event(text) else None  # a late reply: dropped

    def stations(self) -> list[tuple[str, int | None]]:
        """Every associated station: ``[(mac, inactive_msec or None)]``."""
        result, seen = [], set()
        reply = self.request("STA-FIRST")
        while True:
            station = parse_station(reply)
            if station is None or station[0] in seen:
                return result
            result.append(station)
            seen.add(station[0])
            reply = self.request(f"STA-NEXT {station[0]}")


def _is_event(text: str) -> bool:
    return len(text) >= 3 and text[0] == "<" and text[1].isdigit() and ">" in text[:4]


def parse_event(text: str) -> tuple[str, str] | None:
    """``("AP-STA-CONNECTED", mac)`` etc. for a station event, else None."""
    body = text.split(">", 1)[1] if _is_event(text) else text
    words = body.split()
    if len(words) >= 2 and words[0] in (CONNECTED, DISCONNECTED):
        mac = normalise_mac(words[1])
        if mac:
            return words[0], mac
    return None


def parse_station(reply: str) -> tuple[str, int | None] | None:
    """``(mac, inactive_msec)`` from a STA-FIRST/STA-NEXT reply; None at the end."""
    lines = reply.splitlines()
    if not lines or lines[0].strip() in ("", "FAIL"):
        return None
    mac = normalise_mac(lines[0])
    if mac is None:
        return None
    inactive = None
    for line in lines[1:]:
        if line.startswith("inactive_msec="):
            try:
                inactive = int(line.split("=", 1)[1])
            except ValueError:
                pass
    return mac, inactive


class HostapdListener:
    """Events and station polls of one hostapd -> ``emit(Sighting | Gone)``."""

    def __init__(self, path: str, emit: Callable, away_after: float = 300,
                 poll: float = 30, clock: Callable[[], float] = time.time,
                 retry: float = 2.0):
        self.path, self.emit, self.away_after = path, emit, away_after
        self.poll, self.clock, self.retry = poll, clock, retry
        self.connected = False

    def run(self, stop) -> None:
        """Until ``stop`` (a threading.Event) is set."""
        backoff = self.retry
        while not stop.is_set():
            client = HostapdClient(self.path)
            try:
                client.connect()
                client.attach()
            except OSError as exc:
                client.close()
                if self.connected or backoff == self.retry:
                    log.warning("hostapd control interface %s: %s (retrying)", self.path, exc)
                self.connected = False
                stop.wait(backoff)
                backoff = min(backoff * 2, 60)
                continue
            backoff = self.retry
            self.connected = True
            log.info("listening to hostapd at %s", self.path)
            try:
                self._session(client, stop)
            except OSError as exc:
                log.warning("hostapd control interface %s: %s (reconnecting)", self.path, exc)
                self.connected = False
            finally:
                if stop.is_set():
                    client.detach()
                client.close()

    def _session(self, client: HostapdClient, stop) -> None:
        next_poll = 0.0
        while not stop.is_set():
            if time.monotonic() >= next_poll:
                self.poll_stations(client)
                next_poll = time.monotonic() + self.poll
            event = client.receive(min(1.0, max(next_poll - time.monotonic(), 0.0)))
            if event is not None:
                self.handle_event(event)

    def poll_stations(self, client: HostapdClient) -> int:
        now = self.clock()
        seen = 0
        for mac, inactive in client.stations():
            if inactive is None:
                inactive = 0  # hostapd without the field: associated now
            if inactive / 1000 >= self.away_after:
                continue  # away; the tracker's timer closes it
            self.emit(Sighting(mac, KIND_STATION, now - inactive / 1000))
            seen += 1
        return seen

    def handle_event(self, text: str) -> None:
        parsed = parse_event(text)
        if parsed is None:
            return
        name, mac = parsed
        if name == CONNECTED:
            self.emit(Sighting(mac, KIND_CONNECTED, self.clock()))
        else:
            self.emit(Gone(mac, self.clock()))
