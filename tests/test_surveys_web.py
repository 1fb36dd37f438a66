"""Satisfaction surveys on the hub dashboard (issue 14) through the real web
app on a real SQLite file: the task board, questionnaires and tasks made
through the forms (CSRF, audit log), a task's live results (totals, answers
as server-drawn SVG, free text escaped, the index per ward and department by
week), the exports, the API against its OpenAPI document, the roles, a
ward's department on the zone form, and the task page in Chinese in a real
headless Chromium."""

import csv
import io
import json
import os
import re
import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from selenium.webdriver.common.by import By

from hub import audit
from hub.db import open_db
from hub.ingest.store import write_batch
from hub.people import accounts
from hub.surveys import questionnaires, tasks
from protocol.clock import iso
from protocol.records import validate

from .conftest import wait_for
from .hubweb import PASSWORD, add_account, csrf_token, post_json, signed_in
from .test_browser import _up, chromium, serve, sign_in

NOW = datetime.now(timezone.utc)
SHANGHAI = ZoneInfo("Asia/Shanghai")
_TODAY = NOW.astimezone(SHANGHAI)
_MONDAY = (_TODAY - timedelta(days=_TODAY.weekday())).replace(hour=0, minute=0, second=0,
                                                               microsecond=0)


def this_week(share: float) -> datetime:
    """A moment of this hospital-time week, before now: ``share`` of the way from
    Monday 00:00 to now (so that the tests never straddle a week's end)."""
    return _MONDAY + (NOW - _MONDAY) * share


EVIL = "<script>window.xssed = 1</script>"
QUESTIONS = [
    {"id": "overall", "kind": "scale", "label": "总体满意度", "label_en": "Overall"},
    {"id": "liked", "kind": "multi", "label": "满意的方面", "label_en": "What went well",
     "required": False, "options": [{"id": "nurses", "label": "护士", "label_en": "Nurses"},
                                    {"id": "food", "label": "饮食", "label_en": "Food"}]},
    {"id": "comment", "kind": "text", "label": "意见建议", "label_en": "Suggestions"},
]


def respond(db, zone: str, overall: int, when: datetime, staff="S001", **answers):
    at = iso(when)
    record = validate({"id": str(uuid.uuid4()), "type": "survey_response", "ts": at,
                       "task_id": "dec-wards", "questionnaire": "inpatient", "version": 1,
                       "staff_id": staff, "zone": zone, "taken_at": at,
                       "answers": {"overall": overall, **answers}})
    write_batch(db, f"rounds/v1/test/node/{zone}-1/up/batch", f"{zone}-1", [record], [])


def task_draft(task_id="dec-wards", zones=("ward-3", "ward-4", "ward-9"), opens=-14, closes=7,
               **extra):
    return {"id": task_id, "title": "12月病区测评", "questionnaire": "inpatient",
            "version": None, "zones": list(zones), "target": 10,
            "opens_at": iso(NOW + timedelta(days=opens)),
            "closes_at": iso(NOW + timedelta(days=closes)), "surveyors": ["S001", "S002"],
            "alert": None, **extra}


