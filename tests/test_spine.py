"""The spine end to end: node outbox -> Mosquitto -> hub, exactly once."""

import sqlite3
import threading
import time

import paho.mqtt.client as mqtt
import pytest

from edge.outbox import Outbox
from protocol import topics
from runtime.mqttclient import make_client

from .conftest import SITE, running_ingest, running_sync, wait_for


def checkin(i: int) -> dict:
    return {"type": "checkin", "staff_id": f"S{i:05d}", "event_id": "ev1", "zone": "hall-a",
            "method": "portal", "device": None}


def hub_ids(db_path, table="checkins") -> list[str]:
    conn = sqlite3.connect(db_path)
    try:
        return [r[0] for r in conn.execute(f"SELECT id FROM {table}")]
    except sqlite3.OperationalError:
        return []  # not created yet
    finally:
        conn.close()


def test_record_reaches_hub_is_acked_and_leaves_outbox(broker, hub_db_path, node_db_path):
    outbox = Outbox(node_db_path)
    record_id = outbox.append(checkin(1))
    with running_ingest(broker, hub_db_path), running_sync(broker, node_db_path):
        wait_for(lambda: hub_ids(hub_db_path) == [record_id], message="record at the hub")
        wait_for(lambda: outbox.backlog() == 0, message="outbox emptied by the ack")
    row = sqlite3.connect(hub_db_path).execute(
        "SELECT node, staff_id, event_id, method FROM checkins").fetchone()
    assert row == ("n1", "S00001", "ev1", "portal")


def test_node_status_online_then_offline_by_last_will(broker, hub_db_path, node_db_path):
    def state():
        conn = sqlite3.connect(hub_db_path)
        try:
            return conn.execute("SELECT state, backlog FROM nodes WHERE node='n1'").fetchone()
        except sqlite3.OperationalError:
            return None
        finally:
            conn.close()

    with running_ingest(broker, hub_db_path):
        with running_sync(broker, node_db_path) as link:
            wait_for(lambda: state() and state()[0] == "online", message="online status")
            # Drop the TCP connection without a DISCONNECT: the broker sends the will.
            link.client._sock.close()
            wait_for(lambda: state()[0] == "offline", message="last will")


class Producer(threading.Thread):
    """Appends ``total`` check-ins to the node outbox in small transactions."""

    def __init__(self, db_path, total, chunk=50, pause=0.01):
        super().__init__(daemon=True)
        self.db_path, self.total, self.chunk, self.pause = db_path, total, chunk, pause
        self.ids: list[str] = []

    def run(self):
        outbox = Outbox(self.db_path)
        for start in range(0, self.total, self.chunk):
            self.ids += outbox.append_many(
                [checkin(i) for i in range(start, min(start + self.chunk, self.total))])
            time.sleep(self.pause)
        outbox.close()


def assert_exactly_once(hub_db_path, node_db_path, expected_ids):
    received = hub_ids(hub_db_path)
    assert len(received) == len(set(received))
    assert sorted(received) == sorted(expected_ids)
    assert Outbox(node_db_path).backlog() == 0


def test_broker_restart_mid_stream_loses_nothing(broker, hub_db_path, node_db_path):
    producer = Producer(node_db_path, 10_000)
    with running_ingest(broker, hub_db_path), running_sync(broker, node_db_path):
        producer.start()
        wait_for(lambda: len(hub_ids(hub_db_path)) >= 2_000, message="stream under way")
        broker.kill()
        time.sleep(1.5)
        broker.start()
        producer.join()
        wait_for(lambda: len(hub_ids(hub_db_path)) == 10_000, timeout=60, message="all 10,000")
        wait_for(lambda: Outbox(node_db_path).backlog() == 0, message="outbox drained")
    assert_exactly_once(hub_db_path, node_db_path, producer.ids)


def test_ingest_sigkill_mid_stream_loses_nothing(broker, tmp_path, hub_db_path, node_db_path,
                                                 daemons):
    from .conftest import hub_config

    config = hub_config(tmp_path, broker)
    ingest = daemons("hub.cli", config, "ingest", tmp_path / "ingest.log")
    producer = Producer(node_db_path, 5_000)
    with running_sync(broker, node_db_path):
        producer.start()
        wait_for(lambda: len(hub_ids(hub_db_path)) >= 1_000, message="stream under way")
        ingest.kill()
        killed_at = len(hub_ids(hub_db_path))
        time.sleep(1)
        ingest.start()
        producer.join()
        wait_for(lambda: len(hub_ids(hub_db_path)) == 5_000, timeout=60, message="all 5,000")
        wait_for(lambda: Outbox(node_db_path).backlog() == 0, message="outbox drained")
    assert killed_at < 5_000, "the kill came too late to test anything"
    assert_exactly_once(hub_db_path, node_db_path, producer.ids)


