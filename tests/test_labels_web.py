"""What a Chinese reader sees where the hub stores codes (hub/web/labels.py):
department names, category labels, zone names, check-in methods, ticket
sources, audit actions and the hub's own ticket history in words; hours
written alike everywhere; the ticket's move form asking for a choice; and
the dashboard's 400/403/404/409 pages in the reader's language."""

import re
from datetime import datetime, timedelta, timezone

import pytest
from flask import abort

from hub.web import labels
from protocol.clock import iso

from .hubweb import signed_in
from .hubworld import REVIEWED, world

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def setup(hub_db, hub_app, tmp_path):
    """A small hospital (tests/hubworld.py), a person whose department the
    departments table does not name, and the app on it."""
    examples = world(hub_db, tmp_path)
    now = datetime.now(timezone.utc)
    with hub_db.conn:
        hub_db["staff"].insert({"staff_id": "S003", "name": "Wu Fang",
                                "department": "old_ward", "role": "staff"})
        hub_db["checkins"].insert({"id": "chk-1", "node": "hall-a-1", "ts": iso(now),
                                   "received_at": iso(now), "staff_id": "S001",
                                   "event_id": "ev-1", "zone": "hall-a", "method": "portal"})
    return hub_app, hub_db, examples


def text(response, status: int = 200) -> str:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    return response.get_data(as_text=True)


def cells(page: str) -> list[str]:
    return re.findall(r"<td>([^<]*)</td>", page)


# -- department names ------------------------------------------------------------

def test_pages_show_the_department_name_not_its_code(setup):
    app, db, examples = setup
    office = signed_in(app, db, "office")
    event = text(office.get("/events/ev-1"))
    assert "应到：Environmental services" in event
    assert "Environmental services" in cells(event)  # the attendance table's column
    assert REVIEWED not in cells(event) and f"：{REVIEWED}" not in event
    for path in ("/events/ev-1/live", "/"):
        page = text(office.get(path))
        assert "Environmental services" in cells(page) and REVIEWED not in cells(page), path

    person = text(office.get("/people/S001"))
    assert re.search(r"<small>S001 · Environmental services</small>", person)
    listing = text(office.get("/people/"))
    assert "Environmental services" in cells(listing) and REVIEWED not in cells(listing)
    assert f'<option value="{REVIEWED}">Environmental services</option>' in listing
    assert "old_ward" in cells(listing)  # no name in the table: the code
    hours = text(office.get("/hours/"))
    assert "Environmental services" in cells(hours) and REVIEWED not in cells(hours)


def test_the_accounts_list_shows_a_reviewers_department_by_name(setup):
    app, db, _ = setup
    signed_in(app, db, "dept_reviewer", username="cleaning-lead")
    admin = signed_in(app, db, "admin")
    page = text(admin.get("/accounts/"))
    assert "Environmental services" in cells(page) and REVIEWED not in cells(page)


# -- categories, zones, methods, sources -------------------------------------------

def test_a_category_label_is_chinese_on_the_board_and_the_ticket(setup):
    app, db, examples = setup
    office = signed_in(app, db, "office")
    board = text(office.get("/tickets/"))
    assert "环境卫生" in cells(board) and "安全隐患" in cells(board)
    assert '<option value="hygiene">环境卫生</option>' in board
    assert "hygiene" not in cells(board) and "Hygiene" not in board
    ticket = text(office.get(f"/tickets/{examples['ticket_id']}"))
    assert "<dd>环境卫生</dd>" in ticket and "<dd>现场上报</dd>" in ticket  # the source
    assert "<dd>node</dd>" not in ticket
    hotspots = text(office.get("/hotspots/"))
    assert '<option value="hygiene">环境卫生</option>' in hotspots

    office.get("/lang/en")
    assert "Hygiene" in cells(text(office.get("/tickets/")))
    ticket = text(office.get(f"/tickets/{examples['ticket_id']}"))
    assert "<dd>Hygiene</dd>" in ticket and "<dd>On-site report</dd>" in ticket


def test_a_label_the_site_changed_is_shown_as_stored(setup):
    app, db, _ = setup
    with db.conn:
        db.conn.execute("UPDATE category_settings SET label = '消防与用电安全' "
                        "WHERE category = 'safety'")
    office = signed_in(app, db, "office")
    office.get("/lang/en")
    board = text(office.get("/tickets/"))
    assert "消防与用电安全" in cells(board) and "Hygiene" in cells(board)
    assert labels.category_label("parking", None) == "parking"
    assert labels.category_label("parking", "Parking") == "Parking"


def test_a_persons_record_shows_category_labels_zone_names_and_methods(setup):
    app, db, examples = setup
    office = signed_in(app, db, "office")
    person = text(office.get("/people/S001"))
    hours_table = person[person.index('id="hours"'):person.index('id="reports"')]
    reports_table = person[person.index('id="reports"'):]
    for table in (hours_table, reports_table):
        assert "环境卫生" in cells(table) and "Lecture hall A" in cells(table)
        assert "hygiene" not in cells(table) and "hall-a" not in cells(table)
    assert "0.5" in cells(hours_table)  # the hygiene seed's credit, as a person writes it
    event = text(office.get("/events/ev-1"))
    assert "手机签到" in cells(event) and "portal" not in cells(event)
    assert "1 学时" in event  # 1.0 credit hours read "1"