def seed(db) -> None:
    """Cardiology's wards 3 and 4, ward 9 without a department; an open task
    on all three with five responses over two weeks, and an old closed task."""
    with db.conn:
        db["departments"].insert_all([
            {"department": "cardiology", "name": "心内科", "name_en": "Cardiology"},
            {"department": "surgery", "name": "外科", "name_en": "Surgery"}])
        db["zones"].insert_all([
            {"zone": "ward-3", "name": "内科三病区", "name_en": "Ward 3",
             "department": "cardiology"},
            {"zone": "ward-4", "name": "内科四病区", "name_en": "Ward 4",
             "department": "cardiology"},
            {"zone": "ward-9", "name": "外科九病区", "name_en": "Ward 9"}])
        db["staff"].insert_all([{"staff_id": s, "name": n, "department": "nursing",
                                 "role": "staff"} for s, n in (("S001", "Wang Fang"),
                                                               ("S002", "Li Na"))])
        questionnaires.save(db, "inpatient", "住院患者满意度", QUESTIONS, "office",
                            title_en="Inpatient satisfaction")
        tasks.save(db, task_draft(), "office")
        tasks.save(db, task_draft("old-wards", zones=("ward-9",), opens=-60, closes=-30),
                   "office")
    last_week = this_week(0.5) - timedelta(days=7)
    respond(db, "ward-3", 5, last_week, liked=["nurses"])
    respond(db, "ward-3", 2, last_week, comment="=cmd|' /C calc'!A0")
    respond(db, "ward-3", 4, this_week(0.5), liked=["nurses", "food"], comment=EVIL)
    respond(db, "ward-4", 1, this_week(0.6), staff="S002", comment="走廊太吵")
    respond(db, "ward-9", 5, this_week(0.7))


@pytest.fixture
def db(hub_db):
    seed(hub_db)
    return hub_db


@pytest.fixture
def office(hub_app, db):
    return signed_in(hub_app, db, "office", lang="en")


def text(response) -> str:
    return response.get_data(as_text=True)


def section(page: str, ident: str) -> str:
    match = re.search(rf'<section class="survey-part[^"]*" id="{ident}">(.*?)</section>', page,
                      re.S)
    assert match, ident
    return match.group(1)


def rows_of(db, action: str) -> list[tuple]:
    return [(e["who"], e["target"], e["detail"]) for e in audit.entries(db, action=action)]


# --- the board -------------------------------------------------------------------------


def test_the_board_lists_each_task_with_its_progress_and_index_open_ones_first(office):
    page = text(office.get("/surveys/"))

    assert page.index('id="task-dec-wards"') < page.index('id="task-old-wards"')
    row = re.search(r'<tr id="task-dec-wards".*?</tr>', page, re.S).group(0)
    assert "12月病区测评" in row and "Inpatient satisfaction" in row
    assert "Ward 3, Ward 4, Ward 9" in row
    assert '<strong class="count">5</strong> / 10' in row
    assert "width: 50%" in row  # the progress bar
    # scores 100, 25 (last week), 75, 0, 100: index 60.0
    assert "<strong>60.0</strong>" in row and ">Open<" in row
    assert "Not open" in re.search(r'<tr id="task-old-wards".*?</tr>', page, re.S).group(0)
    assert 'name="questionnaire"' in page  # the office's form to hand out a task


def test_a_reviewer_reads_only_the_tasks_touching_their_departments_wards(hub_app, db):
    reviewer = signed_in(hub_app, db, "dept_reviewer", department="cardiology", lang="en")
    page = text(reviewer.get("/surveys/"))
    assert 'id="task-dec-wards"' in page and 'id="task-old-wards"' not in page
    assert 'name="questionnaire"' not in page
    assert reviewer.get("/surveys/dec-wards").status_code == 200
    assert reviewer.get("/surveys/old-wards").status_code == 404
    assert reviewer.get("/surveys/old-wards/export.csv").status_code == 404
    assert [t["id"] for t in reviewer.get("/api/v1/surveys").get_json()] == ["dec-wards"]
    assert reviewer.get("/api/v1/surveys/old-wards").status_code == 404
    assert reviewer.get("/surveys/questionnaires/").status_code == 403
    assert reviewer.post("/surveys/", data={"csrf_token": reviewer.csrf}).status_code == 403


def test_staff_and_strangers_are_kept_out(hub_app, db):
    staff = signed_in(hub_app, db, "staff", staff_id="S001")
    for path in ("/surveys/", "/surveys/dec-wards", "/surveys/dec-wards/export.csv",
                 "/surveys/questionnaires/", "/api/v1/surveys", "/api/v1/questionnaires"):
        assert staff.get(path).status_code == 403, path
    nobody = hub_app.test_client()
    assert nobody.get("/surveys/").status_code == 302
    assert nobody.get("/api/v1/surveys/dec-wards").status_code == 401


