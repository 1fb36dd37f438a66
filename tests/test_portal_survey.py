"""Satisfaction surveys on the portal: a survey taker signs in with staff
number + PIN, sees the open tasks assigned to them, and fills one response
per respondent; each response is one ``survey_response`` record in the
outbox (the hub may be unreachable), with nothing about the respondent.
Against a real SQLite node database; the last test in headless Chromium."""

import html
import json
import re
from datetime import timedelta

from selenium.webdriver.common.by import By

from edge.health import NodeClock
from edge.portal import create_app
from protocol.clock import iso
from protocol.records import validate

from .conftest import wait_for
from .test_portal import (  # noqa: F401 - fixtures
    NOW, PHONE_IP, PHONE_MAC, app, arp, client, db_path, device, leases, phone, portal_config,
    put_state, query, records,
)
from .test_portal_ux_browser import (  # noqa: F401 - fixtures
    HEIGHT, MEASURE, MIN_FONT, MIN_TARGET, PIN, STAFF_ID, WIDTH, browser, click, open_page,
    portal, screenshot,
)

FORM = {"id": "ward-care", "version": 3, "title": "住院患者满意度",
        "title_en": "Inpatient satisfaction", "questions": [
            {"id": "overall", "kind": "scale", "label": "总体满意度",
             "label_en": "Overall satisfaction", "required": True},
            {"id": "who", "kind": "single", "label": "您是", "label_en": "You are",
             "required": True, "options": [
                 {"id": "patient", "label": "患者", "label_en": "Patient"},
                 {"id": "family", "label": "家属", "label_en": None}]},
            {"id": "good", "kind": "multi", "label": "做得好的方面", "label_en": None,
             "required": False, "options": [
                 {"id": "clean", "label": "清洁", "label_en": "Clean"},
                 {"id": "quiet", "label": "安静", "label_en": "Quiet"},
                 {"id": "kind", "label": "态度", "label_en": "Kindness"}]},
            {"id": "note", "kind": "text", "label": "意见和建议", "label_en": "Suggestions",
             "required": False}]}
GOOD_ANSWERS = {"q-overall": "4", "q-who": "patient", "q-good": ["clean", "quiet"],
                "q-note": "  The night shift was very kind.  "}


def task(task_id="t1", opens=-1, closes=5, surveyors=("N002",), **extra) -> dict:
    """A task as the hub puts it in the node's config (window in hours from now);
    of test_portal's roster, N002 is assigned and D001 is not."""
    return {"id": task_id, "title": "三病区东区住院满意度", "target": 200,
            "opens_at": iso(NOW + timedelta(hours=opens)),
            "closes_at": iso(NOW + timedelta(hours=closes)),
            "surveyors": list(surveyors), "form": FORM, **extra}


def with_surveys(db_path, *tasks):
    put_state(db_path, "config", {"node": "n1", "zone": "ward-3e", "events": [],
                                  "surveys": list(tasks)})


def token(client, path="/survey"):
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def sign_in(client, staff_id="N002", pin="1357"):
    return client.post("/survey", data={"csrf_token": token(client), "staff_id": staff_id,
                                        "pin": pin})


def answer(client, task_id="t1", answers=None, csrf=True):
    data = dict(GOOD_ANSWERS if answers is None else answers)
    if csrf:
        data["csrf_token"] = token(client)
    return client.post(f"/survey/{task_id}", data=data)


def main(response) -> str:
    """The text of the page's <main> (without the survey pages' style block),
    unescaped, with whitespace runs made single spaces."""
    page = response.get_data(as_text=True)
    body = re.sub(r"<style>.*?</style>", "", page[page.index("<main>"):page.index("</main>")],
                  flags=re.S)
    body = re.sub(r"</?(?:a|span)\b[^>]*>", "", body)  # inline: no space
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


# --- signing in -------------------------------------------------------------------

