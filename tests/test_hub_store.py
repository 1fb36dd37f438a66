"""How ingested records land in the hub database, on both backends (a real
SQLite file, a real PostgreSQL database: ``hub_target``)."""

import uuid

from hub.db import open_db
from hub.ingest.downlink import roster_document
from hub.ingest.store import write_batch


def binding(device, staff_id, ts):
    return {"id": str(uuid.uuid4()), "type": "binding", "ts": ts, "device": device,
            "staff_id": staff_id}


def presence(rid, last_seen, closed=False, staff_id=None):
    return {"id": rid, "type": "presence", "ts": last_seen, "device": "00000000000000aa",
            "staff_id": staff_id, "zone": "hall-a", "first_seen": "2026-11-24T08:00:00.000Z",
            "last_seen": last_seen, "closed": closed}


def devices(db):
    return sorted(db.conn.execute("SELECT device, staff_id FROM devices").fetchall())


def test_a_rebind_replaces_the_persons_older_phone(hub_target):
    db = open_db(hub_target)
    write_batch(db, "t", "n1", [binding("00000000000000a1", "D001", "2026-11-24T08:00:00.000Z"),
                                binding("00000000000000b1", "N002", "2026-11-24T08:00:00.000Z")],
                [])
    write_batch(db, "t", "n2", [binding("00000000000000a2", "D001", "2026-11-24T09:00:00.000Z")],
                [])
    assert devices(db) == [("00000000000000a2", "D001"), ("00000000000000b1", "N002")]
    # A late copy of an older binding (a node that was offline) does not win.
    write_batch(db, "t", "n1", [binding("00000000000000a1", "D001", "2026-11-24T08:30:00.000Z")],
                [])
    assert devices(db) == [("00000000000000a2", "D001"), ("00000000000000b1", "N002")]
    assert {b["device"] for b in roster_document(db)["bindings"]} == {
        "00000000000000a2", "00000000000000b1"}


def test_a_presence_id_extends_its_interval_and_never_shrinks_it(hub_target):
    db = open_db(hub_target)
    rid = str(uuid.uuid4())
    write_batch(db, "t", "n1", [presence(rid, "2026-11-24T08:10:00.000Z")], [])
    write_batch(db, "t", "n1", [presence(rid, "2026-11-24T08:20:00.000Z", closed=True,
                                         staff_id="D001")], [])
    write_batch(db, "t", "n1", [presence(rid, "2026-11-24T08:15:00.000Z")], [])  # stale resend
    assert db.conn.execute("SELECT last_seen, closed, staff_id FROM presence").fetchall() == [
        ("2026-11-24T08:20:00.000Z", 1, "D001")]


def test_duplicate_ids_are_ignored_and_reported_for_ack(hub_target):
    db = open_db(hub_target)
    record = binding("00000000000000a1", "D001", "2026-11-24T08:00:00.000Z")
    assert write_batch(db, "t", "n1", [record], []) == [record["id"]]
    assert write_batch(db, "t", "n1", [record], []) == [record["id"]]
    assert db.conn.execute("SELECT count(*) FROM bindings").fetchone() == (1,)
