"""When the hub's database goes away under the ingest (PostgreSQL stopped while
a batch comes in), the ingest stops without acknowledging that batch
(``DatabaseFailure``: `rounds-hub ingest --workers` restarts such a worker);
started again with the database back, its persistent session hands the batch
over again and it is stored once. A database error is never taken for a bad
payload: nothing goes to quarantine."""

import threading
import uuid

import paho.mqtt.client as mqtt
import pytest

from hub.db import open_db
from hub.ingest.subscriber import DatabaseFailure, Ingest
from protocol import topics
from protocol.clock import now_iso
from protocol.records import make_envelope
from runtime.mqttclient import make_client

from .conftest import SITE, running_ingest
from .pg import PostgresCluster, require_bindir
from .support import wait_for


def checkin() -> dict:
    return {"id": str(uuid.uuid4()), "type": "checkin", "ts": now_iso(), "staff_id": "D001",
            "event_id": None, "zone": "hall-a", "method": "portal", "device": None}


def stored(dsn) -> list:
    db = open_db(dsn, migrate=False)
    try:
        return [row[0] for row in db.conn.execute("SELECT id FROM checkins ORDER BY id")]
    finally:
        db.close()


@pytest.fixture
def publish(broker):
    client = make_client("raw-n1", broker.settings("n1"))
    client.connect(broker.settings("n1").host, broker.port)
    client.loop_start()

    def send(records):
        info = client.publish(topics.node_up(SITE, "n1", "batch"),
                              make_envelope("n1", records), qos=1)
        info.wait_for_publish(10)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS

    yield send
    client.disconnect()
    client.loop_stop()


def test_a_lost_database_stops_the_ingest_unacked_and_nothing_is_lost(broker, publish,
                                                                      tmp_path):
    bindir = require_bindir()
    with PostgresCluster(tmp_path / "pg", bindir=bindir) as cluster:
        name = cluster.create_database().rsplit("/", 1)[1]
        open_db(cluster.dsn(name)).close()
        first, second = checkin(), checkin()
        worker = Ingest(site=SITE, db_path=cluster.dsn(name), mqtt=broker.settings("hub"),
                        photos_dir=tmp_path / "photos", downlink=False)
        ended = []

        def run():
            try:
                worker.run()
            except DatabaseFailure as exc:
                ended.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        assert worker.subscribed.wait(10)
        publish([first])
        wait_for(lambda: stored(cluster.dsn(name)) == [first["id"]], message="first batch")

        cluster.stop()
        publish([second])
        thread.join(30)
        assert not thread.is_alive() and ended, "the ingest went on without its database"

        cluster.start()  # on a new port: the DSN changes, the data does not
        dsn = cluster.dsn(name)
        with running_ingest(broker, dsn, photos_dir=tmp_path / "photos", downlink=False):
            wait_for(lambda: len(stored(dsn)) == 2, message="the unacknowledged batch again")
        assert sorted(stored(dsn)) == sorted([first["id"], second["id"]])
        db = open_db(dsn, migrate=False)
        try:
            assert db.conn.execute("SELECT count(*) FROM quarantine").fetchone()[0] == 0
        finally:
            db.close()
