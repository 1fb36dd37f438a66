"""A person's whole year in one click (XLSX and PDF) and certificates of
attendance, through the dashboard on a real hub database (the hospital of
tests/test_summaries.py): the sheets and their values, the PDF's pages and
name, a certificate only for an event attended, the audit rows, and who may
have whose."""

import io
import re

import pytest
from openpyxl import load_workbook

from hub import audit
from hub.summaries import pdf, yearbook

from .hubweb import signed_in
from .test_summaries import AFTER, CARDIOLOGY, NURSING, TZ, build_hospital, build_year

PAGE = re.compile(rb"/Type /Page\b(?!s)")


@pytest.fixture
def db(hub_db):
    build_hospital(hub_db)
    build_year(hub_db)
    return hub_db


@pytest.fixture
def me(hub_app, db):
    return signed_in(hub_app, db, "staff", staff_id="N1", lang="en")


@pytest.fixture
def office(hub_app, db):
    return signed_in(hub_app, db, "office", username="office-li", lang="en")


def pdf_names(data: bytes, text: str) -> bool:
    """Whether ``text`` is in the PDF's metadata (fpdf2 writes a title with
    Chinese in it as UTF-16BE in hex, an ASCII one as it is); the page text
    itself is glyph ids of a subset font."""
    if text.isascii():
        return text.encode() in data
    return text.encode("utf-16-be").hex().encode() in data.lower()


def rows(ws) -> list[list]:
    return [[cell.value for cell in row] for row in ws.iter_rows()]


def test_the_year_as_xlsx_has_a_sheet_per_part_with_the_values(me, db):
    response = me.get("/me/year.xlsx?year=2025")
    assert response.status_code == 200
    assert 'filename="year-N1-2025.xlsx"' in response.headers["Content-Disposition"]
    book = load_workbook(io.BytesIO(response.data))
    assert book.sheetnames == ["Summary", "Attendance", "Volunteer hours", "Reports",
                               "Record entries", "Assessment"]
    summary = dict(r[:2] for r in rows(book["Summary"])[1:])
    assert (summary["Year"], summary["Name"], summary["Events"], summary["Present"],
            summary["Credit hours from events"], summary["Reports"],
            summary["Approved record entries"], summary["Assessment items done"],
            summary["Assessment items"]) == (2025, "员工N1", 2, 2, 3.5, 4, 3, 1, 2)
    attendance = rows(book["Attendance"])
    header = attendance[0]
    assert ["Check-in", "Check-out (last seen)", "Credit hours"] == [
        header[8], header[10], header[-1]]
    by_event = {r[0]: r for r in attendance[1:]}
    assert by_event["speech"][5] == "present" and by_event["speech"][-1] == 1.5
    assert str(by_event["speech"][8]) == "2025-03-10 08:55:00"  # checked in 5 min early
    assert str(by_event["speech"][10]) == "2025-03-10 11:00:00"  # last seen, clipped to the end
    assert by_event["lecture"][-1] == 2
    assert len(rows(book["Reports"])) == 1 + 4
    entries = rows(book["Record entries"])
    assert entries[0] == ["Entry", "Day", "Kind", "Title", "Filed by"]
    assert sorted((r[2], r[4]) for r in entries[1:]) == [
        ("Attended an event", "Filed by Rounds"), ("Good deed", "Filed by the person"),
        ("Thank-you letter from a patient", "Filed by the person")]
    assessment = rows(book["Assessment"])
    assert assessment[1:] == [["学时", 10, 1.5, 2, 15, "no"], ["好人好事", 1, 1, 0, 100, "yes"]]


def test_the_year_as_pdf_is_a_printable_report_naming_the_person(me, office):
    response = me.get("/me/year.pdf?year=2025")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    data = response.data
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    assert len(PAGE.findall(data)) >= 1
    assert pdf_names(data, "员工N1")
    assert office.get("/people/N1/year.pdf?year=2025").data.startswith(b"%PDF-")


def test_a_certificate_only_for_an_event_attended(me, office, db):
    response = me.get("/me/certificate/speech.pdf")
    assert response.status_code == 200 and response.data.startswith(b"%PDF-")
    assert len(PAGE.findall(response.data)) == 1  # one A4 page
    assert pdf_names(response.data, yearbook.certificate_number("speech", "N1", "2025-03-10"))
    assert b"/MediaBox [0 0 595.28 841.89]" in response.data  # A4 portrait
    assert me.get("/me/certificate/nowhere.pdf").status_code == 404
    # N4 was partial at the contest, X1 registered and never came
    assert office.get("/people/N4/certificate/speech.pdf").status_code == 404
    assert office.get("/people/X1/certificate/speech.pdf").status_code == 404
    assert office.get("/people/C3/certificate/lecture.pdf").status_code == 404  # not there
    assert office.get("/people/C3/certificate/speech.pdf").status_code == 200


