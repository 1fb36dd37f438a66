"""The roster area against a real SQLite file: departments, CSV import with
preview and confirm, PIN resets, device bindings, the JSON API and
``rounds-hub roster``."""

import base64
import io
import json
import re

import pytest
from click.testing import CliRunner

from hub.cli.main import main as hub_main
from hub.ingest import downlink
from hub.people import account_admin, roster, roster_import
from protocol.pins import hash_pin, verify_pin

from .conftest import hub_db_settings
from .hubweb import post_json, signed_in

HEADER = "staff_number,name,department,role\n"
_HIDDEN_CSV = re.compile(r'name="csv" value="([^"]*)"')
_PIN = re.compile(r'<p class="pin" id="pin">(\d{6})</p>')


@pytest.fixture
def db(hub_db):
    with hub_db.conn:
        roster.add_department(hub_db, "cardiology", "心内科")
        roster.add_department(hub_db, "icu", "重症医学科")
    return hub_db


@pytest.fixture
def office(hub_app, db):
    """The office reading the pages in English (the default is Chinese)."""
    return signed_in(hub_app, db, "office", lang="en")


def staff_rows(db) -> list[tuple]:
    return db.conn.execute("SELECT staff_id, name, department, role, pin_hash FROM staff "
                           "ORDER BY staff_id").fetchall()


def audit_rows(db, action: str) -> list[tuple]:
    return db.conn.execute("SELECT who, target, detail FROM audit_log WHERE action = ? "
                           "ORDER BY id", (action,)).fetchall()


def add_person(db, staff_id, name, department="cardiology", pin=None):
    with db.conn:
        db.conn.execute("INSERT INTO staff (staff_id, name, department, pin_hash) "
                        "VALUES (?, ?, ?, ?)",
                        (staff_id, name, department, hash_pin(pin) if pin else None))


def import_csv(client, text: str, dry_run: bool = False):
    path = "/api/v1/staff/import" + ("?dry_run=1" if dry_run else "")
    return client.post(path, data=text.encode(), content_type="text/csv",
                       headers={"X-CSRFToken": client.csrf})


# --- import: errors, all or nothing ---------------------------------------------


def test_bad_rows_are_reported_by_line_and_nothing_is_imported(office, db):
    add_person(db, "1000", "Old Name", pin="123456")
    before = staff_rows(db)
    accounts_before = db.conn.execute("SELECT * FROM accounts").fetchall()
    text = HEADER + (
        "1001,Li Na,cardiology,office\n"      # line 2: fine on its own
        "1002,,cardiology,\n"                 # line 3: no name
        "1001,Zhang Wei,icu,\n"               # line 4: duplicate number
        "1003,Wang Fang,oncology,\n"          # line 5: unknown department
        "1004,Chen Jie,icu,boss\n"            # line 6: bad role
        f"1005,{'x' * 101},icu,\n"            # line 7: name too long
        ",No Number,icu,\n"                   # line 8: no staff number
        "1000,New Name,icu,staff\n"           # line 9: an update, fine
    )

    response = import_csv(office, text)

    assert response.status_code == 422
    body = response.get_json()
    assert body["applied"] is False
    assert [(e["line"], e["field"]) for e in body["errors"]] == [
        (3, "name"), (4, "staff_number"), (5, "department"), (6, "role"), (7, "name"),
        (8, "staff_number")]
    assert "first on line 2" in body["errors"][1]["reason"]
    assert "oncology" in body["errors"][2]["reason"]
    assert [row["action"] for row in body["rows"]] == [
        "new", "invalid", "invalid", "invalid", "invalid", "invalid", "invalid", "update"]
    assert (body["rows"][3]["department"], body["rows"][4]["role"]) == ("oncology", "boss")
    assert body["counts"] == {"rows": 8, "new": 1, "update": 1, "unchanged": 0, "invalid": 6,
                              "errors": 6}
    assert staff_rows(db) == before
    assert db.conn.execute("SELECT * FROM accounts").fetchall() == accounts_before
    assert audit_rows(db, "roster.import") == []


