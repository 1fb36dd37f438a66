"""Malformed uplinks land in quarantine with a reason; ingest keeps going. On
both backends (``hub_target``: a SQLite file, a PostgreSQL database)."""

import json
import os
import uuid

import paho.mqtt.client as mqtt
import pytest

from hub.db import open_db
from hub.sql import Error as sql_errors
from protocol import topics
from protocol.clock import now_iso
from protocol.records import make_envelope
from runtime.mqttclient import make_client

from .conftest import SITE, running_ingest, wait_for


def good_checkin(**overrides) -> dict:
    return {"id": str(uuid.uuid4()), "type": "checkin", "ts": now_iso(), "staff_id": "D001",
            "event_id": "ev1", "zone": "hall-a", "method": "portal", "device": None,
            **overrides}


@pytest.fixture
def publish(broker):
    """Publish raw payloads as node n1, waiting for the broker's PUBACK."""
    client = make_client("raw-n1", broker.settings("n1"))
    client.connect(broker.settings("n1").host, broker.port)
    client.loop_start()

    def send(payload: bytes, topic=topics.node_up(SITE, "n1", "batch")):
        info = client.publish(topic, payload, qos=1)
        info.wait_for_publish(10)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS

    yield send
    client.disconnect()
    client.loop_stop()


def rows(target, sql):
    """The rows of ``sql`` in the hub database, [] before ingest made its tables."""
    db = open_db(target, migrate=False)
    try:
        return [tuple(row) for row in db.conn.execute(sql).fetchall()]
    except sql_errors:
        return []
    finally:
        db.close()


BAD_PAYLOADS = [
    (b"{not json", "not JSON"),
    (json.dumps({"v": 1, "node": "n1", "records": "nope"}).encode(), "records is not a list"),
    (json.dumps({"v": 9, "node": "n1", "records": []}).encode(), "unsupported envelope version"),
    (make_envelope("n2", [good_checkin()]), "envelope names node 'n2'"),
    (os.urandom(5 * 1024 * 1024), "not JSON"),
]


def test_malformed_envelopes_are_quarantined_and_ingest_keeps_going(broker, hub_target, tmp_path,
                                                                   publish):
    with running_ingest(broker, hub_target, photos_dir=tmp_path / "photos"):
        for payload, _ in BAD_PAYLOADS:
            publish(payload)
        good = good_checkin()
        publish(make_envelope("n1", [good]))
        wait_for(lambda: rows(hub_target, "SELECT id FROM checkins") == [(good["id"],)],
                 message="the good batch after the bad ones")
    quarantined = rows(hub_target, "SELECT reason, length(payload) FROM quarantine ORDER BY id")
    assert len(quarantined) == len(BAD_PAYLOADS)
    for (reason, size), (payload, expected) in zip(quarantined, BAD_PAYLOADS):
        assert expected in reason
        assert size == len(payload)  # the raw payload is kept whole


def test_bad_records_are_quarantined_beside_good_ones_and_all_acked(broker, hub_target, tmp_path,
                                                                    publish):
    acks = []
    listener = make_client("ack-listener", broker.settings("n1"))
    listener.on_message = lambda c, u, m: acks.append(json.loads(m.payload))
    listener.connect(broker.settings("n1").host, broker.port)
    listener.subscribe(topics.node_down(SITE, "n1", "ack"), qos=1)
    listener.loop_start()
    good = good_checkin()
    bad = [
        good_checkin(type="teleport"),  # unknown type
        good_checkin(staff_id=42),  # wrong type
        {k: v for k, v in good_checkin().items() if k != "zone"},  # missing field
        good_checkin(method="carrier pigeon"),
    ]
    try:
        with running_ingest(broker, hub_target, photos_dir=tmp_path / "photos"):
            publish(make_envelope("n1", [good, *bad], batch="b-1"))
            wait_for(lambda: acks, message="the ack")
    finally:
        listener.disconnect()
        listener.loop_stop()
    assert rows(hub_target, "SELECT id FROM checkins") == [(good["id"],)]
    reasons = [r[0] for r in rows(hub_target, "SELECT reason FROM quarantine ORDER BY id")]
    assert [r.split(":")[0] for r in reasons] == ["type", "staff_id", "zone", "method"]
    assert acks[0]["batch"] == "b-1"
    assert sorted(acks[0]["ids"]) == sorted([good["id"]] + [b["id"] for b in bad])


def test_malformed_status_is_quarantined(broker, hub_target, tmp_path, publish):
    with running_ingest(broker, hub_target, photos_dir=tmp_path / "photos"):
        publish(b'{"state": "sleeping"}', topic=topics.node_up(SITE, "n1", "status"))
        wait_for(lambda: rows(hub_target, "SELECT reason FROM quarantine"), message="quarantine")
    assert rows(hub_target, "SELECT node FROM nodes") == []
