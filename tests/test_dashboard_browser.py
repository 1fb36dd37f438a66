"""The civility office's day on the hub dashboard, in a real headless Chromium.

Real pieces only: Mosquitto, the hub's ingest, node n1's outbox and sync
loop, and the dashboard under gunicorn. The office signs in, schedules a
lecture, watches attendance filed on the node arrive over MQTT on the live
page (which swaps its fragment in by itself), accepts a ticket reported with
a photo on the node, approves the volunteer hours that earned, exports the
reporter's record as XLSX and switches the language. Every step leaves a
screenshot, checked non-blank, and the audit log names the office."""

import io
import json
import os
import sqlite3
import uuid
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from PIL import Image, ImageDraw
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from edge.camera.pipeline import process
from edge.db import open_db as open_node_db
from edge.outbox import Outbox
from edge.photos import PhotoSpool
from hub.db import open_db as open_hub_db
from hub.people import accounts
from protocol.clock import iso
from protocol.pins import hash_pin

from .conftest import SITE, running_ingest, running_sync, wait_for
from .test_browser import _up, assert_not_blank, chromium, serve, sign_in

HOSPITAL_TZ = ZoneInfo("Asia/Shanghai")
OFFICE, PASSWORD = "civility-office", "office-pass-1357"
TITLE = "Fire safety lecture"
COMMENT = "Cleaning team on the way"
# N101 attends the whole lecture (present) and files the ticket; N102 comes
# late (partial); N103 is expected with nursing and never comes (absent).
STAFF = {"N101": "Wang Fang", "N102": "Liu Yang", "N103": "Zhao Lei"}
CATALOGUE = (Path(__file__).resolve().parent.parent / "hub" / "web" / "translations"
             / "zh_Hans_CN" / "LC_MESSAGES" / "messages.mo")
WAIT = 30  # seconds: the live page polls every 5 s; two busy cores


@pytest.fixture(scope="module")
def office_browser(tmp_path_factory):
    """Chromium as in test_browser.py, downloading without asking into a
    directory of its own (``office_browser.downloads``)."""
    downloads = tmp_path_factory.mktemp("downloads")
    driver = chromium("1280,900", prefs={"download.default_directory": str(downloads),
                                         "download.prompt_for_download": False})
    driver.downloads = downloads
    yield driver
    driver.quit()


def seed_hub(db_path: Path) -> None:
    db = open_hub_db(db_path)
    try:
        with db.conn:
            db["zones"].insert({"zone": "hall-a", "name": "Lecture hall A",
                                "building": "Teaching", "floor": "2"})
            db["nodes"].insert({"node": "n1", "zone": "hall-a"})
            db["departments"].insert_all([
                {"department": "nursing", "name": "Nursing"},
                {"department": "environmental_services", "name": "Environmental services"}])
            db["staff"].insert_all([
                {"staff_id": sid, "name": name, "department": "nursing",
                 "pin_hash": hash_pin(f"86{n}420")}
                for n, (sid, name) in enumerate(STAFF.items())])
            accounts.create(db, OFFICE, "office", PASSWORD)
    finally:
        db.close()


def file_report(node_db: Path) -> str:
    """A report with a photo, queued on the node as its portal does: the safe
    photo into the spool, the record into the outbox. Returns the report id."""
    image = Image.new("RGB", (1200, 900), (170, 170, 160))
    ImageDraw.Draw(image).ellipse((300, 300, 900, 650), fill=(120, 80, 20))  # a spill
    raw = io.BytesIO()
    image.save(raw, "JPEG", quality=90)
    report_id = str(uuid.uuid4())
    outbox = Outbox(node_db)
    try:
        sha = PhotoSpool(outbox.db, node_db.parent / "photos").put(
            process(raw.getvalue()).jpeg, report_id)
        outbox.append({"type": "report", "report_id": report_id, "staff_id": "N101",
                       "category": "hygiene", "note": "Spill by the lecture hall door",
                       "zone": "hall-a", "photos": [sha],
                       "taken_at": iso(datetime.now(timezone.utc))})
    finally:
        outbox.close()
    return report_id


def attend(node_db: Path, event_id: str, start: datetime) -> None:
    """N101 checked in and was seen since before the start; N102 only for the
    last two minutes. Appended to the node's outbox, as its portal and
    presence tracker do."""
    now = datetime.now(timezone.utc)
    outbox = Outbox(node_db)
    try:
        outbox.append_many([
            {"type": "checkin", "staff_id": "N101", "event_id": event_id, "zone": "hall-a",
             "method": "portal"},
            {"type": "presence", "device": "a1b2c3d4e5f60718", "staff_id": "N101",
             "zone": "hall-a", "first_seen": iso(start - timedelta(minutes=1)),
             "last_seen": iso(now), "closed": False},
            {"type": "checkin", "staff_id": "N102", "event_id": event_id, "zone": "hall-a",
             "method": "portal"},
            {"type": "presence", "device": "0f1e2d3c4b5a6978", "staff_id": "N102",
             "zone": "hall-a", "first_seen": iso(now - timedelta(minutes=2)),
             "last_seen": iso(now), "closed": False}])
    finally:
        outbox.close()


