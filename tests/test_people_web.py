"""People's pages, /me and the exports through the real web app: roles and
department scope, export buttons, downloads read back, the JSON API, audit."""

import csv
import io
import re

import pytest
from openpyxl import load_workbook

from hub import audit
from hub.attendance import exports

from .hubweb import signed_in
from .test_exports import INJECTED_NAME, build_records, csv_sections

XLSX = exports.XLSX_MIME


@pytest.fixture
def built(hub_db):
    return build_records(hub_db)


@pytest.fixture
def db(hub_db, built):
    """The hub with the records of ``build_records`` (tests/test_exports.py)."""
    return hub_db


@pytest.fixture
def app(hub_app, db):
    return hub_app


@pytest.fixture
def office(app, db):
    """The office reading pages and exports in English (the default is Chinese)."""
    return signed_in(app, db, "office", lang="en")


def page(response) -> str:
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response.get_data(as_text=True)


def exports_of(db, action):
    return [e for e in audit.entries(db) if e["action"] == action]


# -- the office ------------------------------------------------------------------

def test_people_index_searches_by_name_or_number_and_department(office):
    html = page(office.get("/people/"))
    assert all(f'href="/people/{s}"' in html for s in ("N1", "N2", "C1"))
    html = page(office.get("/people/?q=李"))
    assert 'href="/people/N1"' in html and 'href="/people/N2"' not in html
    html = page(office.get("/people/?department=Cardiology"))
    assert 'href="/people/C1"' in html and 'href="/people/N1"' not in html
    assert "0.5" in page(office.get("/people/?q=N1"))  # approved hours


def test_a_persons_page_shows_attendance_hours_reports_and_export_buttons(office, built):
    html = page(office.get("/people/N1"))
    assert "李娜" in html and "Hand hygiene" in html and "-Fire drill" in html
    assert "+1 spill by bed 4" in html
    assert f"#{built['ticket_id']}" in html
    assert re.search(r'href="/people/N1/export\.xlsx"[^>]*>\s*Export XLSX', html)
    assert re.search(r'href="/people/N1/export\.csv"[^>]*>\s*Export CSV', html)
    assert re.search(r'href="/records/people/N1"[^>]*>\s*Record entries', html)
    assert office.get("/records/people/N1").status_code == 200
    # the injected name is text on the page
    html = page(office.get("/people/N2"))
    assert "=HYPERLINK(&#34;http://evil.example/&#34;" in html or \
        "=HYPERLINK(&quot;http://evil.example/&quot;" in html


def test_the_period_carries_into_the_export_links(office):
    html = page(office.get("/people/N1?from=2025-03-10&to=2025-03-10"))
    assert "/people/N1/export.xlsx?from=2025-03-10&amp;to=2025-03-10" in html
    assert "Hand hygiene" in html
    html = page(office.get("/people/N1?from=2025-03-11"))
    assert "Hand hygiene" not in html
    assert office.get("/people/N1?from=10/03/2025").status_code == 400
    assert office.get("/people/N1?from=2025-03-11&to=2025-03-10").status_code == 400


def test_person_xlsx_download(office, db):
    response = office.get("/people/N1/export.xlsx")
    assert response.status_code == 200
    assert response.content_type == XLSX
    disposition = response.headers["Content-Disposition"]
    assert re.fullmatch(r'attachment; filename="person-N1-\d{8}\.xlsx"', disposition)
    assert response.headers["Cache-Control"] == "no-store"
    book = load_workbook(io.BytesIO(response.data))
    attendance = book["Attendance"]
    assert [attendance.cell(row=r, column=1).value for r in (2, 3)] == ["ev", "drill"]
    assert attendance["F2"].value == "present"
    [entry] = exports_of(db, "export.person")
    assert (entry["who"], entry["target"], entry["detail"]["format"]) == (
        "office-user", "staff:N1", "xlsx")


