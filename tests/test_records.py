"""The staff record and its review chain, on the domain (hub/records): an
entry through three levels, a rejection with its reason, a send-back and
resubmission, who may decide at which level, the inbox, the entries the hub
files itself (idempotent) and the hub.json ``review`` section."""

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from hub.config import load_hub_config, review_settings
from hub.db import write_transaction
from hub.ingest.store import write_batch
from hub.records import entries, review, system
from hub.records.errors import Conflict, Forbidden, NotFound, RecordError
from hub.tickets import hours
from protocol.clock import iso
from protocol.records import validate
from runtime.settings import ConfigError

from .hubworld import world

NOW = datetime(2025, 5, 12, 2, 0, tzinfo=timezone.utc)  # 10:00 in the hospital
TODAY = "2025-05-12"
B1, B2 = "内科第一党支部", "外科党支部"


def account(role, username=None, **extra):
    return {"username": username or role, "role": role, "department": None, "branch": None,
            "staff_id": None, **extra}


NURSING = account("dept_reviewer", "nursing-rev", department="nursing")
CARDIO = account("dept_reviewer", "cardio-rev", department="cardiology")
BRANCH1 = account("branch_reviewer", "b1-rev", branch=B1)
BRANCH2 = account("branch_reviewer", "b2-rev", branch=B2)
COMMITTEE = account("committee_reviewer", "committee")
OFFICE = account("office", "office")
ADMIN = account("admin", "admin")


@pytest.fixture
def db(hub_db):
    with hub_db.conn:
        hub_db["departments"].insert_all([{"department": "nursing", "name": "护理部"},
                                          {"department": "cardiology", "name": "心内科"}])
        hub_db["staff"].insert_all([
            {"staff_id": "N001", "name": "王芳", "department": "nursing", "branch": B1},
            {"staff_id": "N002", "name": "李娜", "department": "nursing", "branch": B2},
            {"staff_id": "C001", "name": "赵强", "department": "cardiology", "branch": B1}])
    return hub_db


def file(db, staff_id="N001", kind="good_deed", title="帮助迷路的患者", now=NOW, **kw):
    with write_transaction(db):
        return entries.file_entry(db, staff_id, kind, title, kw.pop("body", ""),
                                  kw.pop("occurred_on", TODAY), who=staff_id, now=now, **kw)


def decide(db, entry, who, action="approve", reason="", now=NOW, settings=None):
    with write_transaction(db):
        return review.decide(db, entry["id"], who, action, reason, now=now, settings=settings)


def steps(db, entry):
    return [(s["action"], s["level"], s["who"], s["reason"])
            for s in entries.history(db, entry["id"])]


def test_an_entry_passes_department_branch_and_committee(db):
    entry = file(db, body="在门诊楼送一位老人回到病区。")
    assert (entry["state"], entry["level"], entry["source"]) == ("pending", 0, "self")
    assert entry["due_at"] == iso(NOW + timedelta(days=7))
    assert entries.approved(db, "N001", 2025) == []

    later = NOW + timedelta(days=2)
    entry = decide(db, entry, NURSING, now=later)
    assert (entry["state"], entry["level"], entry["due_at"]) == (
        "pending", 1, iso(later + timedelta(days=7)))
    entry = decide(db, entry, BRANCH1)
    assert (entry["state"], entry["level"]) == ("pending", 2)
    assert entries.approved(db, "N001", 2025) == []  # not until the last level
    entry = decide(db, entry, COMMITTEE)
    assert (entry["state"], entry["level"], entry["due_at"]) == ("approved", 2, None)

    assert steps(db, entry) == [("submit", 0, "N001", ""), ("approve", 0, "nursing-rev", ""),
                                ("approve", 1, "b1-rev", ""), ("approve", 2, "committee", "")]
    assert [e["id"] for e in entries.approved(db, "N001", 2025)] == [entry["id"]]
    assert entries.approved(db, "N001", 2025, ["thanks_letter"]) == []
    assert entries.approved(db, "N001", 2024) == []
    with pytest.raises(Conflict):
        decide(db, entry, COMMITTEE)


def test_a_rejection_needs_a_reason_and_is_final(db):
    entry = file(db, kind="complaint", title="患者投诉服务态度")
    with pytest.raises(RecordError) as missing:
        decide(db, entry, NURSING, "reject", "   ")
    assert type(missing.value) is RecordError and "reason" in str(missing.value)
    entry = decide(db, entry, NURSING, "reject", "与事实不符")
    assert (entry["state"], entry["level"]) == ("rejected", 0)
    assert steps(db, entry)[-1] == ("reject", 0, "nursing-rev", "与事实不符")
    for reviewer in (NURSING, BRANCH1, ADMIN):
        with pytest.raises(Conflict):
            decide(db, entry, reviewer)
    with pytest.raises(Conflict):  # only a returned entry is resubmitted
        entries.resubmit(db, entry["id"], "N001", "x", "", TODAY, who="N001", now=NOW)
    assert entries.approved(db, "N001", 2025) == []


