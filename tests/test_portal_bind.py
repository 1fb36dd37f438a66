"""Binding a phone, one-tap check-in and "my record", with the PIN limits per
staff number and per device, against a real SQLite node database."""

import json
import logging
import re
from datetime import datetime, timedelta, timezone

import pytest

from edge.db import open_db
from edge.devices import Devices
from protocol.clock import iso, parse_iso
from protocol.pins import hash_pin
from protocol.records import validate

from .test_portal import (  # noqa: F401 - fixtures
    EVENT, NOW, OTHER_IP, OTHER_MAC, PHONE_IP, PHONE_MAC, ROSTER, SECRET, app, arp, client,
    csrf, db_path, device, lease, leases, phone, put_state, query, records, text,
)

LATER = {**EVENT, "id": "ev2", "title": "Fire safety training",
         "start": iso(NOW - timedelta(minutes=5)), "end": iso(NOW + timedelta(hours=2))}


def token(client):
    """A CSRF token: from the start page, or the bind page when the start
    page has no form (a bound phone already checked in)."""
    for path in ("/", "/bind"):
        found = re.search(r'name="csrf_token" value="([^"]+)"',
                          client.get(path).get_data(as_text=True))
        if found:
            return found.group(1)
    raise AssertionError("no form with a CSRF token")


def bind(client, staff_id="D001", pin="2468", follow=False):
    return client.post("/bind", data={"csrf_token": token(client), "staff_id": staff_id,
                                      "pin": pin}, follow_redirects=follow)


def tap(client, follow=False):
    return client.post("/checkin/tap", data={"csrf_token": token(client)},
                       follow_redirects=follow)


def bindings(db_path):
    return query(db_path, "SELECT device, staff_id FROM bindings_local ORDER BY device")


def released(db_path):
    return dict(query(db_path, "SELECT mac, until FROM released"))


def nothing_written(db_path):
    assert records(db_path) == []
    assert bindings(db_path) == []
    assert released(db_path) == {}


def new_phone(app, leases, ip, mac):
    lease(leases, ip, mac)
    c = app.test_client()
    c.environ_base["REMOTE_ADDR"] = ip
    c.get("/?lang=en")
    return c


def test_unbound_phone_is_offered_the_bind_form(phone):
    page = phone.get("/").get_data(as_text=True)
    form = re.search(r'<form method="post" action="/bind"[^>]*>(.*?)</form>', page, re.S)
    assert form, page
    names = re.findall(r'name="([^"]+)"', form.group(1))
    assert names == ["csrf_token", "staff_id", "pin"]
    assert re.search(r'name="pin" type="password"', form.group(1))
    assert "Bind this phone" in page and "Hand hygiene lecture" in page
    assert "<script" not in page


def test_right_pin_binds_checks_in_and_releases(app, phone, db_path):
    before = datetime.now(timezone.utc)
    response = bind(phone)
    assert response.status_code == 303
    assert response.headers["Location"] == "/bound?lang=en"

    binding, checkin = records(db_path)
    assert validate(binding) and validate(checkin)
    assert (binding["type"], binding["device"], binding["staff_id"]) == (
        "binding", device(), "D001")
    assert (checkin["type"], checkin["staff_id"], checkin["event_id"], checkin["zone"],
            checkin["method"], checkin["device"]) == (
        "checkin", "D001", "ev1", "hall-a", "portal", device())
    assert PHONE_MAC not in json.dumps([binding, checkin])  # MACs never leave the node
    assert bindings(db_path) == [(device(), "D001")]
    until = parse_iso(released(db_path)[PHONE_MAC])
    assert before + timedelta(seconds=43200 - 5) <= until
    assert until <= datetime.now(timezone.utc) + timedelta(seconds=43200)

    page = text(phone.get(response.headers["Location"]))
    assert "This phone is now bound to Dr. Li (staff number D001)" in page
    assert "Checked in to Hand hygiene lecture at" in page
    assert "Keep this Wi-Fi connected, even if your phone says there is no internet" in page

    # The phone now passes its probe: the sign-in sheet closes as "connected".
    assert phone.get("/generate_204").status_code == 204


def test_bind_after_a_pin_checkin_makes_no_second_checkin(phone, db_path):
    assert phone.post("/checkin", data={"csrf_token": csrf(phone), "staff_id": "D001",
                                        "pin": "2468"}).status_code == 303
    assert bind(phone).status_code == 303
    assert [r["type"] for r in records(db_path)] == ["checkin", "binding"]
    assert "Checked in to Hand hygiene lecture at" in text(phone.get("/bound"))


def test_bind_while_no_event_is_on_checks_in_by_time(phone, db_path):
    put_state(db_path, "config", {"node": "n1", "zone": "hall-a", "events": []})
    assert bind(phone).status_code == 303
    [checkin] = records(db_path, "checkin")
    assert checkin["event_id"] is None and checkin["device"] == device()
    assert "No event is on here right now" in text(phone.get("/bound"))


