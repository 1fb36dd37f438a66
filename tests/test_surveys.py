"""Surveys on the hub (issue 14): questionnaires versioned, tasks checked, the
responses nodes send stored exactly once (bad ones quarantined), a low score
opening a routed ticket that earns nobody hours, the totals, the satisfaction
index per ward and department by week, the export rows, and the node config
carrying the open tasks with their questionnaires."""

import json
import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from hub.ingest import downlink
from hub.ingest.store import write_batch
from hub.surveys import questionnaires, results, tasks
from hub.surveys.questionnaires import QuestionnaireError
from hub.tickets import hours, tickets
from protocol.clock import iso
from protocol.records import validate

T0 = datetime(2026, 12, 7, 2, 0, tzinfo=timezone.utc)  # Monday 10:00 in Shanghai
TZ = ZoneInfo("Asia/Shanghai")
QUESTIONS = [
    {"id": "overall", "kind": "scale", "label": "总体满意度", "label_en": "Overall"},
    {"id": "nursing", "kind": "scale", "label": "护理服务", "required": False},
    {"id": "liked", "kind": "multi", "label": "满意的方面", "required": False,
     "options": [{"id": "nurses", "label": "护士"}, {"id": "food", "label": "饮食"},
                 {"id": "quiet", "label": "安静"}]},
    {"id": "comment", "kind": "text", "label": "意见建议"},
]


@pytest.fixture
def db(hub_db):
    database = hub_db  # closed by hub_db
    with database.conn:
        database["departments"].insert_all([{"department": "cardiology", "name": "心内科"}])
        database["zones"].insert_all([
            {"zone": "ward-3", "name": "内科三病区", "department": "cardiology"},
            {"zone": "ward-4", "name": "内科四病区", "department": "cardiology"},
            {"zone": "ward-9", "name": "外科九病区"}])
        database["staff"].insert_all([{"staff_id": s, "name": s, "department": "nursing",
                                       "role": "staff"} for s in ("S001", "S002")])
        questionnaires.save(database, "inpatient", "住院患者满意度", QUESTIONS, "office",
                            now=T0)
        tasks.save(database, {"id": "dec-wards", "title": "12月病区测评",
                              "questionnaire": "inpatient", "version": None,
                              "zones": ["ward-3", "ward-4", "ward-9"], "target": 10,
                              "opens_at": iso(T0), "closes_at": iso(T0 + timedelta(days=14)),
                              "surveyors": ["S001", "S002"],
                              "alert": {"question": "overall", "at_most": 2,
                                        "category": "service"}}, "office", now=T0)
    yield database


def response(zone="ward-3", staff="S001", minutes=0, version=1, **answers):
    at = iso(T0 + timedelta(minutes=minutes))
    return validate({"id": str(uuid.uuid4()), "type": "survey_response", "ts": at,
                     "task_id": "dec-wards", "questionnaire": "inpatient", "version": version,
                     "staff_id": staff, "zone": zone, "taken_at": at,
                     "answers": answers or {"overall": 5}})


def ingest(db, *records, bad=()):
    with db.atomic():
        acked = write_batch(db, "rounds/v1/test/node/ward-3-1/up/batch", "ward-3-1",
                            list(records), list(bad))
        tickets.materialize(db, now=T0 + timedelta(hours=1))
    return acked


def test_a_changed_questionnaire_is_a_new_version_an_unchanged_one_is_not(db):
    assert questionnaires.save(db, "inpatient", "住院患者满意度", QUESTIONS, "office") == 1
    changed = QUESTIONS + [{"id": "clean", "kind": "scale", "label": "病房整洁"}]
    assert questionnaires.save(db, "inpatient", "住院患者满意度", changed, "office") == 2
    assert [q["id"] for q in questionnaires.get(db, "inpatient", 1)["questions"]] == [
        "overall", "nursing", "liked", "comment"]
    assert questionnaires.get(db, "inpatient")["version"] == 2
    assert [q["id"] for q in questionnaires.latest_all(db)] == ["inpatient"]


@pytest.mark.parametrize("questions, reason", [
    ([], "1 to 50 questions"),
    ([{"id": "Bad Id", "kind": "scale", "label": "x"}], "needs an id"),
    ([{"id": "a", "kind": "scale", "label": "x"}, {"id": "a", "kind": "text", "label": "y"}],
     "Two questions have the id a"),
    ([{"id": "a", "kind": "stars", "label": "x"}], "kind must be one of"),
    ([{"id": "a", "kind": "single", "label": "x", "options": [{"id": "o", "label": "o"}]}],
     "2 to 20 options"),
    ([{"id": "a", "kind": "scale", "label": ""}], "needs a label"),
])
def test_a_wrong_questionnaire_is_refused_with_the_reason(db, questions, reason):
    with pytest.raises(QuestionnaireError, match=reason):
        questionnaires.save(db, "q2", "Title", questions, "office")


@pytest.mark.parametrize("change, reason", [
    ({"zones": ["ward-77"]}, "known ward"), ({"target": 0}, "target"),
    ({"surveyors": ["X999"]}, "survey taker"), ({"questionnaire": "nope"}, "Unknown"),
    ({"closes_at": iso(T0)}, "end must be after"),
    ({"alert": {"question": "comment", "at_most": 2, "category": "service"}}, "alert"),
])
def test_a_wrong_task_is_refused_with_the_reason(db, change, reason):
    draft = {**tasks.get(db, "dec-wards"), "id": "t2", **change}
    with pytest.raises(QuestionnaireError, match=reason):
        tasks.save(db, draft, "office")


