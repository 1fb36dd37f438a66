"""The node's MQTT link: drain the outbox to the hub, take the roster and
config from it.

Delivery is at least once: a record leaves the outbox only when the hub's
``down/ack`` names it, and everything unacknowledged is sent again after a
reconnect or when an ack is overdue. paho keeps its own queue in memory and
re-sends all of it on reconnect, so it is handed a bounded window of batches,
never the backlog. All database work happens on the calling thread; paho's
network thread only puts messages on a queue.

When the node's storage is full, deleting acknowledged records (or storing a
new roster) fails: the loop keeps what it could not apply in memory and
applies it once space returns, rather than dying. Records stay queued until
then, so nothing is lost either way (and after a restart they are sent again;
the hub ignores ids it has seen).

The loop also prunes what the node keeps past its time (``edge.retention``):
at start and about once an hour, once the wall clock is known to be set.
"""

import json
import logging
import queue
import re
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from protocol import topics
from protocol.records import join_envelope
from runtime.mqttclient import is_fatal, make_client
from runtime.settings import MqttSettings

from . import health
from .db import is_disk_full
from .outbox import Outbox
from .photos import PhotoSpool
from .retention import prune
from .retention import settings as retention_settings
from .state import ASSESSMENT, CONFIG, ROSTER, NodeState

log = logging.getLogger(__name__)
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")  # photo acks name sha256s; record acks name UUIDs


class SyncFatal(RuntimeError):
    """The broker refused us for a reason that retrying cannot mend."""


@dataclass
class Batch:
    items: dict  # record id -> outbox seq of the copy that was sent
    sent_at: float = field(default_factory=time.monotonic)