def test_sign_in_is_refused_with_a_wrong_pin(client, db_path):
    with_surveys(db_path, task())
    response = sign_in(client, pin="0000")
    assert response.status_code == 401
    assert "Wrong PIN for staff number N002" in main(response)
    page = client.get("/survey")
    assert 'name="pin"' in page.get_data(as_text=True)  # still the sign-in form
    assert "/survey/t1" not in page.get_data(as_text=True)
    assert query(db_path, "SELECT staff_id FROM pin_failures") == [("N002",)]


def test_an_unassigned_staff_member_sees_no_task_and_may_not_post(client, db_path):
    with_surveys(db_path, task())
    assert sign_in(client, "D001", "2468").status_code == 303
    page = client.get("/survey")
    assert "You are not assigned to any survey task that is open here now" in main(page)
    assert "/survey/t1" not in page.get_data(as_text=True)
    assert client.get("/survey/t1").status_code == 403
    response = answer(client)
    assert response.status_code == 403
    assert "You are not assigned to this survey" in main(response)
    assert records(db_path) == []


def test_signing_out_ends_the_sign_in(client, db_path):
    with_surveys(db_path, task())
    sign_in(client)
    form_token = token(client, "/survey/t1")
    assert client.post("/survey-sign-out", data={"csrf_token": form_token}).status_code == 303
    assert 'name="pin"' in client.get("/survey").get_data(as_text=True)
    assert client.get("/survey/t1").status_code == 303  # back to the sign-in
    response = client.post("/survey/t1", data={**GOOD_ANSWERS, "csrf_token": form_token})
    assert response.status_code == 403 and "Please sign in again" in main(response)
    assert records(db_path) == []


class Clock(NodeClock):
    """A node clock the test moves on."""
    def __init__(self):
        self.now_ts = NOW.timestamp()

    def wall(self) -> float:
        return self.now_ts

    def synced(self) -> bool | None:
        return True


def test_a_sign_in_lasts_eight_hours(db_path, leases, arp):
    clock = Clock()
    app = create_app(portal_config(db_path, leases, arp, CLOCK=clock))
    with_surveys(db_path, task(closes=24))
    client = app.test_client()
    client.get("/?lang=en")
    sign_in(client)
    clock.now_ts += 8 * 3600 - 60
    assert "Your open survey tasks" in main(client.get("/survey"))
    clock.now_ts += 120
    assert 'name="pin"' in client.get("/survey").get_data(as_text=True)


# --- filling a response ---------------------------------------------------------------

def test_an_assigned_survey_taker_queues_one_anonymous_response(phone, db_path):
    """From a phone on the Wi-Fi: the record names the survey taker and the
    zone, never the device it was taken on nor anything of the respondent."""
    with_surveys(db_path, task())
    sign_in(phone)
    tasks_page = main(phone.get("/survey"))
    assert "三病区东区住院满意度" in tasks_page and "Inpatient satisfaction" in tasks_page
    assert "Today at this node: 0 responses (0 by you)." in tasks_page
    form = phone.get("/survey/t1")
    assert form.status_code == 200
    page = form.get_data(as_text=True)
    assert len(re.findall(r'type="radio" name="q-overall"', page)) == 5
    assert "Very dissatisfied" in page and "Very satisfied" in page
    assert len(re.findall(r'type="checkbox" name="q-good"', page)) == 3
    assert re.search(r'<textarea[^>]*name="q-note"[^>]*maxlength="500"', page)
    assert "做得好的方面" in page and "家属" in page  # no English label: the Chinese one

    response = answer(phone)
    assert response.status_code == 303
    assert response.headers["Location"] == "/survey/t1?lang=en"
    assert "Saved: 1 response today." in main(phone.get(response.headers["Location"]))

    [record] = records(db_path, "survey_response")
    assert validate(record)
    assert {k: record[k] for k in ("task_id", "questionnaire", "version", "staff_id",
                                   "zone")} == {"task_id": "t1", "questionnaire": "ward-care",
                                                "version": 3, "staff_id": "N002",
                                                "zone": "ward-3e"}
    assert record["answers"] == {"overall": 4, "who": ["patient"], "good": ["clean", "quiet"],
                                 "note": "The night shift was very kind."}
    assert set(record) - {"clock_synced", "boot", "mono"} == {
        "id", "type", "ts", "task_id", "questionnaire", "version", "staff_id", "zone",
        "answers", "taken_at"}
    body = json.dumps(record)
    assert device() not in body and PHONE_MAC not in body and PHONE_IP not in body
    assert records(db_path) == [record]  # nothing else queued (no binding, no check-in)

    answer(phone, answers={"q-overall": "2", "q-who": "family"})
    assert "Saved: 2 responses today." in main(phone.get("/survey/t1"))
    assert len(records(db_path, "survey_response")) == 2
    assert "Today at this node: 2 responses (2 by you)." in main(phone.get("/survey"))
    assert query(db_path, "SELECT task_id, staff_id, count FROM local_survey_counts") == [
        ("t1", "N002", 2)]


