"""Drafted summaries (hub/summaries) on a real hub database: a contest event
with known attendance by department, registrations, a ranking and reports in
its hall; every figure of its draft (zh-CN and en) is the database's, in the
text, in the DOCX (read back with python-docx) and in the Markdown; a
person's year likewise; the number check catches a tampered figure; the
dashboard pages edit, redraft, download and audit."""

import io
import json
import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from docx import Document

from hub import audit
from hub.assessment import items
from hub.assessment.progress import attendance_ref, progress
from hub.attendance import attendance
from hub.contests import acts, scoring
from hub.contests.acts import Rule
from hub.ingest.store import write_batch
from hub.summaries import draft, export, facts, store
from protocol.clock import iso
from protocol.records import validate

from .hubweb import signed_in

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2025, 3, 10, 1, 0, tzinfo=timezone.utc)  # 09:00 in the hospital
AFTER = T0 + timedelta(hours=4)  # both events are over
NURSING, CARDIOLOGY, PHARMACY = "nursing", "cardiology", "pharmacy"
PRESENT = {"N1": NURSING, "N2": NURSING, "N3": NURSING, "C1": CARDIOLOGY, "C2": CARDIOLOGY,
           "C3": CARDIOLOGY, "P1": PHARMACY}
REGISTERED = ["N1", "N2", "N3", "C1", "C2", "X1"]  # X1 never comes


def ts(minute: float) -> str:
    return iso(T0 + timedelta(minutes=minute))


def _record(kind: str, minute: float, **fields) -> dict:
    return validate({"id": str(uuid.uuid4()), "type": kind, "ts": ts(minute), **fields})


def _ingest(db, records, node="hall-a-1"):
    write_batch(db, f"rounds/v1/test/node/{node}/up/batch", node, records, [])


def _seen(staff_id: str, first: float, last: float, event: str = "speech") -> list[dict]:
    device = f"{abs(hash(staff_id)):016x}"[:16]
    return [_record("checkin", first, staff_id=staff_id, event_id=event, zone="hall-a",
                    method="presence", device=device),
            _record("presence", last, device=device, staff_id=staff_id, zone="hall-a",
                    first_seen=ts(first), last_seen=ts(last), closed=True)]


def _report(minute: float, category: str, zone: str = "hall-a", staff_id: str = "N1") -> dict:
    return _record("report", minute, report_id=str(uuid.uuid4()), staff_id=staff_id,
                   category=category, note="地面有水", zone=zone, photos=[], taken_at=ts(minute))


def _score(staff_id: str, act: str, value: int, seconds: int) -> dict:
    at = iso(T0 + timedelta(minutes=10, seconds=seconds))
    return validate({"id": str(uuid.uuid4()), "type": "score", "ts": at, "event_id": "speech",
                     "act": act, "staff_id": staff_id, "value": value, "taken_at": at})