def test_responses_are_stored_once_and_bad_ones_quarantined(db):
    good = response(overall=4, liked=["nurses"], comment="谢谢")
    ingest(db, good)
    ingest(db, good)  # sent again after a lost ack
    assert db["survey_responses"].count == 1
    stored = db["survey_responses"].get(good["id"])
    assert json.loads(stored["answers"]) == {"overall": 4, "liked": ["nurses"],
                                             "comment": "谢谢"}
    bad = {**response(), "answers": {"overall": True}}
    ingest(db, bad=[(bad, "answers: 'overall': bad")])
    assert db["quarantine"].count == 1 and db["survey_responses"].count == 1


def test_a_low_score_opens_a_routed_ticket_that_earns_no_hours(db):
    low = response(zone="ward-3", overall=1, comment="夜里太吵")
    also_low = response(zone="ward-3", minutes=5, overall=2)
    fine = response(zone="ward-3", minutes=6, overall=3)
    ingest(db, low, also_low, fine)
    [ticket] = tickets.list_tickets(db)
    assert (ticket["category"], ticket["zone"], ticket["source"], ticket["reporters"]) == (
        "service", "ward-3", "survey", 1)
    assert "overall = 1" in ticket["note"] and "夜里太吵" in ticket["note"]
    assert db["ticket_reports"].count == 2  # the second low score attached as a duplicate
    tickets.transition(db, ticket["id"], "assigned", "office")
    assert hours.entries(db) == []


def test_totals_distributions_and_the_index_per_ward_and_department_by_week(db):
    ingest(db,
           response("ward-3", overall=5, nursing=5, liked=["nurses", "food"], comment="好"),
           response("ward-3", minutes=1, overall=3),
           response("ward-4", "S002", minutes=2, overall=4, nursing=2, comment="<b>x</b>"),
           response("ward-9", "S002", minutes=60 * 24 * 7, overall=1),
           response("ward-9", minutes=3, version=9, overall=5))  # unknown version
    task = tasks.get(db, "dec-wards")
    s = results.summary(db, task, TZ, T0 + timedelta(days=8))
    assert (s["count"], s["target"], s["progress"], s["open"]) == (4, 10, 0.4, True)
    assert s["by_zone"] == {"ward-3": 2, "ward-4": 1, "ward-9": 1}
    assert s["by_surveyor"] == {"S001": 2, "S002": 2}
    overall, nursing, liked, comment = s["questions"]
    assert overall["counts"] == {1: 1, 2: 0, 3: 1, 4: 1, 5: 1} and overall["mean"] == 3.25
    assert nursing["answered"] == 2 and nursing["mean"] == 3.5
    assert liked["counts"] == {"nurses": 1, "food": 1, "quiet": 0}
    assert comment["texts"] == ["<b>x</b>", "好"]  # newest first; escaped where shown
    # scores: ward-3 100 and 50; ward-4 mean(75, 25) = 50; ward-9 0 the week after
    assert s["index"] == 50.0
    assert s["weekly"] == [
        {"week": "2026-12-07", "zone": "ward-3", "department": "cardiology", "count": 2,
         "scored": 2, "index": 75.0},
        {"week": "2026-12-07", "zone": "ward-4", "department": "cardiology", "count": 1,
         "scored": 1, "index": 50.0},
        {"week": "2026-12-14", "zone": "ward-9", "department": None, "count": 1,
         "scored": 1, "index": 0.0}]
    assert results.index_by_department(s["weekly"]) == [
        {"week": "2026-12-07", "department": "cardiology", "zones": ["ward-3", "ward-4"],
         "count": 3, "index": 66.7},
        {"week": "2026-12-14", "department": "ward-9", "zones": ["ward-9"], "count": 1,
         "index": 0.0}]
    header, rows = results.export_rows(db, task, TZ)
    assert header == ["taken_at", "zone", "surveyor", "version", "overall", "nursing", "liked",
                      "comment"]
    assert rows[0] == ["2026-12-07 10:00", "ward-3", "S001", 1, 5, 5, "nurses; food", "好"]
    assert len(rows) == 4


def test_a_node_gets_the_open_tasks_of_its_zone_with_the_questionnaire(db):
    with db.conn:
        db["nodes"].insert({"node": "ward-3-1", "zone": "ward-3", "revoked": 0})
        db["nodes"].insert({"node": "hall-a-1", "zone": "ward-77", "revoked": 0})
    config = downlink.node_config_document(db, "ward-3-1", T0 + timedelta(hours=1))
    [task] = config["surveys"]
    assert task["id"] == "dec-wards" and task["surveyors"] == ["S001", "S002"]
    assert task["form"]["version"] == 1 and task["form"]["questions"][0]["id"] == "overall"
    assert "created_by" not in task["form"]
    after = downlink.node_config_document(db, "ward-3-1", T0 + timedelta(days=15))
    assert after["surveys"] == []
    assert downlink.node_config_document(db, "hall-a-1", T0)["surveys"] == []


@pytest.mark.parametrize("change, reason", [
    ({"task_id": "nope"}, "unknown task"),
    ({"version": 2}, "not 'inpatient' version 2"),
    ({"answers": {"overall": 7}}, "overall"),
    ({"answers": {"overall": 4, "mood": 3}}, "mood (unknown)"),
    ({"answers": {"overall": 4, "liked": ["cars"]}}, "liked"),
])
def test_a_response_that_does_not_fit_its_task_is_quarantined_with_the_reason(db, change,
                                                                              reason):
    questionnaires.save(db, "inpatient", "住院患者满意度",
                        QUESTIONS + [{"id": "clean", "kind": "scale", "label": "整洁"}], "office")
    record = {**response(), **change}
    acked = ingest(db, record)
    assert acked == [record["id"]]  # durable in quarantine: acknowledged
    assert db["survey_responses"].count == 0
    [row] = db.conn.execute("SELECT record_id, reason FROM quarantine").fetchall()
    assert row[0] == record["id"] and reason in row[1]