def test_a_file_without_the_needed_columns_is_refused_whole(office, db):
    response = import_csv(office, "\n number , full name\n1001,Li Na\n")

    assert response.status_code == 422
    (error,) = response.get_json()["errors"]
    assert (error["line"], error["field"]) == (2, "name")
    assert error["reason"].startswith("no name column")
    assert response.get_json()["rows"] == []
    assert staff_rows(db) == []


def test_an_account_of_the_same_name_that_is_someone_elses_blocks_the_row(db):
    with db.conn:
        account_admin.create_account(db, "1001", "office", None)  # not linked to a person

    result = roster_import.import_roster(db, HEADER + "1001,Li Na,icu,dept_reviewer\n",
                                         apply=True, may_grant_admin=True)

    assert [(i.line, i.field) for i in result.issues] == [(2, "staff_number")]
    assert not result.applied and staff_rows(db) == []
    assert account_admin.get_account(db, "1001")["role"] == "office"


def test_good_import_then_reimport_counts_updates_and_unchanged(office, db):
    add_person(db, "1000", "Old Name", pin="654321")
    pin_hash = staff_rows(db)[0][4]
    text = HEADER + ("1000,Zhou Min,cardiology,\n"
                     "1001,Li Na,Cardiology,office\n"     # department id in another case
                     "1002,Zhang Wei,重症医学科,dept_reviewer\n")  # department by name

    first = import_csv(office, text)

    assert first.status_code == 200, first.get_json()
    assert first.get_json()["applied"] is True
    assert first.get_json()["counts"] == {"rows": 3, "new": 2, "update": 1, "unchanged": 0,
                                          "invalid": 0, "errors": 0}
    assert staff_rows(db) == [("1000", "Zhou Min", "cardiology", "staff", pin_hash),
                              ("1001", "Li Na", "cardiology", "office", None),
                              ("1002", "Zhang Wei", "icu", "dept_reviewer", None)]
    assert db.conn.execute(
        "SELECT username, role, department, staff_id, password_hash FROM accounts "
        "WHERE username IN ('1001', '1002') ORDER BY username").fetchall() == [
        ("1001", "office", "cardiology", "1001", None),
        ("1002", "dept_reviewer", "icu", "1002", None)]

    again = import_csv(office, text.replace("Zhang Wei,重症医学科,dept_reviewer",
                                            "Zhang Wei,icu,"))

    assert again.status_code == 200
    body = again.get_json()
    assert body["counts"] == {"rows": 3, "new": 0, "update": 1, "unchanged": 2, "invalid": 0,
                              "errors": 0}
    assert body["rows"][2]["changes"] == ["role"] and body["rows"][2]["account"] == "update"
    assert db.conn.execute("SELECT role FROM accounts WHERE username = '1002'").fetchone() == (
        "staff",)  # back to staff: the linked account is demoted with the person
    audits = audit_rows(db, "roster.import")
    assert [(who, json.loads(detail)) for who, _target, detail in audits] == [
        ("office-user", {"rows": 3, "new": 2, "update": 1, "unchanged": 0}),
        ("office-user", {"rows": 3, "new": 0, "update": 1, "unchanged": 2})]


def test_chinese_headers_with_a_bom_and_a_dry_run(office, db):
    text = "\ufeff工号,姓名,科室,角色\r\n2001,王芳,心内科,员工\r\n\r\n2002,刘洋,icu,\r\n"

    response = office.post("/api/v1/staff/import?dry_run=1", json={"csv": text},
                           headers={"X-CSRFToken": office.csrf})

    assert response.status_code == 200
    body = response.get_json()
    assert body["applied"] is False and body["errors"] == []
    assert [(r["line"], r["staff_id"], r["department"], r["role"], r["action"])
            for r in body["rows"]] == [(2, "2001", "cardiology", "staff", "new"),
                                       (4, "2002", "icu", "staff", "new")]
    assert staff_rows(db) == []