def test_sync_sigkill_mid_stream_loses_nothing(broker, tmp_path, hub_db_path, daemons):
    from .conftest import node_config

    config = node_config(tmp_path, broker, sync={"ack_timeout": 3})
    node_db_path = tmp_path / "n1" / "node.db"
    producer = Producer(node_db_path, 5_000)
    with running_ingest(broker, hub_db_path):
        sync = daemons("edge.cli", config, "sync", tmp_path / "sync.log")
        producer.start()
        wait_for(lambda: len(hub_ids(hub_db_path)) >= 1_000, message="stream under way")
        sync.kill()
        time.sleep(1)
        killed_at = len(hub_ids(hub_db_path))
        sync.start()
        producer.join()
        wait_for(lambda: len(hub_ids(hub_db_path)) == 5_000, timeout=60, message="all 5,000")
        wait_for(lambda: Outbox(node_db_path).backlog() == 0, message="outbox drained")
    assert killed_at < 5_000, "the kill came too late to test anything"
    assert_exactly_once(hub_db_path, node_db_path, producer.ids)


def run_with_password(config_path, module, command, password):
    """Run a daemon whose config carries ``password``; return the finished process."""
    import json
    import subprocess
    import sys

    from .conftest import ROOT

    document = json.loads(config_path.read_text())
    document["mqtt"]["password"] = password
    config_path.write_text(json.dumps(document))
    return subprocess.run([sys.executable, "-m", module, "--config", str(config_path), command],
                          capture_output=True, text=True, timeout=30, cwd=ROOT)


def test_sync_with_wrong_password_exits_2_with_a_clear_message(broker, tmp_path):
    from .conftest import node_config

    result = run_with_password(node_config(tmp_path, broker), "edge.cli", "sync", "wrong")
    assert result.returncode == 2
    assert "refused node 'n1'" in result.stderr
    assert "wrong" not in result.stderr  # the password is never logged


def test_ingest_with_bad_credentials_exits_2(broker, tmp_path):
    from .conftest import hub_config

    result = run_with_password(hub_config(tmp_path, broker), "hub.cli", "ingest", "n1-secret")
    assert result.returncode == 2
    assert "refused the hub" in result.stderr


def test_roster_and_schedule_reach_the_node_and_work_offline(broker, hub_db_path, node_db_path):
    from datetime import datetime, timedelta, timezone

    from edge.db import open_db as open_node_db
    from edge.state import NodeState
    from hub.db import open_db as open_hub_db
    from protocol.clock import iso
    from protocol.pins import hash_pin, verify_pin

    now = datetime.now(timezone.utc)
    hub = open_hub_db(hub_db_path)
    hub["zones"].insert({"zone": "hall-a", "name": "Lecture hall A"})
    hub["nodes"].insert({"node": "n1", "zone": "hall-a"})
    hub["staff"].insert({"staff_id": "D001", "name": "Dr. Li", "department": "cardiology",
                         "pin_hash": hash_pin("2468")})
    hub["events"].insert_all([
        {"id": "ev1", "title": "Hand hygiene", "zones": '["hall-a"]',
         "start": iso(now - timedelta(minutes=5)), "end": iso(now + timedelta(hours=1))},
        {"id": "ev2", "title": "Elsewhere", "zones": '["ward-3"]',
         "start": iso(now - timedelta(minutes=5)), "end": iso(now + timedelta(hours=1))},
    ])
    hub.close()
    with running_ingest(broker, hub_db_path), running_sync(broker, node_db_path):
        state = NodeState(open_node_db(node_db_path))
        wait_for(lambda: state.get("roster") and state.get("config"), message="roster and config")
    # The broker and the hub are gone: the node still knows who may check in, and where.
    person = state.staff("D001")
    assert person["name"] == "Dr. Li" and verify_pin("2468", person["pin_hash"])
    assert state.zone() == "hall-a"
    assert state.active_event()["id"] == "ev1"
    assert [e["id"] for e in state.get("config")["events"]] == ["ev1"]


def test_sync_starts_with_the_broker_down_and_delivers_once_it_is_up(broker, hub_db_path,
                                                                     node_db_path):
    broker.stop()
    outbox = Outbox(node_db_path)
    ids = outbox.append_many([checkin(i) for i in range(20)])
    with running_sync(broker, node_db_path) as link:
        time.sleep(2)
        assert not link.connected
        broker.start()
        with running_ingest(broker, hub_db_path):
            wait_for(lambda: sorted(hub_ids(hub_db_path)) == sorted(ids), timeout=60,
                     message="records once the broker is up")
            wait_for(lambda: outbox.backlog() == 0, message="outbox drained")