# --- questionnaires and tasks through the forms ----------------------------------------------


def test_a_questionnaire_is_made_then_changed_into_a_second_version(office, db):
    fields = {"id": "outpatient", "title": "门诊满意度", "title_en": "Outpatients",
              "questions": json.dumps(QUESTIONS[:1], ensure_ascii=False)}
    refused = office.post("/surveys/questionnaires/", data=fields)  # no CSRF token
    assert refused.status_code == 400 and questionnaires.get(db, "outpatient") is None

    made = office.post("/surveys/questionnaires/", data={**fields, "csrf_token": office.csrf})
    assert made.status_code == 303
    assert made.headers["Location"] == "/surveys/questionnaires/outpatient"
    assert questionnaires.get(db, "outpatient")["version"] == 1

    changed = {**fields, "questions": json.dumps(QUESTIONS, ensure_ascii=False),
               "csrf_token": office.csrf}
    assert office.post("/surveys/questionnaires/outpatient", data=changed).status_code == 303
    assert office.post("/surveys/questionnaires/outpatient", data=changed).status_code == 303
    assert questionnaires.get(db, "outpatient")["version"] == 2  # the same again: no v3
    assert [(who, target, detail["version"]) for who, target, detail in
            rows_of(db, "questionnaire.save")] == [
        ("office-user", "questionnaire:outpatient", 2),
        ("office-user", "questionnaire:outpatient", 1)]

    page = text(office.get("/surveys/questionnaires/outpatient"))
    first = re.search(r'<details class="version" id="v1">.*?</details>', page, re.S).group(0)
    assert 'id="v2"' in page and "Overall" in first and "What went well" not in first
    listed = text(office.get("/surveys/questionnaires/"))
    assert "Outpatients" in listed and "v2" in listed
    again = office.post("/surveys/questionnaires/", data={**fields, "csrf_token": office.csrf})
    assert again.status_code == 400 and "already exists" in text(again)


@pytest.mark.parametrize("questions, reason", [
    ('[{"id": "overall", "kind": "scale",', "not valid JSON (line 1, column"),
    ('[{"id": "overall", "kind": "stars", "label": "x"}]',
     "Question overall: the kind must be one of scale, single, multi, text."),
    ('[{"id": "a", "kind": "single", "label": "x", "options": [{"id": "o", "label": "y"}]}]',
     "Question a needs 2 to 20 options."),
    ("[]", "A questionnaire has 1 to 50 questions."),
])
def test_bad_questions_are_refused_with_the_reason_and_kept_as_typed(office, db, questions,
                                                                     reason):
    response = office.post("/surveys/questionnaires/inpatient", data={
        "title": "住院患者满意度", "questions": questions, "csrf_token": office.csrf})
    assert response.status_code == 400
    page = text(response)
    assert reason in page
    assert questions.replace('"', "&#34;") in page  # as typed
    assert questionnaires.get(db, "inpatient")["version"] == 1
    assert rows_of(db, "questionnaire.save") == []


def test_the_reason_is_translated_with_its_values(hub_app, db):
    chinese = signed_in(hub_app, db, "office")
    response = chinese.post("/surveys/questionnaires/inpatient", data={
        "title": "住院患者满意度", "csrf_token": chinese.csrf,
        "questions": '[{"id": "a", "kind": "single", "label": "x", "options": []}]'})
    assert response.status_code == 400
    assert "问题 a 需要 2 至 20 个选项。" in text(response)


def task_form(**overrides) -> dict:
    return {"id": "jan-wards", "title": "1月病区测评", "questionnaire": "inpatient",
            "zones": ["ward-3", "ward-9"], "target": "40", "opens_at": "2027-01-04T08:00",
            "closes_at": "2027-01-15T18:00", "surveyors": "S001, S002",
            "alert_question": "overall", "alert_at_most": "2", "alert_category": "service",
            **overrides}


