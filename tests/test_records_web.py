"""The record and its review chain through the real web app: the inbox and
its counts, bulk approval, the owner's history and resubmission, an audit
row for every decision, reviewers refused outside their department, branch
or level (404/403); and the party branch of accounts and of the roster."""

import re
from datetime import datetime, timedelta, timezone

import pytest

from hub import audit
from hub.db import write_transaction
from hub.people import accounts, roster
from hub.records import entries, review

from .hubweb import PASSWORD, csrf_token, post_json, sign_in, signed_in

B1, B2 = "内科第一党支部", "外科党支部"
TODAY_FORM = {"kind": "good_deed", "title": "帮助迷路的患者", "body": "送老人回病区"}


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


@pytest.fixture
def app(hub_app, db):
    return hub_app


def branch_reviewer(app, db, branch, username="b-rev", lang="en"):
    """Signed in as a branch reviewer of ``branch`` (``signed_in`` gives no branch)."""
    with db.conn:
        accounts.create(db, username, "branch_reviewer", PASSWORD, branch=branch)
    client = app.test_client()
    assert sign_in(client, username).status_code == 303
    client.csrf = csrf_token(client, "/login")
    client.get(f"/lang/{lang}")
    return client


@pytest.fixture
def people(app, db):
    return {
        "N001": signed_in(app, db, "staff", staff_id="N001", username="N001", lang="en"),
        "N002": signed_in(app, db, "staff", staff_id="N002", username="N002", lang="en"),
        "nursing": signed_in(app, db, "dept_reviewer", department="nursing",
                             username="nursing-rev", lang="en"),
        "cardio": signed_in(app, db, "dept_reviewer", department="cardiology",
                            username="cardio-rev", lang="en"),
        "b1": branch_reviewer(app, db, B1, "b1-rev"),
        "b2": branch_reviewer(app, db, B2, "b2-rev"),
        "committee": signed_in(app, db, "committee_reviewer", username="committee", lang="en"),
        "office": signed_in(app, db, "office", lang="en"),
    }


def text(response) -> str:
    return response.get_data(as_text=True)


def file_entry(client, **form):
    day = datetime.now(entries.HOSPITAL_TZ).date().isoformat()  # the app's default zone
    response = client.post("/me/records", data={**TODAY_FORM, "occurred_on": day, **form,
                                                "csrf_token": client.csrf})
    assert response.status_code == 303, text(response)
    return max(e["id"] for e in client.get("/api/v1/me/records").get_json()["entries"])


def decide_page(client, entry_id, action="approve", reason=""):
    return client.post(f"/records/{entry_id}/decision",
                       data={"action": action, "reason": reason, "csrf_token": client.csrf})


def test_inbox_counts_and_bulk_approve(db, people):
    first = file_entry(people["N001"])
    second = file_entry(people["N001"], kind="thanks_letter", title="患者感谢信")
    third = file_entry(people["N002"])
    with write_transaction(db):
        other = entries.file_entry(db, "C001", "good_deed", "心内科的", "", "2025-01-02",
                                   who="C001")["id"]

    page = text(people["nursing"].get("/records/"))
    for entry_id in (first, second, third):
        assert f'id="entry-{entry_id}"' in page
        assert f'name="entry" value="{entry_id}"' in page
    assert f'id="entry-{other}"' not in page and "Thank-you letter from a patient" in page
    listed = people["nursing"].get("/api/v1/records").get_json()
    assert [(lv["name"], lv["pending"], lv["decides"]) for lv in listed["levels"]] == [
        ("department", 3, True), ("branch", 0, False), ("committee", 0, False)]
    assert {e["id"] for e in listed["entries"]} == {first, second, third}

    # the office reads every department's, without the forms that decide
    office = text(people["office"].get("/records/"))
    assert f'id="entry-{other}"' in office and 'name="entry"' not in office

    response = people["nursing"].post("/records/approve", data={
        "entry": [str(first), str(second), str(other)], "csrf_token": people["nursing"].csrf},
        follow_redirects=True)
    page = text(response)
    assert response.status_code == 200 and "Approved: 2." in page
    assert f"Entry {other}: Unknown entry {other}." in page
    levels = people["nursing"].get("/api/v1/records").get_json()["levels"]
    assert [lv["pending"] for lv in levels] == [1, 2, 0]
    b1 = people["b1"].get("/api/v1/records").get_json()  # N001 and C001 are in B1
    assert {e["id"] for e in b1["entries"]} == {first, second}
    assert [lv["pending"] for lv in b1["levels"]] == [1, 2, 0]

    bulk = post_json(people["b1"], "/api/v1/records/approve", {"ids": [first, third, 99999]})
    assert bulk.status_code == 200
    assert bulk.get_json()["approved"] == [first]
    assert [(r["id"], r["status"]) for r in bulk.get_json()["refused"]] == [
        (third, 404), (99999, 404)]
    assert post_json(people["b1"], "/api/v1/records/approve", {"ids": []}).status_code == 400
    assert people["nursing"].post("/records/approve", data={
        "csrf_token": people["nursing"].csrf}).status_code == 400