def test_hours_are_written_alike_everywhere(setup):
    app, db, _ = setup
    assert [labels.hours(v) for v in (1.0, 1, 1.5, 0.25, 0, 0.0, 12.50, None)] == [
        "1", "1", "1.5", "0.25", "0", "0", "12.5", ""]
    office = signed_in(app, db, "office")
    listing = text(office.get("/people/?q=S001"))
    assert re.search(r"<td>0</td>\s*<td>0\.5</td>", listing)  # approved, pending
    assert "0.0" not in cells(listing)
    person = text(office.get("/people/S001"))
    assert "<strong>0</strong>" in person and "<strong>0.5</strong>" in person
    assert "<strong>0.0</strong>" not in person


# -- the ticket's history and move form ----------------------------------------------

def test_the_hubs_own_history_comment_is_in_words_and_the_stored_one_unchanged(setup):
    app, db, examples = setup
    office = signed_in(app, db, "office")
    ticket_id = examples["ticket_id"]
    [(report_id,)] = db.conn.execute("SELECT report_id FROM tickets WHERE id = ?",
                                     (ticket_id,)).fetchall()
    page = text(office.get(f"/tickets/{ticket_id}"))
    assert "系统" in cells(page) and "system" not in cells(page)
    assert f"由上报 {report_id[:8]} 自动创建" in cells(page)
    assert "created from report" not in page
    stored = db.conn.execute("SELECT who, comment FROM ticket_history WHERE ticket_id = ? "
                             "AND from_state IS NULL", (ticket_id,)).fetchone()
    assert stored == ("system", f"created from report {report_id}")
    office.get("/lang/en")
    assert f"Created from report {report_id[:8]}" in text(office.get(f"/tickets/{ticket_id}"))


def test_the_move_form_asks_for_a_choice_and_an_empty_one_changes_nothing(setup):
    app, db, examples = setup
    office = signed_in(app, db, "office")
    ticket_id = examples["ticket_id"]
    page = text(office.get(f"/tickets/{ticket_id}"))
    assert re.search(
        r'<select name="to" required>\s*<option value="" selected>— 请选择 —</option>', page)

    def state():
        return (db.conn.execute("SELECT state, updated_at FROM tickets WHERE id = ?",
                                (ticket_id,)).fetchone(),
                db.conn.execute("SELECT COUNT(*) FROM ticket_history").fetchone(),
                db.conn.execute("SELECT COUNT(*) FROM audit_log WHERE action != 'login'"
                                ).fetchone())

    before = state()
    refused = office.post(f"/tickets/{ticket_id}/transition",
                          data={"to": "", "comment": "kept", "csrf_token": office.csrf})
    page = text(refused, 400)
    assert "请选择工单要转入的状态。" in page
    assert ">kept</textarea>" in page  # what was typed is not lost
    assert state() == before


# -- audit actions ---------------------------------------------------------------------

def test_the_audit_history_names_what_was_done(setup):
    app, db, _ = setup
    office = signed_in(app, db, "office")
    assert office.post("/staff/S001/pin", data={"csrf_token": office.csrf}).status_code == 200
    page = text(office.get("/staff/S001"))
    assert "重置 PIN 码" in cells(page) and "staff.pin_reset" not in page
    admin = signed_in(app, db, "admin")
    assert admin.post("/accounts/office-user/password", data={
        "csrf_token": admin.csrf, "password": "another long secret"}).status_code == 303
    page = text(admin.get("/accounts/office-user"))
    assert "设置密码" in cells(page) and "account.password" not in page
    assert labels.action_label("something.new") == "something.new"


# -- error pages ------------------------------------------------------------------------

def test_dashboard_errors_are_pages_in_the_readers_language(setup):
    app, db, _ = setup
    app.add_url_rule("/conflict-for-test", "conflict_for_test",
                     lambda: abort(409, description="it changed"))
    office = signed_in(app, db, "office")
    staff = signed_in(app, db, "staff")

    page = text(office.get("/tickets/999999"), 404)
    assert '<html lang="zh-CN">' in page and "未找到" in page and "退出登录" in page
    assert "unknown ticket: 999999" in page  # the reason, as detail
    page = text(office.get("/no/such/page"), 404)
    assert "未找到" in page and "The requested URL was not found" not in page
    page = text(staff.get("/people/"), 403)
    assert "无权访问" in page and "Forbidden" not in page
    page = text(office.get("/hotspots/?plan=abc"), 400)
    assert "请求有误" in page and "plan must be a floor plan id" in page
    page = text(office.get("/conflict-for-test"), 409)
    assert "操作冲突" in page and "it changed" in page
    page = text(office.post("/tickets/1/transition", data={"to": "closed"}), 400)
    assert "CSRF 校验未通过" in page
    assert CJK.search(page)

    office.get("/lang/en")
    page = text(office.get("/tickets/999999"), 404)
    assert '<html lang="en">' in page and "Not found" in page and "未找到" not in page

    # the JSON API and Open311 keep their JSON errors
    response = office.get("/api/v1/tickets/999999")
    assert response.status_code == 404 and response.is_json and "error" in response.get_json()
    response = office.get("/open311/v2/requests/999999.json")
    assert response.status_code == 404 and response.is_json