def test_a_task_is_handed_out_through_the_form(office, db):
    assert office.post("/surveys/", data=task_form()).status_code == 400  # no CSRF token
    response = office.post("/surveys/", data={**task_form(), "csrf_token": office.csrf})
    assert response.status_code == 303 and response.headers["Location"] == "/surveys/jan-wards"
    task = tasks.get(db, "jan-wards")
    assert (task["opens_at"], task["closes_at"]) == ("2027-01-04T00:00:00.000Z",
                                                     "2027-01-15T10:00:00.000Z")
    assert task["zones"] == ["ward-3", "ward-9"] and task["surveyors"] == ["S001", "S002"]
    assert task["target"] == 40 and task["version"] == 1
    assert task["alert"] == {"question": "overall", "at_most": 2, "category": "service"}
    [(who, target, detail)] = rows_of(db, "survey_task.create")
    assert (who, target, detail["zones"]) == ("office-user", "survey_task:jan-wards",
                                              ["ward-3", "ward-9"])


@pytest.mark.parametrize("overrides, reason", [
    ({"surveyors": "S001 X9"}, "Not on the roster: X9."),
    ({"id": "dec-wards"}, "A survey task dec-wards already exists."),
    ({"target": "many"}, "The target is a number of responses from 1 to 100000."),
    ({"closes_at": "2027-01-01T08:00"}, "The end must be after the start."),
    ({"zones": []}, "Choose at least one known ward."),
    ({"alert_question": "comment"}, "An alert names a 1-5 question"),
])
def test_a_wrong_task_is_refused_with_the_reason(office, db, overrides, reason):
    typed = task_form(**overrides)
    response = office.post("/surveys/", data={**typed, "csrf_token": office.csrf})
    assert response.status_code == 400
    assert reason in text(response)
    assert f'value="{typed["surveyors"]}"' in text(response)  # kept as typed
    assert tasks.get(db, "jan-wards") is None and rows_of(db, "survey_task.create") == []


# --- a task's results ----------------------------------------------------------------------


def test_the_task_page_shows_totals_answers_free_text_and_the_weekly_index(office):
    page = text(office.get("/surveys/dec-wards"))

    assert '<meta http-equiv="refresh" content="30">' in page  # open: live totals
    totals = section(page, "totals")
    assert '<span class="big count" id="response-count">5</span>' in totals
    assert '<span id="response-target">10</span>' in totals
    assert '<strong id="satisfaction-index">60.0</strong>' in totals
    by_ward = dict(re.findall(r"<tr><td>([^<]+)</td>\s*<td>[^<]*</td>\s*"
                              r'<td class="number">(\d+)</td>', totals))
    assert by_ward == {"Ward 3": "3", "Ward 4": "1", "Ward 9": "1"}

    questions = section(page, "questions")
    overall = re.search(r'id="q-overall">(.*?)</svg>', questions, re.S).group(1)
    assert re.findall(r'<rect class="bar"[^>]*data-count="(\d+)"', overall) == [
        "1", "1", "0", "1", "2"]
    assert "mean 3.4" in overall
    liked = re.search(r'id="q-liked">(.*?)</svg>', questions, re.S).group(1)
    assert re.findall(r'data-count="(\d+)"', liked) == ["2", "1"] and "Nurses" in liked
    texts = re.findall(r"<li>(.*?)</li>", re.search(r'<ul class="texts">(.*?)</ul>',
                                                    questions, re.S).group(1))
    assert texts[0] == "走廊太吵" and len(texts) == 3  # newest first
    assert "&lt;script&gt;window.xssed = 1&lt;/script&gt;" in texts
    assert EVIL not in page

    wards = section(page, "index-by-ward")
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="survey-trend"' in wards
    row = re.search(r"<tr><td>Ward 3</td>(.*?)</tr>", wards, re.S).group(1)
    assert re.findall(r"<strong>([\d.]+)</strong>", row) == ["62.5", "75.0"]
    departments = section(page, "index-by-department")
    row = re.search(r"<tr><td>Cardiology</td>(.*?)</tr>", departments, re.S).group(1)
    # last week ward 3 (50, 75); this week ward 3 (75) and ward 4 (0): 37.5
    assert re.findall(r"<strong>([\d.]+)</strong>", row) == ["62.5", "37.5"]
    assert "<tr><td>Ward 9</td>" in departments  # no department: its own line
    assert departments.count('class="series"') == 2


