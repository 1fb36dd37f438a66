"""People's records and their exports (hub.attendance.exports) on a real hub database:
attendance from ingested records, hours from real tickets, files read back
with openpyxl and csv cell by cell, formula injection, and `rounds-hub export`."""

import csv
import io
import json
import zipfile
from datetime import datetime

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from hub import audit
from hub.attendance import exports
from hub.attendance.attendance import set_expected
from hub.cli.main import main
from hub.tickets import hours, tickets

from .conftest import hub_db_settings
from .test_attendance import (AFTER, add_event, add_staff, binding, checkin, ingest, presence,
                              ts)
from .test_tickets import file as file_report
from .test_tickets import report, sha

INJECTED_NAME = '=HYPERLINK("http://evil.example/","click")'


def local(hour: int, minute: int = 0) -> datetime:
    """A wall-clock time on the test day (2025-03-10) in Shanghai."""
    return datetime(2025, 3, 10, hour, minute)


def build_records(db) -> dict:
    """Two nurses, a lecture (09:00-10:00, 2 credit hours) where N1 stayed
    throughout and N2 came late and left early, a drill N1 was expected at and
    missed, a lecture N1 had nothing to do with; N1's reports: one accepted
    (hours approved), one waiting for its photo."""
    add_staff(db, "N1", "李娜")
    add_staff(db, "N2", INJECTED_NAME)
    add_staff(db, "C1", "Chen Jie", department="Cardiology")
    add_event(db, "ev", credit_hours=2.0)
    add_event(db, "drill", zones=("hall-b",), start=120, end=180, title="-Fire drill")
    add_event(db, "other", zones=("hall-c",), start=0, end=60, title="Cardiology meeting")
    set_expected(db, "ev", departments=["Nursing"])
    set_expected(db, "drill", staff=["N1"])
    set_expected(db, "other", departments=["Cardiology"])
    ingest(db, checkin("N1", -2), presence("N1", -5, 65),
           checkin("N2", 12), presence("N2", 12, 45))
    accepted = report(staff_id="N1", note="+1 spill by bed 4", zone="ward-3")
    waiting = report(minute=60, staff_id="N1", category="signage", zone="ward-5",
                     note="sign missing", photos=[sha("not yet here")])
    [ticket_id] = file_report(db, accepted, waiting)
    tickets.transition(db, ticket_id, "assigned", "office-user")
    [entry] = hours.entries(db, "N1")
    hours.decide(db, entry["id"], True, "reviewer-user")
    return {"ticket_id": int(ticket_id), "accepted": accepted["report_id"],
            "waiting": waiting["report_id"], "entry": entry["id"]}


@pytest.fixture
def db(hub_db):
    database = hub_db  # closed by hub_db
    yield database


@pytest.fixture
def built(db):
    return build_records(db)


def sheet_rows(ws) -> list[list]:
    return [[cell.value for cell in row] for row in ws.iter_rows()]


def csv_sections(data: bytes) -> dict[str, list[list[str]]]:
    """A sectioned CSV as {title: [header, row, ...]}."""
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data[3:].decode("utf-8"), newline="")))
    sections, current = {}, None
    for row in rows:
        if not row:
            current = None
        elif current is None:
            current = sections.setdefault(row[0], [])
        else:
            current.append(row)
    return sections


# -- the record ------------------------------------------------------------------

