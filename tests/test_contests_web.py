"""Live scoring on the dashboard (issue 14): the office sets up a contest and
runs its acts from the presenter page, the big screen and its JSON show the
running ranking and the final one, exports, roles; and, in headless Chromium,
a score that reaches the hub shows on the screen without a reload."""

import csv
import io
import json
import os
import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from openpyxl import load_workbook
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from hub import audit
from hub.contests import acts
from hub.people import accounts
from hub.ingest.store import write_batch
from protocol.clock import iso
from protocol.records import validate

from .conftest import hub_db_settings
from .hubweb import signed_in
from .support import wait_for
from .test_browser import _up, chromium, serve, sign_in

NOW = datetime.now(timezone.utc)


@pytest.fixture
def db(hub_db):
    with hub_db.conn:
        hub_db["staff"].insert_all([{"staff_id": s, "name": s, "department": "nursing",
                                     "role": "staff"} for s in ("J1", "J2", "J3", "A1", "A2")])
        hub_db["events"].insert({"id": "speech", "title": "健康科普演讲比赛", "kind": "contest",
                                 "zones": '["hall-a"]', "start": iso(NOW - timedelta(hours=1)),
                                 "end": iso(NOW + timedelta(hours=1))})
        hub_db["checkins"].insert_all([
            {"id": str(uuid.uuid4()), "node": "hall-a-1", "ts": iso(NOW), "clock_synced": 1,
             "received_at": iso(NOW), "staff_id": s, "event_id": "speech", "zone": "hall-a",
             "method": "portal", "device": None} for s in ("A1", "A2")])
    return hub_db


@pytest.fixture
def office(hub_app, db):
    return signed_in(hub_app, db, "office", lang="en")