def test_person_csv_download(office, db):
    response = office.get("/people/N1/export.csv?from=2025-03-10&to=2025-03-10")
    assert response.status_code == 200
    assert response.content_type == "text/csv; charset=utf-8"
    sections = csv_sections(response.data)
    assert [r[0] for r in sections["Attendance"][1:]] == ["ev", "drill"]
    [entry] = exports_of(db, "export.person")
    assert entry["detail"]["format"] == "csv"
    assert entry["detail"]["since"].startswith("2025-03-09T16:00")


def test_event_export_pages(office, db):
    response = office.get("/events/ev/export.csv")
    assert response.status_code == 200 and response.content_type.startswith("text/csv")
    assert re.fullmatch(r'attachment; filename="event-ev-\d{8}\.csv"',
                        response.headers["Content-Disposition"])
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert rows[0][6:9] == ["Check-in", "First seen", "Check-out (last seen)"]
    assert [(r[0], r[1], r[6], r[8]) for r in rows[1:]] == [
        ("N1", "李娜", "2025-03-10 08:58:00", "2025-03-10 10:00:00"),
        ("N2", "'" + INJECTED_NAME, "2025-03-10 09:12:00", "2025-03-10 09:45:00")]
    book = load_workbook(io.BytesIO(office.get("/events/ev/export.xlsx").data))
    assert book.sheetnames == ["Attendance", "Event"]
    assert [e["target"] for e in exports_of(db, "export.event")] == ["event:ev", "event:ev"]
    assert office.get("/events/nothing/export.csv").status_code == 404
    assert office.get("/events/ev/export.pdf").status_code == 404


def test_an_account_without_a_staff_id_has_no_me_one_with_has(app, db, office):
    assert office.get("/me").status_code == 403
    assert office.get("/me/export.csv").status_code == 403
    assert office.get("/api/v1/me").status_code == 403
    linked = signed_in(app, db, "dept_reviewer", username="nurse-lead", staff_id="N2",
                       department="Nursing")
    assert "Hand hygiene" in page(linked.get("/me"))
    assert linked.get("/api/v1/me").get_json()["staff"]["staff_id"] == "N2"


# -- staff -------------------------------------------------------------------------

def test_staff_see_their_own_record_with_export_buttons(app, db):
    client = signed_in(app, db, "staff", staff_id="N1", lang="en")
    html = page(client.get("/me"))
    assert "李娜" in html and "Hand hygiene" in html and "+1 spill by bed 4" in html
    assert 'href="/me/export.xlsx"' in html and 'href="/me/export.csv"' in html
    assert 'href="/people/' not in html  # no link to the office's pages
    response = client.get("/me/export.xlsx")
    assert response.status_code == 200 and response.content_type == XLSX
    assert load_workbook(io.BytesIO(response.data))["Summary"]["B2"].value == "N1"
    assert client.get("/me/export.csv").status_code == 200
    assert [e["target"] for e in exports_of(db, "export.person")] == ["staff:N1", "staff:N1"]
    body = client.get("/api/v1/me").get_json()
    assert body["staff"]["staff_id"] == "N1" and body["totals"]["hours_approved"] == 0.5


def test_staff_get_nothing_of_anyone_else(app, db):
    client = signed_in(app, db, "staff", staff_id="N1")
    for path in ("/people/", "/people/N2", "/people/N2/export.xlsx", "/people/N1",
                 "/events/ev/export.csv", "/api/v1/people/N2", "/api/v1/people/N2/export",
                 "/api/v1/events/ev/export?format=csv"):
        assert client.get(path).status_code in (403, 404), path
    assert exports_of(db, "export.person") == [] and exports_of(db, "export.event") == []


def test_signed_out_is_sent_to_sign_in(app):
    client = app.test_client()
    assert client.get("/me").status_code == 302
    assert client.get("/people/N1/export.csv").status_code == 302
    assert client.get("/api/v1/me").status_code == 401


