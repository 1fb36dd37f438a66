"""A clerk watches a lecture's attendance while it is on, in headless Chromium.

One minute into the lecture, those whose phones arrived before the start
(their presence intervals open, last refreshed before the start) must read as
in the room, not as "partial, 0 min"; the page leads with where people are
now (in the room / checked in, not seen / left / not arrived) and labels
present/partial/absent as the verdict so far. The dashboard is the real one
under gunicorn on a real hub database, records written as ingest writes them;
the page is read in Chinese, the hospital's default.
"""

import hashlib
import json
import os
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from hub.attendance.attendance import set_expected
from hub.db import open_db as open_hub_db
from hub.ingest.store import write_batch
from hub.people import accounts
from protocol.clock import iso
from protocol.records import validate

from .conftest import SITE, wait_for
from .test_browser import _up, assert_not_blank, chromium, serve, sign_in

OFFICE, PASSWORD = "civility-office", "office-pass-9753"
SHOTS = Path("/tmp/ux-shots")


def ts(minutes: float) -> str:
    """``minutes`` from now (the test's own now: the records are made as it runs)."""
    return iso(datetime.now(timezone.utc) + timedelta(minutes=minutes))


def device(staff_id: str) -> str:
    """A stand-in for the phone's MAC HMAC: 16 hex characters."""
    return hashlib.sha256(staff_id.encode()).hexdigest()[:16]


def checkin(staff_id: str, minute: float, method: str = "portal") -> dict:
    return {"id": str(uuid.uuid4()), "type": "checkin", "ts": ts(minute), "staff_id": staff_id,
            "event_id": "ev", "zone": "hall-a", "method": method,
            "device": device(staff_id) if method == "presence" else None}


def presence(staff_id: str, first: float, last: float, closed: bool) -> dict:
    return {"id": str(uuid.uuid4()), "type": "presence", "ts": ts(last),
            "device": device(staff_id), "staff_id": staff_id, "zone": "hall-a",
            "first_seen": ts(first), "last_seen": ts(last), "closed": closed}


def records() -> list[dict]:
    """Minute 0 is now; the lecture started a minute ago."""
    return [
        checkin("N1", -8), presence("N1", -10, -2, closed=False),  # came early, still here
        checkin("N2", -3, "presence"), presence("N2", -3, -1.5, closed=False),
        checkin("N3", -4), presence("N3", -5, -0.5, closed=True),  # walked out
        checkin("N4", -2),  # tapped in; the hall never saw the phone
        # N5 is expected and has not come.
        checkin("N6", -6), presence("N6", -6, -2, closed=False),  # a walk-in from pharmacy
    ]


STAFF = {"N1": "王芳", "N2": "刘洋", "N3": "赵磊", "N4": "陈静", "N5": "杨帆", "N6": "周杰"}


def seed(db_path: Path) -> None:
    db = open_hub_db(db_path)
    try:
        with db.conn:
            db["zones"].insert({"zone": "hall-a", "name": "教学楼报告厅", "floor": "2"})
            db["departments"].insert_all([{"department": "nursing", "name": "护理部"},
                                          {"department": "pharmacy", "name": "药剂科"}])
            db["staff"].insert_all([{"staff_id": sid, "name": name,
                                     "department": "pharmacy" if sid == "N6" else "nursing"}
                                    for sid, name in STAFF.items()])
            db["events"].insert({"id": "ev", "title": "手卫生与感染控制", "kind": "lecture",
                                 "zones": json.dumps(["hall-a"]), "start": ts(-1),
                                 "end": ts(59), "credit_hours": 1})
            accounts.create(db, OFFICE, "office", PASSWORD)
        set_expected(db, "ev", departments=["nursing"])
        write_batch(db, f"rounds/v1/{SITE}/node/hall-a-1/up/batch", "hall-a-1",
                    [validate(r) for r in records()], [])
    finally:
        db.close()


@pytest.fixture
def desk_browser():
    driver = chromium("1280,900", "--lang=zh-CN")
    yield driver
    driver.quit()


def test_one_minute_in_the_page_says_who_is_in_the_room_now(desk_browser, tmp_path,
                                                             hub_db_path):
    seed(hub_db_path)
    conf = tmp_path / "hub.json"
    conf.write_text(json.dumps({"site": SITE, "db": str(hub_db_path), "mqtt": {},
                                "web": {"secure_cookies": False}}))
    log = open(tmp_path / "web.log", "ab")
    web, url = serve("hub.web:create_app()", dict(os.environ, ROUNDS_HUB_CONFIG=str(conf)), log)
    try:
        wait_for(lambda: _up(url + "/api/v1/health"), message="dashboard up")
        desk_browser.get(url + "/events/ev")
        sign_in(desk_browser, OFFICE, PASSWORD)
        WebDriverWait(desk_browser, 20).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "table.attendance"))
        now_line = desk_browser.find_element(By.CSS_SELECTOR, ".counts.now").text
        rows = {row.find_element(By.CSS_SELECTOR, "td:nth-child(2)").text:
                [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
                for row in desk_browser.find_elements(By.CSS_SELECTOR,
                                                      "table.attendance tbody tr")}
        headers = [th.text for th in desk_browser.find_elements(
            By.CSS_SELECTOR, "table.attendance th")]
        SHOTS.mkdir(exist_ok=True)
        shot = SHOTS / "live-attendance-1280.png"
        assert desk_browser.save_screenshot(str(shot))
    finally:
        web.terminate()
        web.wait(30)
        log.close()

    assert_not_blank(shot)
    assert "3 在场内" in now_line and "1 已签到，未检测到" in now_line, now_line
    assert "1 已离开" in now_line and "1 未到" in now_line, now_line
    assert headers[3:5] == ["此刻", "截至目前"], headers
    # (name, staff no., department, now, so far, ...): those who came early are in the
    # room and present so far, with the minute they have been there.
    now_and_so_far = {sid: (cells[3], cells[4]) for sid, cells in rows.items()}
    assert now_and_so_far == {
        "N1": ("在场内", "在场"), "N2": ("在场内", "在场"), "N6": ("在场内", "在场"),
        "N4": ("已签到，未检测到", "部分在场"), "N3": ("已离开", "部分在场"),
        "N5": ("未到", "缺席")}, rows
    assert rows["N1"][8] == "1 分钟", rows["N1"]
    assert list(rows)[:3] == ["N1", "N6", "N2"]  # in the room first, by check-in time
    assert "不在应到名单中" in rows["N6"][-1]
    assert rows["N3"][-1] == ""  # "left", not yet "left 60 min early": the lecture is on
