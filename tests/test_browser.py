"""Pages people use, in a real headless Chromium: a phone checks in on the
portal, and the check-in shows on the hub dashboard."""

import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone

import pytest

from edge.db import open_db as open_node_db
from edge.outbox import Outbox
from edge.state import NodeState
from hub.db import open_db as open_hub_db
from protocol.clock import iso
from protocol.pins import hash_pin

from .conftest import ROOT, free_port, wait_for

from selenium import webdriver
from selenium.webdriver.common.by import By

NOW = datetime.now(timezone.utc)
LECTURE = {"id": "ev1", "title": "Hand hygiene lecture", "kind": "lecture",
           "zones": ["hall-a"], "start": iso(NOW - timedelta(minutes=5)),
           "end": iso(NOW + timedelta(minutes=55)), "credit_hours": 1, "min_presence": 0.75}


@pytest.fixture(scope="module")
def browser():
    if not shutil.which("chromium") or not shutil.which("chromedriver"):
        pytest.fail("chromium and chromium-driver are not installed (make test installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=390,844",
                 f"--user-data-dir={tempfile.mkdtemp()}"):
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    yield driver
    driver.quit()


def serve(app_factory: str, env: dict, log):
    """Run a Flask app under gunicorn, as production does; return (proc, base url)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
         app_factory], cwd=ROOT, env=env, stdout=log, stderr=log)
    return proc, f"http://127.0.0.1:{port}"


def test_phone_checks_in_on_the_portal_and_the_dashboard_shows_it(browser, tmp_path):
    import json
    import os
    import urllib.request

    node_db = tmp_path / "node.db"
    db = open_node_db(node_db)
    NodeState(db).put("roster", {"version": "1", "bindings": [], "staff": [
        {"staff_id": "D001", "name": "Dr. Li", "department": "cardiology",
         "pin_hash": hash_pin("2468")}]})
    NodeState(db).put("config", {"node": "n1", "zone": "hall-a", "zone_name": "Lecture hall A",
                                 "events": [LECTURE]})
    db.close()
    node_conf = tmp_path / "node.json"
    node_conf.write_text(json.dumps({"site": "t", "node": "n1", "db": str(node_db),
                                     "site_secret": "00" * 32, "mqtt": {}}))
    log = open(tmp_path / "servers.log", "ab")
    portal, portal_url = serve("edge.portal:create_app()",
                               dict(os.environ, ROUNDS_EDGE_CONFIG=str(node_conf)), log)
    try:
        wait_for(lambda: _up(portal_url + "/healthz"), message="portal up")
        browser.get(portal_url + "/")
        assert "Hand hygiene lecture" in browser.page_source
        browser.find_element(By.NAME, "staff_id").send_keys("D001")
        browser.find_element(By.NAME, "pin").send_keys("1111")
        browser.find_element(By.CSS_SELECTOR, "form button, form input[type=submit]").click()
        wait_for(lambda: "Wrong PIN for staff number D001" in browser.page_source,
                 timeout=10, message="the wrong-PIN message")
        browser.find_element(By.NAME, "pin").send_keys("2468")
        browser.find_element(By.CSS_SELECTOR, "form button, form input[type=submit]").click()
        wait_for(lambda: "/done" in browser.current_url, message="the result page")
        assert "Dr. Li" in browser.page_source and "Hand hygiene lecture" in browser.page_source
        browser.save_screenshot(str(tmp_path / "portal-done.png"))
    finally:
        portal.terminate()
        portal.wait(10)
    [item] = Outbox(node_db).pending(10)
    record = item.record

    # The record as the hub stores it after ingest (the spine tests cover transport).
    hub_db = tmp_path / "hub.db"
    hub = open_hub_db(hub_db)
    hub["staff"].insert({"staff_id": "D001", "name": "Dr. Li", "department": "cardiology"})
    hub["events"].insert({**LECTURE, "zones": json.dumps(LECTURE["zones"])})
    hub["checkins"].insert({"id": record["id"], "node": "n1", "ts": record["ts"],
                            "received_at": iso(NOW), "staff_id": "D001", "event_id": "ev1",
                            "zone": "hall-a", "method": "portal"})
    hub.close()
    hub_conf = tmp_path / "hub.json"
    hub_conf.write_text(json.dumps({"site": "t", "db": str(hub_db), "mqtt": {},
                                    "timezone": "UTC"}))
    web, web_url = serve("hub.web:create_app()",
                         dict(os.environ, ROUNDS_HUB_CONFIG=str(hub_conf)), log)
    try:
        wait_for(lambda: _up(web_url + "/api/v1/health"), message="dashboard up")
        browser.set_window_size(1200, 900)
        browser.get(web_url + "/")
        section = browser.find_element(By.XPATH, "//*[contains(., 'Hand hygiene lecture')]"
                                                 "/ancestor-or-self::section")
        assert "Dr. Li" in section.text and record["ts"][11:16] in section.text
        browser.save_screenshot(str(tmp_path / "dashboard.png"))
    finally:
        web.terminate()
        web.wait(10)


def _up(url: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(url, timeout=2).close()
        return True
    except (urllib.error.URLError, ConnectionError):
        return False