def test_a_closed_task_does_not_refresh_itself(office):
    page = text(office.get("/surveys/old-wards"))
    assert 'http-equiv="refresh"' not in page and "not open now" in page
    assert office.get("/surveys/no-such-task").status_code == 404


def test_the_exports_have_every_response_and_neutralise_formulas(office, db):
    response = office.get("/surveys/dec-wards/export.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert 'filename="survey-dec-wards-' in response.headers["Content-Disposition"]
    table = list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    assert table[0] == ["Taken at", "Ward", "Survey taker", "Version", "Overall (overall)",
                        "What went well (liked)", "Suggestions (comment)"]
    assert len(table) == 6 and sorted(r[1] for r in table[1:]) == [
        "ward-3", "ward-3", "ward-3", "ward-4", "ward-9"]
    assert ["'=cmd|' /C calc'!A0"] == [r[6] for r in table[1:] if "cmd" in r[6]]
    assert "nurses; food" in [r[5] for r in table[1:]]

    response = office.get("/surveys/dec-wards/export.xlsx")
    assert response.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(response.get_data()))
    sheet = book[book.sheetnames[0]]
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    assert len(cells) == 6 and isinstance(cells[1][0], datetime)
    [evil] = [row[6] for row in sheet.iter_rows(min_row=2) if "cmd" in str(row[6].value)]
    assert evil.value == "'=cmd|' /C calc'!A0" and evil.data_type == "s"
    assert ["csv", "xlsx"] == sorted(d["format"] for _w, _t, d in rows_of(db, "export.survey"))


# --- the API (each answer is checked against the OpenAPI document) ------------------------


def test_the_api_gives_tasks_results_and_questionnaires(office, db):
    listed = office.get("/api/v1/surveys").get_json()
    assert [(t["id"], t["count"], t["index"], t["open"]) for t in listed] == [
        ("dec-wards", 5, 60.0, True), ("old-wards", 0, None, False)]
    result = office.get("/api/v1/surveys/dec-wards").get_json()
    assert result["summary"]["by_zone"] == {"ward-3": 3, "ward-4": 1, "ward-9": 1}
    assert {(r["department"], r["index"]) for r in result["by_department"]} >= {
        ("cardiology", 37.5), ("cardiology", 62.5), ("ward-9", 100.0)}
    assert office.get("/api/v1/surveys/nope").status_code == 404

    assert [q["id"] for q in office.get("/api/v1/questionnaires").get_json()] == ["inpatient"]
    body = {"title": "住院患者满意度", "title_en": "Inpatient satisfaction",
            "questions": QUESTIONS[:2]}
    saved = post_json(office, "/api/v1/questionnaires/inpatient", body)
    assert saved.status_code == 201 and saved.get_json()["versions"] == [2, 1]
    assert post_json(office, "/api/v1/questionnaires/inpatient", body).status_code == 200
    first = office.get("/api/v1/questionnaires/inpatient?version=1").get_json()
    assert len(first["questions"]) == 3 and first["version"] == 1
    assert office.get("/api/v1/questionnaires/inpatient?version=3").status_code == 404
    bad = post_json(office, "/api/v1/questionnaires/inpatient", {**body, "questions": []})
    assert bad.status_code == 400 and "1 to 50 questions" in bad.get_json()["error"]
    no_csrf = office.post("/api/v1/questionnaires/inpatient", json=body)
    assert no_csrf.status_code == 400
    assert [d["via"] for _w, _t, d in rows_of(db, "questionnaire.save")] == ["api"]


