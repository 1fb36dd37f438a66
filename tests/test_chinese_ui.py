"""The hospital reads Chinese (its default language), English on request:
nothing of the system shows through in English on a Chinese page.

- The portal's report page shows why a photo was refused in Chinese: the
  photo pipeline's reasons (edge/camera/pipeline.py) are in the portal's
  catalogue, translated, and found by its extraction (babel.cfg).
- The demo hospital reads as a Chinese hospital: its zones, departments,
  events, notes and people are stored in Chinese; the dashboard's page title
  carries the site's name (示范医院), not its id; a reader who picks English
  gets the English names of the site and its departments.
"""

import io
import json
import os
import re
import struct
import zlib
from datetime import datetime, timezone
from urllib.parse import urlsplit

import pytest
from babel.messages.extract import extract_from_dir, extract_from_file
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from demo.seed import DEMO_ACCOUNTS, seed_hub
from edge.camera.pipeline import MAX_BYTES
from edge.db import open_db as open_node_db
from edge.state import NodeState
from hub.fleet import site
from hub.people import roster
from hub.schedule import zones
from protocol.pins import hash_pin

from .conftest import ROOT, free_port, wait_for
from .test_browser import _up, browser, serve, sign_in  # noqa: F401 - fixture
from .test_portal import app, arp, db_path, leases, records, text  # noqa: F401 - fixtures

PIPELINE = ROOT / "edge" / "camera" / "pipeline.py"
PORTAL_CATALOG = ROOT / "edge/portal/translations/zh_Hans_CN/LC_MESSAGES/messages.po"
CJK = re.compile(r"[\u4e00-\u9fff]")


# --- the photo pipeline's reasons, in the portal's catalogue --------------------------

def pipeline_messages() -> set[str]:
    """The sentences for people that the pipeline marks for translation."""
    return {message for _line, message, _comments, _context in extract_from_file(
        "python", PIPELINE)}


def test_every_refusal_of_the_pipeline_is_marked_and_translated():
    marked = pipeline_messages()
    assert len(marked) >= 4, marked  # not an image, incomplete, too many pixels, too large
    with open(PORTAL_CATALOG, "rb") as f:
        catalog = read_po(f, locale="zh_Hans_CN")
    for message in marked:
        entry = catalog.get(message)
        assert entry is not None and not entry.fuzzy, f"not in the portal catalogue: {message}"
        assert CJK.search(entry.string), f"not translated: {message}"
    # the portal's extraction (what `pybabel update` keeps) finds them too
    with open(ROOT / "babel.cfg") as f:
        method_map, options_map = parse_mapping_cfg(f)
    extracted = {m[2] for m in extract_from_dir(ROOT, method_map, options_map)}
    assert marked <= extracted


def jpeg(size=(400, 300)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 60, 30)).save(out, "JPEG")
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (no pixels behind it)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("name, body, status, chinese, english", [
    ("cat.jpg", lambda: b"#!/bin/sh\necho not a photo\n" * 50, 400,
     "该文件不是可以读取的照片（支持 JPEG、PNG、WebP、GIF 或 BMP）。", "not a photo"),
    ("cut.jpg", lambda: jpeg()[:900], 400, "照片不完整：文件在图像结束前就断了。请重新发送。",
     "incomplete"),
    ("huge.png", lambda: png_claiming(8000, 8000), 422,
     "照片像素过多（8000 × 8000），上限为 50 百万像素。", "too many pixels"),
    ("big.jpg", lambda: jpeg() + bytes(MAX_BYTES), 413, "文件过大（20.0 MB），上限为 20 MB。",
     "too large"),
], ids=["not-an-image", "incomplete", "too-many-pixels", "too-large"])
def test_the_report_page_gives_the_refusal_in_chinese(app, db_path, name, body, status,
                                                        chinese, english):
    phone = app.test_client()  # no ?lang: the portal's default, Chinese
    form = phone.get("/report").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    response = phone.post("/report", content_type="multipart/form-data", data={
        "csrf_token": token, "category": "hygiene", "staff_id": "D001", "pin": "2468",
        "photos": [(io.BytesIO(body()), name)]})
    page = text(response)
    assert response.status_code == status
    assert f"照片 {name} 未被接受：{chinese}" in page
    assert english not in page
    assert records(db_path, "report") == []


