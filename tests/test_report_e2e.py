"""Snap-and-report end to end, as a person does it: a report with a photo
filed in headless Chromium on the node's portal travels over a real
Mosquitto to the hub, becomes a ticket routed to the right department, the
reporter sees its state change, and hours are credited once approved."""

import io
import json
import os
import sqlite3
from datetime import datetime, timedelta, timezone

from PIL import Image, ImageDraw
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from edge.db import open_db as open_node_db
from hub.db import open_db as open_hub_db
from hub.tickets import hours, tickets
from protocol.clock import iso
from protocol.pins import device_id, hash_pin

from .conftest import SITE, running_ingest, running_sync, wait_for
from .test_browser import _up, assert_not_blank, browser, serve  # noqa: F401 - fixture

SECRET = "33" * 32
MAC = "02:00:00:00:aa:01"


def seed_hub(db_path):
    now = datetime.now(timezone.utc)
    db = open_hub_db(db_path)
    db["zones"].insert({"zone": "ward-3e", "name": "Ward 3 East"})
    db["nodes"].insert({"node": "n1", "zone": "ward-3e"})
    db["staff"].insert({"staff_id": "D001", "name": "Dr. Li", "department": "cardiology",
                        "pin_hash": hash_pin("2468")})
    db["devices"].insert({"device": device_id(bytes.fromhex(SECRET), MAC), "staff_id": "D001",
                          "bound_at": iso(now - timedelta(days=3)), "node": "n1"})
    db.close()


def photo_file(path):
    image = Image.new("RGB", (1200, 900), (170, 170, 160))
    draw = ImageDraw.Draw(image)
    draw.ellipse((300, 300, 900, 650), fill=(120, 80, 20))  # a spill
    image.save(path, "JPEG", quality=90)
    return path


def ticket_of(hub_db_path, report_id):
    conn = sqlite3.connect(hub_db_path)
    try:
        return conn.execute("SELECT t.id, t.department, t.state FROM tickets t JOIN "
                            "ticket_reports r ON r.ticket_id = t.id WHERE r.report_id = ?",
                            (report_id,)).fetchone()
    except sqlite3.OperationalError:
        return None
    finally:
        conn.close()


def test_report_in_chromium_becomes_a_routed_ticket_and_credits_hours(
        browser, broker, tmp_path, hub_db_path, node_db_path):  # noqa: F811
    seed_hub(hub_db_path)
    open_node_db(node_db_path).close()
    leases = tmp_path / "dnsmasq.leases"
    leases.write_text(f"0 {MAC} 127.0.0.1 phone *\n")  # Chromium talks from 127.0.0.1
    config = tmp_path / "node.json"
    config.write_text(json.dumps({
        "site": SITE, "node": "n1", "zone": "ward-3e", "db": str(node_db_path),
        "site_secret": SECRET, "mqtt": {}, "portal": {"leases_file": str(leases)}}))
    log = open(tmp_path / "portal.log", "ab")
    with running_ingest(broker, hub_db_path, downlink_interval=0.5), \
            running_sync(broker, node_db_path):
        wait_for(lambda: "Dr. Li" in str(sqlite3.connect(node_db_path).execute(
            "SELECT value FROM kv WHERE key = 'roster'").fetchone()), message="the roster")
        portal, url = serve("edge.portal:create_app()",
                            dict(os.environ, ROUNDS_EDGE_CONFIG=str(config)), log)
        try:
            wait_for(lambda: _up(url + "/healthz"), message="portal up")
            browser.get(url + "/report?lang=en")
            Select(browser.find_element(By.NAME, "category")).select_by_value("hygiene")
            browser.find_element(By.NAME, "note").send_keys("Spill by the lift")
            browser.find_element(By.NAME, "photos").send_keys(
                str(photo_file(tmp_path / "IMG_0042.jpg")))
            browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
            wait_for(lambda: "Sent, waiting for the hub" in browser.page_source
                     or "Assigned" in browser.page_source, timeout=15,
                     message="my reports after sending")
            report_id = sqlite3.connect(node_db_path).execute(
                "SELECT report_id FROM local_reports").fetchone()[0]

            ticket = wait_for(lambda: ticket_of(hub_db_path, report_id), timeout=30,
                              message="the ticket at the hub")
            ticket_id, department, state = ticket
            assert (department, state) == ("environmental_services", "new")

            hub = open_hub_db(hub_db_path)
            with hub.atomic():
                tickets.transition(hub, ticket_id, "assigned", "civility-office",
                                   "cleaning team on the way")
            [entry] = hours.entries(hub, staff_id="D001")
            assert entry["state"] == "pending" and entry["hours"] > 0
            hours.decide(hub, entry["id"], True, "environmental_services")

            def shows_assigned():
                browser.get(url + "/reports?lang=en")
                return "Assigned to the department" in browser.page_source

            wait_for(shows_assigned, timeout=30, interval=0.5,
                     message="the new state on the reporter's page")
            browser.save_screenshot(str(tmp_path / "my-reports.png"))
            assert_not_blank(tmp_path / "my-reports.png")
            [total] = hours.totals(hub, "D001")
            assert total["approved"] == entry["hours"] and total["pending"] == 0
            hub.close()
        finally:
            portal.terminate()
            portal.wait(10)
    # The photo at the hub is the safe one: no metadata, long side 1600 at most.
    [(path,)] = sqlite3.connect(hub_db_path).execute("SELECT path FROM photos").fetchall()
    with Image.open(io.BytesIO(open(path, "rb").read())) as stored:
        assert max(stored.size) <= 1600 and not stored.getexif()