def test_a_script_saves_a_questionnaire_with_its_token_and_no_csrf_token(hub_app, db):
    add_account(db, "survey-script", "office")
    with db.conn:
        token = accounts.issue_token(db, "survey-script", "questionnaires")
    response = hub_app.test_client().post(
        "/api/v1/questionnaires/outpatient", headers={"Authorization": f"Bearer {token}"},
        json={"title": "门诊满意度", "questions": QUESTIONS[:1]})
    assert response.status_code == 201 and response.get_json()["version"] == 1
    [(who, target, _detail)] = rows_of(db, "questionnaire.save")
    assert (who, target) == ("survey-script", "questionnaire:outpatient")


# --- a ward's department ------------------------------------------------------------------


def test_a_ward_is_given_its_department_on_the_zone_form(office, db):
    page = text(office.get("/zones/ward-9/edit"))
    assert '<option value="surgery">Surgery (surgery)</option>' in page
    fields = {"name": "外科九病区", "floor": "9", "department": "surgery",
              "csrf_token": csrf_token(office, "/zones/ward-9/edit")}
    assert office.post("/zones/ward-9/edit", data=fields).status_code == 303
    assert db["zones"].get("ward-9")["department"] == "surgery"
    assert '<option value="surgery" selected>' in text(office.get("/zones/ward-9/edit"))
    [zone] = [z for z in office.get("/api/v1/zones").get_json() if z["zone"] == "ward-9"]
    assert zone["department"] == "surgery"

    refused = office.post("/zones/ward-9/edit", data={**fields, "department": "nowhere"})
    assert refused.status_code == 400 and "Unknown department: nowhere." in text(refused)
    cleared = office.post("/zones/ward-9/edit", data={**fields, "department": ""})
    assert cleared.status_code == 303 and db["zones"].get("ward-9")["department"] is None


# --- in a real browser ----------------------------------------------------------------------


def test_the_office_watches_a_task_in_chinese_in_chromium(tmp_path):
    db_path = tmp_path / "hub" / "hub.db"
    db_path.parent.mkdir()
    db = open_db(db_path)
    try:
        seed(db)
        with db.conn:
            accounts.create(db, "civility-office", "office", PASSWORD)
    finally:
        db.close()
    config = tmp_path / "hub" / "hub.json"
    config.write_text(json.dumps({"site": "test", "db": str(db_path), "mqtt": {},
                                  "web": {"secure_cookies": False}}))
    log = open(tmp_path / "web.log", "ab")
    web, base = serve("hub.web:create_app()", dict(os.environ, ROUNDS_HUB_CONFIG=str(config)),
                      log)
    browser = chromium("1280,900")
    try:
        wait_for(lambda: _up(base + "/api/v1/health"), message="dashboard up")
        browser.get(base + "/surveys/dec-wards")
        sign_in(browser, "civility-office", PASSWORD)
        wait_for(lambda: browser.current_url.endswith("/surveys/dec-wards"), timeout=10,
                 message="the task page")
        assert browser.find_element(By.ID, "response-count").text == "5"
        assert browser.find_element(By.ID, "response-target").text == "10"
        assert browser.find_element(By.ID, "satisfaction-index").text == "60.0"
        page = browser.page_source
        assert '<html lang="zh-CN">' in page
        assert "满意度测评" in page and "各题作答分布" in page
        assert "内科三病区" in page and "心内科" in page
        assert len(browser.find_elements(By.CSS_SELECTOR, "svg.survey-bars rect.bar")) == 7
        assert browser.find_element(By.CSS_SELECTOR, "ul.texts").text.count("<script>") == 1
        assert browser.execute_script("return window.xssed === undefined")
        assert browser.save_screenshot(str(tmp_path / "survey-task.png"))
    finally:
        browser.quit()
        web.terminate()
        web.wait(30)
        log.close()
