"""Registration on the node's portal: a bound phone (or staff number + PIN)
sees the events taking registration from the node's config, registers or
cancels on a plain form; each is a valid ``registration`` record in the
outbox; the state shown is the hub's (registered; waiting, number N) or
"sent, waiting for the hub" until the config reflects it; refusals (not for
them, window, started, clock unset) queue nothing."""

from datetime import timedelta

import pytest

from edge.health import NodeClock
from edge.portal import create_app
from protocol.clock import iso
from protocol.records import validate

from .test_portal import (  # noqa: F401 - fixtures
    EVENT, NOW, PHONE_IP, app, arp, client, csrf, db_path, device, lease, leases, phone,
    portal_config, put_state, query, records, text,
)


def event(**overrides) -> dict:
    return {"event_id": "reg-1", "title": "院感防控培训", "kind": "training",
            "start": iso(NOW + timedelta(days=2)), "end": iso(NOW + timedelta(days=2, hours=2)),
            "places": ["Lecture hall A"], "opens_at": iso(NOW - timedelta(hours=1)),
            "closes_at": iso(NOW + timedelta(days=1)), "capacity": 2, "required": False,
            "who": None, "registered": [], "waiting": [], **overrides}


def configure(db_path, *events, version="v1"):
    put_state(db_path, "config", {"version": version, "node": "n1", "zone": "hall-a",
                                  "events": [EVENT], "registrations": list(events)})


@pytest.fixture
def node(db_path):
    configure(db_path, event())
    return db_path


def sign_in(client, staff_id="D001", pin="2468"):
    assert "Sign in" in text(client.get("/register"))
    return client.post("/register/sign-in", data={"csrf_token": csrf(client, "/register"),
                                                  "staff_id": staff_id, "pin": pin})


def act(client, action="register", event_id="reg-1"):
    return client.post("/register", data={"csrf_token": csrf(client, "/register"),
                                          "event_id": event_id, "action": action})


def test_the_start_page_links_registration_while_a_window_is_open(client, node):
    assert "Register for events" in text(client.get("/"))
    configure(node, event(opens_at=iso(NOW + timedelta(hours=1))))
    assert "Register for events" not in text(client.get("/"))


def test_signed_in_a_person_registers_and_the_record_is_queued(client, node):
    assert sign_in(client).status_code in (302, 303)
    page = text(client.get("/register"))
    assert "院感防控培训" in page and "Not registered" in page
    assert "0 of 2 places taken" in page
    answer = act(client)
    assert answer.status_code in (302, 303)
    page = text(client.get("/register"))
    assert "was sent to the hub" in page and "Sent, waiting for the hub" in page
    [sent] = records(node, "registration")
    assert validate(sent) is sent
    assert (sent["event_id"], sent["staff_id"], sent["action"]) == ("reg-1", "D001", "register")
    assert act(client).status_code in (302, 303)  # again: nothing more to send
    assert len(records(node, "registration")) == 1
    assert query(node, "SELECT action, record_id FROM local_registrations") == [
        ("register", sent["id"])]


def test_the_hubs_word_shows_once_the_config_reflects_it(client, node):
    sign_in(client)
    act(client)
    configure(node, event(registered=["N002", "X1"], waiting=["D001"]), version="v2")
    assert "Waiting, number 1" in text(client.get("/register"))
    configure(node, event(registered=["D001"]), version="v3")
    page = text(client.get("/register"))
    assert "Registered" in page and "Cancel my registration" in page
    act(client, "cancel")
    assert "Cancellation sent, waiting for the hub" in text(client.get("/register"))
    assert [r["action"] for r in records(node, "registration")] == ["register", "cancel"]


def test_acked_and_config_changed_the_hub_decides(client, node):
    """The hub refused it (or the person changed it on the hub since): once
    the record is acknowledged and the config has changed, the page says so."""
    sign_in(client)
    act(client)
    [sent] = records(node, "registration")
    query(node, "DELETE FROM outbox WHERE id = ?", sent["id"])  # acknowledged
    assert "Sent, waiting for the hub" in text(client.get("/register"))  # config as before
    configure(node, event(), version="v2")
    assert "Not registered" in text(client.get("/register"))


def test_a_bound_phone_needs_no_sign_in(app, leases, node):
    lease(leases, PHONE_IP, "a6:3f:0c:11:7e:42")
    put_state(node, "roster", {"version": 2, "staff": [
        {"staff_id": "D001", "name": "Dr. Li", "department": "cardiology"}],
        "bindings": [{"device": device(), "staff_id": "D001"}]})
    phone = app.test_client()
    phone.environ_base["REMOTE_ADDR"] = PHONE_IP
    page = text(phone.get("/register?lang=en"))
    assert "Dr. Li" in page and "院感防控培训" in page and "Sign out" not in page
    act(phone)
    assert [r["staff_id"] for r in records(node, "registration")] == ["D001"]


@pytest.mark.parametrize("overrides, action, status", [
    ({"who": {"departments": ["nursing"], "staff": []}}, "register", 403),
    ({"opens_at": iso(NOW + timedelta(hours=1))}, "register", 409),
    ({"closes_at": iso(NOW - timedelta(minutes=1))}, "register", 409),
    ({"start": iso(NOW - timedelta(minutes=1)), "registered": ["D001"],
      "closes_at": iso(NOW - timedelta(minutes=2))}, "cancel", 409),
])
def test_refusals_queue_nothing(client, node, overrides, action, status):
    configure(node, event(**overrides))
    sign_in(client)
    assert act(client, action).status_code == status
    assert records(node, "registration") == []


def test_only_who_may_see_an_event_and_unknown_ones_are_404(client, node):
    configure(node, event(who={"departments": ["nursing"], "staff": ["N9"]}))
    sign_in(client)
    assert "院感防控培训" not in text(client.get("/register"))
    assert act(client, event_id="nope").status_code == 404
    configure(node, event(who={"departments": ["cardiology"], "staff": []}, required=True))
    page = text(client.get("/register"))
    assert "院感防控培训" in page and "Required: you are asked to register" in page


class UnsetClock(NodeClock):
    def synced(self) -> bool | None:
        return False


def test_no_registration_while_the_clock_is_unset(db_path, leases, arp):
    configure(db_path, event())
    clock = UnsetClock()
    client = create_app(portal_config(db_path, leases, arp, CLOCK=clock)).test_client()
    client.get("/?lang=en")
    sign_in(client)
    assert act(client).status_code == 503
    assert records(db_path, "registration") == []


def test_a_wrong_pin_is_refused(client, node):
    answer = sign_in(client, pin="0000")
    assert answer.status_code == 401
    assert "院感防控培训" not in text(client.get("/register"))