def test_the_certificate_facts_and_number():
    number = yearbook.certificate_number("speech", "N1", "2025-03-10")
    assert re.fullmatch(r"RC-20250310-[0-9A-F]{8}", number)
    assert number == yearbook.certificate_number("speech", "N1", "2025-03-10")
    assert number != yearbook.certificate_number("speech", "N2", "2025-03-10")


def test_the_certificate_data(db):
    cert = yearbook.certificate(db, "N1", "speech", TZ, AFTER)
    assert (cert["event"]["date"], cert["event"]["start_time"], cert["event"]["end_time"],
            cert["credit_hours"], cert["staff"]["name"]) == ("2025-03-10", "09:00", "11:00",
                                                            1.5, "员工N1")
    assert yearbook.certificate(db, "N4", "speech", TZ, AFTER) is None


def test_every_export_is_audited(me, office, db):
    me.get("/me/year.xlsx?year=2025")
    office.get("/people/N1/year.pdf?year=2025")
    me.get("/me/certificate/speech.pdf")
    office.get("/people/N1/certificate/lecture.pdf")
    office.get("/people/N4/certificate/speech.pdf")  # refused: nothing written
    exported = [(e["who"], e["target"], e["detail"]) for e in audit.entries(db, action="export.")]
    number = yearbook.certificate_number("speech", "N1", "2025-03-10")
    lecture = yearbook.certificate_number("lecture", "N1", "2025-03-10")
    assert exported[::-1] == [
        ("staff-user", "staff:N1", {"format": "xlsx", "year": 2025}),
        ("office-li", "staff:N1", {"format": "pdf", "year": 2025}),
        ("staff-user", "staff:N1", {"event": "speech", "number": number}),
        ("office-li", "staff:N1", {"event": "lecture", "number": lecture}),
    ]
    assert [e["action"] for e in audit.entries(db, action="export.")][::-1] == [
        "export.person", "export.person", "export.certificate", "export.certificate"]


def test_staff_have_only_their_own_and_a_reviewer_their_departments(hub_app, db, me):
    theirs = ("/people/N1/year.xlsx", "/people/N1/year.pdf", "/people/N1/certificate/speech.pdf")
    for path in theirs + ("/people/N2/year.pdf",):
        assert me.get(path).status_code == 403, path
    nursing = signed_in(hub_app, db, "dept_reviewer", username="nursing-rev", department=NURSING)
    cardiology = signed_in(hub_app, db, "dept_reviewer", username="cardio-rev",
                           department=CARDIOLOGY)
    assert nursing.get("/people/N1/year.xlsx?year=2025").status_code == 200
    assert nursing.get("/people/N1/certificate/speech.pdf").status_code == 200
    for path in theirs:
        assert cardiology.get(path).status_code == 404, path
    assert cardiology.get("/people/C1/certificate/speech.pdf").status_code == 200
    unlinked = signed_in(hub_app, db, "office", username="office-wang")
    assert unlinked.get("/me/year.xlsx").status_code == 403  # no staff number, no year
    assert unlinked.get("/people/nobody/year.xlsx").status_code == 404
    assert me.get("/me/year.xlsx?year=20x5").status_code == 400


def test_the_record_pages_link_the_year_and_the_certificates(me, office):
    page = me.get("/me").get_data(as_text=True)
    assert 'href="/me/year.xlsx"' in page and 'href="/me/year.pdf"' in page
    assert 'href="/me/year"' in page
    assert 'href="/me/certificate/speech.pdf"' in page
    page = office.get("/people/N1").get_data(as_text=True)
    assert 'href="/people/N1/year.pdf"' in page and 'href="/people/N1/year"' in page
    assert 'href="/people/N1/certificate/lecture.pdf"' in page


def test_without_a_chinese_font_the_pdf_says_what_to_install(tmp_path):
    with pytest.raises(pdf.FontMissing, match="fonts-wqy-microhei"):
        pdf.font_path([str(tmp_path / "none.ttc")])
