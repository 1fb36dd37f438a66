"""Photos from the node's spool to the hub's content-addressed store, over a
real Mosquitto: verified by hash, a report waits for its photos, a corrupt
photo is quarantined and never stored."""

import hashlib
import io
import sqlite3
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from PIL import Image

from edge.db import open_db as open_node_db
from edge.outbox import Outbox
from edge.photos import PhotoSpool
from protocol import topics
from protocol.clock import now_iso
from protocol.records import make_envelope
from runtime.mqttclient import make_client

from .conftest import SITE, running_ingest, running_sync, wait_for


def jpeg(colour=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(out, "JPEG", quality=85)
    return out.getvalue()


def report(photos, report_id=None, zone="ward-3e") -> dict:
    return {"id": str(uuid.uuid4()), "type": "report", "ts": now_iso(),
            "report_id": report_id or str(uuid.uuid4()), "staff_id": "D001",
            "category": "hygiene", "note": "spill by the lift", "zone": zone,
            "photos": photos, "taken_at": now_iso()}


def rows(db_path, sql, *args):
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql, args).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


class Node:
    """Publishes as node n1, the way edge/sync.py does, and collects acks."""

    def __init__(self, broker):
        self.acks = []
        self.client = make_client("raw-n1", broker.settings("n1"))
        self.client.on_message = lambda c, u, m: self.acks.append(m.payload)
        self.client.connect("127.0.0.1", broker.port)
        self.client.subscribe(topics.node_down(SITE, "n1", "ack"), qos=1)
        self.client.loop_start()

    def photo(self, payload: bytes, sha: str, report_id: str):
        props = Properties(PacketTypes.PUBLISH)
        props.UserProperty = [("report_id", report_id), ("sha256", sha)]
        info = self.client.publish(topics.node_up(SITE, "n1", "photo"), payload, qos=1,
                                   properties=props)
        info.wait_for_publish(10)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS

    def batch(self, records):
        self.client.publish(topics.node_up(SITE, "n1", "batch"),
                            make_envelope("n1", records), qos=1).wait_for_publish(10)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def test_a_report_waits_for_its_photo_in_either_order(broker, hub_db_path):
    first, second = jpeg((200, 30, 30)), jpeg((30, 30, 200))
    sha1, sha2 = (hashlib.sha256(p).hexdigest() for p in (first, second))
    # Different zones: the same zone and category within 30 minutes is a duplicate.
    before, after = report([sha1]), report([sha2], zone="ward-5w")
    node = Node(broker)
    try:
        with running_ingest(broker, hub_db_path):
            # The photo comes first: stored; its report then makes the ticket at once.
            node.photo(first, sha1, before["report_id"])
            wait_for(lambda: rows(hub_db_path, "SELECT sha256 FROM photos"), message="photo")
            node.batch([before])
            wait_for(lambda: rows(hub_db_path, "SELECT 1 FROM tickets WHERE report_id = ?",
                                  before["report_id"]), message="ticket for the first report")
            # The report comes first: it waits, not dropped, until its photo arrives.
            node.batch([after])
            wait_for(lambda: rows(hub_db_path, "SELECT 1 FROM reports WHERE report_id = ?",
                                  after["report_id"]), message="second report stored")
            assert not rows(hub_db_path, "SELECT 1 FROM tickets WHERE report_id = ?",
                            after["report_id"])
            node.photo(second, sha2, after["report_id"])
            wait_for(lambda: rows(hub_db_path, "SELECT 1 FROM tickets WHERE report_id = ?",
                                  after["report_id"]), message="ticket once the photo is in")
    finally:
        node.close()
    [(path, size)] = rows(hub_db_path, "SELECT path, size FROM photos WHERE sha256 = ?", sha2)
    assert open(path, "rb").read() == second and size == len(second)
    assert path.endswith(f"/{sha2[:2]}/{sha2}.jpg")


def test_a_corrupt_photo_is_quarantined_not_stored_and_acked(broker, hub_db_path, tmp_path):
    good = jpeg()
    sha = hashlib.sha256(good).hexdigest()
    corrupt = good[:-40] + bytes(40)  # same name, other bytes
    node = Node(broker)
    try:
        with running_ingest(broker, hub_db_path):
            node.photo(corrupt, sha, "r-1")
            wait_for(lambda: rows(hub_db_path, "SELECT reason FROM quarantine"),
                     message="quarantine")
            wait_for(lambda: node.acks, message="ack")
    finally:
        node.close()
    [(reason,)] = rows(hub_db_path, "SELECT reason FROM quarantine")
    assert "hash mismatch" in reason
    assert rows(hub_db_path, "SELECT count(*) FROM photos") == [(0,)]
    assert not list((hub_db_path.parent / "photos").rglob("*.jpg"))
    assert sha in node.acks[0].decode()


def test_node_spool_to_hub_store_end_to_end(broker, hub_db_path, node_db_path):
    photo = jpeg()
    db = open_node_db(node_db_path)
    spool = PhotoSpool(db, node_db_path.parent / "photos")
    sha = spool.put(photo, "r-e2e")
    db.close()
    Outbox(node_db_path).append(report([sha], report_id="r-e2e"))
    with running_ingest(broker, hub_db_path), running_sync(broker, node_db_path):
        wait_for(lambda: rows(hub_db_path, "SELECT 1 FROM tickets WHERE report_id = 'r-e2e'"),
                 message="the ticket")
        check = open_node_db(node_db_path)
        wait_for(lambda: PhotoSpool(check, node_db_path.parent / "photos").count() == 0,
                 message="spool emptied by the ack")
    assert not list((node_db_path.parent / "photos").glob("*.jpg"))
    assert rows(hub_db_path, "SELECT sha256 FROM photos") == [(sha,)]
