"""The staff portal on a phone-sized screen (390 x 844), in a real headless
Chromium against the portal under gunicorn: a bound phone files a report in
one step and a phone the node cannot name is told its report was sent; "my
reports" is one tap from the start page and from the report form, with each
report's state; every control is big enough to tap and has type iOS does not
zoom into; and after a check-in the advice to stay on the Wi-Fi is given once.

As in ``test_browser.py``, Chromium reaches the portal from 127.0.0.1, and a
line for that address in the node's dnsmasq lease file gives "the phone" its
MAC; an empty lease file makes it a device the node cannot identify."""

import json
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from edge.db import open_db as open_node_db
from edge.outbox import Outbox
from edge.state import NodeState
from protocol.clock import iso
from protocol.pins import hash_pin

from .conftest import free_port, wait_for
from .test_browser import _up, assert_not_blank, serve
from .test_browser import browser as browser  # noqa: F401 - fixture

NOW = datetime.now(timezone.utc)
STAFF_ID, NAME, PIN = "D001", "Dr. Li", "864297"
MAC = "a6:3f:0c:11:7e:42"
LECTURE = {"id": "ev1", "title": "Hand hygiene lecture", "kind": "lecture", "zones": ["hall-a"],
           "start": iso(NOW - timedelta(minutes=5)), "end": iso(NOW + timedelta(minutes=55)),
           "credit_hours": 1, "min_presence": 0.75}
WIDTH, HEIGHT = 390, 844
SHOTS = Path("/tmp/ux-shots")  # where a person looks at the report form
MIN_TARGET = 44  # px: the smallest comfortable touch target (Apple's HIG, WCAG 2.5.5)
MIN_FONT = 16    # px: below this, iOS Safari zooms into a focused field
CONTROLS = "input:not([type=hidden]), select, textarea, button, a.button, header a.lang"
ADVICE = {"en": "no internet", "zh": "无法上网"}  # in every wording of "stay on this Wi-Fi"


@dataclass
class Portal:
    url: str
    node_db: Path
    leases: Path

    def as_phone(self, mac: str = MAC) -> None:
        """Chromium's address (127.0.0.1) leased to ``mac``, as dnsmasq writes it."""
        expiry = int((NOW + timedelta(hours=1)).timestamp())
        self.leases.write_text(f"{expiry} {mac} 127.0.0.1 phone 01:{mac}\n")

    def as_unknown_device(self) -> None:
        self.leases.write_text("")

    def put_state(self, key: str, document: dict) -> None:
        db = open_node_db(self.node_db)
        try:
            NodeState(db).put(key, document)
        finally:
            db.close()

    def records(self, type_: str) -> list[dict]:
        outbox = Outbox(self.node_db)
        try:
            return [item.record for item in outbox.pending(1000)
                    if item.record["type"] == type_]
        finally:
            outbox.close()


@pytest.fixture
def portal(browser, tmp_path):
    node_db = tmp_path / "node.db"
    leases = tmp_path / "dnsmasq.leases"
    leases.write_text("")
    port = free_port()
    config = tmp_path / "node.json"
    config.write_text(json.dumps({
        "site": "t", "node": "n1", "db": str(node_db), "site_secret": "00" * 32, "mqtt": {},
        "portal": {"url": f"http://127.0.0.1:{port}/", "leases_file": str(leases),
                   "arp_file": str(tmp_path / "no-arp")}}))
    site = Portal("", node_db, leases)
    site.put_state("roster", {"version": "1", "bindings": [], "staff": [
        {"staff_id": STAFF_ID, "name": NAME, "department": "cardiology",
         "pin_hash": hash_pin(PIN)}]})
    site.put_state("config", {"node": "n1", "zone": "hall-a", "zone_name": "Lecture hall A",
                              "events": [LECTURE]})
    with open(tmp_path / "portal.log", "ab") as log:
        proc, site.url = serve("edge.portal:create_app()",
                               dict(os.environ, ROUNDS_EDGE_CONFIG=str(config)), log, port)
    try:
        wait_for(lambda: _up(site.url + "/healthz"), message="portal up")
        # The window's frame takes part of --window-size: the page gets a
        # phone's viewport (and its meta viewport is honoured, as on a phone).
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": True})
        browser.get(site.url + "/healthz")
        browser.delete_all_cookies()  # every test starts as a phone new to this portal
        yield site
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        proc.terminate()
        proc.wait(30)