def test_wrong_pins_lock_the_staff_number_without_binding(phone, db_path):
    for n in range(5):
        response = bind(phone, pin="0000")
        assert response.status_code == 401
        assert "Wrong PIN for staff number D001" in text(response)
    response = bind(phone)  # right PIN, too late
    assert response.status_code == 429
    page = text(response)
    wait = int(response.headers["Retry-After"])
    assert 14 * 60 < wait <= 15 * 60
    assert re.search(r"Too many wrong PINs for staff number D001\. "
                     r"Try again in 15 minutes \(at \d\d:\d\d\)\.", page), page
    assert re.search(r'<form method="post" action="/bind"', response.get_data(as_text=True))
    nothing_written(db_path)
    assert phone.get("/generate_204").status_code == 302  # still captive


def test_device_limit_spans_staff_numbers(app, phone, leases, db_path):
    """Ten wrong PINs from one phone lock that phone, whichever staff numbers
    they were for; another phone can still bind the same person."""
    staff = [{"staff_id": f"S{i}", "name": f"Staff {i}", "pin_hash": hash_pin(f"{i}{i}{i}{i}")}
             for i in range(1, 5)]
    put_state(db_path, "roster", {**ROSTER, "staff": ROSTER["staff"] + staff})
    for i in range(10):
        response = bind(phone, staff_id=f"S{1 + i % 4}", pin="0000")
        assert response.status_code == 401, i  # no staff number reaches its own limit of 5
    assert "This phone is now locked for 15 minutes" in text(response)
    response = bind(phone, staff_id="S3", pin="3333")  # S3: 2 failures of its 5
    assert response.status_code == 429
    assert re.search(r"Too many wrong PINs from this phone\. Try again in 15 minutes "
                     r"\(at \d\d:\d\d\)\.", text(response)), text(response)
    assert 0 < int(response.headers["Retry-After"]) <= 15 * 60
    response = phone.post("/checkin", data={"csrf_token": token(phone), "staff_id": "S2",
                                            "pin": "2222"})
    assert response.status_code == 429  # the PIN check-in counts on the same phone
    nothing_written(db_path)

    other = new_phone(app, leases, OTHER_IP, OTHER_MAC)
    assert bind(other, staff_id="S3", pin="3333").status_code == 303
    assert bindings(db_path) == [(device(OTHER_MAC), "S3")]


def test_device_warning_names_the_phone_when_its_limit_is_nearer(phone, db_path):
    put_state(db_path, "roster", {**ROSTER, "staff": ROSTER["staff"] + [
        {"staff_id": f"S{i}", "name": f"S{i}", "pin_hash": hash_pin("9")} for i in range(3)]})
    for i in range(8):
        bind(phone, staff_id=f"S{i % 3}", pin="0000")
    response = bind(phone, staff_id="D001", pin="0000")  # D001's 1st, the phone's 9th
    assert "1 more wrong PIN from this phone and it is locked for 15 minutes" in text(response)


@pytest.mark.parametrize("token", [None, "forged"])
def test_bind_without_csrf_token_is_400_and_writes_nothing(phone, db_path, token):
    csrf(phone)
    data = {"staff_id": "D001", "pin": "2468", **({"csrf_token": token} if token else {})}
    response = phone.post("/bind", data=data)
    assert response.status_code == 400
    assert "This form has expired or did not come from this page" in text(response)
    nothing_written(db_path)
    assert query(db_path, "SELECT count(*) FROM pin_failures") == [(0,)]


def test_unknown_device_cannot_bind(client, db_path):
    response = bind(client)
    assert response.status_code == 403
    assert "The node cannot tell which phone this is" in text(response)
    nothing_written(db_path)
    assert client.get("/bind").status_code == 303


def test_rebind_from_a_new_mac_replaces_the_old_binding(app, phone, leases, db_path):
    assert bind(phone).status_code == 303
    # The phone rotated its MAC: same person, new address, shows up unbound.
    rotated = new_phone(app, leases, OTHER_IP, OTHER_MAC)
    assert 'action="/bind"' in rotated.get("/").get_data(as_text=True)
    assert bind(rotated).status_code == 303
    assert bindings(db_path) == [(device(OTHER_MAC), "D001")]
    assert [(r["type"], r["device"]) for r in records(db_path, "binding")] == [
        ("binding", device()), ("binding", device(OTHER_MAC))]
    assert len(records(db_path, "checkin")) == 1  # still one check-in to the lecture
    db = open_db(db_path)
    assert Devices(db, SECRET).staff_for(device()) is None
    db.close()


