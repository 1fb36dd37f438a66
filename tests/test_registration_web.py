"""Registration on the hub's dashboard: staff (signed in with staff number +
PIN) register and cancel on /me/events and through /api/v1/me/registrations;
the office sets registration on the event form and sees who is registered
and waiting on the event page and /api/v1/events/<id>/registrations; every
change is audited; roles as tests/test_roles.py."""

import re
from datetime import datetime, timedelta, timezone
from html import unescape

import pytest

from hub import audit
from hub.db import write_transaction
from hub.schedule import registration
from protocol.clock import iso
from protocol.pins import hash_pin

from .hubweb import csrf_token, post_json, signed_in

NOW = datetime.now(timezone.utc).replace(second=0, microsecond=0)
START = NOW + timedelta(days=3)


@pytest.fixture
def db(hub_db):
    with hub_db.conn:
        hub_db["zones"].insert({"zone": "hall-a", "name": "Lecture hall A"})
        hub_db["departments"].insert_all([{"department": "nursing", "name": "护理部"},
                                          {"department": "cardiology", "name": "心内科"}])
        hub_db["staff"].insert_all([
            {"staff_id": "N1", "name": "Wang Fang", "department": "nursing",
             "pin_hash": hash_pin("1111")},
            {"staff_id": "N2", "name": "Li Na", "department": "nursing",
             "pin_hash": hash_pin("2222")},
            {"staff_id": "N3", "name": "Zhou Yi", "department": "nursing",
             "pin_hash": hash_pin("3333")},
            {"staff_id": "C1", "name": "Chen Jie", "department": "cardiology",
             "pin_hash": hash_pin("4444")}])
        hub_db["events"].insert({"id": "ev", "title": "Infection control", "kind": "training",
                                 "zones": '["hall-a"]', "start": iso(START),
                                 "end": iso(START + timedelta(hours=2)), "credit_hours": 2})
    with write_transaction(hub_db):
        registration.configure(hub_db, "ev", {
            "opens_at": NOW - timedelta(hours=1), "closes_at": START, "capacity": 1,
            "departments": ["nursing"], "required": True})
    return hub_db


def staff(app, staff_id: str, pin: str):
    """A staff member signed in with staff number + PIN, reading English."""
    client = app.test_client()
    response = client.post("/login", data={"username": staff_id, "password": pin,
                                           "csrf_token": csrf_token(client)})
    assert response.status_code == 303
    client.get("/lang/en")  # after signing in: a new session starts there
    client.csrf = csrf_token(client, "/login")
    return client


