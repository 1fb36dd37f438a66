"""Small things a clerk trips over on the dashboard, in headless Chromium at a
desktop size: a node whose clock state is unknown gets a word in its clock
cell (not a blank), and the zone labels on a floor plan are big enough to
read."""

import json
import os
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from hub.db import open_db as open_hub_db
from hub.people import accounts
from hub.schedule import zones
from protocol.clock import iso

from .conftest import SITE, wait_for
from .test_browser import _up, chromium, serve, sign_in

OFFICE, PASSWORD = "civility-office", "office-pass-8642"
SHOTS = Path("/tmp/ux-shots")
# A ward floor as the demo draws it: 1240 x 600 plan units.
FLOOR = {"width": 1240, "height": 600, "outline": [[0, 0], [1240, 0], [1240, 600], [0, 600]],
         "shapes": [{"type": "rect", "x": 20, "y": 20, "width": 540, "height": 260}]}
MIN_LABEL_PX = 13  # rendered glyph height a person reads without leaning in


def seed(db_path: Path) -> None:
    now = datetime.now(timezone.utc)
    db = open_hub_db(db_path)
    try:
        zones.save_plan(db, "Main", "Inpatient", "3", "floor-3.json",
                        json.dumps(FLOOR).encode(), now)
        for zone, name, polygon in (
                ("ward-3w", "Ward 3 West", [[20, 20], [560, 20], [560, 280], [20, 280]]),
                ("ward-3e", "Ward 3 East", [[680, 20], [1220, 20], [1220, 280], [680, 280]])):
            zones.create_zone(db, zones.check_zone(db, {
                "zone": zone, "name": name, "campus": "Main", "building": "Inpatient",
                "floor": "3", "polygon": polygon}))
        seen = iso(now - timedelta(seconds=30))
        with db.conn:
            db.conn.executemany(
                "INSERT INTO nodes (node, zone, state, version, backlog, clock_synced, "
                "status_ts, last_seen) VALUES (?, ?, 'online', '0.1.0', 0, ?, ?, ?)",
                [("ward-3w-1", "ward-3w", 1, seen, seen),
                 ("hall-a-1", "ward-3e", None, seen, seen)])  # no time daemon it knows
            accounts.create(db, OFFICE, "office", PASSWORD)
    finally:
        db.close()


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    """(browser signed in as the office, the dashboard's base URL)."""
    tmp = tmp_path_factory.mktemp("details")
    seed(tmp / "hub.db")
    conf = tmp / "hub.json"
    conf.write_text(json.dumps({"site": SITE, "db": str(tmp / "hub.db"), "mqtt": {},
                                "web": {"secure_cookies": False}}))
    log = open(tmp / "web.log", "ab")
    web, url = serve("hub.web:create_app()", dict(os.environ, ROUNDS_HUB_CONFIG=str(conf)), log)
    driver = chromium("1280,900")
    try:
        wait_for(lambda: _up(url + "/api/v1/health"), message="dashboard up")
        driver.get(url + "/")
        sign_in(driver, OFFICE, PASSWORD)
        WebDriverWait(driver, 20).until(lambda d: "/login" not in d.current_url)
        yield driver, url
    finally:
        driver.quit()
        web.terminate()
        web.wait(30)
        log.close()


def test_a_node_whose_clock_state_is_unknown_says_so(dashboard):
    browser, url = dashboard
    browser.get(url + "/nodes/")
    clock = {row.get_attribute("id"): row.find_elements(By.TAG_NAME, "td")[-1]
             for row in browser.find_elements(By.CSS_SELECTOR, "tr[id^=node-]")}

    assert clock["node-ward-3w-1"].text == "已同步"
    assert clock["node-hall-a-1"].text == "未知"
    assert "时间服务" in clock["node-hall-a-1"].find_element(
        By.TAG_NAME, "span").get_attribute("title")


def test_the_floor_plan_labels_are_big_enough_to_read(dashboard):
    """On the zones page (the plan drawing as an image: its room labels) and on
    the hotspots page (the zones drawn over it: their labels)."""
    browser, url = dashboard
    browser.get(url + "/zones/")
    image = browser.find_element(By.CSS_SELECTOR, "img.plan-thumb")
    WebDriverWait(browser, 20).until(lambda d: image.get_attribute("naturalWidth") != "0")
    drawing = browser.execute_async_script(
        "const done = arguments[1];"
        "fetch(arguments[0].src).then(r => r.text()).then(done);", image)
    font = float(re.search(r'<svg[^>]* font-size="([0-9.]+)"', drawing).group(1))
    shown = font * image.size["width"] / FLOOR["width"]
    SHOTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(SHOTS / "zones-plan-1280.png"))
    assert shown >= MIN_LABEL_PX, (font, image.size)

    browser.get(url + "/hotspots/")
    WebDriverWait(browser, 20).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "svg.floor-plan .zone-label"))
    labels = browser.find_elements(By.CSS_SELECTOR, "svg.floor-plan .zone-label")
    heights = [browser.execute_script("return arguments[0].getBoundingClientRect().height;",
                                      label) for label in labels]
    browser.save_screenshot(str(SHOTS / "hotspots-floor-plan-1280.png"))

    assert len(labels) == 2
    assert min(heights) >= MIN_LABEL_PX, heights
