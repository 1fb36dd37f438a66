"""The hub's MQTT subscriber: every node's uplink in, acks and config out.

Exactly once in effect: the broker holds the hub's persistent session; a
batch is committed in one transaction and only then acknowledged, both to the
node (``down/ack``) and to the broker (PUBACK, via paho's manual acks), so a
crash at any point leads to redelivery, and redelivery to an ignored
duplicate. The broker's ACL lets node N publish only below its own topic;
the hub checks that the envelope names the same node. A payload that is
malformed goes to quarantine with the reason; none can stop the loop.
"""

import json
import logging
import threading
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from protocol import topics
from protocol.records import InvalidEnvelope, validate_status
from runtime.mqttclient import is_fatal, make_client, session_properties
from runtime.settings import MqttSettings

from hub.db import ingest_writer, open_db, write_transaction
from hub.sql import Error as DatabaseError  # SQLite's or PostgreSQL's
from hub.sql import is_dsn
from hub.ingest import downlink, photos, store
from hub.records import system
from hub.tickets import tickets

log = logging.getLogger(__name__)
SESSION_EXPIRY = 7 * 24 * 3600
# Everyone's assessment progress is costly to compute (every event of the year):
# it goes down to the nodes at most this often.
ASSESSMENT_EVERY = 300.0


class IngestFatal(RuntimeError):
    """The broker refused the hub for a reason that retrying cannot mend."""


class DatabaseFailure(IngestFatal):
    """The hub database failed (locked past the busy timeout, a full disk):
    the ingest stopped without acknowledging what it held, so the broker
    hands that to the next run. Unlike a refusal, a restart may mend it
    (``rounds-hub ingest --workers N`` restarts such a worker)."""