def open_page(browser, url: str) -> None:
    browser.get(url)
    wait_for(lambda: browser.execute_script("return document.readyState") == "complete",
             message=url)


def click(browser, by, value, then: str) -> None:
    """Click an element and wait until the browser is on a page whose URL has ``then``."""
    browser.find_element(by, value).click()
    wait_for(lambda: then in browser.current_url, timeout=15, message=then)
    wait_for(lambda: browser.execute_script("return document.readyState") == "complete",
             message=then)


def screenshot(browser, directory: Path, name: str) -> Path:
    """What the phone shows, as a PNG in ``directory`` (checked not blank)."""
    path = directory / f"{name}-{WIDTH}x{HEIGHT}.png"
    assert browser.save_screenshot(str(path))
    assert_not_blank(path)
    return path


def main_text(browser) -> str:
    return " ".join(browser.find_element(By.TAG_NAME, "main").text.split())


def bind_phone(browser, portal) -> None:
    """The phone binds itself on the start page (which also checks it in)."""
    portal.as_phone()
    open_page(browser, portal.url + "/?lang=en")
    browser.find_element(By.NAME, "staff_id").send_keys(STAFF_ID)
    browser.find_element(By.NAME, "pin").send_keys(PIN)
    click(browser, By.CSS_SELECTOR, "form[action='/bind'] button", "/bound")


def photo(directory: Path, name: str, colour=(180, 40, 40)) -> Path:
    path = directory / name
    Image.new("RGB", (800, 600), colour).save(path, "JPEG", quality=90)
    return path


def fill_report(browser, category: str, note: str, picture: Path) -> None:
    Select(browser.find_element(By.NAME, "category")).select_by_value(category)
    browser.find_element(By.NAME, "note").send_keys(note)
    browser.find_element(By.NAME, "photos").send_keys(str(picture))


def send_report(browser) -> None:
    click(browser, By.CSS_SELECTOR, "form[action^='/report'] button[type=submit]", "/reports")


def pin_fields(browser) -> list[str]:
    return [e.get_attribute("name") for e in browser.find_elements(By.CSS_SELECTOR, "form input")
            if e.get_attribute("name") in ("staff_id", "pin")]


# --- 1. snap-and-report: one step on a bound phone ------------------------------

def test_a_bound_phone_files_a_report_without_staff_number_or_pin(browser, portal, tmp_path):
    bind_phone(browser, portal)
    click(browser, By.LINK_TEXT, "Back to start", "/?lang=en")
    click(browser, By.LINK_TEXT, "Report a problem", "/report")
    assert pin_fields(browser) == []
    assert f"Reporting as {NAME}." in main_text(browser)
    # A refused photo brings the form back: still without staff number and PIN.
    not_a_photo = tmp_path / "notes.jpg"
    not_a_photo.write_text("not a photo\n" * 100)
    fill_report(browser, "hygiene", "Spill by the lift", not_a_photo)
    browser.find_element(By.CSS_SELECTOR, "form[action^='/report'] button[type=submit]").click()
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "p.error"), timeout=15,
             message="the refusal")
    assert "notes.jpg was not accepted" in main_text(browser)
    assert pin_fields(browser) == []
    browser.find_element(By.NAME, "note").clear()
    fill_report(browser, "hygiene", "Spill by the lift", photo(tmp_path, "spill.jpg"))
    send_report(browser)
    page = main_text(browser)
    assert "Thank you: your report was sent." in page and "Spill by the lift" in page
    [report] = portal.records("report")
    assert (report["staff_id"], report["category"], report["note"]) == (
        STAFF_ID, "hygiene", "Spill by the lift")