def test_another_person_can_take_over_a_bound_phone(phone, db_path):
    bind(phone)
    page = text(phone.get("/bind"))
    assert "This phone is bound to Dr. Li" in page
    assert bind(phone, staff_id="N002", pin="1357").status_code == 303
    assert bindings(db_path) == [(device(), "N002")]
    assert "Hello, Nurse Wang" in text(phone.get("/"))


def test_bound_phone_is_released_again_on_its_next_request(phone, db_path):
    bind(phone)
    db = open_db(db_path)
    with db.atomic():
        db.conn.execute("DELETE FROM released")
    db.close()
    assert phone.get("/").status_code == 200
    assert PHONE_MAC in released(db_path)


def test_bound_phone_checks_in_with_one_tap(phone, db_path):
    bind(phone)
    page = phone.get("/").get_data(as_text=True)
    assert "Hello, Dr. Li" in text(phone.get("/"))
    assert 'action="/checkin/tap"' not in page  # already checked in to this lecture
    assert "You are checked in" in text(phone.get("/"))

    put_state(db_path, "config", {"node": "n1", "zone": "hall-a", "events": [LATER]})
    page = phone.get("/").get_data(as_text=True)
    form = re.search(r'<form method="post" action="/checkin/tap"[^>]*>(.*?)</form>', page, re.S)
    assert form and re.findall(r'name="([^"]+)"', form.group(1)) == ["csrf_token"]
    assert "Check in to Fire safety training" in text(phone.get("/"))

    response = tap(phone)
    assert response.status_code == 303 and response.headers["Location"] == "/done?lang=en"
    assert "Checked in to Fire safety training, Dr. Li" in text(phone.get("/done"))
    checkin = records(db_path, "checkin")[-1]
    assert validate(checkin)
    assert (checkin["staff_id"], checkin["event_id"], checkin["method"], checkin["device"]) == (
        "D001", "ev2", "portal", device())

    assert "already checked in" in text(tap(phone, follow=True))
    assert len(records(db_path, "checkin")) == 2


def test_tap_from_a_phone_that_is_not_bound_is_refused(phone, client, db_path):
    for c in (phone, client):
        token = re.search(r'name="csrf_token" value="([^"]+)"',
                          c.get("/").get_data(as_text=True)).group(1)
        assert c.post("/checkin/tap", data={"csrf_token": token}).status_code == 403
    nothing_written(db_path)


def test_tap_without_csrf_token_is_400(phone, db_path):
    bind(phone)
    put_state(db_path, "config", {"node": "n1", "zone": "hall-a", "events": [LATER]})
    assert phone.post("/checkin/tap").status_code == 400
    assert len(records(db_path, "checkin")) == 1


def test_my_record_lists_check_ins_newest_first(phone, db_path):
    bind(phone)
    put_state(db_path, "config", {"node": "n1", "zone": "hall-a", "events": [LATER]})
    tap(phone)
    response = phone.get("/me")
    assert response.status_code == 200
    page = text(response)
    assert "My record" in page and "Dr. Li" in page and "D001" in page
    assert page.index("Fire safety training") < page.index("Event ev1")  # newest first;
    # ev1 is no longer in the node's schedule, so it is shown by its id
    for record in records(db_path, "checkin"):
        assert f'datetime="{record["ts"]}"' in response.get_data(as_text=True)
    assert "Bound to you here on" in page and device() in page
    assert PHONE_MAC not in response.get_data(as_text=True)


def test_my_record_shows_only_my_check_ins(app, phone, leases, db_path):
    bind(phone)
    other = new_phone(app, leases, OTHER_IP, OTHER_MAC)
    bind(other, staff_id="N002", pin="1357")
    assert "Nurse Wang" not in text(phone.get("/me"))
    assert len(re.findall(r"<li>", phone.get("/me").get_data(as_text=True))) == 1


def test_my_record_of_a_phone_bound_through_the_hub(phone, db_path):
    put_state(db_path, "roster", {**ROSTER, "bindings": [{"device": device(),
                                                          "staff_id": "N002"}]})
    page = text(phone.get("/me"))
    assert "Nurse Wang" in page and "the hub knows this phone" in page
    assert "No check-ins at this node yet" in page


def test_my_record_needs_a_bound_phone(phone, client):
    for c in (phone, client):
        response = c.get("/me")
        assert response.status_code == 303 and response.headers["Location"] == "/?lang=en"


def test_pin_is_never_logged_nor_in_a_url(phone, caplog):
    caplog.set_level(logging.DEBUG)
    secret_pin = "864297"
    put_state_pin = bind(phone, pin=secret_pin)
    assert put_state_pin.status_code == 401
    response = bind(phone)
    assert "2468" not in response.headers["Location"]
    assert secret_pin not in caplog.text and "2468" not in caplog.text
    for page in (phone.get("/bind"), phone.get("/")):
        for form in re.findall(r"<form[^>]*>", page.get_data(as_text=True)):
            assert 'method="post"' in form
