"""Registration end to end (issue 15): an event takes registration on the
hub; the node learns it through its retained config over a real Mosquitto;
a person registers on the portal (staff number + PIN); the ``registration``
record reaches the hub, which gives the last place; the node's config comes
back with them in it, and the portal then shows "Registered" instead of
"sent, waiting for the hub". A second person on the same node gets the
waiting list."""

import json
import re
from datetime import datetime, timedelta, timezone
from html import unescape

from edge.db import open_db as open_node_db
from edge.portal import create_app as portal_app
from hub.db import open_db as open_hub_db
from hub.db import write_transaction
from hub.schedule import registration
from protocol.clock import iso
from protocol.pins import hash_pin

from .conftest import running_ingest, running_sync, wait_for
from .test_portal import csrf, portal_config


def seed_hub(path):
    now = datetime.now(timezone.utc)
    db = open_hub_db(path)
    with db.conn:
        db["zones"].insert({"zone": "hall-a", "name": "Lecture hall A"})
        db["nodes"].insert({"node": "n1", "zone": "hall-a"})
        db["staff"].insert_all([{"staff_id": "D001", "name": "Dr. Li", "department": "cardiology",
                                 "pin_hash": hash_pin("2468")},
                                {"staff_id": "N002", "name": "Nurse Wang", "department": "nursing",
                                 "pin_hash": hash_pin("1357")}])
        db["events"].insert({"id": "ic", "title": "Infection control", "kind": "training",
                             "zones": '["hall-a"]', "start": iso(now + timedelta(days=1)),
                             "end": iso(now + timedelta(days=1, hours=2))})
    with write_transaction(db):
        registration.configure(db, "ic", {"opens_at": now - timedelta(hours=1),
                                          "closes_at": now + timedelta(hours=20),
                                          "capacity": 1})
    return db


def node_registrations(node_db_path):
    db = open_node_db(node_db_path)
    try:
        row = db.conn.execute("SELECT value FROM kv WHERE key = 'config'").fetchone()
    finally:
        db.close()
    return json.loads(row[0]).get("registrations") if row else None


def page_text(client) -> str:
    html = client.get("/register").get_data(as_text=True)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def signed_in_phone(app, staff_id, pin):
    phone = app.test_client()
    phone.get("/?lang=en")
    phone.post("/register/sign-in", data={"csrf_token": csrf(phone, "/register"),
                                          "staff_id": staff_id, "pin": pin})
    return phone


def register(phone):
    answer = phone.post("/register", data={"csrf_token": csrf(phone, "/register"),
                                           "event_id": "ic", "action": "register"})
    assert answer.status_code in (302, 303), answer.get_data(as_text=True)[:300]


def test_a_registration_on_the_portal_reaches_the_hub_and_comes_back(
        broker, tmp_path, hub_db_path, node_db_path):
    hub_db = seed_hub(hub_db_path)
    open_node_db(node_db_path).close()
    (tmp_path / "leases").write_text("")
    (tmp_path / "arp").write_text("")
    with running_ingest(broker, hub_db_path, downlink_interval=0.5), \
            running_sync(broker, node_db_path):
        wait_for(lambda: node_registrations(node_db_path), timeout=20,
                 message="the registration in the node's config")
        app = portal_app(portal_config(node_db_path, tmp_path / "leases", tmp_path / "arp"))
        doctor = signed_in_phone(app, "D001", "2468")
        assert "Infection control" in page_text(doctor)
        register(doctor)
        assert "Sent, waiting for the hub" in page_text(doctor)

        wait_for(lambda: registration.state_of(hub_db, "ic", "D001"), timeout=20,
                 message="the registration at the hub")
        assert registration.state_of(hub_db, "ic", "D001") == {"state": "registered",
                                                               "position": None}
        wait_for(lambda: "Registered" in page_text(doctor).replace("Not registered", ""),
                 timeout=20, message="the node showing the registration")

        nurse = signed_in_phone(app, "N002", "1357")
        assert "Join the waiting list" in page_text(nurse)
        register(nurse)
        wait_for(lambda: "Waiting, number 1" in page_text(nurse), timeout=20,
                 message="the waiting list on the node")
    [logged] = [r for r in hub_db.conn.execute(
        "SELECT who, detail FROM audit_log WHERE action = 'registration.register' "
        "AND who = 'D001'")]
    assert json.loads(logged[1])["via"] == "node:n1"
    hub_db.close()
