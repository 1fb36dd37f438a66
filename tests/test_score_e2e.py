"""Live scoring end to end (issue 14): the office opens an act on the hub; the
hall node learns it through its retained config over a real Mosquitto; a
phone checked in to the contest scores on the portal; the score travels back
as a record and shows on the hub's big-screen JSON, counted once."""

import json
from datetime import datetime, timedelta, timezone

from edge.db import open_db as open_node_db
from edge.portal import create_app as portal_app
from hub.contests import acts
from hub.db import open_db as open_hub_db
from protocol.clock import iso
from protocol.pins import hash_pin

from .conftest import running_ingest, running_sync, wait_for
from .hubweb import make_app, signed_in
from .test_portal import check_in, csrf, portal_config


def seed_hub(path):
    now = datetime.now(timezone.utc)
    db = open_hub_db(path)
    with db.conn:
        db["zones"].insert({"zone": "hall-a", "name": "Lecture hall A"})
        db["nodes"].insert({"node": "n1", "zone": "hall-a"})
        db["staff"].insert_all([{"staff_id": "D001", "name": "Dr. Li", "department": "cardiology",
                                 "pin_hash": hash_pin("2468")},
                                {"staff_id": "J001", "name": "Judge Wu", "department": "office",
                                 "pin_hash": hash_pin("1357")}])
        db["events"].insert({"id": "speech", "title": "Speech contest", "kind": "contest",
                             "zones": '["hall-a"]', "start": iso(now - timedelta(minutes=5)),
                             "end": iso(now + timedelta(hours=1))})
        acts.set_up(db, "speech", acts.Rule(1, 10, True, 0.5),
                    [{"act": "a1", "title": "Hand hygiene"}], ["J001"])
        acts.open_act(db, "speech", "a1", 600)
    return db


def node_contest(node_db_path):
    db = open_node_db(node_db_path)
    try:
        row = db.conn.execute("SELECT value FROM kv WHERE key = 'config'").fetchone()
    finally:
        db.close()
    events = json.loads(row[0]).get("events", []) if row else []
    return next((e["contest"] for e in events if e.get("contest")), None)


def test_a_score_on_a_phone_reaches_the_hubs_big_screen(broker, tmp_path, hub_db_path,
                                                        node_db_path):
    hub_db = seed_hub(hub_db_path)
    open_node_db(node_db_path).close()
    (tmp_path / "leases").write_text("")
    (tmp_path / "arp").write_text("")
    with running_ingest(broker, hub_db_path, downlink_interval=0.5), \
            running_sync(broker, node_db_path):
        wait_for(lambda: node_contest(node_db_path), timeout=20,
                 message="the contest in the node's config")
        phone = portal_app(portal_config(node_db_path, tmp_path / "leases",
                                         tmp_path / "arp")).test_client()
        phone.get("/?lang=en")
        check_in(phone)
        phone.post("/score/sign-in", data={"csrf_token": csrf(phone), "staff_id": "D001",
                                           "pin": "2468"})
        answer = phone.post("/score", data={"csrf_token": csrf(phone), "act": "a1",
                                            "value": "8"})
        assert answer.status_code in (302, 303), answer.get_data(as_text=True)[:300]
        screen = signed_in(make_app(hub_db_path), hub_db, "office")

        def on_screen():
            body = screen.get("/api/v1/events/speech/contest").get_json()
            return body["rows"][0] if body["rows"][0]["scores_in"] else None

        row = wait_for(on_screen, timeout=20, message="the score on the big screen")
    assert (row["act"], row["audience_count"], row["audience_mean"], row["total"]) == (
        "a1", 1, 8.0, 8.0)
    hub_db.close()