def ticket_of(hub_db: Path, report_id: str) -> int | None:
    conn = sqlite3.connect(hub_db)
    try:
        row = conn.execute("SELECT ticket_id FROM ticket_reports WHERE report_id = ?",
                           (report_id,)).fetchone()
    finally:
        conn.close()
    return row[0] if row else None


def downloaded(directory: Path, pattern: str) -> list[Path]:
    """Finished downloads matching ``pattern``: Chromium writes a
    ``.crdownload`` file and may reserve the final name with an empty file
    until it renames the finished one over it."""
    if list(directory.glob("*.crdownload")):
        return []
    return [path for path in directory.glob(pattern) if zipfile.is_zipfile(path)]


class Walk:
    """The browser, the dashboard's address and the screenshots taken."""

    def __init__(self, browser, base_url: str, shots_dir: Path):
        self.browser, self.base_url, self.shots_dir = browser, base_url, shots_dir
        self.shots: list[Path] = []

    def wait(self, condition, message: str, timeout: float = WAIT):
        """Poll ``condition`` until truthy; the live fragment may be swapped
        out from under an element between finding and reading it."""
        return WebDriverWait(self.browser, timeout, poll_frequency=0.25, ignored_exceptions=(
            NoSuchElementException, StaleElementReferenceException)).until(
            lambda _driver: condition(), message=message)

    def at(self, path: str, message: str):
        self.wait(lambda: urlsplit(self.browser.current_url).path == path, message)

    def css(self, selector: str):
        return self.browser.find_element(By.CSS_SELECTOR, selector)

    def nav(self, path: str) -> None:
        """Follow the header's link to ``path`` (by address: labels are translated)."""
        self.css(f"header nav a[href='{path}']").click()
        self.at(path, f"the page {path}")

    def text(self, selector: str) -> str:
        return self.css(selector).text

    def shot(self, name: str) -> None:
        path = self.shots_dir / f"office-{len(self.shots) + 1}-{name}.png"
        assert self.browser.save_screenshot(str(path))
        self.shots.append(path)


def test_the_office_runs_its_day_in_chromium(office_browser, broker, tmp_path,
                                              hub_db_path, node_db_path):
    seed_hub(hub_db_path)
    open_node_db(node_db_path).close()
    report_id = file_report(node_db_path)
    hub_conf = tmp_path / "hub" / "hub.json"
    hub_conf.write_text(json.dumps({"site": SITE, "db": str(hub_db_path), "mqtt": {},
                                    "web": {"secure_cookies": False}}))
    log = open(tmp_path / "web.log", "ab")
    with running_ingest(broker, hub_db_path, downlink_interval=0.5), \
            running_sync(broker, node_db_path):
        web, web_url = serve("hub.web:create_app()",
                             dict(os.environ, ROUNDS_HUB_CONFIG=str(hub_conf)), log)
        try:
            wait_for(lambda: _up(web_url + "/api/v1/health"), message="dashboard up")
            walk = Walk(office_browser, web_url, tmp_path)
            office_day(walk, hub_db_path, node_db_path, report_id)
        finally:
            web.terminate()
            web.wait(30)
            log.close()
    assert len(walk.shots) == 9
    for shot in walk.shots:
        assert_not_blank(shot)
    audit = sqlite3.connect(hub_db_path).execute(
        "SELECT action, target FROM audit_log WHERE who = ?", (OFFICE,)).fetchall()
    actions = {action for action, _target in audit}
    assert {"login", "event.create", "ticket.transition", "hours.decision",
            "export.person"} <= actions, audit
    assert ("export.person", "staff:N101") in audit


