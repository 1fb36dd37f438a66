"""A node whose clock was not set: its records are flagged at the hub and,
while the node is still unsynchronised in the same boot, corrected by the
offset its batch shows."""

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from edge import health
from edge.outbox import Outbox
from hub.ingest.store import write_batch
from protocol.clock import iso
from protocol.records import Clock, parse_envelope

TRUE_NOW = datetime.now(timezone.utc)
SKEW = timedelta(days=-400)  # a Pi that booted thinking it is last year


@pytest.fixture
def hub(hub_db):
    return hub_db


def presence(first: datetime, last: datetime, boot="boot-1", synced=False) -> dict:
    record = {"id": str(uuid.uuid4()), "type": "presence", "ts": iso(last),
              "device": "0123456789abcdef", "staff_id": "S1", "zone": "hall-a",
              "first_seen": iso(first), "last_seen": iso(last), "closed": True}
    if not synced:
        record.update(clock_synced=False, boot=boot)
    return record


def store(hub, records, clock):
    envelope = json.loads(json.dumps({"v": 1, "node": "n1", "records": records,
                                      **(clock.head() if clock else {})}))
    good, bad, _, parsed = parse_envelope(json.dumps(envelope).encode(), "n1")
    assert not bad
    write_batch(hub, "rounds/v1/s/node/n1/up/batch", "n1", good, bad, parsed)


def stored(hub, record_id):
    return hub.conn.execute("SELECT ts, first_seen, last_seen, clock_synced FROM presence "
                            "WHERE id = ?", (record_id,)).fetchone()


def test_unsynced_records_of_the_same_boot_are_corrected_by_the_batch_offset(hub):
    true_now = datetime.now(timezone.utc)
    node_now = true_now + SKEW
    record = presence(node_now - timedelta(minutes=50), node_now - timedelta(minutes=5))
    store(hub, [record], Clock(iso(node_now), False, "boot-1"))
    ts, first, last, synced = stored(hub, record["id"])
    # Within a second of the truth (the batch's network latency), dwell intact.
    true_first = true_now - timedelta(minutes=50)
    assert abs(datetime.fromisoformat(first) - true_first) < timedelta(seconds=2)
    assert (datetime.fromisoformat(last) - datetime.fromisoformat(first)) == timedelta(minutes=45)
    assert synced == 0
    node_ts, offset = hub.conn.execute(
        "SELECT node_ts, offset_seconds FROM clock_flags WHERE record_id = ?",
        (record["id"],)).fetchone()
    assert node_ts == record["ts"]
    assert offset == pytest.approx(-SKEW.total_seconds(), abs=2)


def test_records_of_another_boot_or_a_node_synced_since_are_flagged_not_moved(hub):
    node_now = TRUE_NOW + SKEW
    old_boot = presence(node_now - timedelta(hours=2), node_now - timedelta(hours=1), boot="b0")
    store(hub, [old_boot], Clock(iso(node_now), False, "boot-1"))
    since_synced = presence(node_now - timedelta(hours=2), node_now - timedelta(hours=1))
    store(hub, [since_synced], Clock(iso(TRUE_NOW), True, "boot-1"))
    for record in (old_boot, since_synced):
        ts, first, *_ = stored(hub, record["id"])
        assert ts == record["ts"] and first == record["first_seen"]
        assert hub.conn.execute("SELECT offset_seconds FROM clock_flags WHERE record_id = ?",
                                (record["id"],)).fetchone() == (None,)


def test_synced_records_are_neither_moved_nor_flagged(hub):
    record = presence(TRUE_NOW - timedelta(minutes=30), TRUE_NOW, synced=True)
    store(hub, [record], Clock(iso(TRUE_NOW + SKEW), False, "boot-1"))
    assert stored(hub, record["id"])[0] == record["ts"]
    assert hub.conn.execute("SELECT count(*) FROM clock_flags").fetchone() == (0,)


def test_the_node_marks_records_made_before_ntp(tmp_path, monkeypatch):
    flag = tmp_path / "timesync" / "synchronized"
    flag.parent.mkdir()
    monkeypatch.setenv("ROUNDS_TIMESYNC_FLAG", str(flag))
    outbox = Outbox(tmp_path / "node.db")
    try:
        before = outbox.append({"type": "occupancy", "zone": "hall-a",
                                "minute": "2025-03-10T01:00:00.000Z", "devices": 3})
        assert health.clock().synced is False
        flag.touch()  # timesyncd has set the clock
        after = outbox.append({"type": "occupancy", "zone": "hall-a",
                               "minute": "2025-03-10T01:01:00.000Z", "devices": 3})
        assert health.clock().synced is True
        bodies = {i.id: i.record for i in outbox.pending(10)}
    finally:
        outbox.close()
    assert bodies[before]["clock_synced"] is False and bodies[before]["boot"] == health.boot_id()
    assert "clock_synced" not in bodies[after] and "boot" not in bodies[after]


def test_without_a_time_daemon_nothing_is_flagged(tmp_path, monkeypatch):
    monkeypatch.setenv("ROUNDS_TIMESYNC_FLAG", str(tmp_path / "no-such-dir" / "synchronized"))
    assert health.clock_synced() is None and health.clock() is None
