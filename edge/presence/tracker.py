"""Sightings -> presence intervals, presence check-ins and occupancy counts.

``Tracker.handle(event)`` takes a ``Sighting`` (sniffer or hostapd) or a
``Gone`` (hostapd: the station disconnected); ``Tracker.tick()`` runs the
clocks (call it about once a second). The clock is injectable (``clock``,
epoch seconds) so the tests run hours in milliseconds.

For each MAC the device id is ``Devices.device_id`` (HMAC with the site
secret) and the owner ``Devices.staff_for``.

**A bound phone** (someone's):

- first sighting -> an open interval: a ``presence`` record with a fresh
  UUID, ``first_seen = last_seen`` = the sighting's time, ``closed: false``;
- while it is open, later sightings move ``last_seen`` (in memory), and the
  record is queued again with the same id and the new ``last_seen`` at most
  every ``refresh`` seconds (default 60) (``Outbox.append`` replaces the
  unsent copy; the hub updates the interval it knows by id);
- silent for ``away_after`` seconds (default 300, as hostapd's
  ``ap_max_inactivity``), or hostapd reports it disconnected -> queued once
  more with ``closed: true`` (``last_seen`` stays the last time it was seen,
  or the disconnect's time). A later sighting opens a new interval, new id;
- seen while an event of the node's zone is on (``NodeState.active_event``,
  which includes the early check-in window) -> a ``checkin`` record with
  ``method: "presence"`` through ``edge.checkins.checkin_in_transaction``:
  once per person and event, shared with the portal's check-ins (someone
  who tapped is not checked in twice);
- released from the captive portal (``Devices.release``, the portal's
  ``release_seconds``) when its interval opens and at each refresh, so its
  sign-in sheet never opens.

Open intervals are also kept in the node table ``presence_open`` (device
HMAC, never the MAC), so that a restart of the process continues them with
the same id rather than ending them: a clean stop does NOT close intervals
(a restart or an upgrade is not the person leaving); it queues their latest
``last_seen`` and leaves them open. After a restart an interval whose device
stays silent is closed by the away timer as usual, with its last ``last_seen``.

**Any device, bound or not**, counts toward occupancy: the tracker keeps the
set of MACs seen in the current minute in memory only, and when the minute
is over queues one ``occupancy`` record ``{zone, minute, devices}`` (the
number of distinct devices seen in it; 0 for a minute with none) and drops
the set. The minute in which the tracker started and the one in which it
stops were observed only in part and are not reported (a restart would
otherwise give two records for one minute). An unbound device leaves nothing
else: no record, no row, no MAC or HMAC on disk. (The per-minute cache of
``mac -> (device id, owner)`` that saves the lookups is in memory and dropped
with the set; it also makes a new binding count within a minute.)

The zone is the hub's (``NodeState.zone``), else the provisioned ``zone``;
with neither, nothing is recorded (said once in the log).

**The wall clock jumps** (a Pi has no battery clock: it boots wrong, and NTP
or a person sets it later, forwards or backwards). The tracker reads it with
the monotonic clock beside it (``monotonic``, default ``time.monotonic`` with
the system clock): when the wall clock moved by more than ``JUMP`` seconds
more or less than the monotonic one, every open interval (and the hostapd
leave times) is moved by the jump and queued again, so an interval never
spans a jump: no negative dwell (and ``last_seen`` is never sent before
``first_seen`` in any case), no hours of dwell invented by a forward jump,
and no interval closed as "away" by one. The minute being counted for
occupancy is dropped. A sighting whose time is more than ``JUMP`` seconds
ahead of the clock (read before a backward jump) counts as seen now.
While the node knows its wall clock is unset (``synced()`` False; see
``edge.health.NodeClock``) it does not know which event is on:
a bound phone is then checked in without an event, once per person and
(node) day, and the hub matches it to the event by its corrected time
(``edge.checkins.event_now``, hub/ingest/clockfix.py).
"""

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from edge.checkins import checkin_in_transaction, checkin_key, event_now
from edge.db import immediate
from edge.devices import Devices
from edge.health import clock_synced
from edge.outbox import Outbox
from edge.state import CONFIG, NodeState
from protocol.clock import iso, parse_iso
from protocol.ids import record_id

