"""Every look at and every change to a person's data is in the audit log with
who, when and what, and only an administrator reads the log, on a page with
filters. Real web app, real SQLite file; one test per case."""

from datetime import datetime, timedelta, timezone

import pytest

from hub import audit

from .hubweb import signed_in
from .test_exports import build_records

BEFORE = datetime.now(timezone.utc) - timedelta(seconds=5)


@pytest.fixture
def db(hub_db):
    build_records(hub_db)  # staff N1, N2, C1 with their attendance, reports and hours
    return hub_db


@pytest.fixture
def office(hub_app, db):
    return signed_in(hub_app, db, "office", username="office-li", lang="en")


def rows(db, action):
    return [(e["who"], e["target"], e["detail"]) for e in audit.entries(db, action=action)]


def recent(db, action) -> bool:
    """Whether every ``action`` row was written during this test (its when)."""
    found = audit.entries(db, action=action)
    return bool(found) and all(datetime.fromisoformat(e["at"].replace("Z", "+00:00")) >= BEFORE
                               for e in found)


def test_a_look_at_another_persons_record_is_audited(office, db):
    assert office.get("/people/N1").status_code == 200

    assert rows(db, "person.view") == [
        ("office-li", "staff:N1", {"since": None, "until": None})]
    assert recent(db, "person.view")


def test_a_look_through_the_api_is_audited_too(office, db):
    assert office.get("/api/v1/people/N2?from=2025-03-01").status_code == 200

    [(who, target, detail)] = rows(db, "person.view")
    assert (who, target, detail["via"]) == ("office-li", "staff:N2", "api")
    assert detail["since"] is not None


def test_a_look_at_a_roster_entry_is_audited_but_not_listed_as_a_change(office, db):
    page = office.get("/staff/C1").get_data(as_text=True)
    office.get("/staff/C1")

    assert rows(db, "person.view") == [("office-li", "staff:C1", {"page": "roster"})] * 2
    assert "Personal record viewed" not in page  # the page's history lists changes only


def test_a_look_at_a_roster_entry_through_the_api_is_audited(office, db):
    assert office.get("/api/v1/staff/N1").status_code == 200
    assert rows(db, "person.view") == [("office-li", "staff:N1", {"page": "roster", "via": "api"})]


def test_reading_ones_own_record_is_not_a_look_at_another(hub_app, db):
    me = signed_in(hub_app, db, "staff", staff_id="N1", lang="en")
    assert me.get("/me").status_code == 200
    assert rows(db, "person.view") == []


def test_a_refused_look_writes_nothing(hub_app, db):
    reviewer = signed_in(hub_app, db, "dept_reviewer", department="Cardiology", lang="en")
    assert reviewer.get("/people/N1").status_code == 404  # another department's
    assert rows(db, "person.view") == []


def test_an_export_of_a_persons_data_is_audited(office, db):
    assert office.get("/people/N1/export.csv").status_code == 200

    assert rows(db, "export.person") == [
        ("office-li", "staff:N1", {"format": "csv", "since": None, "until": None})]
    assert recent(db, "export.person")


def test_an_unbind_is_audited(office, db):
    db["devices"].insert({"device": "a1b2c3d4e5f60718", "staff_id": "N1",
                          "bound_at": "2025-03-01T00:00:00.000Z"})
    response = office.post("/staff/N1/bindings/a1b2c3d4e5f60718/revoke",
                           data={"csrf_token": office.csrf})

    assert response.status_code == 303
    assert rows(db, "device.revoke") == [
        ("office-li", "staff:N1", {"device": "a1b2c3d4e5f60718"})]


def test_a_pin_reset_is_audited_without_the_pin(office, db):
    response = office.post("/staff/N2/pin", data={"csrf_token": office.csrf})
    pin = response.get_data(as_text=True).split('id="pin">')[1][:6]

    assert rows(db, "staff.pin_reset") == [("office-li", "staff:N2", {})]
    assert all(pin not in str(e) for e in audit.entries(db))


def test_the_audit_log_is_append_only(db):
    audit.record(db, "someone", "staff.update", "staff:N1")
    for statement in ("UPDATE audit_log SET who = 'nobody'", "DELETE FROM audit_log"):
        with pytest.raises(Exception, match="append-only"):
            db.conn.execute(statement)
    assert [e["who"] for e in audit.entries(db)] == ["someone"]


def test_only_an_admin_reads_the_log_and_can_filter_it(hub_app, db, office):
    office.get("/people/N1")
    office.get("/people/N1/export.xlsx")
    office.get("/staff/C1")
    admin = signed_in(hub_app, db, "admin", lang="en")

    assert office.get("/audit/").status_code == 403
    everything = admin.get("/audit/").get_data(as_text=True)
    assert everything.count("office-li") >= 4  # sign-in, two looks, one export
    only_exports = admin.get("/audit/?action=export.person").get_data(as_text=True)
    assert "Personal record exported" in only_exports
    assert "staff:C1" not in only_exports and "staff:N1" in only_exports
    by_target = admin.get("/audit/?target=staff:C1").get_data(as_text=True)
    assert "staff:C1" in by_target and "staff:N1" not in by_target
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=2)).date().isoformat()
    assert "office-li" not in admin.get(f"/audit/?from={tomorrow}").get_data(as_text=True)
    assert admin.get("/audit/?from=yesterday").status_code == 400