def test_a_phone_the_node_cannot_name_is_told_its_report_was_sent(browser, portal, tmp_path):
    """A phone the node knows but that is not bound, and a device it cannot
    identify at all, report with staff number + PIN; the page they land on
    says the report was sent (and offers binding where the node can bind)."""
    for device, bind_offered in (("unbound", True), ("unknown", False)):
        if device == "unbound":
            portal.as_phone()
        else:
            portal.as_unknown_device()
        open_page(browser, portal.url + "/report?lang=en")
        assert pin_fields(browser) == ["staff_id", "pin"], device
        fill_report(browser, "safety", f"Loose cable ({device})", photo(tmp_path, "cable.jpg"))
        browser.find_element(By.NAME, "staff_id").send_keys(STAFF_ID)
        browser.find_element(By.NAME, "pin").send_keys(PIN)
        send_report(browser)
        page = main_text(browser)
        screenshot(browser, tmp_path, f"sent-from-{device}")
        assert "Thank you: your report was sent." in page, (device, page)
        binding = browser.find_elements(By.CSS_SELECTOR, "main a[href^='/bind']")
        assert bool(binding) == bind_offered, device
    assert [(r["staff_id"], r["note"]) for r in portal.records("report")] == [
        (STAFF_ID, "Loose cable (unbound)"), (STAFF_ID, "Loose cable (unknown)")]


# --- 2. my reports, one tap away -------------------------------------------------

def report_rows(browser) -> dict[str, str]:
    """My reports as shown: the note of each report -> its state."""
    rows = {}
    for item in browser.find_elements(By.CSS_SELECTOR, "main li"):
        what = item.find_element(By.CSS_SELECTOR, ".what").text
        rows[what.split(": ", 1)[1]] = item.find_element(By.CSS_SELECTOR, ".state").text
    return rows


def test_my_reports_is_one_tap_from_home_and_from_the_report_form(browser, portal, tmp_path):
    bind_phone(browser, portal)
    for note, colour in (("Spill by the lift", (180, 40, 40)), ("Broken chair", (40, 40, 180))):
        open_page(browser, portal.url + "/report?lang=en")
        fill_report(browser, "facilities", note, photo(tmp_path, f"{colour[0]}.jpg", colour))
        send_report(browser)
    filed = {r["note"]: r["report_id"] for r in portal.records("report")}
    # The hub's word on the tickets, as sync stores it in the node's config.
    portal.put_state("config", {"node": "n1", "zone": "hall-a", "zone_name": "Lecture hall A",
                                "events": [LECTURE], "reports": [
                                    {"report_id": filed["Spill by the lift"],
                                     "state": "in_progress"},
                                    {"report_id": filed["Broken chair"], "state": "resolved"}]})
    expected = {"Spill by the lift": "Being handled", "Broken chair": "Resolved"}

    open_page(browser, portal.url + "/?lang=en")
    click(browser, By.LINK_TEXT, "My reports", "/reports")
    assert report_rows(browser) == expected
    screenshot(browser, tmp_path, "my-reports")

    click(browser, By.LINK_TEXT, "Report a problem", "/report")
    click(browser, By.LINK_TEXT, "My reports", "/reports")
    assert report_rows(browser) == expected


# --- 3. controls big enough to tap and to read -----------------------------------

MEASURE = """
return Array.from(document.querySelectorAll(arguments[0]))
  .filter(e => e.getClientRects().length > 0)
  .map(e => ({what: e.tagName.toLowerCase() + (e.name ? '[name=' + e.name + ']' : '')
                    + (e.matches('a, button') ? ' "' + e.innerText.trim() + '"' : ''),
              height: e.getBoundingClientRect().height,
              font: parseFloat(getComputedStyle(e).fontSize)}));
"""