from .hostapd import Gone
from .parse import Sighting

log = logging.getLogger("rounds.presence.tracker")

AWAY_AFTER = 300.0
REFRESH = 60.0
RELEASE_SECONDS = 43200
MINUTE = 60
JUMP = 5.0  # seconds the wall clock may drift from the monotonic one between reads


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


@dataclass
class Interval:
    record_id: str
    device: str
    staff_id: str
    zone: str
    first_seen: float
    last_seen: float
    sent_last_seen: float  # last_seen of the newest queued copy
    sent_at: float         # clock time of the newest queued copy
    mac: str | None = None  # known once seen by this process (restored ones: not yet)

    def record(self, now: float, closed: bool = False) -> dict:
        return {"id": self.record_id, "type": "presence", "ts": iso(_dt(now)),
                "device": self.device, "staff_id": self.staff_id, "zone": self.zone,
                "first_seen": iso(_dt(self.first_seen)),
                "last_seen": iso(_dt(max(self.last_seen, self.first_seen))),
                "closed": closed}

    def move(self, jump: float) -> None:
        """The wall clock jumped by ``jump`` seconds: keep the times on it."""
        self.first_seen += jump
        self.last_seen += jump
        # Queue it again at the next tick, with the times on the new clock.
        self.sent_last_seen = self.sent_at = float("-inf")


