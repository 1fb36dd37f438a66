"""Pages people use, in a real headless Chromium: a phone binds itself on the
portal, checks in with one tap and reads its record (in Chinese, then in
English), and the check-in shows on the hub dashboard."""

import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from PIL import Image

from edge.db import open_db as open_node_db
from edge.outbox import Outbox
from edge.state import NodeState
from hub.db import open_db as open_hub_db
from hub.people import accounts
from protocol.clock import iso
from protocol.pins import hash_pin

from .conftest import ROOT, free_port, wait_for

from selenium import webdriver
from selenium.webdriver.common.by import By

NOW = datetime.now(timezone.utc)


def event(event_id, title, minutes_ago=5):
    return {"id": event_id, "title": title, "kind": "lecture", "zones": ["hall-a"],
            "start": iso(NOW - timedelta(minutes=minutes_ago)),
            "end": iso(NOW + timedelta(minutes=55)), "credit_hours": 1, "min_presence": 0.75}


LECTURE = event("ev1", "Hand hygiene lecture")
# PINs no log line could contain by chance (not a port, not a time).
PINS = {"D001": "864297", "N002": "517306"}
OFFICE, OFFICE_PASSWORD = "civility-office", "office-pass-2468"
# One walk per language: who, from which MAC, binding during one event and
# tapping in to the next (the schedule moves on between the two).
WALKS = {
    "zh": {"staff_id": "D001", "name": "Dr. Li", "mac": "a6:3f:0c:11:7e:42",
           "bind_event": LECTURE, "tap_event": event("ev2", "消防安全培训"),
           "bind_form": "绑定本机", "wrong_pin": "工号 D001 的密码错误", "bound": "本机已绑定到 Dr. Li",
           "keep": "即使手机提示“无法上网”，也请保持连接此 Wi-Fi", "back": "返回首页",
           "hello": "Dr. Li，您好", "done": "签到成功", "my_record": "我的记录"},
    "en": {"staff_id": "N002", "name": "Nurse Wang", "mac": "6e:21:9a:d0:33:05",
           "bind_event": event("ev3", "Infection control drill"),
           "tap_event": event("ev4", "Patient safety briefing"),
           "bind_form": "Bind this phone", "wrong_pin": "Wrong PIN for staff number N002",
           "bound": "This phone is now bound to Nurse Wang",
           "keep": "Keep this Wi-Fi connected, even if your phone says there is no internet",
           "back": "Back to start", "hello": "Hello, Nurse Wang", "done": "Checked in",
           "my_record": "My record"},
}


def chromium(window: str = "390,844", *flags: str, prefs: dict | None = None):
    """Headless Debian Chromium through chromedriver, a fresh profile each time;
    ``window`` is the viewport ("390,844" a phone, "1280,900" a desk)."""
    if not shutil.which("chromium") or not shutil.which("chromedriver"):
        pytest.fail("chromium and chromium-driver are not installed (make test installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", f"--window-size={window}",
                 f"--user-data-dir={tempfile.mkdtemp()}", *flags):
        options.add_argument(flag)
    if prefs:
        options.add_experimental_option("prefs", prefs)
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
    return webdriver.Chrome(options=options, service=service)


@pytest.fixture(scope="module")
def browser():
    driver = chromium()
    yield driver
    driver.quit()


def serve(app_factory: str, env: dict, log, port: int | None = None):
    """Run a Flask app under gunicorn (access log on); return (proc, base url).

    Threaded workers: Chromium opens speculative connections it may never
    send a request on, and a sync worker blocks on such a socket (about 10 s,
    until Chromium drops it), also when asked to stop."""
    port = port or free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
         "--worker-class", "gthread", "--threads", "4", "--keep-alive", "0",
         "--graceful-timeout", "3", "--access-logfile", "-", app_factory],
        cwd=ROOT, env=env, stdout=log, stderr=log)
    return proc, f"http://127.0.0.1:{port}"