def measure(browser, page: str, tmp_path) -> list[str]:
    """Each control of the page that is too low to tap or has type iOS zooms into."""
    assert browser.execute_script("return [innerWidth, innerHeight]") == [WIDTH, HEIGHT]
    screenshot(browser, tmp_path, page)
    controls = browser.execute_script(MEASURE, CONTROLS)
    assert controls, page
    return [f"{page}: {c['what']} is {c['height']:.1f}px high, {c['font']:.1f}px type"
            for c in controls if c["height"] < MIN_TARGET or c["font"] < MIN_FONT]


def test_every_control_is_big_enough_to_tap_and_to_read(browser, portal, tmp_path):
    too_small = []
    portal.as_unknown_device()
    open_page(browser, portal.url + "/")
    too_small += measure(browser, "checkin-form", tmp_path)
    open_page(browser, portal.url + "/report")
    too_small += measure(browser, "report-form-with-pin", tmp_path)
    portal.as_phone()
    open_page(browser, portal.url + "/")
    assert browser.find_elements(By.CSS_SELECTOR, "form[action='/bind']")
    too_small += measure(browser, "bind-form", tmp_path)
    browser.find_element(By.NAME, "staff_id").send_keys(STAFF_ID)
    browser.find_element(By.NAME, "pin").send_keys(PIN)
    click(browser, By.CSS_SELECTOR, "form[action='/bind'] button", "/bound")
    open_page(browser, portal.url + "/")
    too_small += measure(browser, "home", tmp_path)
    open_page(browser, portal.url + "/report")
    too_small += measure(browser, "report-form", tmp_path)
    open_page(browser, portal.url + "/reports")
    too_small += measure(browser, "my-reports", tmp_path)
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tmp_path / f"report-form-{WIDTH}x{HEIGHT}.png",
                    SHOTS / f"report-{WIDTH}x{HEIGHT}.png")
    shutil.copyfile(tmp_path / f"report-form-with-pin-{WIDTH}x{HEIGHT}.png",
                    SHOTS / f"report-with-pin-{WIDTH}x{HEIGHT}.png")
    assert not too_small, "\n".join(too_small)


# --- 4. "stay on this Wi-Fi", said once -----------------------------------------

def advice_count(browser, lang: str) -> int:
    return browser.find_element(By.TAG_NAME, "body").text.count(ADVICE[lang])


def test_after_a_check_in_the_stay_connected_advice_is_shown_once(browser, portal, tmp_path):
    portal.as_unknown_device()
    for lang, button in (("zh", "签到"), ("en", "Check in")):
        browser.delete_all_cookies()
        open_page(browser, f"{portal.url}/?lang={lang}")
        browser.find_element(By.NAME, "staff_id").send_keys(STAFF_ID)
        browser.find_element(By.NAME, "pin").send_keys(PIN)
        click(browser, By.XPATH, f"//form[@action='/checkin']/button[.='{button}']", "/done")
        screenshot(browser, tmp_path, f"done-{lang}")
        assert advice_count(browser, lang) == 1, (lang, browser.find_element(
            By.TAG_NAME, "body").text)

    bind_phone(browser, portal)  # binding checks in too
    assert advice_count(browser, "en") == 1, browser.find_element(By.TAG_NAME, "body").text
    portal.put_state("config", {"node": "n1", "zone": "hall-a", "zone_name": "Lecture hall A",
                                "events": [{**LECTURE, "id": "ev2", "title": "Fire drill"}]})
    open_page(browser, portal.url + "/?lang=en")
    click(browser, By.CSS_SELECTOR, "form[action='/checkin/tap'] button", "/done")
    assert "Checked in to Fire drill" in main_text(browser)
    assert advice_count(browser, "en") == 1, browser.find_element(By.TAG_NAME, "body").text