def test_send_back_then_edit_and_resubmit(db):
    entry = decide(db, file(db, kind="study_reflection", title="学习心得"), NURSING)
    entry = decide(db, entry, BRANCH1, "return", "请补充学习内容")
    assert (entry["state"], entry["due_at"]) == ("returned", None)
    with pytest.raises(Conflict):
        decide(db, entry, BRANCH1)
    with pytest.raises(NotFound):  # someone else's
        entries.resubmit(db, entry["id"], "N002", "x", "", TODAY, who="N002", now=NOW)
    with pytest.raises(RecordError):
        entries.resubmit(db, entry["id"], "N001", "", "", TODAY, who="N001", now=NOW)

    later = NOW + timedelta(days=1)
    with write_transaction(db):
        entry = entries.resubmit(db, entry["id"], "N001", "学习《医德规范》心得", "补充了内容",
                                 "2025-05-10", who="N001", now=later)
    assert (entry["state"], entry["level"], entry["title"], entry["occurred_on"]) == (
        "pending", 0, "学习《医德规范》心得", "2025-05-10")
    assert entry["due_at"] == iso(later + timedelta(days=7))
    # it starts again at the department
    with pytest.raises(Forbidden):
        decide(db, entry, BRANCH1)
    for reviewer in (NURSING, BRANCH1, COMMITTEE):
        entry = decide(db, entry, reviewer)
    assert entry["state"] == "approved"
    assert [s[0] for s in steps(db, entry)] == [
        "submit", "approve", "return", "resubmit", "approve", "approve", "approve"]
    assert steps(db, entry)[2] == ("return", 1, "b1-rev", "请补充学习内容")


def test_a_reviewer_decides_only_in_scope_and_at_their_level(db):
    entry = file(db)  # N001: nursing, branch B1
    with pytest.raises(NotFound):
        decide(db, entry, CARDIO)  # another department: it does not exist for them
    with pytest.raises(NotFound):
        decide(db, entry, BRANCH2)  # another branch
    for seen_not_theirs in (BRANCH1, COMMITTEE, OFFICE):
        with pytest.raises(Forbidden):
            decide(db, entry, seen_not_theirs)
    with pytest.raises(Forbidden):  # a reviewer's own entry
        decide(db, entry, {**NURSING, "staff_id": "N001"})
    entry = decide(db, entry, NURSING)
    with pytest.raises(Forbidden):
        decide(db, entry, NURSING)  # sees it, but it waits at the branch now
    with pytest.raises(NotFound):
        review.visible_entry(db, account("staff", "N002", staff_id="N002"), entry["id"])
    assert review.visible_entry(db, account("staff", "N001", staff_id="N001"),
                                entry["id"])["id"] == entry["id"]
    entry = decide(db, entry, ADMIN)  # an admin decides at any level
    assert entry["level"] == 2
    with pytest.raises(RecordError):
        decide(db, entry, COMMITTEE, "maybe")


def test_inbox_counts_levels_and_marks_overdue(db):
    old = file(db, "N001", now=NOW - timedelta(days=10), occurred_on="2025-05-01")  # past 7 days
    fresh = file(db, "N002")
    cardio = file(db, "C001")
    at_branch = decide(db, file(db, "N001", title="第二条"), NURSING)

    box = review.inbox(db, NURSING, now=NOW)
    assert [(lv["name"], lv["pending"], lv["overdue"], lv["decides"]) for lv in box["levels"]] \
        == [("department", 2, 1, True), ("branch", 1, 0, False), ("committee", 0, 0, False)]
    assert [e["id"] for e in box["entries"]] == [old["id"], fresh["id"]]  # most urgent first
    assert [e["overdue"] for e in box["entries"]] == [True, False]

    box = review.inbox(db, BRANCH1, now=NOW)  # N001 and C001 are in B1
    assert [lv["pending"] for lv in box["levels"]] == [2, 1, 0]
    assert [e["id"] for e in box["entries"]] == [at_branch["id"]]
    assert review.inbox(db, COMMITTEE, now=NOW)["entries"] == []
    office = review.inbox(db, OFFICE, now=NOW)
    assert [lv["pending"] for lv in office["levels"]] == [3, 1, 0]
    assert {e["id"] for e in office["entries"]} == {old["id"], fresh["id"], cardio["id"],
                                                     at_branch["id"]}
    assert not any(lv["decides"] for lv in office["levels"])
    # a reviewer's own entry is not in their inbox
    mine = review.inbox(db, {**NURSING, "staff_id": "N002"}, now=NOW)
    assert [e["id"] for e in mine["entries"]] == [old["id"]]


def test_what_a_person_may_file(db):
    with pytest.raises(RecordError):
        file(db, kind="attendance")  # the hub files those
    with pytest.raises(RecordError):
        file(db, title="")
    with pytest.raises(RecordError):
        file(db, occurred_on="2025-05-13")  # tomorrow in the hospital
    with pytest.raises(RecordError):
        file(db, occurred_on="12/05/2025")
    with pytest.raises(RecordError):
        file(db, title="两行\n标题")
    with pytest.raises(NotFound):
        file(db, staff_id="X999")
    assert file(db, occurred_on="2025-05-12", body="第一行\n第二行")["body"] == "第一行\n第二行"