def test_only_an_admin_may_import_the_admin_role(office, db):
    response = import_csv(office, HEADER + "3001,Boss,cardiology,admin\n")

    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "role"
    assert staff_rows(db) == []


# --- import through the pages: upload, preview, confirm --------------------------


def test_preview_then_confirm_through_the_pages(office, db):
    upload = HEADER + "1001,Li Na,cardiology,\n1002,Zhang Wei,icu,\n"

    preview = office.post("/staff/import", data={
        "csrf_token": office.csrf,
        "csv_file": (io.BytesIO(b"\xef\xbb\xbf" + upload.encode()), "staff.csv")},
        content_type="multipart/form-data")

    assert preview.status_code == 200
    page = preview.get_data(as_text=True)
    assert page.count('class="action-new"') == 2
    assert staff_rows(db) == []  # a preview writes nothing
    payload = _HIDDEN_CSV.search(page).group(1)
    assert base64.b64decode(payload).decode().startswith("staff_number")

    forged = office.post("/staff/import/confirm", data={"csv": payload})  # no CSRF token
    assert forged.status_code == 400
    assert staff_rows(db) == []

    confirmed = office.post("/staff/import/confirm",
                            data={"csv": payload, "csrf_token": office.csrf})

    assert confirmed.status_code == 303
    assert [row[:3] for row in staff_rows(db)] == [("1001", "Li Na", "cardiology"),
                                                    ("1002", "Zhang Wei", "icu")]
    assert [who for who, _t, _d in audit_rows(db, "roster.import")] == ["office-user"]
    listing = office.get("/staff/").get_data(as_text=True)
    assert "Li Na" in listing and "Zhang Wei" in listing


def test_a_large_roster_goes_through_preview_and_confirm(office, db):
    rows = "".join(f"{n},{'Name ' * 18}{n},icu,\n" for n in range(10000, 16000))
    upload = HEADER + rows  # ~0.7 MB: more than Flask's default form field limit

    preview = office.post("/staff/import", data={  # pasted, as the browser sends it
        "csrf_token": office.csrf, "csv_file": (io.BytesIO(b""), ""), "csv_text": upload},
        content_type="multipart/form-data")
    assert preview.status_code == 200
    payload = _HIDDEN_CSV.search(preview.get_data(as_text=True)).group(1)
    confirmed = office.post("/staff/import/confirm",
                            data={"csv": payload, "csrf_token": office.csrf})

    assert confirmed.status_code == 303
    assert db.conn.execute("SELECT COUNT(*) FROM staff").fetchone() == (6000,)


def test_a_preview_with_errors_offers_no_confirm_and_a_bad_confirm_imports_nothing(office, db):
    bad = HEADER + "1001,Li Na,oncology,\n"

    preview = office.post("/staff/import", data={"csrf_token": office.csrf, "csv_text": bad})

    assert preview.status_code == 422
    page = preview.get_data(as_text=True)
    assert 'name="csv"' not in page and "oncology" in page
    confirmed = office.post("/staff/import/confirm", data={
        "csrf_token": office.csrf, "csv": base64.b64encode(bad.encode()).decode()})
    assert confirmed.status_code == 422
    assert "Nothing was imported" in confirmed.get_data(as_text=True)
    assert staff_rows(db) == []


def test_every_roster_page_renders_for_the_office(office, db):
    add_person(db, "1001", "Li Na")
    add_person(db, "9001", "Legacy", "Old Ward")  # a department from before the table

    for path, text in (("/staff/", "Li Na"), ("/staff/?department=icu", "Nobody matches"),
                       ("/staff/1001", "No phone is bound"), ("/departments/", "重症医学科"),
                       ("/staff/9001", 'value="Old Ward" selected')):
        response = office.get(path)
        assert response.status_code == 200, path
        assert text in response.get_data(as_text=True), path
    assert office.get("/staff/nobody").status_code == 404
    assert office.get("/accounts/").status_code == 403