def office_day(walk: Walk, hub_db: Path, node_db: Path, report_id: str) -> None:
    browser = walk.browser
    # (1) The dashboard asks who is there first.
    browser.get(walk.base_url + "/")
    sign_in(browser, OFFICE, PASSWORD)
    walk.at("/", "today's page after signing in")
    assert OFFICE in walk.text("header .who")
    walk.shot("today")

    # (2) Schedule a lecture that began ten minutes ago, for nursing.
    walk.nav("/events/")
    walk.css("a[href='/events/new']").click()
    walk.at("/events/new", "the new-event form")
    start = datetime.now(HOSPITAL_TZ).replace(second=0, microsecond=0) - timedelta(minutes=10)
    browser.find_element(By.NAME, "title").send_keys(TITLE)
    Select(browser.find_element(By.NAME, "kind")).select_by_value("lecture")
    Select(browser.find_element(By.NAME, "zones")).select_by_value("hall-a")
    for name, value in (("start", start), ("end", start + timedelta(hours=1))):
        # A datetime-local field's typing order depends on the browser's locale.
        browser.execute_script("arguments[0].value = arguments[1];",
                               browser.find_element(By.NAME, name),
                               value.strftime("%Y-%m-%dT%H:%M"))
    Select(browser.find_element(By.NAME, "departments")).select_by_value("nursing")
    credit = browser.find_element(By.NAME, "credit_hours")
    credit.clear()
    credit.send_keys("1")
    walk.shot("event-form")
    walk.css("form.event-form button[type=submit]").click()
    walk.at("/events/", "the events list after saving")
    browser.find_element(By.LINK_TEXT, TITLE).click()
    walk.wait(lambda: walk.text("h1") == TITLE, "the new event's page")
    event_id = urlsplit(browser.current_url).path.rsplit("/", 1)[1]

    # (3) Attendance filed on the node arrives; the page swaps it in itself.
    def counts() -> tuple[str, str, str]:
        return tuple(walk.text(f"#live .status-{status} .count")
                     for status in ("present", "partial", "absent"))

    walk.wait(lambda: counts() == ("0", "0", "3"), "nursing expected, nobody there yet")
    walk.shot("event")
    browser.execute_script("window.notReloaded = true;")
    attend(node_db, event_id, start.astimezone(timezone.utc))
    walk.wait(lambda: counts() == ("1", "1", "1"), "1 present, 1 partial, 1 absent")
    walk.wait(lambda: all(name in walk.text("#live") for name in STAFF.values()),
              "everyone's name on the live page")
    assert browser.execute_script("return window.notReloaded === true;"), "the page reloaded"
    walk.shot("live-attendance")

    # (4) The ticket reported with a photo on the node: accept it.
    ticket_id = wait_for(lambda: ticket_of(hub_db, report_id), timeout=WAIT,
                         message="the ticket at the hub")
    walk.nav("/tickets/")
    walk.css(f"#ticket-{ticket_id} a[href='/tickets/{ticket_id}']").click()
    walk.at(f"/tickets/{ticket_id}", "the ticket's page")
    walk.wait(lambda: browser.execute_script(
        "var i = document.querySelector('.photos img'); return !!i && i.complete"
        " && i.naturalWidth > 0;"), "the ticket's photo")
    Select(browser.find_element(By.NAME, "to")).select_by_value("assigned")
    browser.find_element(By.NAME, "comment").send_keys(COMMENT)
    walk.css("form.move button[type=submit]").click()
    walk.wait(lambda: COMMENT in walk.text("table.history"), "the transition in the history")
    [row] = [r for r in browser.find_elements(By.CSS_SELECTOR, "table.history tbody tr")
             if COMMENT in r.text]
    assert OFFICE in row.text
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", row)
    walk.shot("ticket-assigned")

    # (5) Accepting the ticket credited the reporter's hours: approve them.
    walk.nav("/hours/")
    walk.wait(lambda: "N101" in walk.text("table.pending"), "the pending hours")
    walk.css("table.pending button[name=decision][value=approve]").click()
    walk.wait(lambda: not browser.find_elements(By.CSS_SELECTOR, "table.pending")
              and float(walk.text("tr[data-staff=N101] .approved")) > 0,
              "the approved hours in the totals")
    walk.shot("hours-approved")

    # (6) The reporter's record, exported as XLSX.
    walk.nav("/people/")
    walk.css("a[href='/people/N101']").click()
    walk.at("/people/N101", "the person's page")
    assert TITLE in walk.text("#attendance")
    walk.shot("person")
    walk.css("a.export-xlsx").click()
    [xlsx] = walk.wait(lambda: downloaded(browser.downloads, "person-N101-*.xlsx"),
                       "the downloaded XLSX")
    # Sheets and headings are in the page's language: read by position.
    book = openpyxl.load_workbook(xlsx, read_only=True)
    summary, attendance, ledger = ([row for row in sheet.iter_rows(values_only=True)]
                                   for sheet in book.worksheets[:3])
    book.close()
    assert {"N101", STAFF["N101"]} <= {row[1] for row in summary[1:]}, summary
    [lecture] = [row for row in attendance[1:] if row[0] == event_id]
    assert lecture[1] == TITLE, lecture
    [entry] = ledger[1:]
    assert entry[1] == ticket_id and entry[4] > 0 and entry[7] == OFFICE, entry  # decided by

    # (7) English, then back to Chinese, from the header's link.
    tickets_label = walk.text("header nav a[href='/tickets/']")
    for lang in ("en", "zh-CN"):
        walk.css("header a.lang").click()
        walk.wait(lambda: browser.execute_script(
            "return document.documentElement.lang;") == lang, f"the page in {lang}")
        walk.at("/people/N101", f"the same page in {lang}")
        assert STAFF["N101"] in walk.text("h1")
        walk.shot(f"person-{lang}")
        if lang == "en":
            assert walk.text("header nav a[href='/tickets/']") == "Tickets"
    if CATALOGUE.exists():  # the Chinese catalogue translates the nav
        assert tickets_label != "Tickets"
    assert walk.text("header nav a[href='/tickets/']") == tickets_label