def test_person_record_has_attendance_hours_reports_and_totals(db, built):
    record = exports.person_record(db, "N1", now=AFTER)

    assert record["staff"] == {"staff_id": "N1", "name": "李娜", "department": "Nursing",
                               "role": "staff"}
    assert [(r["event_id"], r["status"], r["credit_hours"]) for r in record["attendance"]] == [
        ("ev", "present", 2.0), ("drill", "absent", 0.0)]
    lecture = record["attendance"][0]
    assert (lecture["checked_in_at"], lecture["first_seen"], lecture["last_seen"],
            lecture["dwell_minutes"], lecture["method"]) == (ts(-2), ts(0), ts(60), 60.0,
                                                             "presence")
    assert [(e["ticket_id"], e["hours"], e["state"], e["category"], e["zone"])
            for e in record["hours"]] == [(built["ticket_id"], 0.5, "approved", "hygiene",
                                           "ward-3")]
    assert [(r["report_id"], r["ticket_id"], r["state"]) for r in record["reports"]] == [
        (built["waiting"], None, "waiting"), (built["accepted"], built["ticket_id"], "assigned")]
    assert record["totals"] == {
        "events": 2, "present": 1, "partial": 0, "absent": 1, "credit_hours": 2.0,
        "dwell_minutes": 60.0, "hours_pending": 0, "hours_approved": 0.5, "hours_rejected": 0,
        "reports": 2}
    json.dumps(record)  # the API sends it as it is


def test_a_person_seen_through_their_bound_phone_only_is_found(db):
    add_staff(db, "N7", "Zhao Lei")
    add_event(db, "ev")
    # presence without a staff id, attributed by the hub's binding of the device
    ingest(db, binding("a" * 16, "N7"), presence(None, 0, 50, device="a" * 16))
    record = exports.person_record(db, "N7", now=AFTER)
    assert [(r["event_id"], r["status"], r["dwell_minutes"]) for r in record["attendance"]] == [
        ("ev", "partial", 50.0)]


def test_the_period_bounds_events_hours_and_reports(db, built):
    record = exports.person_record(db, "N1", since=ts(60), now=AFTER)
    assert [r["event_id"] for r in record["attendance"]] == ["drill"]
    assert record["hours"] and record["reports"]  # tickets are in 2026, after the period start
    record = exports.person_record(db, "N1", until=ts(60), now=AFTER)
    assert [r["event_id"] for r in record["attendance"]] == ["ev"]
    assert record["hours"] == [] and record["reports"] == []


def test_unknown_people_and_events_are_not_found(db):
    with pytest.raises(exports.NotFound):
        exports.person_record(db, "nobody")
    with pytest.raises(exports.NotFound):
        exports.event_rows(db, "nothing")


def test_find_people_by_name_or_number_and_department(db, built):
    assert [p["staff_id"] for p in exports.find_people(db)] == ["C1", "N1", "N2"]
    assert [p["staff_id"] for p in exports.find_people(db, "李")] == ["N1"]
    assert [p["staff_id"] for p in exports.find_people(db, "c1")] == ["C1"]
    assert [p["staff_id"] for p in exports.find_people(db, "%")] == []  # a literal, not a wildcard
    assert [(p["staff_id"], p["approved"]) for p in
            exports.find_people(db, department="Nursing")] == [("N1", 0.5), ("N2", 0)]


# -- the files -------------------------------------------------------------------

def test_person_xlsx_read_back_cell_by_cell(db, built):
    record = exports.person_record(db, "N1", now=AFTER)
    data = exports.to_xlsx(exports.person_sheets(record, exports_tz()))
    book = load_workbook(io.BytesIO(data))

    assert book.sheetnames == ["Summary", "Attendance", "Volunteer hours", "Reports"]
    attendance = book["Attendance"]
    assert sheet_rows(attendance) == [
        ["Event ID", "Title", "Kind", "Start", "End", "Status", "Expected", "Check-in method",
         "Check-in", "First seen", "Check-out (last seen)", "Minutes present", "Minutes late",
         "Minutes left early", "Credit hours"],
        ["ev", "Hand hygiene", "lecture", local(9), local(10), "present", "yes", "presence",
         local(8, 58), local(9), local(10), 60, 0, 0, 2],
        ["drill", "'-Fire drill", "lecture", local(11), local(12), "absent", "yes", None,
         None, None, None, 0, None, None, 0]]
    assert all(cell.font.bold for cell in attendance[1])
    assert attendance.freeze_panes == "A2"
    assert attendance["I2"].number_format == exports.XLSX_TIME_FORMAT
    assert attendance.column_dimensions["B"].width >= len("Hand hygiene")

    summary = dict((r[0], r[1]) for r in sheet_rows(book["Summary"])[1:])
    assert (summary["Staff ID"], summary["Name"], summary["Department"], summary["Time zone"],
            summary["Credit hours from events"], summary["Volunteer hours approved"]) == (
        "N1", "李娜", "Nursing", "Asia/Shanghai", 2, 0.5)
    ledger = sheet_rows(book["Volunteer hours"])
    assert ledger[1][:6] == [built["entry"], built["ticket_id"], "hygiene", "ward-3", 0.5,
                             "approved"]
    assert ledger[1][7] == "reviewer-user"
    reports = sheet_rows(book["Reports"])
    assert [(r[0], r[4], r[5], r[6]) for r in reports[1:]] == [
        (built["waiting"], "sign missing", None, "waiting for photos"),
        (built["accepted"], "'+1 spill by bed 4", built["ticket_id"], "assigned")]