def text(response) -> str:
    """The page's text: tags dropped, entities read, whitespace runs single spaces."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))).split())


def post(client, path: str):
    return client.post(path, data={"csrf_token": client.csrf})


def test_staff_register_on_my_events_and_the_second_waits(hub_app, db):
    nurse = staff(hub_app, "N1", "1111")
    page = text(nurse.get("/me/events"))
    assert "Infection control" in page and "Required: you are asked to register" in page
    assert "0 of 1 places taken" in page and "You have not registered." in page
    assert "/calendar/person/N1.ics?token=" in page
    answer = post(nurse, "/me/events/ev/register")
    assert answer.status_code == 303 and answer.headers["Location"] == "/me/events"
    page = text(nurse.get("/me/events"))
    assert "You are registered." in page and "Cancel my registration" in page

    other = staff(hub_app, "N2", "2222")
    assert "Join the waiting list" in text(other.get("/me/events"))
    post(other, "/me/events/ev/register")
    assert "You are on the waiting list, number 1." in text(other.get("/me/events"))

    post(nurse, "/me/events/ev/cancel")
    assert "Your registration is cancelled." in text(nurse.get("/me/events"))
    assert "You are registered." in text(other.get("/me/events"))  # promoted
    logged = [(e["who"], e["action"], e["detail"])
              for e in audit.entries(db, action="registration.")]
    assert logged[::-1] == [
        ("N1", "registration.register", {"staff_id": "N1", "state": "registered"}),
        ("N2", "registration.register", {"staff_id": "N2", "state": "waiting"}),
        ("N1", "registration.cancel", {"staff_id": "N1", "was": "registered",
                                        "promoted": ["N2"]})]


def test_refusals_on_the_page_say_why(hub_app, db):
    cardiologist = staff(hub_app, "C1", "4444")
    assert "Infection control" not in text(cardiologist.get("/me/events"))  # not for them
    answer = post(cardiologist, "/me/events/ev/register")
    assert answer.status_code == 303
    assert "not open to you" in text(cardiologist.get("/me/events"))
    assert registration.state_of(db, "ev", "C1") is None
    assert audit.entries(db, action="registration.") == []
    nurse = staff(hub_app, "N3", "3333")
    post(nurse, "/me/events/nope/register")
    assert "There is no event nope." in text(nurse.get("/me/events"))


def test_the_api_registers_and_cancels(hub_app, db):
    nurse, other = staff(hub_app, "N1", "1111"), staff(hub_app, "N2", "2222")
    body = nurse.get("/api/v1/me/registrations").get_json()
    [event] = body["events"]
    assert (event["event_id"], event["state"], event["can_register"], event["capacity"],
            event["required"]) == ("ev", None, True, 1, True)
    assert body["feed"].startswith("http://localhost/calendar/person/N1.ics?token=")
    assert post_json(nurse, "/api/v1/me/registrations", {"event_id": "ev"}).get_json() == {
        "event_id": "ev", "state": "registered", "position": None}
    assert post_json(other, "/api/v1/me/registrations", {"event_id": "ev"}).get_json() == {
        "event_id": "ev", "state": "waiting", "position": 1}
    again = post_json(other, "/api/v1/me/registrations", {"event_id": "ev"})
    assert again.status_code == 200 and again.get_json()["position"] == 1
    gone = nurse.delete("/api/v1/me/registrations/ev", headers={"X-CSRFToken": nurse.csrf})
    assert gone.status_code == 200 and gone.get_json()["state"] == "cancelled"
    assert other.get("/api/v1/me/registrations").get_json()["events"][0]["state"] == "registered"
    cardiologist = staff(hub_app, "C1", "4444")
    for event_id, status in (("ev", 403), ("nope", 404)):
        refused = post_json(cardiologist, "/api/v1/me/registrations", {"event_id": event_id})
        assert refused.status_code == status and "error" in refused.get_json()
    assert post_json(cardiologist, "/api/v1/me/registrations", {}).status_code == 400
    with write_transaction(db):  # the window closes
        registration.configure(db, "ev", {"opens_at": NOW - timedelta(hours=2),
                                          "closes_at": NOW - timedelta(hours=1)})
    late = post_json(staff(hub_app, "N3", "3333"), "/api/v1/me/registrations",
                     {"event_id": "ev"})
    assert late.status_code == 409 and "closed" in late.get_json()["error"]
    no_csrf = nurse.post("/api/v1/me/registrations", json={"event_id": "ev"})
    assert no_csrf.status_code == 400


def test_the_office_sees_the_lists_on_the_event_page_and_the_api(hub_app, db):
    for n, staff_id in enumerate(("N1", "N2", "N3")):
        with write_transaction(db):
            registration.register(db, "ev", staff_id, NOW + timedelta(minutes=n))
    office = signed_in(hub_app, db, "office", lang="en")
    page = text(office.get("/events/ev"))
    assert "Registration" in page and "1 registered" in page and "2 on the waiting list" in page
    assert "0 still to register" in page  # a required event: every nurse is in
    assert page.index("Wang Fang") < page.index("Li Na") < page.index("Zhou Yi")
    body = office.get("/api/v1/events/ev/registrations").get_json()
    assert [p["staff_id"] for p in body["registered"]] == ["N1"]
    assert [(p["staff_id"], p["position"]) for p in body["waiting"]] == [("N2", 1), ("N3", 2)]
    assert body["settings"]["capacity"] == 1 and body["to_register"] == 0
    assert office.get("/api/v1/events/nope/registrations").status_code == 404
    attendance = office.get("/api/v1/events/ev/attendance").get_json()
    assert attendance["registration"] == {"registered": 1, "registered_absent": 1,
                                          "walk_ins": 0}
    [row] = attendance["attendance"]
    assert (row["staff_id"], row["registered"], row["walk_in"]) == ("N1", True, False)
    assert "registered, absent" in page and "1 registered but absent" in page


def test_the_event_form_sets_registration(hub_app, db):
    office = signed_in(hub_app, db, "office", lang="en")
    local = (START + timedelta(days=1)).astimezone(timezone(timedelta(hours=8)))
    form = {"csrf_token": office.csrf, "title": "Fire drill", "kind": "training",
            "zones": "hall-a", "start": local.strftime("%Y-%m-%dT%H:%M"),
            "end": (local + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
            "credit_hours": "1", "min_presence": "0.75", "registration": "on",
            "reg_capacity": "30", "reg_departments": "cardiology", "reg_staff": "N1",
            "reg_required": "on"}
    assert "People register for this event" in text(office.get("/events/new"))
    created = office.post("/events/new", data=form)
    assert created.status_code == 303, text(created)[:500]
    event_id = db.conn.execute("SELECT id FROM events WHERE title = 'Fire drill'").fetchone()[0]
    stored = registration.get(db, event_id)
    assert (stored["capacity"], stored["departments"], stored["staff"], stored["required"]) == (
        30, ["cardiology"], ["N1"], True)
    assert stored["closes_at"] == iso(local)  # empty: when the event starts
    [logged] = audit.entries(db, action="event.create")
    assert logged["detail"]["registration"]["capacity"] == 30
    assert 'name="reg_capacity" value="30"' in office.get(f"/events/{event_id}/edit").get_data(
        as_text=True)

    bad = office.post(f"/events/{event_id}/edit", data={**form, "reg_capacity": "0",
                                                        "reg_staff": "N1 X9"})
    assert bad.status_code == 400
    assert "Unknown staff number: X9." in text(bad) and "X9" in text(bad)  # kept as typed
    with write_transaction(db):
        registration.register(db, event_id, "N1", datetime.now(timezone.utc))
    off = office.post(f"/events/{event_id}/edit", data={
        k: v for k, v in form.items() if k != "registration"})
    assert off.status_code == 400 and "registration cannot be turned off" in text(off)
    raised = office.post(f"/events/{event_id}/edit", data={**form, "reg_capacity": ""})
    assert raised.status_code == 303
    assert registration.get(db, event_id)["capacity"] is None
    deleted = office.post(f"/events/{event_id}/delete", data={"csrf_token": office.csrf,
                                                             "confirm": "yes"})
    assert deleted.status_code == 303 and registration.get(db, event_id) is None
    assert registration.state_of(db, event_id, "N1") is None


def test_roles(hub_app, db):
    office = signed_in(hub_app, db, "office", lang="en")  # not linked to a staff number
    assert office.get("/me/events").status_code == 403
    assert office.get("/api/v1/me/registrations").status_code == 403
    nurse = staff(hub_app, "N1", "1111")
    assert nurse.get("/api/v1/events/ev/registrations").status_code == 403
    assert hub_app.test_client().get("/api/v1/me/registrations").status_code == 401
    assert hub_app.test_client().get("/me/events").status_code == 302