# -- department reviewers ------------------------------------------------------------

def test_a_reviewer_sees_only_their_departments_staff(app, db):
    client = signed_in(app, db, "dept_reviewer", department="Nursing")
    html = page(client.get("/people/"))
    assert 'href="/people/N1"' in html and 'href="/people/C1"' not in html
    html = page(client.get("/people/?department=Cardiology"))  # the filter is theirs anyway
    assert 'href="/people/C1"' not in html
    assert page(client.get("/people/N1"))
    assert client.get("/people/N1/export.csv").status_code == 200
    for path in ("/people/C1", "/people/C1/export.xlsx", "/api/v1/people/C1",
                 "/api/v1/people/C1/export?format=csv", "/people/nobody"):
        assert client.get(path).status_code == 404, path
    assert client.get("/events/ev/export.xlsx").status_code == 403
    assert [e["target"] for e in exports_of(db, "export.person")] == ["staff:N1"]


# -- JSON API ------------------------------------------------------------------------

def test_api_person_record(office):
    body = office.get("/api/v1/people/N1").get_json()
    assert body["staff"] == {"staff_id": "N1", "name": "李娜", "department": "Nursing",
                             "role": "staff"}
    assert [(r["event_id"], r["status"]) for r in body["attendance"]] == [
        ("ev", "present"), ("drill", "absent")]
    assert [r["state"] for r in body["reports"]] == ["waiting", "assigned"]
    assert office.get("/api/v1/people/nobody").get_json() == {
        "error": "unknown staff member: nobody"}
    response = office.get("/api/v1/people/N1?from=yesterday")
    assert response.status_code == 400 and "from" in response.get_json()["error"]


def test_api_exports(office, db):
    response = office.get("/api/v1/people/N1/export?format=csv")
    assert response.status_code == 200 and response.content_type.startswith("text/csv")
    assert "Attendance" in csv_sections(response.data)
    response = office.get("/api/v1/people/N1/export")
    assert response.content_type == XLSX
    response = office.get("/api/v1/events/ev/export?format=xlsx")
    assert response.status_code == 200 and response.content_type == XLSX
    response = office.get("/api/v1/events/ev/export?format=pdf")
    assert response.status_code == 400
    assert response.get_json() == {"error": "format must be one of csv, xlsx"}
    assert office.get("/api/v1/events/nothing/export?format=csv").status_code == 404
    assert len(exports_of(db, "export.person")) == 2
    assert len(exports_of(db, "export.event")) == 1


def test_a_staff_member_sees_what_is_held_about_them_and_when_it_goes(app, db):
    """The right to know (issue 13): each kind held, how many, the oldest, and
    when the retention job removes it, with the hospital's own periods."""
    app.config["RETENTION"] = {"presence_days": 30, "attendance_days": 730}
    client = signed_in(app, db, "staff", staff_id="N1", lang="en")
    client.get("/me")  # nothing about N1 in the audit log from their own look
    office = signed_in(app, db, "office", lang="en")
    page(office.get("/people/N1"))  # the office's look is logged
    html = page(client.get("/me"))
    held = html[html.index('id="held"'):]
    rows = {re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", tr)).strip()
            for tr in re.findall(r"<tr>(.*?)</tr>", held, re.S)}
    expected = {
        "Wi-Fi sightings of your bound phone (presence intervals) 1",
        "Check-ins 1", "Reports you filed, with their photos 2", "Volunteer hours entries 1",
        "Audit log entries about your record (looks, exports, changes) 1",
    }
    for kind_and_count in expected:
        assert any(r.startswith(kind_and_count + " ") for r in rows), (kind_and_count, rows)
    assert "Removed 30 days after the sighting" in held
    assert "Removed 730 days after the check-in" in held
    assert "Removed after 1095 days" in held
    assert 'id="held"' not in page(office.get("/people/N1"))  # only on one's own page