def build_hospital(db) -> None:
    """The speech contest (09:00-11:00, 1.5 credit hours, hall-a): seven
    present (nursing 3, cardiology 3, pharmacy 1), N4 partial, X1 registered
    and absent, P1 on the waiting list; two acts scored by three judges;
    reports in hall-a during it (hygiene 2, safety 1) and three that do not
    count. A lecture N1 attended (11:30-12:30, 2 credit hours)."""
    with db.conn:
        db["departments"].insert_all([
            {"department": NURSING, "name": "护理部", "name_en": "Nursing"},
            {"department": CARDIOLOGY, "name": "心内科", "name_en": "Cardiology"},
            {"department": PHARMACY, "name": "药剂科"}])
        db["staff"].insert_all(
            [{"staff_id": s, "name": f"员工{s}", "department": d, "role": "staff"}
             for s, d in PRESENT.items()]
            + [{"staff_id": "N4", "name": "员工N4", "department": NURSING, "role": "staff"},
               {"staff_id": "X1", "name": "员工X1", "department": CARDIOLOGY, "role": "staff"}]
            + [{"staff_id": j, "name": j, "department": None, "role": "staff"}
               for j in ("J1", "J2", "J3")])
        db["zones"].insert({"zone": "hall-a", "name": "第一报告厅", "name_en": "Lecture hall 1",
                            "campus": "Main", "building": "Teaching", "floor": "2"})
        db["events"].insert_all([
            {"id": "speech", "title": "健康科普演讲比赛", "kind": "contest",
             "zones": json.dumps(["hall-a"]), "start": ts(0), "end": ts(120),
             "credit_hours": 1.5},
            {"id": "lecture", "title": "手卫生与感染控制", "kind": "lecture",
             "zones": json.dumps(["hall-a"]), "start": ts(150), "end": ts(210),
             "credit_hours": 2}])
        db["event_registration"].insert({"event_id": "speech", "opens_at": ts(-7 * 1440),
                                         "closes_at": ts(-60), "capacity": 6})
        db["registrations"].insert_all(
            [{"event_id": "speech", "staff_id": s, "state": "registered", "queued_at": ts(-n),
              "changed_at": ts(-n)} for n, s in enumerate(REGISTERED, 100)]
            + [{"event_id": "speech", "staff_id": "P1", "state": "waiting", "queued_at": ts(-90),
                "changed_at": ts(-90)}])
        acts.set_up(db, "speech", Rule(1, 10, True, 1.0),
                    [{"act": "a1", "title": "洗手的学问", "performers": "护理部"},
                     {"act": "a2", "title": "合理用药", "performers": "药剂科"}],
                    ["J1", "J2", "J3"])
        acts.open_act(db, "speech", "a1", 60, T0 + timedelta(minutes=10))
    records = []
    for staff_id in PRESENT:
        records += _seen(staff_id, -5, 125)
    records += _seen("N4", 30, 40)  # partial
    records += _seen("N1", 150, 210, event="lecture")
    records += [_report(20, "hygiene"), _report(50, "hygiene", staff_id="C1"),
                _report(90, "safety", staff_id="P1"),
                _report(-30, "hygiene"), _report(60, "hygiene", zone="ward-3"),
                _report(130, "signage")]  # before, elsewhere, after: none counts
    records += [_score("J1", "a1", 8, 5), _score("J2", "a1", 7, 6), _score("J3", "a1", 10, 7)]
    with db.conn:
        _ingest(db, records)
    with db.conn:
        acts.open_act(db, "speech", "a2", 60, T0 + timedelta(minutes=20))
    a2 = [validate({**_score(j, "a2", v, 0), "ts": iso(T0 + timedelta(minutes=20, seconds=5)),
                    "taken_at": iso(T0 + timedelta(minutes=20, seconds=5))})
          for j, v in (("J1", 6), ("J2", 9), ("J3", 9))]
    with db.conn:
        _ingest(db, a2)


@pytest.fixture
def db(hub_db):
    build_hospital(hub_db)
    return hub_db


@pytest.fixture
def event(db):
    return facts.event_facts(db, "speech", TZ, AFTER)


# -- the figures are the database's ----------------------------------------------------------

def _database_figures(db) -> dict:
    """What the database says, computed here apart from hub.summaries."""
    rows = attendance.event_attendance(db, "speech", AFTER)
    present = {r["staff_id"] for r in rows if r["status"] == "present"}
    departments = dict(db.conn.execute("SELECT staff_id, department FROM staff"))
    registered = {s for (s,) in db.conn.execute(
        "SELECT staff_id FROM registrations WHERE event_id = 'speech' AND state = 'registered'")}
    reports = dict(db.conn.execute(
        "SELECT category, COUNT(*) FROM reports WHERE zone = 'hall-a' AND taken_at >= ? "
        "AND taken_at <= ? GROUP BY category", (ts(0), ts(120))))
    ranking = scoring.ranking(db, "speech", AFTER)["rows"]
    return {"present": len(present), "partial": sum(r["status"] == "partial" for r in rows),
            "by_department": {d: sum(departments[s] == d for s in present)
                              for d in (NURSING, CARDIOLOGY, PHARMACY)},
            "registered": len(registered), "registered_present": len(registered & present),
            "reports": reports, "ranking": [(r["rank"], r["title"], r["total"]) for r in ranking]}


def test_the_facts_are_the_databases(db, event):
    truth = _database_figures(db)
    # and by hand: the fixture's story
    assert truth == {"present": 7, "partial": 1,
                     "by_department": {NURSING: 3, CARDIOLOGY: 3, PHARMACY: 1},
                     "registered": 6, "registered_present": 5,
                     "reports": {"hygiene": 2, "safety": 1},
                     "ranking": [(1, "合理用药", 9.0), (2, "洗手的学问", 8.0)]}
    assert (event["attended"], event["partial"]) == (truth["present"], truth["partial"])
    assert {d["department"]: d["attended"] for d in event["by_department"]} == \
        truth["by_department"]
    assert event["rate"] == {"basis": "registration", "base": 6, "attended": 5, "percent": 83.3}
    assert [(r["rank"], r["title"], r["total"]) for r in event["contest"]] == truth["ranking"]
    assert {r["category"]: r["count"] for r in event["reports"]["by_category"]} == \
        truth["reports"] and event["reports"]["total"] == 3
    assert (event["date"], event["start_time"], event["end_time"]) == ("2025-03-10", "09:00",
                                                                       "11:00")
    assert event["credit_hours"] == 1.5 and event["place"][0]["name"] == "第一报告厅"
    assert event["organiser"] == {"name": "文明办", "name_en": "Civility office"}


