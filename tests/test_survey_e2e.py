"""Survey task end to end (issue 14): the civility office creates a
questionnaire and a task at the hub; the ward's node receives them in its
retained config over a real Mosquitto; with the broker down, a survey taker
signs in on the node's portal in headless Chromium and fills 20 responses,
which wait in the node's outbox; the broker comes back and the hub's totals
equal what was entered, each response stored once. Then the node sends all
20 again (its acks lost, as after a power cut before they were written) and
the hub still has each once."""

import json
import os
import sqlite3
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from selenium.webdriver.common.by import By

from edge.db import open_db as open_node_db
from edge.outbox import Outbox
from hub.db import open_db as open_hub_db
from hub.surveys import questionnaires, results, tasks
from protocol.clock import iso
from protocol.pins import hash_pin

from .conftest import SITE, running_ingest, running_sync, wait_for
from .test_browser import _up, browser, serve  # noqa: F401 - fixture

SECRET = "44" * 32
STAFF, PIN, TASK = "N002", "1357", "ward-3e-june"
QUESTIONS = [
    {"id": "overall", "kind": "scale", "label": "总体满意度", "label_en": "Overall"},
    {"id": "clean", "kind": "scale", "label": "病房清洁", "label_en": "Cleanliness"},
    {"id": "who", "kind": "single", "label": "您是", "label_en": "You are", "options": [
        {"id": "patient", "label": "患者"}, {"id": "family", "label": "家属"}]},
    {"id": "good", "kind": "multi", "label": "做得好的方面", "required": False, "options": [
        {"id": "quiet", "label": "安静"}, {"id": "kind", "label": "态度"},
        {"id": "fast", "label": "及时"}]},
    {"id": "note", "kind": "text", "label": "意见和建议", "required": False}]


def answers(n: int) -> dict:
    """Respondent ``n``'s answers (0-19): every score, option and blank used."""
    return {"overall": 1 + n % 5, "clean": (5, 4, 4, 3, 5, 2, 4)[n % 7],
            "who": "family" if n % 3 == 0 else "patient",
            "good": [o for i, o in enumerate(("quiet", "kind", "fast")) if (n >> i) & 1],
            "note": f"第{n}位：夜班护士很耐心" if n % 4 == 0 else ""}


ENTERED = [answers(n) for n in range(20)]


def as_recorded(given: dict) -> dict:
    """The record's answers: a single choice as a one-item list, blanks left out."""
    return {k: [v] if k == "who" else v for k, v in given.items() if v not in ("", [])}


def seed_hub(path):
    now = datetime.now(timezone.utc)
    db = open_hub_db(path)
    with db.atomic():
        db["zones"].insert({"zone": "ward-3e", "name": "Ward 3 East",
                            "department": "internal-medicine"})
        db["nodes"].insert({"node": "n1", "zone": "ward-3e"})
        db["staff"].insert({"staff_id": STAFF, "name": "Nurse Wang", "department": "nursing",
                            "pin_hash": hash_pin(PIN)})
        version = questionnaires.save(db, "ward-care", "住院患者满意度", QUESTIONS, "office",
                                      title_en="Inpatient satisfaction")
        task = tasks.save(db, {"id": TASK, "title": "三病区东区六月测评",
                               "questionnaire": "ward-care", "version": version,
                               "zones": ["ward-3e"], "target": 30,
                               "opens_at": iso(now - timedelta(hours=1)),
                               "closes_at": iso(now + timedelta(hours=5)),
                               "surveyors": [STAFF]}, "office")
    return db, task