def test_overdue_entries_are_marked(db, people):
    with write_transaction(db):
        late = entries.file_entry(db, "N001", "good_deed", "迟到的", "", "2025-01-02",
                                  who="N001", now=datetime.now(timezone.utc)
                                  - timedelta(days=8))["id"]
    page = text(people["nursing"].get("/records/"))
    assert re.search(rf'<tr id="entry-{late}" class="overdue">', page) and "overdue" in page
    assert people["nursing"].get("/api/v1/records").get_json()["levels"][0]["overdue"] == 1


def test_the_owner_sees_the_whole_history_and_resubmits(db, people):
    owner = people["N001"]
    entry_id = file_entry(owner)
    assert decide_page(people["nursing"], entry_id).status_code == 303
    sent_back = post_json(people["b1"], f"/api/v1/records/{entry_id}/decision",
                          {"action": "return", "reason": "请补充时间和地点"})
    assert sent_back.status_code == 200 and sent_back.get_json()["state"] == "returned"

    page = text(owner.get("/me/records"))
    assert "Sent back" in page and "请补充时间和地点" in page and "b1-rev" in page
    mine = owner.get("/api/v1/me/records").get_json()
    assert mine["staff_id"] == "N001"
    assert [s["action"] for s in mine["entries"][0]["history"]] == ["submit", "approve",
                                                                    "return"]
    page = text(owner.get(f"/records/{entry_id}"))
    assert "Edit and resubmit" in page and "Decision" not in page

    response = owner.post(f"/me/records/{entry_id}/resubmit", data={
        "title": "", "body": "x", "occurred_on": "2025-01-02", "csrf_token": owner.csrf})
    assert response.status_code == 400 and "The entry needs a title." in text(response)
    response = owner.post(f"/me/records/{entry_id}/resubmit", data={
        "title": "帮助迷路的患者（补充）", "body": "上午十点，门诊楼", "occurred_on": "2025-01-02",
        "csrf_token": owner.csrf})
    assert response.status_code == 303
    detail = owner.get(f"/api/v1/records/{entry_id}").get_json()
    assert (detail["state"], detail["level"], detail["level_name"]) == (
        "pending", 0, "department")
    assert [s["action"] for s in detail["history"]] == ["submit", "approve", "return",
                                                        "resubmit"]
    assert detail["may_decide"] is False
    # someone else's entry and someone else's resubmission do not exist for them
    assert people["N002"].get(f"/records/{entry_id}").status_code == 404
    assert post_json(people["N002"], f"/api/v1/records/{entry_id}/resubmit",
                     {"title": "x", "occurred_on": "2025-01-02"}).status_code == 404
    assert post_json(owner, f"/api/v1/records/{entry_id}/resubmit",
                     {"title": "x", "occurred_on": "2025-01-02"}).status_code == 409