def test_a_phone_reads_the_refusal_in_chinese_in_chromium(browser, tmp_path):  # noqa: F811
    """A phone not bound yet reports with staff number and PIN, and its
    "photo" is a script named .jpg: the refusal is in Chinese."""
    node_db = tmp_path / "node.db"
    db = open_node_db(node_db)
    state = NodeState(db)
    state.put("roster", {"version": "1", "bindings": [], "staff": [
        {"staff_id": "D001", "name": "李医生", "department": "cardiology",
         "pin_hash": hash_pin("864297")}]})
    state.put("config", {"node": "n1", "zone": "hall-a", "zone_name": "第一报告厅",
                         "events": []})
    db.close()
    not_a_photo = tmp_path / "IMG_0001.jpg"
    not_a_photo.write_bytes(b"#!/bin/sh\necho not a photo\n" * 50)
    port = free_port()
    node_conf = tmp_path / "node.json"
    node_conf.write_text(json.dumps({
        "site": "t", "node": "n1", "db": str(node_db), "site_secret": "00" * 32, "mqtt": {},
        "portal": {"url": f"http://127.0.0.1:{port}/",
                   "leases_file": str(tmp_path / "dnsmasq.leases"),
                   "arp_file": str(tmp_path / "no-arp")}}))
    (tmp_path / "dnsmasq.leases").write_text("")
    log = open(tmp_path / "portal.log", "ab")
    portal, portal_url = serve("edge.portal:create_app()",
                               dict(os.environ, ROUNDS_EDGE_CONFIG=str(node_conf)), log, port)
    try:
        wait_for(lambda: _up(portal_url + "/healthz"), message="portal up")
        browser.set_window_size(390, 844)
        browser.get(portal_url + "/report")
        assert browser.execute_script("return document.documentElement.lang;") == "zh-CN"
        Select(browser.find_element(By.NAME, "category")).select_by_value("hygiene")
        browser.find_element(By.NAME, "photos").send_keys(str(not_a_photo))
        browser.find_element(By.NAME, "staff_id").send_keys("D001")
        browser.find_element(By.NAME, "pin").send_keys("864297")
        browser.find_element(By.CSS_SELECTOR, "form.checkin button[type=submit]").click()
        error = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "p.error"),
                         message="the refusal on the report page")[0].text
        assert error == ("照片 IMG_0001.jpg 未被接受：该文件不是可以读取的照片"
                         "（支持 JPEG、PNG、WebP、GIF 或 BMP）。")
        assert "not a photo" not in browser.page_source
    finally:
        portal.terminate()
        portal.wait(30)
        log.close()


# --- stored names, with their English names ------------------------------------------

def test_stored_names_keep_their_english_name_beside_them(hub_db):
    roster.add_department(hub_db, "nursing", "护理部", "Nursing")
    roster.add_department(hub_db, "pharmacy", "药剂科")
    zones.create_zone(hub_db, zones.check_zone(hub_db, {
        "zone": "ward-3e", "name": "内科三病区东区", "name_en": "Ward 3 East", "floor": "3"}))
    site.set_name(hub_db, "示范医院", "Demo Hospital")
    assert roster.department_names(hub_db) == {"nursing": "护理部", "pharmacy": "药剂科"}
    assert roster.department_names(hub_db, "en") == {"nursing": "Nursing",
                                                     "pharmacy": "药剂科"}  # none given
    assert (site.name(hub_db), site.name(hub_db, "en")) == ("示范医院", "Demo Hospital")
    # an edit that does not mention the English name (today's zone form) keeps it
    zones.update_zone(hub_db, zones.check_zone(hub_db, {"name": "内科三病区（东）",
                                                        "floor": "3"}, zone_id="ward-3e"))
    assert zones.zone_names(hub_db) == {"ward-3e": "内科三病区（东）"}
    assert zones.zone_names(hub_db, "en") == {"ward-3e": "Ward 3 East"}
    zones.update_zone(hub_db, zones.check_zone(hub_db, {"name": "内科三病区东区", "floor": "3",
                                                        "name_en": ""}, zone_id="ward-3e"))
    assert zones.zone_names(hub_db, "en") == {"ward-3e": "内科三病区东区"}
    with pytest.raises(zones.Invalid):
        zones.check_zone(hub_db, {"name": "x", "floor": "3", "name_en": "W" * 101},
                         zone_id="ward-3e")


# --- the demo hospital on the dashboard ------------------------------------------------

OFFICE = next((user, password) for user, role, _d, _s, password in DEMO_ACCOUNTS
              if role == "office")
# What the demo seeds in English would show through as these on a Chinese page.
ENGLISH_SEEDS = ("Hand hygiene", "Lecture hall A", "Ward 3 East", "Nursing",
                 "Environmental services", "Demo Hospital", "Spill by the lifts", "Li Wei")