def test_person_csv_is_sectioned_utf8_with_bom(db, built):
    record = exports.person_record(db, "N1", now=AFTER)
    sections = csv_sections(exports.to_csv(exports.person_sheets(record, exports_tz())))

    assert list(sections) == ["Summary", "Attendance", "Volunteer hours", "Reports"]
    assert ["Name", "李娜"] in sections["Summary"]
    header, lecture, drill = sections["Attendance"]
    assert header[8:11] == ["Check-in", "First seen", "Check-out (last seen)"]
    assert lecture == ["ev", "Hand hygiene", "lecture", "2025-03-10 09:00:00",
                       "2025-03-10 10:00:00", "present", "yes", "presence",
                       "2025-03-10 08:58:00", "2025-03-10 09:00:00", "2025-03-10 10:00:00",
                       "60.0", "0.0", "0.0", "2.0"]
    assert drill[:2] == ["drill", "'-Fire drill"] and drill[5] == "absent"
    assert drill[8:11] == ["", "", ""]
    assert [r[4] for r in sections["Reports"][1:]] == ["sign missing", "'+1 spill by bed 4"]


def test_event_export_has_everyones_check_in_and_check_out(db, built):
    report = exports.event_rows(db, "ev", now=AFTER)
    data = exports.to_csv(exports.event_sheets(report, exports_tz())[:1])
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0][:3] == ["Staff ID", "Name", "Department"]
    assert [(r[0], r[1], r[3], r[6], r[8]) for r in rows[1:]] == [
        ("N1", "李娜", "present", "2025-03-10 08:58:00", "2025-03-10 10:00:00"),
        ("N2", "'" + INJECTED_NAME, "partial", "2025-03-10 09:12:00", "2025-03-10 09:45:00")]

    book = load_workbook(io.BytesIO(exports.to_xlsx(exports.event_sheets(report,
                                                                         exports_tz()))))
    assert book.sheetnames == ["Attendance", "Event"]
    n2 = book["Attendance"]["B3"]
    assert (n2.value, n2.data_type) == ("'" + INJECTED_NAME, "s")
    about = dict((r[0], r[1]) for r in sheet_rows(book["Event"])[1:])
    assert (about["Present"], about["Partial"], about["Absent"], about["Start"]) == (
        1, 1, 0, local(9))


def test_no_formula_reaches_a_workbook(db, built):
    report = exports.event_rows(db, "ev", now=AFTER)
    data = exports.to_xlsx(exports.event_sheets(report, exports_tz()))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        xml = "".join(archive.read(n).decode() for n in archive.namelist()
                      if n.startswith("xl/worksheets/"))
    assert "<f>" not in xml and "<f " not in xml


@pytest.mark.parametrize("text", [
    "=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx",
    # full-width and small forms (a Chinese input method types these), and any
    # of them after leading white space, ASCII or ideographic
    "＝1+1", "＋1", "－1", "＠SUM(A1)", "﹦1", "﹢1", "﹣1", " =1+1", "  +1", "\u3000＝1",
    "\n=1"])