def test_every_decision_is_audited(db, people):
    ids = [file_entry(people["N001"]) for _ in range(3)]
    assert decide_page(people["nursing"], ids[0]).status_code == 303
    assert post_json(people["nursing"], f"/api/v1/records/{ids[1]}/decision",
                     {"action": "reject", "reason": "重复提交"}).status_code == 200
    assert post_json(people["nursing"], "/api/v1/records/approve",
                     {"ids": [ids[2]]}).status_code == 200
    assert post_json(people["nursing"], f"/api/v1/records/{ids[1]}/decision",
                     {"action": "approve"}).status_code == 409  # refused: no row

    rows = audit.entries(db, action="record.decision")
    assert sorted((r["target"], r["who"], r["detail"]["decision"], r["detail"]["level"])
                  for r in rows) == sorted([
        (f"record:{ids[0]}", "nursing-rev", "approve", "department"),
        (f"record:{ids[1]}", "nursing-rev", "reject", "department"),
        (f"record:{ids[2]}", "nursing-rev", "approve", "department")])
    assert next(r for r in rows if r["target"] == f"record:{ids[1]}")["detail"]["reason"] \
        == "重复提交"
    decisions = sum(1 for i in ids for s in entries.history(db, i) if s["action"] != "submit")
    assert decisions == len(rows) == 3
    assert len(audit.entries(db, action="record.file")) == 3


def test_reviewers_cannot_decide_outside_their_department_branch_or_level(db, people):
    entry_id = file_entry(people["N001"])  # nursing, branch B1, at the department level

    assert people["cardio"].get(f"/records/{entry_id}").status_code == 404
    assert decide_page(people["cardio"], entry_id).status_code == 404
    assert post_json(people["cardio"], f"/api/v1/records/{entry_id}/decision",
                     {"action": "approve"}).status_code == 404
    assert people["cardio"].get("/records/people/N001").status_code == 404
    assert people["cardio"].get("/api/v1/records?staff_id=N001").status_code == 404
    assert post_json(people["b2"], f"/api/v1/records/{entry_id}/decision",
                     {"action": "approve"}).status_code == 404
    # seen, but not theirs to decide at this level
    assert people["b1"].get(f"/records/{entry_id}").status_code == 200
    response = decide_page(people["b1"], entry_id)
    assert response.status_code == 403 and "a review level you do not decide" in text(response)
    assert post_json(people["committee"], f"/api/v1/records/{entry_id}/decision",
                     {"action": "approve"}).status_code == 403
    # the office reads and never decides; staff neither
    assert people["office"].get(f"/records/{entry_id}").status_code == 200
    assert decide_page(people["office"], entry_id).status_code == 403
    assert post_json(people["N002"], f"/api/v1/records/{entry_id}/decision",
                     {"action": "approve"}).status_code == 403
    assert audit.entries(db, action="record.decision") == []

    assert decide_page(people["nursing"], entry_id).status_code == 303
    assert post_json(people["nursing"], f"/api/v1/records/{entry_id}/decision",
                     {"action": "approve"}).status_code == 403  # it is at the branch now
    response = post_json(people["b1"], f"/api/v1/records/{entry_id}/decision",
                         {"action": "reject"})
    assert response.status_code == 400 and "reason" in response.get_json()["error"]
    page = text(people["b1"].get(f"/records/{entry_id}"))
    assert 'name="action" value="approve"' in page
    assert (entries.get_entry(db, entry_id)["state"], entries.get_entry(db, entry_id)["level"]) \
        == ("pending", 1)


def test_the_people_view_is_read_only(db, people):
    entry_id = file_entry(people["N001"])
    page = text(people["office"].get("/records/people/N001"))
    assert f'id="entry-{entry_id}"' in page and "王芳" in page and "<form" not in \
        page.split("<main>")[1].split("</main>")[0]
    body = people["office"].get("/api/v1/records?staff_id=N001").get_json()
    assert body["staff_id"] == "N001" and [e["id"] for e in body["entries"]] == [entry_id]
    looks = audit.entries(db, action="person.view", target="staff:N001")
    assert [(r["who"], r["detail"]) for r in looks] == [
        ("office-user", {"page": "records", "via": "api"}), ("office-user", {"page": "records"})]
    assert people["b2"].get("/records/people/N001").status_code == 404
    assert people["b1"].get("/records/people/C001").status_code == 200