def test_a_missing_required_answer_shows_the_form_again(client, db_path):
    with_surveys(db_path, task())
    sign_in(client)
    response = answer(client, answers={"q-who": "family", "q-good": ["kind"],
                                       "q-note": "Noisy at night"})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Overall satisfaction: Please answer this question." in main(response)
    # What was answered is kept.
    assert re.search(r'name="q-who" value="family"[^>]* checked', page)
    assert re.search(r'name="q-good" value="kind"[^>]* checked', page)
    assert not re.search(r'name="q-good" value="clean"[^>]* checked', page)
    assert ">Noisy at night</textarea>" in page
    assert records(db_path) == []
    assert query(db_path, "SELECT count(*) FROM local_survey_counts") == [(0,)]


def test_answers_that_are_not_choices_or_too_long_are_refused(client, db_path):
    with_surveys(db_path, task())
    sign_in(client)
    response = answer(client, answers={"q-overall": "9", "q-who": ["patient", "family"],
                                       "q-good": ["clean", "aliens"], "q-note": "x" * 501})
    assert response.status_code == 400
    shown = main(response)
    assert "Overall satisfaction: Please choose again" in shown
    assert "You are: Please choose again" in shown
    assert "做得好的方面: Please choose again" in shown
    assert "Suggestions: This answer is too long (at most 500 characters)." in shown
    assert records(db_path) == []


def test_free_text_is_shown_escaped(client, db_path):
    with_surveys(db_path, task())
    sign_in(client)
    response = answer(client, answers={"q-note": "<script>alert('x')</script>"})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</textarea>" in page


def test_a_closed_or_unknown_task_is_404_with_the_reason(client, db_path):
    with_surveys(db_path, task("past", opens=-5, closes=-1), task("later", opens=2, closes=6))
    sign_in(client)
    assert "You are not assigned to any survey task" in main(client.get("/survey"))
    for task_id, reason in (("past", "This survey is closed"),
                            ("later", "This survey is not open yet"),
                            ("nope", "This node has no survey task nope.")):
        for response in (client.get(f"/survey/{task_id}"), answer(client, task_id)):
            assert response.status_code == 404, task_id
            assert reason in main(response), task_id
    assert records(db_path) == []


def test_posts_without_the_csrf_token_are_refused(client, db_path):
    with_surveys(db_path, task())
    response = client.post("/survey", data={"staff_id": "N002", "pin": "1357"})
    assert response.status_code == 400
    assert 'name="pin"' in client.get("/survey").get_data(as_text=True)  # not signed in
    sign_in(client)
    response = answer(client, csrf=False)
    assert response.status_code == 400 and "Please try again" in main(response)
    assert records(db_path) == []


def test_the_home_page_links_to_surveys_only_while_a_task_is_open(client, phone, db_path):
    def linked(c):
        return 'href="/survey?lang=en"' in c.get("/").get_data(as_text=True)

    assert not linked(client) and not linked(phone)  # no surveys in the config
    with_surveys(db_path, task(opens=-5, closes=-1))
    assert not linked(client) and not linked(phone)  # closed
    with_surveys(db_path, task(surveyors=()))
    assert linked(client) and linked(phone)          # open (who may fill it: on /survey)
    assert "Satisfaction survey" in main(client.get("/"))