def assert_not_blank(png: Path) -> None:
    """A real rendering: many colours, none covering nearly the whole shot."""
    with Image.open(png) as image:
        rgb = image.convert("RGB")
        colours = rgb.getcolors(maxcolors=rgb.width * rgb.height)
    assert len(colours) > 16, f"{png.name}: only {len(colours)} colours"
    assert max(count for count, _ in colours) < 0.95 * rgb.width * rgb.height, png.name


def probe_status(base_url: str, path: str) -> int:
    """What the phone's OS would get for its probe (no redirect following)."""
    url = urlsplit(base_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": "connectivitycheck.gstatic.com"})
        return conn.getresponse().status
    finally:
        conn.close()


def submit(browser, form_action: str) -> None:
    browser.find_element(By.CSS_SELECTOR, f"form[action='{form_action}'] button").click()


def walk(browser, portal_url, node_db, leases, lang, shots: list[Path]):
    """Bind -> one-tap check-in -> my record, as a phone does, in ``lang``."""
    w = WALKS[lang]
    # Chromium reaches the portal over loopback, so the portal sees 127.0.0.1 as
    # the phone's address; this lease line stands in for the DHCP lease that a
    # phone on the node's Wi-Fi has, and gives "the phone" its MAC.
    leases.write_text(f"{int(NOW.timestamp()) + 3600} {w['mac']} 127.0.0.1 phone-{lang} *\n")
    _schedule(node_db, w["bind_event"])
    assert probe_status(portal_url, "/generate_204") == 302  # captive: the sheet opens

    browser.get(portal_url + ("/" if lang == "zh" else "/?lang=en"))
    assert w["bind_form"] in browser.page_source
    assert w["bind_event"]["title"] in browser.page_source
    browser.find_element(By.NAME, "staff_id").send_keys(w["staff_id"])
    browser.find_element(By.NAME, "pin").send_keys("000000")
    submit(browser, "/bind")
    wait_for(lambda: w["wrong_pin"] in browser.page_source, timeout=10,
             message=f"the wrong-PIN message ({lang})")
    browser.find_element(By.NAME, "pin").send_keys(PINS[w["staff_id"]])
    submit(browser, "/bind")
    wait_for(lambda: "/bound" in browser.current_url, message=f"the bound page ({lang})")
    assert w["bound"] in browser.page_source and w["keep"] in browser.page_source
    assert w["bind_event"]["title"] in browser.page_source
    shots.append(screenshot(browser, node_db.parent, f"{lang}-1-bound"))
    assert probe_status(portal_url, "/generate_204") == 204  # released: the sheet closes

    _schedule(node_db, w["tap_event"])  # later, the next event
    browser.find_element(By.LINK_TEXT, w["back"]).click()
    wait_for(lambda: w["hello"] in browser.page_source, message=f"the hello page ({lang})")
    assert w["tap_event"]["title"] in browser.page_source
    submit(browser, "/checkin/tap")
    wait_for(lambda: "/done" in browser.current_url, message=f"the tap result ({lang})")
    assert w["done"] in browser.page_source and w["tap_event"]["title"] in browser.page_source
    shots.append(screenshot(browser, node_db.parent, f"{lang}-2-tapped"))

    browser.find_element(By.LINK_TEXT, w["my_record"]).click()
    wait_for(lambda: "/me" in browser.current_url, message=f"my record ({lang})")
    page = browser.page_source
    assert w["tap_event"]["title"] in page and w["bind_event"]["id"] in page  # past: its id
    assert page.index(w["tap_event"]["title"]) < page.index(w["bind_event"]["id"])
    assert f"lang={lang}" in browser.current_url
    shots.append(screenshot(browser, node_db.parent, f"{lang}-3-my-record"))


def screenshot(browser, directory: Path, name: str) -> Path:
    path = directory / f"portal-{name}.png"
    assert browser.save_screenshot(str(path))
    return path


def _schedule(node_db, *events):
    db = open_node_db(node_db)
    try:
        NodeState(db).put("config", {"node": "n1", "zone": "hall-a",
                                     "zone_name": "Lecture hall A", "events": list(events)})
    finally:
        db.close()


def test_phone_binds_taps_and_reads_its_record_and_the_dashboard_shows_it(browser, tmp_path):
    node_db = tmp_path / "node.db"
    db = open_node_db(node_db)
    NodeState(db).put("roster", {"version": "1", "bindings": [], "staff": [
        {"staff_id": "D001", "name": "Dr. Li", "department": "cardiology",
         "pin_hash": hash_pin(PINS["D001"])},
        {"staff_id": "N002", "name": "Nurse Wang", "department": "nursing",
         "pin_hash": hash_pin(PINS["N002"])}]})
    db.close()
    leases = tmp_path / "dnsmasq.leases"
    port = free_port()
    node_conf = tmp_path / "node.json"
    node_conf.write_text(json.dumps({
        "site": "t", "node": "n1", "db": str(node_db), "site_secret": "00" * 32, "mqtt": {},
        "portal": {"url": f"http://127.0.0.1:{port}/", "leases_file": str(leases),
                   "arp_file": str(tmp_path / "no-arp")}}))
    log_path = tmp_path / "servers.log"
    log = open(log_path, "ab")
    portal, portal_url = serve("edge.portal:create_app()",
                               dict(os.environ, ROUNDS_EDGE_CONFIG=str(node_conf)), log, port)
    shots: list[Path] = []
    try:
        wait_for(lambda: _up(portal_url + "/healthz"), message="portal up")
        browser.set_window_size(390, 844)
        for lang in ("zh", "en"):
            walk(browser, portal_url, node_db, leases, lang, shots)
    finally:
        portal.terminate()
        portal.wait(30)
    assert len(shots) == 6
    for shot in shots:
        assert_not_blank(shot)
    served = log_path.read_text()
    assert "POST /bind" in served and "POST /checkin/tap" in served  # the access log is on
    assert not any(pin in served for pin in PINS.values())  # and never sees a PIN

    pending = [item.record for item in Outbox(node_db).pending(100)]
    assert [(r["type"], r["staff_id"]) for r in pending] == [
        ("binding", "D001"), ("checkin", "D001"), ("checkin", "D001"),
        ("binding", "N002"), ("checkin", "N002"), ("checkin", "N002")]
    [record] = [r for r in pending if r["type"] == "checkin" and r["event_id"] == "ev1"]
    assert record["device"] == pending[0]["device"]

    # The record as the hub stores it after ingest (the spine tests cover transport).
    hub_db = tmp_path / "hub.db"
    hub = open_hub_db(hub_db)
    with hub.conn:
        accounts.create(hub, OFFICE, "office", OFFICE_PASSWORD)
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
        sign_in(browser, OFFICE, OFFICE_PASSWORD)
        wait_for(lambda: urlsplit(browser.current_url).path == "/", timeout=15,
                 message="the dashboard after signing in")
        section = browser.find_element(By.XPATH, "//*[contains(., 'Hand hygiene lecture')]"
                                                 "/ancestor-or-self::section")
        assert "Dr. Li" in section.text and record["ts"][11:16] in section.text
        browser.save_screenshot(str(tmp_path / "dashboard.png"))
    finally:
        web.terminate()
        web.wait(30)
    assert_not_blank(tmp_path / "dashboard.png")


def sign_in(browser, username: str, password: str) -> None:
    """Sign in through the dashboard's form (the page it redirected to)."""
    wait_for(lambda: "/login" in browser.current_url, timeout=10, message="the sign-in page")
    browser.find_element(By.NAME, "username").send_keys(username)
    browser.find_element(By.NAME, "password").send_keys(password)
    browser.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()


def _up(url: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(url, timeout=2).close()
        return True
    except (urllib.error.URLError, ConnectionError):
        return False