def test_formula_like_text_is_neutralised_in_both_formats(text):
    sheets = [exports.Sheet("Notes", ["Note", "Number"], [[text, -1]])]
    assert exports.neutralise(text) == "'" + text
    row = list(csv.reader(io.StringIO(exports.to_csv(sheets).decode("utf-8-sig"),
                                      newline="")))[1]
    assert row == ["'" + text, "-1"]
    ws = load_workbook(io.BytesIO(exports.to_xlsx(sheets)))["Notes"]
    # (a carriage return survives with lxml installed, openpyxl's writer since
    # python-docx brought it; a plain XML parser reads it back as a line feed)
    assert ws["A2"].value in ("'" + text, "'" + text.replace("\r", "\n"))
    assert ws["B2"].value == -1


def test_plain_text_and_numbers_are_left_alone():
    for value in ("a=b", "李娜", "", "3 + 4", "  李娜", "\u3000备注", "a＝b", 42, -1.5, None):
        assert exports.neutralise(value) == value


def test_unknown_format_is_refused():
    with pytest.raises(ValueError):
        exports.write([], "pdf")


def test_download_names_are_safe():
    name = exports.filename("person", '../../etc/"x" 李', "csv", datetime(2025, 3, 10))
    assert name == "person-etc_x-20250310.csv"


def exports_tz():
    from zoneinfo import ZoneInfo
    return ZoneInfo("Asia/Shanghai")


# -- rounds-hub export -------------------------------------------------------------

@pytest.fixture
def config(tmp_path, hub_location, db, built):
    path = tmp_path / "hub.json"
    path.write_text(json.dumps({"site": "general-hospital", "timezone": "Asia/Shanghai",
                                **hub_db_settings(hub_location, tmp_path)}))
    return str(path)


def run(config, *args):
    return CliRunner().invoke(main, ["--config", config, "export", *args])


def test_cli_exports_a_person_as_xlsx_and_audits_it(config, tmp_path, db):
    out = tmp_path / "n1.xlsx"
    result = run(config, "person", "N1", "--format", "xlsx", "-o", str(out))
    assert result.exit_code == 0, result.output
    book = load_workbook(out)
    assert book["Attendance"]["A2"].value == "ev"
    assert book["Summary"]["B3"].value == "李娜"
    [entry] = [e for e in audit.entries(db) if e["action"] == "export.person"]
    assert entry["target"] == "staff:N1" and entry["who"].startswith("cli:")
    assert entry["detail"]["format"] == "xlsx"


def test_cli_exports_a_person_for_a_period_as_csv(config, tmp_path):
    out = tmp_path / "n1.csv"
    result = run(config, "person", "N1", "--format", "csv", "--from", "2025-03-10",
                 "--to", "2025-03-10", "-o", str(out))
    assert result.exit_code == 0, result.output
    sections = csv_sections(out.read_bytes())
    assert [r[0] for r in sections["Attendance"][1:]] == ["ev", "drill"]
    assert sections["Reports"] == [sections["Reports"][0]]  # none that day


def test_cli_exports_an_event_as_csv(config, tmp_path):
    out = tmp_path / "ev.csv"
    result = run(config, "event", "ev", "--format", "csv", "-o", str(out))
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert [r[0] for r in rows[1:]] == ["N1", "N2"]


def test_cli_errors_are_clear(config, tmp_path):
    result = run(config, "person", "nobody", "-o", str(tmp_path / "x.xlsx"))
    assert result.exit_code == 1 and "unknown staff member: nobody" in result.output
    result = run(config, "event", "nothing", "-o", str(tmp_path / "x.xlsx"))
    assert result.exit_code == 1 and "unknown event: nothing" in result.output
    result = run(config, "person", "N1", "--format", "pdf", "-o", str(tmp_path / "x.pdf"))
    assert result.exit_code == 2
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps({"site": "s", "db": "nope.db"}))
    result = run(str(missing), "event", "ev", "-o", str(tmp_path / "x.csv"))
    assert result.exit_code == 1 and "hub database not found" in result.output
    assert not (tmp_path / "nope.db").exists()


def test_cli_help_has_examples():
    for args in (["export", "--help"], ["export", "person", "-h"], ["export", "event", "-h"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0 and "Example:" in result.output