def test_the_pages_are_in_chinese_by_default(app, db_path):
    with_surveys(db_path, task())
    client = app.test_client()
    assert "满意度测评" in main(client.get("/"))
    sign_in(client)
    assert "您进行中的测评任务" in main(client.get("/survey"))
    page = main(client.get("/survey/t1"))
    assert "总体满意度" in page and "非常不满意" in page and "非常满意" in page
    assert "保存本份答卷" in page


# --- in a real browser ------------------------------------------------------------------

BROWSER_TASK = {**task(surveyors=(STAFF_ID,)), "id": "ward-3e-june"}
TAP_TARGETS = "label.choice, textarea, input[name=staff_id], input[name=pin], button, a.button"


def tap(browser, xpath: str) -> None:
    browser.find_element(By.XPATH, xpath).click()


def fill_in_chinese(browser, overall: str, who: str, good: list[str], note: str) -> None:
    tap(browser, f"//label[input[@name='q-overall' and @value='{overall}']]")
    tap(browser, f"//label[input[@name='q-who' and @value='{who}']]")
    for option in good:
        tap(browser, f"//label[input[@name='q-good' and @value='{option}']]")
    browser.find_element(By.NAME, "q-note").send_keys(note)
    tap(browser, "//form[contains(@action, '/survey/')]/button[.='保存本份答卷']")


def saved_message(browser) -> str:
    """The "saved" line, read in one step (the page may be navigating away)."""
    return browser.execute_script(
        "const ok = document.querySelector('p.ok'); return ok ? ok.innerText : '';") or ""


def too_small(browser, page: str, tmp_path) -> list[str]:
    screenshot(browser, tmp_path, page)
    return [f"{page}: {c['what']} is {c['height']:.1f}px high, {c['font']:.1f}px type"
            for c in browser.execute_script(MEASURE, TAP_TARGETS)
            if c["height"] < MIN_TARGET or c["font"] < MIN_FONT]


def test_a_survey_taker_fills_two_responses_in_chinese_in_the_browser(browser, portal,
                                                                      tmp_path):
    portal.as_unknown_device()  # a tablet the node cannot name: no binding needed
    portal.put_state("config", {"node": "n1", "zone": "ward-3e", "zone_name": "三病区东区",
                                "events": [], "surveys": [BROWSER_TASK]})
    open_page(browser, portal.url + "/")
    click(browser, By.XPATH, "//a[.='满意度测评']", "/survey")
    small = too_small(browser, "survey-sign-in", tmp_path)
    browser.find_element(By.NAME, "staff_id").send_keys(STAFF_ID)
    browser.find_element(By.NAME, "pin").send_keys(PIN)
    tap(browser, "//form[@action='/survey?lang=zh']/button[.='登录']")
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "ol.tasks a"), timeout=15,
             message="the task list")
    click(browser, By.XPATH, "//ol[@class='tasks']//a[.='三病区东区住院满意度']",
          "/survey/ward-3e-june")
    assert [WIDTH, HEIGHT] == browser.execute_script("return [innerWidth, innerHeight]")
    small += too_small(browser, "survey-form", tmp_path)

    fill_in_chinese(browser, "5", "patient", ["clean", "kind"], "护士很耐心")
    wait_for(lambda: "已保存：今天共 1 份答卷" in saved_message(browser), timeout=15,
             message="first response saved")
    assert browser.find_elements(By.CSS_SELECTOR, "input:checked") == []  # empty again
    fill_in_chinese(browser, "3", "family", [], "晚上有点吵")
    wait_for(lambda: "已保存：今天共 2 份答卷" in saved_message(browser), timeout=15,
             message="second response saved")
    screenshot(browser, tmp_path, "survey-saved")

    responses = portal.records("survey_response")
    assert [(r["task_id"], r["staff_id"], r["zone"], r["answers"]) for r in responses] == [
        ("ward-3e-june", STAFF_ID, "ward-3e",
         {"overall": 5, "who": ["patient"], "good": ["clean", "kind"], "note": "护士很耐心"}),
        ("ward-3e-june", STAFF_ID, "ward-3e",
         {"overall": 3, "who": ["family"], "note": "晚上有点吵"})]
    assert all(validate(r) for r in responses)
    assert not small, "\n".join(small)
