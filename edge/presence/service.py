"""``rounds-edge presence``: capture and hostapd threads -> a queue -> the tracker.

    capture thread:  Capture.read_burst -> parse() -> filter -> queue
    hostapd thread:  HostapdListener (events + station polls) -> queue
    main thread:     queue -> Tracker.handle; Tracker.tick every second;
                     owns the database connection; watches the threads

The filter stage (in the capture thread) drops the node's own MAC and
repeats of one MAC within ``DEDUP_SECONDS`` (a phone's DHCP retries and ARP
bursts say nothing new), so the tracker sees at most one sighting per device
per second. The queue is bounded: if the tracker ever fell behind, the
capture thread would wait, the kernel's socket buffer would fill and the
drops would show in the kernel counters, which are logged every
``STATS_EVERY`` seconds (as a warning when frames were dropped).

If a thread dies, the service logs why and exits non-zero (systemd restarts
it): it never goes on half-deaf.

Node config (JSON, ``presence`` section; defaults in brackets):

- ``interface``: where phones arrive [``wifi.interface``, else ``wlan0``]
- ``sniff``: capture DHCP and ARP there [true]
- ``hostapd_ctrl``: hostapd's control socket, or null for none
  [``/run/hostapd/<wifi.interface>`` on a ward node (``shape``, default
  ``"ward"``), none on a hall node]
- ``away_after``: seconds of silence after which a device is away [300]
- ``refresh``: at most this often an open interval is re-sent [60]
- ``hostapd_poll``: seconds between station-list walks [30]
- ``minute``: length of an occupancy count in seconds [60]; only tests and
  demos change it
Also used: ``db``, ``site_secret``, ``zone`` (until the hub's config names
one) and ``portal.release_seconds`` (how long a bound phone seen here passes
the captive portal) [43200].
"""

import logging
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass

from edge.outbox import Outbox

from .capture import Capture, CaptureError, check_interface, has_cap_net_raw, own_macs
from .hostapd import HostapdListener
from .parse import parse
from .tracker import AWAY_AFTER, MINUTE, REFRESH, RELEASE_SECONDS, Tracker

log = logging.getLogger("rounds.presence")

DEDUP_SECONDS = 1.0
HOSTAPD_CTRL_DIR = "/run/hostapd"
QUEUE_SIZE = 10_000
STATS_EVERY = 300.0
TICK = 1.0


class PresenceConfigError(ValueError):
    """The node config's presence section cannot work; the message says why."""


@dataclass(frozen=True)
class PresenceSettings:
    db: str
    site_secret: bytes
    zone: str | None
    interface: str
    sniff: bool = True
    hostapd_ctrl: str | None = None
    away_after: float = AWAY_AFTER
    refresh: float = REFRESH
    hostapd_poll: float = 30.0
    minute: int = MINUTE
    release_seconds: int = RELEASE_SECONDS

    @classmethod
    def from_config(cls, config: dict, interface: str | None = None) -> "PresenceSettings":
        section = config.get("presence") or {}
        if not isinstance(section, dict):
            raise PresenceConfigError("presence must be an object in the node config")
        try:
            secret = bytes.fromhex(config["site_secret"])
        except (KeyError, TypeError, ValueError):
            raise PresenceConfigError("site_secret must be hex (as `rounds-provision site "
                                      "init` writes it)") from None

        def number(name, default, kind=float):
            value = section.get(name, default)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise PresenceConfigError(f"presence.{name} must be a positive number "
                                          f"of seconds, not {value!r}")
            return kind(value)

        sniff = section.get("sniff", True)
        if not isinstance(sniff, bool):
            raise PresenceConfigError("presence.sniff must be true or false")
        wifi = config.get("wifi") or {}
        portal = config.get("portal") or {}
        interface = interface or section.get("interface") or wifi.get("interface") or "wlan0"
        # A ward node's own radio runs hostapd (ctrl_interface=/run/hostapd, see
        # firmware-config/node/hostapd.conf.tmpl); a hall node has none.
        ward = config.get("shape", "ward") == "ward"
        default_ctrl = f"{HOSTAPD_CTRL_DIR}/{wifi.get('interface') or 'wlan0'}" if ward else None
        ctrl = section.get("hostapd_ctrl", default_ctrl)
        if ctrl is not None and (not isinstance(ctrl, str) or not ctrl):
            raise PresenceConfigError("presence.hostapd_ctrl must be a socket path or null")
        if not sniff and not ctrl:
            raise PresenceConfigError("nothing to listen to: presence.sniff is false and "
                                      "presence.hostapd_ctrl is not set")
        return cls(
            db=config["db"], site_secret=secret, zone=config.get("zone"),
            interface=interface, sniff=sniff, hostapd_ctrl=ctrl,
            away_after=number("away_after", AWAY_AFTER), refresh=number("refresh", REFRESH),
            hostapd_poll=number("hostapd_poll", 30.0), minute=number("minute", MINUTE, int),
            release_seconds=int(portal.get("release_seconds", RELEASE_SECONDS)),
        )


