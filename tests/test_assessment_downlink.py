"""A staff member's assessment progress on the node's portal (issue 15): the
hub sends everyone's progress as a retained site document over a real
Mosquitto, the node keeps it for offline use, and a bound phone's "my
record" shows its owner's items."""

import json
import re
import sqlite3
import uuid
from datetime import datetime, timedelta, timezone

from edge.db import open_db as open_node_db
from hub.assessment import items
from hub.db import open_db as open_hub_db
from hub.ingest import downlink
from protocol.clock import iso

from .conftest import running_ingest, running_sync, wait_for
from .test_portal import app, arp, db_path, leases, phone, put_state, text  # noqa: F401
from .test_portal_bind import bind

NOW = datetime.now(timezone.utc)


def seed(path):
    db = open_hub_db(path)
    start = NOW - timedelta(days=1)
    with db.conn:
        db["staff"].insert({"staff_id": "D001", "name": "Dr. Li", "department": "cardiology",
                            "role": "staff"})
        db["events"].insert({"id": "t1", "title": "Training", "kind": "training",
                             "zones": "[]", "start": iso(start),
                             "end": iso(start + timedelta(hours=1)), "credit_hours": 2})
        db["checkins"].insert({"id": str(uuid.uuid4()), "node": "n1", "ts": iso(start),
                               "clock_synced": 1, "received_at": iso(start), "staff_id": "D001",
                               "event_id": "t1", "zone": "hall-a", "method": "portal",
                               "device": None})
        items.save(db, NOW.year, "training", "继续教育学时", "credit_hours", 6,
                   title_en="Training hours", event_kinds=["training"])
    return db


def test_the_hub_sends_everyones_progress_and_the_node_keeps_it(broker, hub_db_path,
                                                                node_db_path):
    seed(hub_db_path).close()

    open_node_db(node_db_path).close()

    def kept():
        row = sqlite3.connect(node_db_path).execute(
            "SELECT value FROM kv WHERE key = 'assessment'").fetchone()
        return json.loads(row[0]) if row else None

    with running_ingest(broker, hub_db_path, downlink_interval=0.5, timezone="UTC"), \
            running_sync(broker, node_db_path):
        document = wait_for(kept, timeout=20, message="the assessment document on the node")
    assert document["year"] == NOW.year
    assert [i["id"] for i in document["items"]] == ["training"]
    assert document["people"]["D001"] == [[0.0, 2.0, 6.0]]  # attended, waiting for review


def test_a_bound_phone_sees_its_owners_progress(phone, db_path):  # noqa: F811
    doc = downlink._versioned({"year": 2026, "items": [
        {"id": "training", "title": "继续教育学时", "title_en": "Training hours",
         "measure": "credit_hours"}], "people": {"D001": [[2.0, 1.5, 6.0]], "N002": [[9, 0, 1]]}})
    put_state(db_path, "assessment", doc)
    bind(phone)
    page = re.sub(r"<[^>]+>", "", text(phone.get("/me")))
    assert "My assessment 2026" in page
    assert "Training hours: 2.0 of 6.0 confirmed, 1.5 waiting for review" in page
    put_state(db_path, "assessment", {**doc, "people": {}})
    assert "My assessment" not in text(phone.get("/me"))