ZH_FIGURES = ["2025年3月10日 09:00–11:00", "文明办在第一报告厅", "计 1.5 学时", "共 7 人出席",
              "另有 1 人部分出席", "护理部 3 人", "心内科 3 人", "药剂科 1 人",
              "报名 6 人，其中 5 人出席，出席率 83.3%",
              "第 1 名：合理用药（药剂科），得分 9", "第 2 名：洗手的学问（护理部），得分 8",
              "随手拍上报 3 条：环境卫生 2 条、安全隐患 1 条"]
EN_FIGURES = ["10 March 2025, 09:00–11:00", "in Lecture hall 1", "worth 1.5 credit hours",
              "7 people attended; 1 more attended part of it",
              "Cardiology 3, Nursing 3, 药剂科 1", "6 people registered and 5 of them attended",
              "an attendance rate of 83.3%", "Rank 1: 合理用药 (药剂科), score 9",
              "Rank 2: 洗手的学问 (护理部), score 8", "3 reports were filed in its zones: "
              "Hygiene 2, Safety hazard 1"]


@pytest.mark.parametrize("lang, figures", [("zh", ZH_FIGURES), ("en", EN_FIGURES)])
def test_the_event_draft_says_the_databases_figures(event, lang, figures):
    text = draft.write("event", event, lang)
    for figure in figures:
        assert figure in text, (figure, text)
    assert draft.check(text, event) == []
    # every number the text holds is one the facts hold
    assert draft.numbers_in(text) and all(
        round(float(n), 6) in draft.fact_numbers(event) for n in draft.numbers_in(text))


def test_the_docx_opens_and_holds_the_figures_and_the_department_table(event):
    text = draft.write("event", event, "zh")
    data = export.to_docx(text, export.tables("event", event, "zh"), "总结")
    document = Document(io.BytesIO(data))
    body = "\n".join(p.text for p in document.paragraphs)
    for figure in ZH_FIGURES:
        assert figure in body, figure
    headings = [p.text for p in document.paragraphs if p.style.name.startswith("Heading")]
    assert headings == ["健康科普演讲比赛活动总结", "出席情况", "比赛结果", "现场上报"]
    [table] = document.tables
    assert [[c.text for c in row.cells] for row in table.rows] == [
        ["科室", "出席人数"], ["心内科", "3"], ["护理部", "3"], ["药剂科", "1"], ["合计", "7"]]
    assert document.core_properties.title == "总结"


def test_the_markdown_holds_the_figures_and_the_table(event):
    text = draft.write("event", event, "en")
    data = export.to_markdown(text, export.tables("event", event, "en")).decode("utf-8")
    for figure in EN_FIGURES:
        assert figure in data, figure
    assert "| Department | Attended |\n|---|---|\n| Cardiology | 3 |\n| Nursing | 3 |\n" \
           "| 药剂科 | 1 |\n| Total | 7 |" in data
    # the table sits at the end of the attendance section, before the next one
    assert data.index("| Total | 7 |") < data.index("## Contest results")


def test_an_event_without_registration_is_rated_against_the_expected(db):
    with db.conn:
        db.conn.execute("DELETE FROM registrations")
        attendance.set_expected(db, "speech", departments=[NURSING])
    found = facts.event_facts(db, "speech", TZ, AFTER)
    # nursing: N1, N2, N3 present, N4 partial
    assert found["rate"] == {"basis": "expected", "base": 4, "attended": 3, "percent": 75.0}
    assert "应到 4 人，其中 3 人出席，出席率 75%" in draft.write("event", found, "zh")
    assert found["contest"] and facts.event_facts(db, "nowhere", TZ, AFTER) is None


# -- the number check ----------------------------------------------------------------------------

def test_the_check_catches_a_tampered_figure(event):
    text = draft.write("event", event, "zh")
    assert draft.check(text, event) == []
    assert draft.check(text.replace("共 7 人出席", "共 71 人出席"), event) == ["71"]
    assert draft.check(text.replace("出席率 83.3%", "出席率 88.3%"), event) == ["88.3"]
    assert draft.check(text + "\n另有 １２３ 人。", event) == ["123"]  # full-width digits
    assert draft.check("这次活动很成功，大家积极参与。", event) == []
    english = draft.write("event", event, "en")
    assert draft.check(english.replace("score 9", "score 9.5"), event) == ["9.5"]