# --- departments --------------------------------------------------------------------


def test_departments_are_added_by_page_and_api_and_listed(office, db):
    added = post_json(office, "/api/v1/departments", {"department": "er", "name": "急诊科"})
    again = post_json(office, "/api/v1/departments", {"department": "er", "name": "Other"})
    empty = post_json(office, "/api/v1/departments", {"department": "", "name": "Nameless"})
    page = office.post("/departments/", data={"csrf_token": office.csrf,
                                              "department": "lab", "name": "检验科"})
    add_person(db, "1001", "Li Na", "er")

    assert added.status_code == 201 and added.get_json() == {
        "department": "er", "name": "急诊科", "staff": 0}
    assert again.status_code == 409 and empty.status_code == 400
    assert page.status_code == 303
    listing = office.get("/api/v1/departments").get_json()
    assert {d["department"]: d["staff"] for d in listing} == {
        "cardiology": 0, "er": 1, "icu": 0, "lab": 0}
    assert [(who, target) for who, target, _d in audit_rows(db, "department.add")] == [
        ("office-user", "department:er"), ("office-user", "department:lab")]


# --- PINs ---------------------------------------------------------------------------


def test_a_pin_reset_shows_six_digits_once_and_stores_only_its_hash(office, db):
    add_person(db, "1001", "Li Na", pin="111111")

    response = office.post("/staff/1001/pin", data={"csrf_token": office.csrf})

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    pin = _PIN.search(response.get_data(as_text=True)).group(1)
    stored = db.conn.execute("SELECT pin_hash FROM staff WHERE staff_id = '1001'").fetchone()[0]
    assert verify_pin(pin, stored) and not verify_pin("111111", stored)
    assert pin not in stored
    assert pin not in office.get("/staff/1001").get_data(as_text=True)
    log = db.conn.execute("SELECT who, action, target, detail FROM audit_log").fetchall()
    assert ("office-user", "staff.pin_reset", "staff:1001", "{}") in log
    assert not any(pin in " ".join(map(str, row)) for row in log)

    by_api = office.post("/api/v1/staff/1001/pin", headers={"X-CSRFToken": office.csrf})
    assert by_api.status_code == 200
    new_pin = by_api.get_json()["pin"]
    stored = db.conn.execute("SELECT pin_hash FROM staff WHERE staff_id = '1001'").fetchone()[0]
    assert re.fullmatch(r"\d{6}", new_pin) and verify_pin(new_pin, stored)
    assert office.post("/api/v1/staff/nobody/pin",
                       headers={"X-CSRFToken": office.csrf}).status_code == 404


def test_a_department_pin_sheet_resets_that_department_only(office, db):
    add_person(db, "1001", "Li Na")
    add_person(db, "1002", "Zhang Wei")
    add_person(db, "2001", "Wang Fang", "icu", pin="222222")
    icu_hash = staff_rows(db)[2][4]

    unconfirmed = office.post("/staff/pins", data={"csrf_token": office.csrf,
                                                   "department": "cardiology"})
    assert unconfirmed.status_code == 303
    assert staff_rows(db)[0][4] is None

    sheet = office.post("/staff/pins", data={"csrf_token": office.csrf,
                                             "department": "cardiology", "confirm": "1"})

    assert sheet.status_code == 200 and sheet.headers["Cache-Control"] == "no-store"
    page = sheet.get_data(as_text=True)
    assert "@media print" in page
    issued = re.findall(r"<td>([^<]+)</td><td>(\d+)</td><td class=\"pin\">(\d{6})</td>", page)
    assert [(name, number) for name, number, _pin in issued] == [("Li Na", "1001"),
                                                                  ("Zhang Wei", "1002")]
    hashes = dict((row[0], row[4]) for row in staff_rows(db))
    assert all(verify_pin(pin, hashes[number]) for _name, number, pin in issued)
    assert hashes["2001"] == icu_hash
    (who, target, detail), = audit_rows(db, "staff.pin_reset_department")
    assert (who, target, json.loads(detail)) == ("office-user", "department:cardiology",
                                                 {"count": 2})
    assert not any(pin in detail for _n, _s, pin in issued)