def test_a_shorter_chain_from_the_config(db):
    settings = review_settings({"levels": ["department", "committee"], "days_per_level": 3})
    entry = file(db, days=settings["days_per_level"])
    assert entry["due_at"] == iso(NOW + timedelta(days=3))
    with pytest.raises(Forbidden):
        decide(db, entry, BRANCH1, settings=settings)  # no branch level at all
    entry = decide(db, entry, NURSING, settings=settings)
    assert review.level_name(settings, entry["level"]) == "committee"
    entry = decide(db, entry, COMMITTEE, settings=settings)
    assert entry["state"] == "approved"


def test_the_review_section_of_hub_json(tmp_path):
    assert review_settings(None) == {"levels": ["department", "branch", "committee"],
                                     "days_per_level": 7}
    assert review_settings({"days_per_level": 14})["days_per_level"] == 14
    for wrong in ([], {"level": ["department"]}, {"levels": []}, {"levels": ["ward"]},
                  {"levels": "department"}, {"levels": ["branch", "branch"]},
                  {"levels": [["department"]]}, {"days_per_level": 0},
                  {"days_per_level": 366}, {"days_per_level": True},
                  {"days_per_level": 1.5}):
        with pytest.raises(ConfigError):
            review_settings(wrong)
    path = tmp_path / "hub.json"
    path.write_text(json.dumps({"site": "s", "db": "hub.db",
                                "review": {"levels": ["branch", "committee"]}}))
    assert load_hub_config(path)["review"] == {"levels": ["branch", "committee"],
                                               "days_per_level": 7}
    path.write_text(json.dumps({"site": "s", "db": "hub.db", "review": {"levels": ["x"]}}))
    with pytest.raises(ConfigError, match="review.levels"):
        load_hub_config(path)
    path.write_text(json.dumps({"site": "s", "db": "hub.db"}))
    assert load_hub_config(path)["review"]["levels"] == list(review.LEVELS)


def test_system_entries_are_filed_once(hub_db, tmp_path):
    """Attendance at an ended event, approved hours and accepted reports
    become pending entries filed by the system, each exactly once."""
    db = hub_db
    world(db, tmp_path)  # S001, S002; accepted tickets for both; pending hours
    now = datetime.now(timezone.utc)
    start = now - timedelta(days=1, hours=2)
    with db.conn:
        db["events"].insert({"id": "ev-past", "title": "消防安全培训", "kind": "training",
                             "zones": json.dumps(["hall-a"]), "start": iso(start),
                             "end": iso(start + timedelta(hours=1)), "credit_hours": 1})
    write_batch(db, "rounds/v1/test/node/hall-a-1/up/batch", "hall-a-1", [validate({
        "id": str(uuid.uuid4()), "type": "checkin", "ts": iso(start + timedelta(minutes=1)),
        "staff_id": "S001", "event_id": "ev-past", "zone": "hall-a", "method": "portal"})], [])
    ledger = {e["staff_id"]: e for e in hours.entries(db, state="pending")}
    hours.decide(db, ledger["S001"]["id"], True, "office", now=now)

    later = now + timedelta(hours=2)  # every event of the world has ended
    made = system.sync_system_entries(db, later)
    found = {e["source_ref"]: e for e in entries.select(db, "source = 'system'")}
    reports = {ref for ref in found if ref.startswith("report:")}
    assert made == len(found) and len(reports) == 2
    attended = found["attendance:ev-past:S001"]
    assert (attended["kind"], attended["title"], attended["state"], attended["level"]) == (
        "attendance", "消防安全培训", "pending", 0)
    assert attended["occurred_on"] == start.astimezone(entries.HOSPITAL_TZ).date().isoformat()
    hour_entry = found[f"hours:{ledger['S001']['id']}"]
    assert (hour_entry["staff_id"], hour_entry["kind"]) == ("S001", "volunteer_hours")
    assert {found[ref]["staff_id"] for ref in reports} == {"S001", "S002"}
    assert steps(db, attended) == [("submit", 0, "system", "")]

    assert system.sync_system_entries(db, later) == 0
    assert system.sync_system_entries(db, later + timedelta(days=5)) == 0  # no longer recent
    assert len(entries.select(db, "source = 'system'")) == made
    # S002's hours approved later: only that one is new
    hours.decide(db, ledger["S002"]["id"], True, "office", now=later)
    assert system.sync_system_entries(db, later) == 1
    # a system entry passes the same chain; only then it counts
    settings = review.DEFAULTS
    reviewer = account("dept_reviewer", "rev", department="environmental_services")
    entry = decide(db, attended, reviewer, settings=settings)
    entry = decide(db, entry, account("branch_reviewer", "b", branch="第一党支部"))
    entry = decide(db, entry, COMMITTEE)
    year = int(entry["occurred_on"][:4])
    assert [e["source_ref"] for e in entries.approved(db, "S001", year, ["attendance"])] == [
        "attendance:ev-past:S001"]
