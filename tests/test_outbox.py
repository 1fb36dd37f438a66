"""The node outbox: durable on return, oldest first, deleted only by ack."""

import subprocess
import sys

from edge.outbox import Outbox

from .conftest import ROOT


def checkin(staff_id="D001") -> dict:
    return {"type": "checkin", "staff_id": staff_id, "event_id": None, "zone": "hall-a",
            "method": "portal", "device": None}


def presence(record_id: str, last_seen: str) -> dict:
    return {"id": record_id, "type": "presence", "device": "0123456789abcdef", "staff_id": "D1",
            "zone": "hall-a", "first_seen": "2026-11-24T08:00:00.000Z",
            "last_seen": last_seen, "closed": False}


def test_pending_is_oldest_first_and_ack_deletes(tmp_path):
    outbox = Outbox(tmp_path / "node.db")
    ids = [outbox.append(checkin(f"S{i}")) for i in range(5)]
    assert [item.id for item in outbox.pending(10)] == ids
    assert [item.id for item in outbox.pending(2)] == ids[:2]
    assert [item.id for item in outbox.pending(10, after_seq=outbox.pending(2)[-1].seq)] == ids[2:]
    assert outbox.ack(ids[:3]) == 3
    assert [item.id for item in outbox.pending(10)] == ids[3:]
    assert outbox.pending(1)[0].record["staff_id"] == "S3"


def test_a_newer_copy_survives_the_ack_of_an_older_one(tmp_path):
    outbox = Outbox(tmp_path / "node.db")
    rid = "6f1c4b1e-1111-4a5a-9f00-000000000001"
    outbox.append(presence(rid, "2026-11-24T08:01:00.000Z"))
    sent = outbox.pending(10)
    outbox.append(presence(rid, "2026-11-24T08:05:00.000Z"))  # the interval grew meanwhile
    assert outbox.ack_sent([(i.id, i.seq) for i in sent]) == 0
    [item] = outbox.pending(10)
    assert item.record["last_seen"] == "2026-11-24T08:05:00.000Z"


def test_invalid_records_are_refused_at_the_source(tmp_path):
    import pytest

    from protocol.records import InvalidRecord

    outbox = Outbox(tmp_path / "node.db")
    with pytest.raises(InvalidRecord, match="method"):
        outbox.append({**checkin(), "method": "telepathy"})
    assert outbox.backlog() == 0


WRITER = """
import sys
from edge.outbox import Outbox
outbox = Outbox(sys.argv[1])
while True:
    rid = outbox.append({"type": "checkin", "staff_id": "D1", "zone": "z", "method": "portal"})
    print(rid, flush=True)  # printed only after append returned
"""


def test_every_append_that_returned_survives_sigkill(tmp_path):
    db = tmp_path / "node.db"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(db)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    confirmed = [writer.stdout.readline().strip() for _ in range(300)]
    writer.kill()
    writer.wait()
    stored = {item.id for item in Outbox(db).pending(1_000_000)}
    assert set(confirmed) <= stored