@pytest.fixture(scope="module")
def demo_hub(tmp_path_factory):
    """The demo's seeded hub (demo/seed.py), its dashboard under gunicorn
    with the demo's site id; yields the dashboard's address."""
    directory = tmp_path_factory.mktemp("demo-hub")
    hub_db = directory / "hub.db"
    seed_hub(hub_db, datetime.now(timezone.utc), bytes(32))
    hub_conf = directory / "hub.json"
    hub_conf.write_text(json.dumps({"site": "demo", "db": str(hub_db), "mqtt": {},
                                    "web": {"secure_cookies": False}}))
    log = open(directory / "web.log", "ab")
    web, web_url = serve("hub.web:create_app()",
                         dict(os.environ, ROUNDS_HUB_CONFIG=str(hub_conf)), log)
    try:
        wait_for(lambda: _up(web_url + "/api/v1/health"), message="dashboard up")
        yield web_url
    finally:
        web.terminate()
        web.wait(30)
        log.close()


@pytest.fixture
def office(browser, demo_hub):  # noqa: F811
    """The demo's office account signed in (once), on a desktop-sized window,
    reading Chinese, on today's page; answers the dashboard's address."""
    browser.set_window_size(1280, 900)
    browser.get(demo_hub + "/lang/zh?next=/")
    if urlsplit(browser.current_url).path == "/login":
        sign_in(browser, *OFFICE)
    wait_for(lambda: urlsplit(browser.current_url).path == "/", timeout=15,
             message="today's page, signed in")
    return demo_hub


def switch_language(browser, lang: str) -> None:
    browser.find_element(By.CSS_SELECTOR, "header a.lang").click()
    wait_for(lambda: browser.execute_script("return document.documentElement.lang;") == lang,
             timeout=10, message=f"the page in {lang}")


def test_the_demo_hospital_reads_as_a_chinese_hospital(browser, office):  # noqa: F811
    check_chinese_pages(browser, office)
    # English: the departments' English names; what people typed (the
    # lecture's title) stays as typed
    browser.get(office + "/")
    switch_language(browser, "en")
    lecture = browser.find_element(By.XPATH, "//section[h2[contains(., '手卫生与感染控制')]]")
    assert {"Nursing", "Cardiology"} <= set(cells(lecture))
    assert "护理部" not in lecture.text
    assert "Lecture hall A" in lecture.text and "第一报告厅" not in lecture.text  # its zone


def test_the_page_title_names_the_site(browser, office):  # noqa: F811
    assert browser.title == "今日 · 示范医院"
    assert browser.find_element(By.CSS_SELECTOR, "header .site").text == "示范医院"
    browser.get(office + "/tickets/")
    assert browser.title == "工单 · 示范医院"
    switch_language(browser, "en")
    assert browser.title == "Tickets · Demo Hospital"


def page_text(browser) -> str:
    return browser.find_element(By.TAG_NAME, "body").text


def check_chinese_pages(browser, web_url: str) -> None:
    # today: the lecture and its hall are Chinese, and so are the departments
    # of the people it expects
    lecture = browser.find_element(By.XPATH, "//section[h2[contains(., '手卫生与感染控制')]]")
    assert "第一报告厅" in lecture.text
    assert {"护理部", "心内科"} <= set(cells(lecture))
    seen = page_text(browser)
    # the tickets: zones, departments and notes as a Chinese hospital types them
    browser.get(web_url + "/tickets/?f=1")
    board = cells(browser.find_element(By.CSS_SELECTOR, "main"))
    assert {"内科三病区东区", "门诊大厅", "保洁中心"} <= set(board), board
    assert any(note in board for note in ("电梯口地面有洒漏", "护士站旁垃圾桶已满溢出")), board
    seen += page_text(browser)
    # the recurring hotspot; the zones on their floors; the people
    browser.get(web_url + "/hotspots/")
    assert "内科三病区东区" in browser.find_element(By.ID, "recurring").text
    seen += page_text(browser)
    browser.get(web_url + "/zones/")
    assert "外科五病区西区" in page_text(browser) and "住院楼" in page_text(browser)
    seen += page_text(browser)
    browser.get(web_url + "/people/")
    assert "钱浩" in page_text(browser) and "保洁中心" in page_text(browser)
    seen += page_text(browser)
    assert [word for word in ENGLISH_SEEDS if word in seen] == []


def cells(element) -> list[str]:
    return [cell.text.strip() for cell in element.find_elements(By.CSS_SELECTOR, "td")]