# -- a person's year ------------------------------------------------------------------------------

def build_year(db) -> None:
    """N1's 2025: an approved good deed and thank-you letter, one rejected;
    the contest's attendance confirmed by the review chain (the lecture's still
    pending); an item of 10 credit hours and one of 1 approved entry."""
    now = iso(AFTER)
    rows = [("good_deed", "self", None, "approved"), ("thanks_letter", "self", None, "approved"),
            ("good_deed", "self", None, "rejected"),
            ("attendance", "system", attendance_ref("speech", "N1"), "approved")]
    with db.conn:
        db["record_entries"].insert_all([
            {"staff_id": "N1", "kind": kind, "title": f"{kind} {n}", "occurred_on": "2025-03-10",
             "source": source, "source_ref": ref, "state": state, "level": 2,
             "created_at": now, "updated_at": now}
            for n, (kind, source, ref, state) in enumerate(rows)])
        items.save(db, 2025, "credit", "学时", "credit_hours", 10, title_en="Credit hours")
        items.save(db, 2025, "deeds", "好人好事", "entries", 1, title_en="Good deeds",
                   entry_kinds=["good_deed"])


def test_the_year_draft_says_the_databases_figures(db):
    build_year(db)
    found = facts.year_facts(db, facts.year_record(db, "N1", 2025, TZ, AFTER), TZ)
    hand = progress(db, 2025, TZ, AFTER, ["N1"])["N1"]
    assert [(r["confirmed"], r["pending"], r["target"], r["done"]) for r in hand] == [
        (1.5, 2.0, 10.0, False), (1.0, 0.0, 1.0, True)]
    assert (found["attended"], found["credit_hours"], found["reports"], found["entries"]) == (
        2, 3.5, 4, 3)  # N1 filed four reports (none has a ticket yet); 3 entries approved
    assert found["entries_by_kind"] == [{"kind": "attendance", "count": 1},
                                        {"kind": "good_deed", "count": 1},
                                        {"kind": "thanks_letter", "count": 1}]
    zh = draft.write("person_year", found, "zh")
    for figure in ("全年出席活动 2 次", "获得学时 3.5", "2025-03-10 健康科普演讲比赛（1.5 学时）",
                   "2025-03-10 手卫生与感染控制（2 学时）", "随手拍上报 4 条，其中被采纳 0 条",
                   "经审核通过的档案记录 3 条", "学时：已确认 1.5，待审核 2，目标 10，未完成",
                   "好人好事：已确认 1，待审核 0，目标 1，已完成", "全年 2 项考核中已完成 1 项",
                   "工号 N1，护理部"):
        assert figure in zh, figure
    en = draft.write("person_year", found, "en")
    assert "Credit hours: 1.5 confirmed, 2 pending review, target 10, not done yet" in en
    assert "Done: 1 of 2 items." in en
    assert draft.check(zh, found) == [] and draft.check(en, found) == []
    assert draft.check(zh.replace("获得学时 3.5", "获得学时 35"), found) == ["35"]
    document = Document(io.BytesIO(export.to_docx(zh, export.tables("person_year", found, "zh"))))
    [table] = document.tables
    assert [[c.text for c in row.cells] for row in table.rows][1:] == [
        ["学时", "1.5", "2", "10", "未完成"], ["好人好事", "1", "0", "1", "已完成"]]


# -- the drafts kept ---------------------------------------------------------------------------

def test_a_saved_draft_is_kept_with_its_facts_and_reset_drops_it(db, event):
    with db.conn:
        saved = store.save(db, "event", "speech", "zh", "改写：共 7 人出席。\r\n", event, "office-li")
    assert (saved["text"], saved["edited_by"]) == ("改写：共 7 人出席。\n", "office-li")
    current = store.current(db, "event", "speech", "zh", event)
    assert current["text"] == saved["text"] and current["stray"] == []
    assert store.current(db, "event", "speech", "en", event)["edited_by"] is None
    with pytest.raises(store.DraftError):
        store.save(db, "event", "speech", "zh", "  \n", event, "office-li")
    with db.conn:
        assert store.reset(db, "event", "speech", "zh")
    assert store.get(db, "event", "speech", "zh") is None


# -- the pages ------------------------------------------------------------------------------------