class Ingest:
    """One ingest connection. By default the whole hub side: client id
    ``rounds-hub-<site>``, every node's uplink, and the downlink thread. One
    of ``rounds-hub ingest --workers N`` (hub/ingest/workers.py) gets its own
    ``client_id``, the shared ``subscription``, the filters its session may
    still hold from another worker count to ``unsubscribe``, and ``downlink``
    only when it is worker 1."""

    def __init__(self, *, site: str, db_path, mqtt: MqttSettings,
                 downlink_interval: float = 5.0, photos_dir=None,
                 timezone: str = "Asia/Shanghai", assessment_every: float = ASSESSMENT_EVERY,
                 review_days: int = 7, client_id: str | None = None,
                 subscription: str | None = None, unsubscribe: tuple[str, ...] = (),
                 downlink: bool = True):
        self.site, self.db_path, self.mqtt = site, db_path, mqtt
        self.client_id = client_id or f"rounds-hub-{site}"
        self.subscription = subscription or topics.all_nodes_up(site)
        self.unsubscribe, self.downlink = tuple(unsubscribe), downlink
        self.tz = ZoneInfo(timezone)
        self.assessment_every = assessment_every
        self.review_days = review_days  # per review level (hub.json "review")
        self._assessment: tuple[float, dict] | None = None  # (monotonic when, document)
        if not photos_dir and is_dsn(db_path):
            raise ValueError("a hub on PostgreSQL needs its photos_dir: photos are files, "
                             "kept beside a SQLite database by default")
        self.photos_dir = Path(photos_dir) if photos_dir else Path(db_path).parent / "photos"
        self.downlink_interval = downlink_interval
        self.db = None  # opened on the thread that runs the loop
        self.fatal: str | None = None
        self._failure: type[IngestFatal] = IngestFatal
        self.stopping = threading.Event()
        self.republish = threading.Event()
        self.subscribed = threading.Event()  # set once the uplink subscription is granted
        self.client = make_client(self.client_id, mqtt)
        self.client.manual_ack_set(True)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    def run(self) -> None:
        """Ingest until stop() is called; raises IngestFatal when refused for good."""
        with ingest_writer(self.db_path) as self.db:
            if self.downlink:
                threading.Thread(target=self._publish_downlink, name="downlink",
                                 daemon=True).start()
            self.client.connect_async(self.mqtt.host, self.mqtt.port, keepalive=30,
                                      clean_start=False,
                                      properties=session_properties(SESSION_EXPIRY))
            try:
                self.client.loop_forever(retry_first_connection=True)
            finally:
                self.stopping.set()
        if self.fatal:
            raise self._failure(self.fatal)

    def stop(self) -> None:
        """End ``run``. Safe in a signal handler: paho is called from a thread
        of its own, since the handler may have interrupted this thread inside
        paho holding one of its locks (which are not re-entrant), and a
        disconnect from here would then wait for it for ever."""
        self.stopping.set()
        threading.Thread(target=self.client.disconnect, name="stop", daemon=True).start()

    def _refuse(self, reason: str, failure: type[IngestFatal] = IngestFatal) -> None:
        self.fatal, self._failure = reason, failure
        self.stopping.set()
        self.client.disconnect()

    # --- callbacks (the loop's thread) ---

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            if is_fatal(reason_code):
                self._refuse(f"broker refused the hub: {reason_code}")
            else:
                log.warning("connect refused (%s); retrying", reason_code)
            return
        log.info("connected as %s (session present: %s)", self.client_id,
                 flags.session_present)
        client.subscribe(self.subscription, qos=1)
        if self.unsubscribe:
            # After the subscribe: no moment without a subscription (a message
            # matching both is at worst ingested twice, which changes nothing).
            client.unsubscribe(list(self.unsubscribe))
        self.republish.set()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        if any(rc.is_failure for rc in reason_codes):
            self._refuse(f"broker refused the hub's subscription: {reason_codes}")
        else:
            log.info("subscribed to %s", self.subscription)
            self.subscribed.set()

    def _on_message(self, client, userdata, message):
        try:
            try:
                self.handle(message.topic, message.payload, message.properties)
            except DatabaseError:
                raise
            except Exception:  # noqa: BLE001 - a payload must never stop the loop
                log.exception("unexpected error on %s; quarantining it", message.topic)
                store.quarantine(self.db, topic=message.topic, node=None,
                                 reason="internal error while ingesting", payload=message.payload)
        except DatabaseError as exc:
            # Not acknowledged: the broker redelivers it once we are back.
            log.error("database error, stopping: %s", exc)
            self._refuse(f"database error: {exc}", DatabaseFailure)
            return
        client.ack(message.mid, message.qos)

    # --- the work ---

    def handle(self, topic: str, payload: bytes, properties=None) -> None:
        parsed = topics.parse_node_up(self.site, topic)
        if parsed is None:
            store.quarantine(self.db, topic=topic, node=None, reason="unexpected topic",
                             payload=payload)
            return
        node, kind = parsed
        if kind == "batch":
            self._handle_batch(topic, node, payload)
        elif kind == "status":
            self._handle_status(topic, node, payload)
        elif kind == "photo":
            self._handle_photo(topic, node, payload, properties)
        else:
            store.quarantine(self.db, topic=topic, node=node, payload=payload,
                             reason=f"{kind!r} uplink is not accepted by this hub version")

    def _handle_batch(self, topic: str, node: str, payload: bytes) -> None:
        try:
            stored = store.ingest_batch(self.db, topic, node, payload)
        except InvalidEnvelope as exc:
            store.quarantine(self.db, topic=topic, node=node, reason=str(exc), payload=payload)
            return
        if stored.reports:
            with write_transaction(self.db):
                tickets.materialize(self.db)
        if stored.ids:
            self._ack(node, {"ids": stored.ids, **({"batch": stored.batch} if stored.batch
                                                    else {})})

    def _handle_photo(self, topic: str, node: str, payload: bytes, properties) -> None:
        """Verify, store content-addressed, then ticket any report it completes.
        A bad photo is quarantined and acked all the same: sending the same
        bytes again would not mend it."""
        user = dict(getattr(properties, "UserProperty", None) or [])
        claimed = user.get("sha256")
        try:
            photo = photos.verify(payload, claimed)
        except photos.BadPhoto as exc:
            store.quarantine(self.db, topic=topic, node=node, reason=str(exc), payload=payload,
                             record_id=user.get("report_id"))
        else:
            path = photos.store(self.photos_dir, photo.sha256, payload)
            with write_transaction(self.db):
                photos.record(self.db, photo, len(payload), path)
                tickets.materialize(self.db)
        if isinstance(claimed, str) and len(claimed) == 64:
            self._ack(node, {"ids": [claimed]})

    def _ack(self, node: str, ack: dict) -> None:
        """Tell ``node`` what is stored (it deletes those from its outbox)."""
        self.client.publish(topics.node_down(self.site, node, "ack"), json.dumps(ack).encode(),
                            qos=1)

    def _handle_status(self, topic: str, node: str, payload: bytes) -> None:
        if not payload:
            return  # a cleared retained status
        try:
            status = validate_status(json.loads(payload))
        except (ValueError, RecursionError) as exc:  # bad JSON or UTF-8; InvalidRecord
            store.quarantine(self.db, topic=topic, node=node, reason=f"status: {exc}",
                             payload=payload)
            return
        store.update_node_status(self.db, node, status)

    # --- downlink: its own thread and connection ---

    def _assessment_document(self, db) -> dict:
        """The site's assessment progress, recomputed every ``assessment_every`` s,
        after filing the record entries the system makes (attendance, hours,
        accepted reports: hub/records/system.py) for the review chain."""
        now = time.monotonic()
        if self._assessment is None or now - self._assessment[0] >= self.assessment_every:
            system.sync_system_entries(db, days=self.review_days, tz=self.tz)
            self._assessment = (now, downlink.assessment_document(db, self.tz))
        return self._assessment[1]

    def _publish_downlink(self) -> None:
        db = open_db(self.db_path)
        sent: dict[str, str] = {}  # topic -> version last published
        try:
            while not self.stopping.is_set():
                if self.republish.is_set():
                    self.republish.clear()
                    sent.clear()
                if self.client.is_connected():
                    self._publish_changed(db, sent)
                self.republish.wait(self.downlink_interval)
        finally:
            db.close()

    def _publish_changed(self, db, sent: dict) -> None:
        documents = {topics.site_down(self.site, "roster"): downlink.roster_document(db),
                     topics.site_down(self.site, "assessment"): self._assessment_document(db)}
        for node in downlink.configured_nodes(db):
            documents[topics.node_down(self.site, node, "config")] = \
                downlink.node_config_document(db, node)
        for topic, document in documents.items():
            if document and sent.get(topic) != document["version"]:
                self.client.publish(topic, json.dumps(document).encode(), qos=1, retain=True)
                sent[topic] = document["version"]