def token(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def set_up(office):
    page = office.get("/events/speech/contest").get_data(as_text=True)
    return office.post("/events/speech/contest", data={
        "csrf_token": token(page), "scale_min": "1", "scale_max": "10", "drop_extremes": "on",
        "judge_weight": "0.5", "judges": "J1, J2 J3",
        "acts": "a1 | 洗手的学问 | 护理部\na2 | 合理用药 | 药剂科\n"})


def score(db, staff, act, value):
    at = iso(datetime.now(timezone.utc))
    record = validate({"id": str(uuid.uuid4()), "type": "score", "ts": at,
                       "event_id": "speech", "act": act, "staff_id": staff, "value": value,
                       "taken_at": at})
    with db.atomic():
        write_batch(db, "rounds/v1/test/node/hall-a-1/up/batch", "hall-a-1", [record], [])


def step(office, act, what, **form):
    page = office.get("/events/speech/contest").get_data(as_text=True)
    return office.post(f"/events/speech/contest/{act}/{what}",
                       data={"csrf_token": token(page), **form})


def test_the_office_sets_up_and_runs_the_acts_and_the_screen_follows(office, db):
    assert set_up(office).status_code == 303
    contest = acts.contest(db, "speech")
    assert [a["act"] for a in contest["acts"]] == ["a1", "a2"]
    assert contest["judges"] == ["J1", "J2", "J3"]
    assert step(office, "a1", "open", seconds="60").status_code == 303
    for staff, value in (("J1", 9), ("J2", 7), ("J3", 2), ("A1", 6), ("A2", 8)):
        score(db, staff, "a1", value)
    body = office.get("/api/v1/events/speech/contest").get_json()
    assert body["current"]["act"] == "a1" and 55 <= body["current"]["seconds_left"] <= 60
    [a1] = [r for r in body["rows"] if r["act"] == "a1"]
    assert (a1["judge_mean"], a1["audience_mean"], a1["total"], a1["rank"]) == (7, 7, 7, 1)
    screen = office.get("/events/speech/screen").get_data(as_text=True)
    assert "洗手的学问" in screen and "screen.js" in screen
    step(office, "a1", "close")
    assert office.get("/api/v1/events/speech/contest").get_json()["current"] is None
    actions = [e["action"] for e in audit.entries(db)]
    assert {"contest.setup", "contest.open", "contest.close"} <= set(actions)


def test_a_wrong_set_up_is_refused_with_the_reason(office, db):
    page = office.get("/events/speech/contest").get_data(as_text=True)
    response = office.post("/events/speech/contest", data={
        "csrf_token": token(page), "scale_min": "1", "scale_max": "10", "judge_weight": "0.5",
        "judges": "NOBODY", "acts": "a1 | t"}, follow_redirects=True)
    assert "Unknown judge: NOBODY" in response.get_data(as_text=True)
    assert acts.contest(db, "speech") is None
    assert office.post("/events/speech/contest", data={"acts": "a1 | t"}).status_code == 400


def test_exports_have_the_ranking_and_the_judges(office, db):
    set_up(office)
    step(office, "a1", "open", seconds="60")
    for staff, value in (("J1", 9), ("J2", 7), ("J3", 2), ("A1", 6)):
        score(db, staff, "a1", value)
    rows = list(csv.reader(io.StringIO(
        office.get("/events/speech/contest/export.csv").get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][:3] == ["rank", "act", "title"] and rows[1][1] == "a1"
    book = load_workbook(io.BytesIO(office.get("/events/speech/contest/export.xlsx").data))
    judges = [[c.value for c in row] for row in book["Judges"].iter_rows(min_row=2)]
    assert sorted((j[2], j[4]) for j in judges) == [("J1", True), ("J2", False), ("J3", True)]


def test_roles(hub_app, db):
    staff = signed_in(hub_app, db, "staff", staff_id="A1")
    assert staff.get("/events/speech/contest").status_code in (302, 403)
    set_up(signed_in(hub_app, db, "office", username="office2"))
    assert staff.get("/events/speech/screen").status_code == 200  # the hall's PC
    assert hub_app.test_client().get("/api/v1/events/speech/contest").status_code == 401
    assert staff.get("/api/v1/events/nope/contest").status_code == 404


def test_a_score_reaches_the_big_screen_without_a_reload(hub_app, db, tmp_path, hub_location):
    """Headless Chromium on the screen page (under gunicorn, as in the hall); a
    score is ingested; the page's own polling shows it, no reload."""
    set_up(signed_in(hub_app, db, "office"))
    step(signed_in(hub_app, db, "office", username="presenter"), "a1", "open", seconds="300")
    with db.conn:
        accounts.create(db, "hall-screen", "staff", "hall-screen-pass-2468", staff_id="A2")
    conf = tmp_path / "hub.json"
    conf.write_text(json.dumps({"site": "test", **hub_db_settings(hub_location, tmp_path),
                                "mqtt": {}, "web": {"secure_cookies": False}}))
    log = open(tmp_path / "web.log", "ab")
    web, url = serve("hub.web:create_app()", dict(os.environ, ROUNDS_HUB_CONFIG=str(conf)), log)
    browser = chromium("1280,720", "--lang=zh-CN")
    try:
        wait_for(lambda: _up(url + "/api/v1/health"), message="dashboard up")
        browser.get(url + "/events/speech/screen")
        sign_in(browser, "hall-screen", "hall-screen-pass-2468")
        WebDriverWait(browser, 20).until(lambda d: d.find_elements(By.ID, "scores-in"))
        assert browser.find_element(By.ID, "scores-in").text == "0"
        assert "洗手的学问" in browser.find_element(By.ID, "act-title").text
        score(db, "A1", "a1", 8)
        WebDriverWait(browser, 15).until(
            lambda d: d.find_element(By.ID, "scores-in").text == "1")
        assert "8" in browser.find_element(By.ID, "rows").text
        assert browser.current_url.endswith("/events/speech/screen")
    finally:
        browser.quit()
        web.terminate()
        web.wait(30)
        log.close()


def test_the_event_page_links_a_contest_to_its_presenter_page(office, db):
    html = office.get("/events/speech").get_data(as_text=True)
    assert 'href="/events/speech/contest"' in html and 'href="/events/speech/screen"' in html