@pytest.fixture
def office(hub_app, db):
    return signed_in(hub_app, db, "office", username="office-li", lang="en")


def test_the_office_edits_saves_downloads_and_redrafts_an_event_summary(office, db):
    page = office.get("/events/speech/summary").get_data(as_text=True)
    assert "共 7 人出席" in page and "7 people attended" in page
    assert 'action="/events/speech/summary/zh"' in page

    edited = "# 健康科普演讲比赛\n\n## 出席情况\n\n本次共 7 人出席，出席率 83.3%。\n"
    response = office.post("/events/speech/summary/zh",
                           data={"text": edited, "csrf_token": office.csrf})
    assert response.status_code == 303
    assert store.get(db, "event", "speech", "zh")["edited_by"] == "office-li"

    docx = office.get("/events/speech/summary/zh.docx")
    assert docx.status_code == 200 and docx.mimetype == export.DOCX_MIME
    document = Document(io.BytesIO(docx.data))
    assert "本次共 7 人出席，出席率 83.3%。" in [p.text for p in document.paragraphs]
    assert [c.text for c in document.tables[0].rows[-1].cells] == ["合计", "7"]
    md = office.get("/events/speech/summary/en.md")
    assert md.status_code == 200 and "7 people attended" in md.get_data(as_text=True)

    # a figure typed that the data does not hold is pointed out
    office.post("/events/speech/summary/zh", data={"text": edited.replace("7 人", "70 人"),
                                                     "csrf_token": office.csrf})
    assert "Figures that are not in the data: 70" in office.get(
        "/events/speech/summary").get_data(as_text=True)

    empty = office.post("/events/speech/summary/zh", data={"text": " ", "csrf_token": office.csrf})
    assert empty.status_code == 400 and "The draft is empty" in empty.get_data(as_text=True)

    assert office.post("/events/speech/summary/zh/redraft",
                       data={"csrf_token": office.csrf}).status_code == 303
    assert store.get(db, "event", "speech", "zh") is None
    assert [e["action"] for e in audit.entries(db, target="event:speech")][::-1] == [
        "summary.save", "export.summary", "export.summary", "summary.save", "summary.redraft"]
    assert office.get("/events/nowhere/summary").status_code == 404
    assert "/events/speech/summary" in office.get("/events/speech").get_data(as_text=True)


def test_a_person_edits_their_own_year_others_only_read_it(hub_app, db):
    build_year(db)
    me = signed_in(hub_app, db, "staff", staff_id="N1", lang="en")
    page = me.get("/me/year?year=2025").get_data(as_text=True)
    assert "全年出席活动 2 次" in page and 'action="/me/year/en?year=2025"' in page
    response = me.post("/me/year/en?year=2025", data={"text": "My year: 2 events attended.",
                                                       "csrf_token": me.csrf})
    assert response.status_code == 303
    saved = store.get(db, "person_year", "N1:2025", "en")
    assert (saved["text"], saved["edited_by"]) == ("My year: 2 events attended.", "staff-user")
    md = me.get("/me/year/en.md?year=2025").get_data(as_text=True)
    assert md.startswith("My year: 2 events attended.")

    office = signed_in(hub_app, db, "office", username="office-li", lang="en")
    page = office.get("/people/N1/year?year=2025").get_data(as_text=True)
    assert "My year: 2 events attended." in page and "<textarea" not in page
    assert office.get("/people/N1/year/zh.docx?year=2025").status_code == 200
    reviewer = signed_in(hub_app, db, "dept_reviewer", department=CARDIOLOGY)
    assert reviewer.get("/people/N1/year").status_code == 404
    assert reviewer.get("/people/C1/year").status_code == 200
    assert me.get("/people/N1/year").status_code == 403
    assert me.get("/me/year?year=1999").status_code == 400
    actions = [(e["action"], e["detail"].get("part"), e["detail"].get("format"))
               for e in audit.entries(db, target="staff:N1")][::-1]
    assert actions == [("summary.save", "year_summary", None),
                       ("export.person", "year_summary", "md"),
                       ("person.view", None, None),
                       ("export.person", "year_summary", "docx")]


def test_a_draft_while_the_event_is_on_says_so(db):
    found = facts.event_facts(db, "speech", TZ, T0 + timedelta(minutes=30))
    assert found["ended"] is False
    zh, en = draft.write("event", found, "zh"), draft.write("event", found, "en")
    assert "截至 2025-03-10 09:30，活动仍在进行" in zh
    assert "as of 2025-03-10 09:30, while the event is still on" in en
    assert draft.check(zh, found) == [] and draft.check(en, found) == []