class Presence:
    """The presence process: ``check()`` (fail fast), then ``run(stop)``."""

    def __init__(self, settings: PresenceSettings):
        self.settings = settings
        self.queue: queue.Queue = queue.Queue(QUEUE_SIZE)
        self.capture: Capture | None = None
        self.errors: dict[str, BaseException] = {}
        self.filtered = 0

    def check(self) -> None:
        """Raise CaptureError unless sniffing can work (before any thread starts)."""
        if not self.settings.sniff:
            return
        check_interface(self.settings.interface)
        if not has_cap_net_raw():
            raise CaptureError(
                "the presence sniffer needs CAP_NET_RAW to open a packet socket: run it as "
                "root or through rounds-presence.service (AmbientCapabilities=CAP_NET_RAW)")

    # --- threads ---------------------------------------------------------------------

    def _sniff(self, stop: threading.Event) -> None:
        capture, put = self.capture, self.queue.put
        ignore = own_macs(self.settings.interface)
        last: dict[str, float] = {}
        forget_at = time.monotonic() + 60
        while not stop.is_set():
            for frame, ts in capture.read_burst(0.5):
                try:
                    sighting = parse(frame, ts)
                except Exception:  # parse never raises; never let one frame stop us
                    log.exception("parse failed on a %d-byte frame", len(frame))
                    continue
                if sighting is None or sighting.mac in ignore:
                    continue
                if ts - last.get(sighting.mac, 0.0) < DEDUP_SECONDS:
                    self.filtered += 1
                    continue
                last[sighting.mac] = ts
                put(sighting)
            if time.monotonic() >= forget_at:  # MACs are kept a minute at most
                last.clear()
                forget_at = time.monotonic() + 60

    def _thread(self, name: str, target, stop) -> threading.Thread:
        def run():
            try:
                target(stop)
            except BaseException as exc:
                self.errors[name] = exc
                log.exception("%s thread failed", name)

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        return thread

    # --- the main loop ------------------------------------------------------------------

    def run(self, stop: threading.Event) -> int:
        """Until ``stop`` is set: 0 after a clean stop, 1 when a thread died."""
        s = self.settings
        outbox = Outbox(s.db)
        tracker = Tracker(outbox, s.site_secret, s.zone, away_after=s.away_after,
                          refresh=s.refresh, release_seconds=s.release_seconds,
                          minute=s.minute, ignore=own_macs(s.interface) if s.sniff else set())
        threads = {}
        inner_stop = threading.Event()
        try:
            if s.sniff:
                self.capture = Capture(s.interface).open()
                threads["capture"] = self._thread("capture", self._sniff, inner_stop)
            if s.hostapd_ctrl:
                listener = HostapdListener(s.hostapd_ctrl, self.queue.put,
                                           away_after=s.away_after, poll=s.hostapd_poll)
                threads["hostapd"] = self._thread("hostapd", listener.run, inner_stop)
            log.info("presence running: %s%s; zone %s, away after %gs",
                     f"sniffing DHCP/ARP on {s.interface}" if s.sniff else "no sniffing",
                     f", hostapd at {s.hostapd_ctrl}" if s.hostapd_ctrl else "",
                     tracker.zone(), s.away_after)
            return self._loop(stop, tracker, threads)
        finally:
            inner_stop.set()
            for thread in threads.values():
                thread.join(5)
            if self.capture is not None:
                self._log_stats(final=True)
                self.capture.close()
            outbox.close()

    def _loop(self, stop, tracker: Tracker, threads: dict) -> int:
        next_tick = next_stats = time.monotonic()
        next_stats += STATS_EVERY
        reported_drops = 0
        while not stop.is_set():
            try:
                event = self.queue.get(timeout=max(0.0, min(TICK, next_tick - time.monotonic())))
            except queue.Empty:
                event = None
            now = time.monotonic()
            try:
                if event is not None:
                    tracker.handle(event)
                if now >= next_tick:
                    next_tick = now + TICK
                    tracker.tick()
            except sqlite3.OperationalError as exc:
                # e.g. locked for longer than busy_timeout: what was not
                # committed is redone from memory on the next tick/sighting.
                log.error("node database: %s (carrying on)", exc)
            for name, thread in threads.items():
                if not thread.is_alive() and not stop.is_set():
                    error = self.errors.get(name)
                    log.error("the %s thread stopped%s: exiting so that the service "
                              "restarts", name, f" ({type(error).__name__}: {error})"
                              if error else "")
                    return 1
            if self.capture is not None and now >= next_stats:
                next_stats = now + STATS_EVERY
                reported_drops = self._log_stats(reported_drops)
        # Clean stop: open intervals stay open (see tracker.py); their latest
        # last_seen is queued and kept for the next start.
        while True:
            try:
                tracker.handle(self.queue.get_nowait())
            except queue.Empty:
                break
        tracker.flush()
        log.info("presence stopped: %s", ", ".join(f"{k} {v}" for k, v in
                                                    tracker.counts.items()))
        return 0

    def _log_stats(self, reported_drops: int = 0, final: bool = False) -> int:
        packets, drops = self.capture.stats()
        level = logging.WARNING if drops > reported_drops else logging.INFO
        log.log(level, "capture%s: %d frames passed the filter, %d dropped by the kernel "
                "(socket buffer full), %d repeats skipped", " (final)" if final else "",
                packets, drops, self.filtered)
        return drops