class Tracker:
    def __init__(self, outbox: Outbox, site_secret: bytes, zone: str | None = None, *,
                 away_after: float = AWAY_AFTER, refresh: float = REFRESH,
                 release_seconds: int = RELEASE_SECONDS, minute: int = MINUTE,
                 ignore: set[str] | frozenset = frozenset(),
                 clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] | None = None,
                 synced: Callable[[], bool | None] = clock_synced):
        if away_after <= 0 or refresh <= 0 or minute <= 0 or release_seconds <= 0:
            raise ValueError("away_after, refresh, minute and release_seconds must be positive")
        self.outbox, self.db = outbox, outbox.db
        self.devices = Devices(self.db, site_secret)
        self.state = NodeState(self.db)
        self.fallback_zone = zone
        self.away_after, self.refresh = float(away_after), float(refresh)
        self.release_seconds, self.minute_len = int(release_seconds), int(minute)
        self.ignore = {m.lower() for m in ignore}
        self.clock, self.synced = clock, synced
        # Jumps are looked for only against a monotonic clock that goes with
        # ``clock``: the system's for the system clock, else the caller's.
        self.monotonic = monotonic or (time.monotonic if clock is time.time else None)
        self._anchor: tuple[float, float] | None = None  # (wall, monotonic) at the last read
        self.open: dict[str, Interval] = {}      # device id -> open interval (bound only)
        self.closed_at: dict[str, float] = {}    # bound MAC -> when hostapd said it left
        self.checked: set[tuple[str, str]] = set()  # (staff, event id) known checked in
        self._known: dict[str, tuple[str, str | None]] = {}  # mac -> (device, staff); 1 min
        self._macs: set[str] = set()             # seen this minute (memory only)
        now = self._now()
        self._minute = int(now // self.minute_len)
        self._minute_partial = now % self.minute_len != 0
        self._no_zone_said = False
        self.counts = {"sightings": 0, "opened": 0, "closed": 0, "refreshed": 0,
                       "checkins": 0, "occupancy": 0, "clock_jumps": 0}
        self._restore()

    # --- the clocks -----------------------------------------------------------------

    def _now(self) -> float:
        """The wall clock now, after moving the open intervals along if it
        jumped since the last read (see the module docstring)."""
        now = self.clock()
        if self.monotonic is None:
            return now
        mono = self.monotonic()
        if self._anchor is not None:
            jump = (now - self._anchor[0]) - (mono - self._anchor[1])
            if abs(jump) > JUMP:
                self._jumped(jump, now)
        self._anchor = (now, mono)
        return now

    def _jumped(self, jump: float, now: float) -> None:
        log.warning("the wall clock jumped by %+.0f s; moving %d open interval(s) along",
                    jump, len(self.open))
        self.counts["clock_jumps"] += 1
        for interval in self.open.values():
            interval.move(jump)
        for mac in self.closed_at:
            self.closed_at[mac] += jump
        # The minute being counted straddles the jump: not reported.
        self._minute, self._minute_partial = int(now // self.minute_len), True
        self._macs, self._known = set(), {}

    # --- zone and identity ---------------------------------------------------------

    def zone(self) -> str | None:
        zone = self.state.zone() or self.fallback_zone
        if zone is None and not self._no_zone_said:
            log.warning("this node does not know its zone yet (no hub config and no "
                        "'zone' in the node config): presence records wait for it")
            self._no_zone_said = True
        return zone

    def _identify(self, mac: str) -> tuple[str, str | None]:
        known = self._known.get(mac)
        if known is None:
            device = self.devices.device_id(mac)
            known = self._known[mac] = (device, self.devices.staff_for(device))
        return known

    # --- events ------------------------------------------------------------------------

    def handle(self, event) -> None:
        if isinstance(event, Sighting):
            self.sighting(event)
        elif isinstance(event, Gone):
            self.gone(event)

    def sighting(self, s: Sighting) -> None:
        if s.mac in self.ignore:
            return
        now = self._now()
        self._roll(now)
        self.counts["sightings"] += 1
        self._macs.add(s.mac)
        ts = s.ts if s.ts <= now + JUMP else now  # read before a backward jump
        device, staff = self._identify(s.mac)
        if staff is None:
            return  # unbound: counted above, nothing else
        left = self.closed_at.get(s.mac)
        if left is not None and ts <= left:
            return  # a frame from before hostapd said it left
        zone = self.zone()
        if zone is None:
            return
        interval = self.open.get(device)
        writes = []
        if interval is not None and interval.staff_id != staff:
            writes.append(("close", interval))  # re-bound to someone else
            interval = None
        if interval is None:
            interval = Interval(record_id(time.time_ns() // 1_000_000), device, staff,
                                zone, ts, ts,
                                ts, now, s.mac)
            writes.append(("open", interval))
        else:
            interval.last_seen = max(interval.last_seen, ts)
            if interval.mac is None:  # restored after a restart: release it again
                interval.mac = s.mac
                writes.append(("send", interval))
        checkin = self._checkin_due(staff, ts)
        if writes or checkin:
            self._write(now, writes, checkin and (*checkin, interval, ts))

    def _checkin_due(self, staff: str, ts: float) -> tuple[dict | None, str] | None:
        """``(event, key)`` of the check-in a sighting at ``ts`` makes, unless
        this person is checked in already: the event on now, or, while the
        wall clock is unset and the node has a schedule, none (see the module
        docstring); ``key`` as in ``local_checkins``."""
        synced = self.synced()
        event = event_now(self.state, _dt(ts), synced)
        if event is not None:
            key = event["id"]
        elif synced is False and (self.state.get(CONFIG) or {}).get("events"):
            key = checkin_key(None, iso(_dt(ts)))
        else:
            return None
        return None if (staff, key) in self.checked else (event, key)

    def gone(self, g: Gone) -> None:
        if g.mac in self.ignore:
            return
        now = self._now()
        self._roll(now)
        device, staff = self._identify(g.mac)
        interval = self.open.get(device)
        if staff is None or interval is None:
            return
        self.closed_at[g.mac] = g.ts
        interval.last_seen = max(interval.last_seen, min(g.ts, now))
        self._write(now, [("close", interval)])

    def tick(self) -> None:
        """Close the intervals of devices away, re-send the grown ones, and
        report the minute that ended."""
        now = self._now()
        self._roll(now)
        writes = []
        for interval in list(self.open.values()):
            if now - interval.last_seen >= self.away_after:
                writes.append(("close", interval))
            elif (interval.last_seen > interval.sent_last_seen
                  and now - interval.sent_at >= self.refresh):
                writes.append(("send", interval))
        if writes:
            self._write(now, writes)
        for mac, left in list(self.closed_at.items()):
            if now - left > self.minute_len:
                del self.closed_at[mac]

    def flush(self) -> None:
        """On a clean stop: queue the latest last_seen of every open interval
        (left open: a restart is not the person leaving)."""
        now = self._now()
        writes = [("send", i) for i in self.open.values()
                  if i.last_seen > i.sent_last_seen]
        if writes:
            self._write(now, writes)

    # --- occupancy -----------------------------------------------------------------------

    def _roll(self, now: float) -> None:
        minute = int(now // self.minute_len)
        if minute == self._minute:
            return
        if not self._minute_partial:
            zone = self.zone()
            if zone is not None:
                start = _dt(self._minute * self.minute_len)
                self.outbox.append({"type": "occupancy", "ts": iso(_dt(now)), "zone": zone,
                                    "minute": iso(start), "devices": len(self._macs)})
                self.counts["occupancy"] += 1
        # A clock jump (the Pi has no RTC; NTP sets it after boot) reports only
        # the minute that was being counted, never a run of empty minutes.
        self._minute, self._minute_partial = minute, False
        self._macs = set()
        self._known = {}

    # --- the database ----------------------------------------------------------------------

    def _restore(self) -> None:
        now = self._now()
        for device, record_id, staff, zone, first, last in self.db.conn.execute(
                "SELECT device, record_id, staff_id, zone, first_seen, last_seen "
                "FROM presence_open"):
            first_ts = parse_iso(first).timestamp()
            last_ts = parse_iso(last).timestamp()
            self.open[device] = Interval(record_id, device, staff, zone, first_ts, last_ts,
                                         last_ts, now)
        if self.open:
            log.info("continuing %d open presence interval(s)", len(self.open))

    def _write(self, now: float, writes, checkin=None) -> None:
        """Queue the records of ``writes`` [(what, interval)] and the
        check-in, with the ``presence_open`` rows and releases, in one transaction."""
        records = []
        with immediate(self.db):
            for what, interval in writes:
                if what == "close":
                    records.append(interval.record(now, closed=True))
                    self.db.conn.execute("DELETE FROM presence_open WHERE device = ?",
                                         (interval.device,))
                    continue
                records.append(interval.record(now))
                self.db.conn.execute(
                    "INSERT INTO presence_open (device, record_id, staff_id, zone, first_seen, "
                    "last_seen) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(device) DO UPDATE SET "
                    "record_id = excluded.record_id, staff_id = excluded.staff_id, "
                    "zone = excluded.zone, first_seen = excluded.first_seen, "
                    "last_seen = excluded.last_seen",
                    (interval.device, interval.record_id, interval.staff_id, interval.zone,
                     iso(_dt(interval.first_seen)), iso(_dt(interval.last_seen))))
                if interval.mac is not None:
                    self.devices.release(interval.mac, self.release_seconds, _dt(now))
            if records:
                self.outbox.append_many(records)
            created = None
            if checkin is not None:
                event, _key, interval, ts = checkin
                created, _ = checkin_in_transaction(
                    self.outbox, interval.staff_id, event, interval.zone, interval.device,
                    "presence", now=_dt(ts))
        # Only after the commit: memory follows what is durable.
        for what, interval in writes:
            if what == "close":
                if self.open.get(interval.device) is interval:
                    del self.open[interval.device]
                self.counts["closed"] += 1
            else:
                self.open[interval.device] = interval
                interval.sent_last_seen, interval.sent_at = interval.last_seen, now
                self.counts["opened" if what == "open" else "refreshed"] += 1
        if checkin is not None:
            self.checked.add((checkin[2].staff_id, checkin[1]))
            self.counts["checkins"] += bool(created)