class NodeSync:
    def __init__(self, *, site, node, db_path, mqtt: MqttSettings, batch_size=500,
                 window=8, ack_timeout=15.0, status_interval=30.0, poll_interval=0.2,
                 photo_dir=None, photo_window=2, clock: health.NodeClock = health.SYSTEM_CLOCK,
                 retention: dict | None = None, prune_interval=3600.0):
        self.site, self.node, self.db_path = site, node, Path(db_path)
        self.batch_size, self.window = batch_size, window
        self.ack_timeout, self.status_interval = ack_timeout, status_interval
        self.poll_interval = poll_interval
        self.outbox = self.state = self.spool = None  # opened on the thread that runs the loop
        self.photo_dir = Path(photo_dir) if photo_dir else self.db_path.parent / "photos"
        self.photo_window = photo_window
        self.clock = clock  # the node's clocks, for the batch envelopes and the status
        self.retention = retention_settings(retention)  # periods in days (edge.retention)
        self.prune_interval = prune_interval
        self._next_prune = 0.0  # monotonic time of the next pruning
        self.photos_inflight: dict[str, float] = {}  # sha256 -> when sent
        self.inbox: queue.Queue = queue.Queue()
        self.wake = threading.Event()
        self.connected = False
        self.current: dict[str, Batch] = {}  # batches of this connection
        self.stale: dict[str, Batch] = {}  # sent before a reset; their acks still count
        self.cursor = 0  # highest outbox seq handed to paho since the last reset
        # What a full disk kept us from writing, applied when space returns:
        self.unapplied_acks: list[tuple[str, int]] = []  # (record id, seq) the hub acked
        self.unapplied_photo_acks: list[str] = []
        self.unapplied_state: dict[str, dict] = {}  # roster/config documents
        self._full_since = None  # monotonic time the disk was first found full
        self.client = make_client(
            f"rounds-{site}-{node}", mqtt,
            will=(topics.node_up(site, node, "status"), self._status("offline")),
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self._mqtt = mqtt

    # --- paho callbacks: network thread; they only hand over to run() ---

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            self.inbox.put(("refused", (str(reason_code), is_fatal(reason_code))))
        else:
            client.subscribe([(topics.node_down(self.site, self.node, "ack"), 1),
                              (topics.node_down(self.site, self.node, "config"), 1),
                              (topics.site_down(self.site, "roster"), 1),
                              (topics.site_down(self.site, "assessment"), 1)])
            self.inbox.put(("connected", None))
        self.wake.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.inbox.put(("disconnected", str(reason_code)))
        self.wake.set()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        refused = [str(rc) for rc in reason_codes if rc.is_failure]
        if refused:
            self.inbox.put(("refused", (f"subscription refused: {', '.join(refused)}", True)))
            self.wake.set()

    def _on_message(self, client, userdata, message):
        self.inbox.put(("message", (message.topic, message.payload)))
        self.wake.set()

    # --- the loop ---

    def run(self, stop: threading.Event) -> None:
        """Sync until ``stop`` is set; raises SyncFatal when refused for good."""
        self.outbox = Outbox(self.db_path, self.clock)
        self.state = NodeState(self.outbox.db)
        self.spool = PhotoSpool(self.outbox.db, self.photo_dir)
        self._sweep_spool()
        self._prune()
        self.client.connect_async(self._mqtt.host, self._mqtt.port, keepalive=30)
        self.client.loop_start()
        next_status = 0.0
        try:
            while not stop.is_set():
                self.wake.clear()  # before draining, so a message arriving now wakes the next wait
                self._apply_unapplied()
                self._drain_inbox()
                if time.monotonic() >= self._next_prune:
                    self._prune()
                if self.connected:
                    self._expire_overdue()
                    self._fill_window()
                    self._send_photos()
                    if time.monotonic() >= next_status:
                        self._publish_status()
                        self._sweep_spool()
                        next_status = time.monotonic() + self.status_interval
                self.wake.wait(self.poll_interval)
        finally:
            if self.connected:
                info = self.client.publish(topics.node_up(self.site, self.node, "status"),
                                           self._status("offline"), qos=1, retain=True)
                info.wait_for_publish(timeout=2)
            self.client.disconnect()
            self.client.loop_stop()
            self.outbox.close()

    def _drain_inbox(self) -> None:
        while True:
            try:
                kind, value = self.inbox.get_nowait()
            except queue.Empty:
                return
            if kind == "refused":
                reason, fatal = value
                if fatal:
                    raise SyncFatal(f"broker refused node {self.node!r}: {reason}")
                log.warning("connect refused (%s); retrying", reason)
            elif kind == "connected":
                log.info("connected; backlog %d", self.outbox.backlog())
                self.connected = True
                self._reset()
            elif kind == "disconnected":
                if self.connected:
                    log.warning("disconnected (%s); will reconnect", value)
                self.connected = False
            elif kind == "message":
                self._handle_message(*value)

    def _handle_message(self, topic: str, payload: bytes) -> None:
        try:
            document = json.loads(payload) if payload else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            log.warning("ignoring unreadable message on %s", topic)
            return
        if not isinstance(document, dict):
            return
        if topic.endswith("/down/ack"):
            self._handle_ack(document)
        elif topic.endswith("/down/roster"):
            self.unapplied_state[ROSTER] = document
        elif topic.endswith("/down/config"):
            self.unapplied_state[CONFIG] = document
        elif topic.endswith("/down/assessment"):
            self.unapplied_state[ASSESSMENT] = document
        self._apply_unapplied()

    def _handle_ack(self, ack: dict) -> None:
        ids = ack.get("ids") or []
        photos = [i for i in ids if isinstance(i, str) and _SHA256.match(i)]
        if photos:
            self.unapplied_photo_acks += photos
            for sha in photos:
                self.photos_inflight.pop(sha, None)
        names = [ack["batch"]] if ack.get("batch") else list(self.current) + list(self.stale)
        done = []
        for name in names:
            batch = self.current.get(name) or self.stale.get(name)
            if batch is None:
                continue
            for rid in ids:
                seq = batch.items.pop(rid, None)
                if seq is not None:
                    done.append((rid, seq))
            if not batch.items:
                self.current.pop(name, None)
                self.stale.pop(name, None)
        self.unapplied_acks += done

    def _apply_unapplied(self) -> None:
        """Write the acks and documents received (now, or while the disk was full)."""
        if not (self.unapplied_acks or self.unapplied_photo_acks or self.unapplied_state):
            return
        try:
            if self.unapplied_photo_acks:
                self.spool.ack(self.unapplied_photo_acks)
                self.unapplied_photo_acks = []
            if self.unapplied_acks:
                self.outbox.ack_sent(self.unapplied_acks)
                self.unapplied_acks = []
            for key, document in list(self.unapplied_state.items()):
                self.state.put(key, document)
                del self.unapplied_state[key]
        except sqlite3.OperationalError as exc:
            if not is_disk_full(exc):
                raise
            if self._full_since is None:
                self._full_since = time.monotonic()
                log.warning("node storage full: %d acknowledged record(s) stay queued until "
                            "there is space again (%s)", len(self.unapplied_acks), exc)
            return
        if self._full_since is not None:
            log.info("node storage has space again; acks applied")
            self._full_since = None

    def _sweep_spool(self) -> None:
        """Give back the space of spool files a killed portal left behind
        (``PhotoSpool.sweep``): at start and with every status message."""
        try:
            removed = self.spool.sweep()
        except (sqlite3.OperationalError, OSError) as exc:  # housekeeping: try next time
            log.warning("spool sweep skipped: %s", exc)
            return
        if removed:
            log.info("removed %d photo file(s) no report names (left by a killed writer)",
                     removed)

    def _prune(self) -> None:
        """Delete what is past its time (``edge.retention.prune``): at start and
        every ``prune_interval`` s, whether or not the hub is reachable. Not
        before NTP has set the clock (a clock set ahead would age everything),
        and never fatal: a busy database or any failure waits for next time."""
        self._next_prune = time.monotonic() + self.prune_interval
        if self.clock.synced() is False:
            log.info("retention: pruning waits until the wall clock is set")
            return
        try:
            prune(self.outbox.db, self.photo_dir, self.retention, self.clock.now())
        except Exception as exc:  # housekeeping must never stop the sync
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                log.warning("retention: database busy; pruning skipped until next time")
            else:
                log.exception("retention: pruning failed; trying again later")

    def _reset(self) -> None:
        """Send every unacknowledged record again, from the oldest."""
        self.stale.update(self.current)
        self.current.clear()
        self.cursor = 0
        self.photos_inflight.clear()
        # Acks for batches long gone will not come; forget them.
        horizon = time.monotonic() - 10 * self.ack_timeout
        self.stale = {k: b for k, b in self.stale.items() if b.sent_at > horizon}

    def _expire_overdue(self) -> None:
        oldest = min([b.sent_at for b in self.current.values()]
                     + list(self.photos_inflight.values()), default=None)
        if oldest is not None and time.monotonic() - oldest > self.ack_timeout:
            log.warning("no ack for %.0fs; sending the unacknowledged again", self.ack_timeout)
            self._reset()

    def _fill_window(self) -> None:
        topic = topics.node_up(self.site, self.node, "batch")
        while len(self.current) < self.window:
            items = self.outbox.pending(self.batch_size, after_seq=self.cursor)
            if not items:
                return
            name = uuid.uuid4().hex
            payload = join_envelope(self.node, [i.body for i in items], name,
                                    health.clock(self.clock))
            self.current[name] = Batch({i.id: i.seq for i in items})
            self.cursor = items[-1].seq
            self.client.publish(topic, payload, qos=1)

    def _send_photos(self) -> None:
        """Each spooled photo as its own ``up/photo`` message, a few at a time
        (a photo is up to ~1.5 MB: paho holds every unacked one in memory)."""
        room = self.photo_window - len(self.photos_inflight)
        if room <= 0:
            return
        topic = topics.node_up(self.site, self.node, "photo")
        for photo in self.spool.pending(room, exclude=self.photos_inflight):
            try:
                payload = photo.read()
            except FileNotFoundError:
                log.error("spooled photo %s is missing; dropping it", photo.sha256)
                self.spool.ack([photo.sha256])
                continue
            props = Properties(PacketTypes.PUBLISH)
            props.UserProperty = [("report_id", photo.report_id), ("sha256", photo.sha256)]
            self.photos_inflight[photo.sha256] = time.monotonic()
            self.client.publish(topic, payload, qos=1, properties=props)

    def _status(self, state: str) -> bytes:
        status = {"state": state, "version": health.VERSION, "ts": self.clock.now_iso()}
        synced = self.clock.synced()
        if synced is not None:
            status["clock_synced"] = synced
        if state == "online":
            status["backlog"] = self.outbox.backlog() + self.spool.count()
            status["disk_free"] = health.disk_free(self.db_path.parent)
        return json.dumps(status).encode()

    def _publish_status(self) -> None:
        self.client.publish(topics.node_up(self.site, self.node, "status"),
                            self._status("online"), qos=1, retain=True)