# --- people, bindings, the list -----------------------------------------------------


def bind(db, device, staff_id):
    with db.conn:
        db.conn.execute("INSERT INTO devices (device, staff_id, bound_at, node) "
                        "VALUES (?, ?, ?, ?)", (device, staff_id, "2025-03-10T01:00:00.000Z",
                                                "node-hall-a"))


def test_revoking_a_binding_removes_it_and_changes_the_roster_sent_down(office, db):
    add_person(db, "1001", "Li Na")
    bind(db, "aaaaaaaaaaaaaaaa", "1001")
    bind(db, "bbbbbbbbbbbbbbbb", "1001")
    version = downlink.roster_document(db)["version"]
    assert "aaaaaaaaaaaaaaaa" in office.get("/staff/1001").get_data(as_text=True)

    response = office.post("/staff/1001/bindings/aaaaaaaaaaaaaaaa/revoke",
                           data={"csrf_token": office.csrf})

    assert response.status_code == 303
    document = downlink.roster_document(db)
    assert document["version"] != version
    assert document["bindings"] == [{"device": "bbbbbbbbbbbbbbbb", "staff_id": "1001"}]
    assert audit_rows(db, "device.revoke") == [
        ("office-user", "staff:1001", json.dumps({"device": "aaaaaaaaaaaaaaaa"}))]

    by_api = office.delete("/api/v1/staff/1001/bindings/bbbbbbbbbbbbbbbb",
                           headers={"X-CSRFToken": office.csrf})
    assert by_api.status_code == 200 and by_api.get_json()["bindings"] == []
    assert office.delete("/api/v1/staff/1001/bindings/bbbbbbbbbbbbbbbb",
                         headers={"X-CSRFToken": office.csrf}).status_code == 404
    assert db.conn.execute("SELECT COUNT(*) FROM devices").fetchone()[0] == 0


def test_the_staff_list_searches_filters_and_shows_pins_and_phones(office, db):
    add_person(db, "1001", "Li Na", pin="123456")
    add_person(db, "1002", "Zhang Wei")
    add_person(db, "2001", "Wang Fang", "icu")
    bind(db, "aaaaaaaaaaaaaaaa", "1001")

    page = office.get("/staff/?q=zhang").get_data(as_text=True)
    assert "Zhang Wei" in page and "Li Na" not in page
    people = office.get("/api/v1/staff?department=cardiology").get_json()
    assert [(p["staff_id"], p["department_name"], p["pin_set"], p["devices"])
            for p in people] == [("1001", "心内科", True, 1), ("1002", "心内科", False, 0)]
    assert [p["staff_id"] for p in office.get("/api/v1/staff?q=200").get_json()] == ["2001"]
    detail = office.get("/api/v1/staff/1001").get_json()
    assert detail["bindings"][0]["device"] == "aaaaaaaaaaaaaaaa" and "pin_hash" not in detail
    assert office.get("/api/v1/staff/nobody").status_code == 404


def test_a_reviewer_lists_only_their_own_department(hub_app, db):
    add_person(db, "1001", "Li Na")
    add_person(db, "2001", "Wang Fang", "icu")
    reviewer = signed_in(hub_app, db, "dept_reviewer", department="icu")

    assert [p["staff_id"] for p in reviewer.get("/api/v1/staff").get_json()] == ["2001"]
    assert reviewer.get("/api/v1/staff?department=icu").status_code == 200
    assert reviewer.get("/api/v1/staff?department=cardiology").status_code == 404
    assert reviewer.get("/api/v1/staff/2001").status_code == 403
    assert reviewer.get("/staff/").status_code == 403