def node_kv(node_db_path, key) -> dict:
    row = sqlite3.connect(node_db_path).execute(
        "SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
    return json.loads(row[0]) if row else {}


def queued(node_db_path) -> list[tuple]:
    return sqlite3.connect(node_db_path).execute(
        "SELECT id, body FROM outbox WHERE type = 'survey_response' ORDER BY seq").fetchall()


def at_hub(hub_db_path) -> tuple[int, int]:
    return sqlite3.connect(hub_db_path).execute(
        "SELECT count(*), count(DISTINCT id) FROM survey_responses").fetchone()


def fill(browser, n, given):
    """One respondent's form, tapped as a survey taker does; waits for the save."""
    for question in ("overall", "clean", "who"):
        browser.find_element(By.XPATH, f"//label[input[@name='q-{question}' and "
                                       f"@value='{given[question]}']]").click()
    for option in given["good"]:
        browser.find_element(By.XPATH, f"//label[input[@name='q-good' and "
                                       f"@value='{option}']]").click()
    if given["note"]:
        browser.find_element(By.NAME, "q-note").send_keys(given["note"])
    browser.find_element(By.CSS_SELECTOR, "form.survey button[type=submit]").click()
    wait_for(lambda: f"Saved: {n} response" in browser.execute_script(
        "const ok = document.querySelector('p.ok'); return ok ? ok.innerText : '';"),
        timeout=15, message=f"response {n} saved")


def test_twenty_responses_taken_offline_reach_the_hub_exactly_once(
        browser, broker, tmp_path, hub_db_path, node_db_path):  # noqa: F811
    hub, task = seed_hub(hub_db_path)
    open_node_db(node_db_path).close()
    leases = tmp_path / "dnsmasq.leases"
    leases.write_text("")  # a tablet the node cannot name: survey takers need no binding
    config = tmp_path / "node.json"
    config.write_text(json.dumps({
        "site": SITE, "node": "n1", "zone": "ward-3e", "db": str(node_db_path),
        "site_secret": SECRET, "mqtt": {}, "portal": {"leases_file": str(leases)}}))
    log = open(tmp_path / "portal.log", "ab")
    with running_ingest(broker, hub_db_path, downlink_interval=0.5), \
            running_sync(broker, node_db_path):
        wait_for(lambda: any(t["id"] == TASK for t in node_kv(node_db_path, "config")
                             .get("surveys", [])), message="the task in the node's config")
        wait_for(lambda: STAFF in str(node_kv(node_db_path, "roster")), message="the roster")
        portal, url = serve("edge.portal:create_app()",
                            dict(os.environ, ROUNDS_EDGE_CONFIG=str(config)), log)
        try:
            wait_for(lambda: _up(url + "/healthz"), message="portal up")
            broker.stop()  # the hub is unreachable from here on

            browser.get(url + "/survey?lang=en")
            browser.find_element(By.NAME, "staff_id").send_keys(STAFF)
            browser.find_element(By.NAME, "pin").send_keys(PIN)
            browser.find_element(By.CSS_SELECTOR, "form.checkin button[type=submit]").click()
            wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "ol.tasks a"),
                     timeout=15, message="the task list")
            browser.find_element(By.CSS_SELECTOR, f"ol.tasks a[href^='/survey/{TASK}']").click()
            wait_for(lambda: browser.find_elements(By.NAME, "q-overall"), timeout=15,
                     message="the questionnaire")
            for n, given in enumerate(ENTERED, 1):
                fill(browser, n, given)
        finally:
            portal.terminate()
            portal.wait(10)

        # All 20 wait in the node's outbox, as entered; none is at the hub.
        waiting = queued(node_db_path)
        assert [json.loads(body)["answers"] for _, body in waiting] == [
            as_recorded(a) for a in ENTERED]
        assert all(json.loads(body)["staff_id"] == STAFF for _, body in waiting)
        assert at_hub(hub_db_path) == (0, 0)

        broker.start()  # back on the same port: the node catches up
        wait_for(lambda: at_hub(hub_db_path)[0] >= 20, timeout=90, message="20 at the hub")
        wait_for(lambda: Outbox(node_db_path).backlog() == 0, message="the outbox drained")
        assert at_hub(hub_db_path) == (20, 20)

        # The acks are lost: the node sends the same 20 records again.
        again = Outbox(node_db_path)
        again.append_many([json.loads(body) for _, body in waiting])
        wait_for(lambda: again.backlog() == 0, timeout=60, message="the resend acked")
        again.close()

    assert at_hub(hub_db_path) == (20, 20)
    ids = {r for (r,) in sqlite3.connect(hub_db_path).execute(
        "SELECT id FROM survey_responses")}
    assert ids == {rid for rid, _ in waiting}
    assert sqlite3.connect(hub_db_path).execute(
        "SELECT count(*) FROM quarantine").fetchone() == (0,)

    # The hub's totals are what the survey taker entered, worked out by hand.
    totals = results.summary(hub, task, ZoneInfo("Asia/Shanghai"), datetime.now(timezone.utc))
    hub.close()
    assert (totals["count"], totals["target"], totals["open"]) == (20, 30, True)
    assert totals["by_zone"] == {"ward-3e": 20} and totals["by_surveyor"] == {STAFF: 20}
    shown = {q["id"]: q for q in totals["questions"]}
    for scale in ("overall", "clean"):
        assert shown[scale]["counts"] == {v: sum(a[scale] == v for a in ENTERED)
                                          for v in range(1, 6)}
    assert shown["overall"]["counts"] == {1: 4, 2: 4, 3: 4, 4: 4, 5: 4}
    assert shown["who"]["counts"] == {"patient": 13, "family": 7}
    assert shown["good"]["counts"] == {o: sum(o in a["good"] for a in ENTERED)
                                       for o in ("quiet", "kind", "fast")}
    assert sorted(shown["note"]["texts"]) == sorted(a["note"] for a in ENTERED if a["note"])
    # Index: each response's 1-5 answers mapped to 0-100 (1 -> 0, 5 -> 100), averaged.
    scores = [((a["overall"] - 1) * 25 + (a["clean"] - 1) * 25) / 2 for a in ENTERED]
    assert totals["index"] == round(sum(scores) / len(scores), 1)
    assert {(w["zone"], w["department"]) for w in totals["weekly"]} == {
        ("ward-3e", "internal-medicine")}
    assert sum(w["count"] for w in totals["weekly"]) == 20  # two weeks across Sunday night