def test_filing_checks_what_is_typed_and_keeps_it(db, people):
    owner = people["N001"]
    response = owner.post("/me/records", data={"kind": "attendance", "title": "我的标题",
                                               "occurred_on": "2025-01-02",
                                               "csrf_token": owner.csrf})
    assert response.status_code == 400 and "我的标题" in text(response)
    bad = post_json(owner, "/api/v1/records", {"kind": "good_deed", "title": "x",
                                               "occurred_on": "3025-01-01"})
    assert bad.status_code == 400 and "future" in bad.get_json()["error"]
    good = post_json(owner, "/api/v1/records", {"kind": "volunteering", "title": "社区义诊",
                                                "occurred_on": "2025-01-02"})
    assert good.status_code == 201 and good.get_json()["history"][0]["who"] == "N001"
    # an account linked to no staff member has no entries of its own
    assert people["office"].get("/me/records").status_code == 403


def test_pages_are_in_chinese_by_default(app, db):
    client = signed_in(app, db, "dept_reviewer", department="nursing", username="rev-zh")
    with write_transaction(db):
        entry = entries.file_entry(db, "N001", "thanks_letter", "感谢信", "", "2025-01-02",
                                   who="N001")
    for path in ("/records/", f"/records/{entry['id']}", "/records/people/N001"):
        response = client.get(path)
        assert response.status_code == 200 and '<html lang="zh-CN">' in text(response)
        assert "护理部" in text(response) or "感谢信" in text(response)


def test_accounts_carry_a_party_branch(app, db):
    admin = signed_in(app, db, "admin", lang="en")
    missing = post_json(admin, "/api/v1/accounts", {"username": "b-rev", "role":
                                                    "branch_reviewer", "password": "x" * 12})
    assert missing.status_code == 400 and "party branch" in missing.get_json()["error"]
    made = post_json(admin, "/api/v1/accounts", {"username": "b-rev", "role": "branch_reviewer",
                                                 "password": "x" * 12, "branch": B1})
    assert made.status_code == 201 and made.get_json()["branch"] == B1
    page = text(admin.get("/accounts/b-rev"))
    assert f'value="{B1}"' in page and "Party branch reviewer" in page
    response = admin.post("/accounts/b-rev/role", data={
        "role": "committee_reviewer", "branch": "", "csrf_token": admin.csrf})
    assert response.status_code == 303
    assert accounts.get(db, "b-rev")["role"] == "committee_reviewer"
    rows = audit.entries(db, action="account.")
    assert rows[0]["detail"]["role"] == "committee_reviewer"


def test_the_roster_keeps_the_party_branch(app, db):
    office = signed_in(app, db, "office", lang="en")
    assert f'value="{B1}"' in text(office.get("/staff/N001"))
    response = office.post("/staff/N001/edit", data={
        "name": "王芳", "department": "nursing", "role": "staff", "branch": B2,
        "csrf_token": office.csrf})
    assert response.status_code == 303
    assert roster.get_staff(db, "N001")["branch"] == B2

    csv_text = ("工号,姓名,科室,角色,党支部\n"
                f"N002,李娜,nursing,支部审核员,{B1}\n"
                "N003,孙丽,nursing,,\n")
    result = post_json(office, "/api/v1/staff/import", {"csv": csv_text})
    assert result.status_code == 200, result.get_json()
    rows = result.get_json()["rows"]
    assert [(r["staff_id"], r["branch"], r["changes"], r["account"]) for r in rows] == [
        ("N002", B1, ["role", "branch"], "create"), ("N003", None, [], None)]
    assert roster.get_staff(db, "N002")["branch"] == B1
    account = accounts.get(db, "N002")
    assert (account["role"], account["branch"]) == ("branch_reviewer", B1)
    # without the column, nobody's branch changes; a branch reviewer without one is an error
    result = post_json(office, "/api/v1/staff/import?dry_run=1",
                       {"csv": "工号,姓名,科室\nN002,李娜,nursing\n"})
    assert result.get_json()["rows"][0]["branch"] == B1
    result = post_json(office, "/api/v1/staff/import?dry_run=1",
                       {"csv": "工号,姓名,科室,角色,党支部\nN003,孙丽,nursing,支部审核员,\n"})
    assert result.status_code == 422
    assert result.get_json()["errors"][0]["field"] == "branch"


def test_review_scope_follows_the_party_branch(db):
    """The branch an account reviews is the staff members' ``staff.branch``."""
    reviewer = {"username": "b", "role": "branch_reviewer", "department": None,
                "branch": B2, "staff_id": None}
    assert review.staff_visible(db, reviewer, "N002")
    assert not review.staff_visible(db, reviewer, "N001")