def test_editing_a_person_keeps_their_account_in_step(office, db):
    add_person(db, "1001", "Li Na")

    saved = office.post("/staff/1001/edit", data={"csrf_token": office.csrf, "name": "Li Na",
                                                  "department": "icu", "role": "office"})
    refused = office.post("/staff/1001/edit", data={"csrf_token": office.csrf, "name": "Li Na",
                                                    "department": "icu", "role": "admin"})

    assert saved.status_code == 303
    assert refused.status_code == 400 and "admin" in refused.get_data(as_text=True)
    assert staff_rows(db)[0][:4] == ("1001", "Li Na", "icu", "office")
    assert db.conn.execute("SELECT role, department, staff_id FROM accounts "
                           "WHERE username = '1001'").fetchone() == ("office", "icu", "1001")
    (who, target, detail), = audit_rows(db, "staff.update")
    assert (who, target, json.loads(detail)) == (
        "office-user", "staff:1001", {"changes": ["department", "role"], "account": "create"})


# --- rounds-hub roster ---------------------------------------------------------------


@pytest.fixture
def config(tmp_path, hub_location, db):
    path = tmp_path / "hub.json"
    path.write_text(json.dumps({"site": "general-hospital",
                                **hub_db_settings(hub_location, tmp_path)}))
    return path


def run(config, *args, **kwargs):
    return CliRunner().invoke(hub_main, ["--config", str(config), *args], **kwargs)


def test_cli_roster_import_prints_row_errors_and_fails(config, tmp_path, db):
    csv_path = tmp_path / "staff.csv"
    csv_path.write_text(HEADER + "1001,Li Na,cardiology,\n1001,Zhang Wei,nowhere,\n",
                        encoding="utf-8")

    result = run(config, "roster", "import", str(csv_path))

    assert result.exit_code == 1
    assert "line 3 staff_number: duplicate staff number (first on line 2)" in result.output
    assert "line 3 department: unknown department nowhere" in result.output
    assert "nothing was imported" in result.output
    assert staff_rows(db) == []


def test_cli_roster_import_dry_run_then_for_real(config, tmp_path, db):
    csv_path = tmp_path / "staff.csv"
    csv_path.write_bytes(("\ufeff" + HEADER + "1001,Li Na,cardiology,\n").encode())

    dry = run(config, "roster", "import", str(csv_path), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "1 new" in dry.output and staff_rows(db) == []

    real = run(config, "roster", "import", str(csv_path))
    assert real.exit_code == 0, real.output
    assert [row[:2] for row in staff_rows(db)] == [("1001", "Li Na")]
    (who, _target, _detail), = audit_rows(db, "roster.import")
    assert who.startswith("cli:")


def test_cli_adds_and_lists_departments(config, db):
    added = run(config, "roster", "add-department", "er", "急诊科")
    twice = run(config, "roster", "add-department", "er", "急诊科")
    listed = run(config, "roster", "departments")

    assert added.exit_code == 0 and twice.exit_code == 1
    assert "exists already" in twice.output
    assert "er\t0\t急诊科" in listed.output.splitlines()


def test_an_unknown_binding_is_a_404_in_the_readers_language(hub_app, db):
    chinese = signed_in(hub_app, db, "office", username="office-zh")
    add_person(db, "1000", "周敏")
    page = chinese.post("/staff/1000/bindings/00000000deadbeef/revoke",
                        data={"csrf_token": chinese.csrf})
    api = chinese.delete("/api/v1/staff/1000/bindings/00000000deadbeef",
                         headers={"X-CSRFToken": chinese.csrf})

    assert page.status_code == 404 and "1000 没有设备 00000000deadbeef" in page.get_data(as_text=True)
    assert api.status_code == 404
    assert api.get_json() == {"error": "1000 has no device 00000000deadbeef"}  # the API is English
