"""A staff member's year, as they live it (issue 15), in headless Chromium
against the real processes: on the node's portal they register for a
training that takes registration and check in to it; over a real Mosquitto
the hub learns both; on the dashboard their assessment item moves (waiting
for review); and their whole year downloads as XLSX with the training in it."""

import io
import json
import os
import urllib.request
from datetime import datetime, timedelta, timezone

from openpyxl import load_workbook
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from edge.db import open_db as open_node_db
from hub.assessment import items
from hub.db import open_db as open_hub_db
from hub.db import write_transaction
from hub.schedule import registration
from protocol.clock import iso
from protocol.pins import hash_pin

from .conftest import SITE, running_ingest, running_sync, wait_for
from .test_browser import _up, chromium, serve

NOW = datetime.now(timezone.utc)


def seed_hub(path):
    db = open_hub_db(path)
    start = NOW - timedelta(minutes=5)
    with db.conn:
        db["zones"].insert({"zone": "hall-a", "name": "Lecture hall A"})
        db["nodes"].insert({"node": "n1", "zone": "hall-a"})
        db["staff"].insert({"staff_id": "D001", "name": "Dr. Li", "department": "cardiology",
                            "role": "staff", "pin_hash": hash_pin("2468")})
        db["events"].insert({"id": "ic", "title": "Infection control", "kind": "training",
                             "zones": '["hall-a"]', "start": iso(start),
                             "end": iso(start + timedelta(hours=1)), "credit_hours": 2})
        items.save(db, NOW.year, "training", "继续教育学时", "credit_hours", 6,
                   title_en="Training hours", event_kinds=["training"])
    with write_transaction(db):
        registration.configure(db, "ic", {"opens_at": NOW - timedelta(hours=1),
                                          "closes_at": start + timedelta(hours=1),
                                          "capacity": 10})
    db.close()


def node_document(node_db_path, key: str) -> str:
    """The node's stored ``key`` document as text ("" until it has come down)."""
    db = open_node_db(node_db_path)
    try:
        row = db.conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
    finally:
        db.close()
    return row[0] if row else ""


def click(browser, css: str) -> None:
    """Click ``css`` once the page after the last form post shows it (a submit
    does not wait for the redirected page to load)."""
    WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, css))
    browser.find_element(By.CSS_SELECTOR, css).click()


def sign_in(browser, action: str, staff_id="D001", pin="2468") -> None:
    browser.find_element(By.CSS_SELECTOR, f"form[action^='{action}'] input[name=staff_id]") \
        .send_keys(staff_id)
    browser.find_element(By.CSS_SELECTOR, f"form[action^='{action}'] input[name=pin]") \
        .send_keys(pin)
    click(browser, f"form[action^='{action}'] button[type=submit]")


def checked_in_at_hub(hub_db_path) -> bool:
    db = open_hub_db(hub_db_path, migrate=False)
    try:
        return bool(db.conn.execute("SELECT 1 FROM checkins WHERE staff_id = 'D001' "
                                    "AND event_id = 'ic'").fetchone())
    finally:
        db.close()


def test_register_attend_see_the_item_move_and_export_the_year(broker, tmp_path, hub_db_path,
                                                                node_db_path):
    seed_hub(hub_db_path)
    open_node_db(node_db_path).close()
    leases = tmp_path / "dnsmasq.leases"
    leases.write_text("")  # Chromium is a phone the node does not know: staff number + PIN
    node_conf = tmp_path / "node.json"
    node_conf.write_text(json.dumps({
        "site": SITE, "node": "n1", "zone": "hall-a", "db": str(node_db_path),
        "site_secret": "44" * 32, "mqtt": {}, "portal": {"leases_file": str(leases)}}))
    hub_conf = tmp_path / "hub.json"
    hub_conf.write_text(json.dumps({"site": SITE, "db": str(hub_db_path), "mqtt": {},
                                    "web": {"secure_cookies": False}, "timezone": "UTC"}))
    log = open(tmp_path / "web.log", "ab")
    browser = chromium("1280,900", "--lang=en")
    with running_ingest(broker, hub_db_path, downlink_interval=0.5, timezone="UTC",
                        assessment_every=0.5), running_sync(broker, node_db_path):
        portal, portal_url = serve("edge.portal:create_app()",
                                   dict(os.environ, ROUNDS_EDGE_CONFIG=str(node_conf)), log)
        web, hub_url = serve("hub.web:create_app()",
                             dict(os.environ, ROUNDS_HUB_CONFIG=str(hub_conf)), log)
        try:
            wait_for(lambda: _up(portal_url + "/healthz") and _up(hub_url + "/api/v1/health"),
                     message="portal and dashboard up")
            wait_for(lambda: "Infection control" in node_document(node_db_path, "config"),
                     timeout=20, message="the event in the node's config")
            # the roster comes down on its own topic: the PIN sign-in needs it
            wait_for(lambda: '"D001"' in node_document(node_db_path, "roster"),
                     timeout=20, message="the roster on the node")
            # 1. register on the portal
            browser.get(portal_url + "/register?lang=en")
            sign_in(browser, "/register")
            click(browser, "form button[name=action][value=register]")
            wait_for(lambda: browser.get(portal_url + "/register?lang=en")
                     or "Registered" in browser.page_source, timeout=30,
                     message="Registered on the portal, confirmed by the hub")
            # 2. attend: check in with staff number + PIN
            browser.get(portal_url + "/?lang=en")
            sign_in(browser, "/checkin")
            wait_for(lambda: checked_in_at_hub(hub_db_path), timeout=30,
                     message="the check-in at the hub")
            # 3. the dashboard: the item moved (attended, waiting for review)
            browser.get(hub_url + "/login?next=/me&lang=en")
            browser.find_element(By.NAME, "username").send_keys("D001")
            browser.find_element(By.NAME, "password").send_keys("2468")
            click(browser, "form.login button[type=submit]")

            def item_row() -> str:
                browser.get(hub_url + "/me?lang=en")
                rows = browser.find_elements(By.CSS_SELECTOR, "#assessment tbody tr")
                return rows[0].text if rows else ""

            row = wait_for(lambda: (lambda text: "Training hours" in text and text)(item_row()),
                           timeout=20, message="the assessment item on /me")
            assert "Training hours 0 2 6" in row, row  # confirmed, pending review, target
            # 4. the whole year as XLSX, with the browser's session
            cookie = "; ".join(f"{c['name']}={c['value']}" for c in browser.get_cookies())
            request = urllib.request.Request(hub_url + "/me/year.xlsx",
                                             headers={"Cookie": cookie})
            with urllib.request.urlopen(request, timeout=20) as answer:
                book = load_workbook(io.BytesIO(answer.read()))
        finally:
            browser.quit()
            for process in (portal, web):
                process.terminate()
                process.wait(10)
            log.close()
    cells = [str(c.value) for sheet in book.worksheets for r in sheet.iter_rows() for c in r]
    assert any("Infection control" in c for c in cells)
