"""OS connectivity probes, the RFC 8908 API and the foreign-host redirect,
per device state, as phones on a real node see them: the portal at
http://10.42.0.1/, every other host name sent here by the nftables redirect."""

import json
from datetime import datetime, timedelta, timezone

import pytest

from edge.db import open_db
from edge.devices import Devices
from edge.portal import create_app
from protocol.clock import iso, parse_iso

from .test_portal import (  # noqa: F401 - fixtures
    OTHER_IP, OTHER_MAC, PHONE_IP, PHONE_MAC, ROSTER, SECRET, arp, db_path, device, lease,
    leases, portal_config, put_state, query,
)

PORTAL = "http://10.42.0.1/"
VENUE = "https://www.hospital.example/visitors"
RELEASE = 3600
APPLE = "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>"
FIREFOX = ('<meta http-equiv="refresh" '
           'content="0;url=https://support.mozilla.org/kb/captive-portal"/>')
# (host the OS asks, path, released status, released body, released content type)
PROBES = [
    ("captive.apple.com", "/hotspot-detect.html", 200, APPLE, "text/html"),
    ("www.apple.com", "/library/test/success.html", 200, APPLE, "text/html"),
    ("connectivitycheck.gstatic.com", "/generate_204", 204, "", None),
    ("clients3.google.com", "/generate_204", 204, "", None),
    ("connectivitycheck.android.com", "/gen_204", 204, "", None),
    ("www.msftconnecttest.com", "/connecttest.txt", 200, "Microsoft Connect Test", "text/plain"),
    ("www.msftncsi.com", "/ncsi.txt", 200, "Microsoft NCSI", "text/plain"),
    ("detectportal.firefox.com", "/canonical.html", 200, FIREFOX, "text/html"),
    ("detectportal.firefox.com", "/success.txt", 200, "success\n", "text/plain"),
]


@pytest.fixture
def app(db_path, leases, arp):
    lease(leases, PHONE_IP, PHONE_MAC)
    return create_app(portal_config(db_path, leases, arp, PORTAL_URL=PORTAL,
                                    VENUE_INFO_URL=VENUE, RELEASE_SECONDS=RELEASE,
                                    API_URL="https://portal.hospital.example/api/captive"))


def release(db_path, mac=PHONE_MAC, seconds=RELEASE):
    db = open_db(db_path)
    try:
        Devices(db, SECRET).release(mac, seconds)
    finally:
        db.close()


def get(app, path, host, ip=PHONE_IP, **kwargs):
    return app.test_client().get(path, headers={"Host": host},
                                 environ_base={"REMOTE_ADDR": ip}, **kwargs)


@pytest.mark.parametrize("host, path, status, body, content_type", PROBES)
def test_released_phone_gets_the_exact_success_answer(app, db_path, host, path, status, body,
                                                      content_type):
    release(db_path)
    response = get(app, path, host)
    assert response.status_code == status
    assert response.get_data(as_text=True) == body
    assert response.headers.get("Content-Type") == content_type
    assert response.headers["Cache-Control"] == "no-store"
    assert "Location" not in response.headers


@pytest.mark.parametrize("state", ["captive", "expired", "unknown device"])
@pytest.mark.parametrize("host, path, status, body, content_type", PROBES)
def test_captive_phone_is_sent_to_the_portal(app, db_path, leases, state, host, path, status,
                                             body, content_type):
    ip = PHONE_IP
    if state == "expired":
        release(db_path, seconds=-1)
    elif state == "unknown device":
        ip = "10.42.0.99"  # no lease, no neighbour entry: the node cannot tell who
    response = get(app, path, host, ip)
    assert response.status_code == 302
    assert response.headers["Location"] == PORTAL
    assert response.headers["Cache-Control"] == "no-store"
    if body:
        assert body not in response.get_data(as_text=True)


def test_probe_answers_do_not_set_cookies(app, db_path):
    release(db_path)
    for host, path, *_ in PROBES:
        assert "Set-Cookie" not in get(app, path, host).headers


def test_released_phone_found_through_the_neighbour_table(app, db_path, arp):
    """No lease (a static address): the kernel's neighbour table names the MAC."""
    with open(arp, "a") as f:
        f.write(f"{OTHER_IP}      0x1         0x2         {OTHER_MAC}     *        wlan0\n")
    assert get(app, "/generate_204", "connectivitycheck.gstatic.com", OTHER_IP).status_code == 302
    release(db_path, OTHER_MAC)
    assert get(app, "/generate_204", "connectivitycheck.gstatic.com", OTHER_IP).status_code == 204


def test_bound_phone_is_released_on_its_first_request(app, db_path):
    """A phone bound before (here: on another node, known from the hub's
    roster) passes its OS probe at once, so its sign-in sheet never opens."""
    put_state(db_path, "roster", {**ROSTER, "bindings": [
        {"device": device(), "staff_id": "D001"}]})
    assert query(db_path, "SELECT count(*) FROM released") == [(0,)]
    before = datetime.now(timezone.utc)
    response = get(app, "/hotspot-detect.html", "captive.apple.com")
    assert response.status_code == 200 and response.get_data(as_text=True) == APPLE
    [(mac, until)] = query(db_path, "SELECT mac, until FROM released")
    assert mac == PHONE_MAC
    assert before + timedelta(seconds=RELEASE - 5) <= parse_iso(until) \
        <= datetime.now(timezone.utc) + timedelta(seconds=RELEASE)


def test_bound_phone_whose_release_ran_out_is_released_again(app, db_path):
    db = open_db(db_path)
    with db.atomic():
        Devices(db, SECRET).bind(device(), "D001")
    db.close()
    release(db_path, seconds=-1)
    assert get(app, "/generate_204", "connectivitycheck.gstatic.com").status_code == 204


def test_unbound_phone_is_not_released_by_asking(app, db_path):
    for _ in range(3):
        assert get(app, "/generate_204", "connectivitycheck.gstatic.com").status_code == 302
    assert query(db_path, "SELECT count(*) FROM released") == [(0,)]


@pytest.mark.parametrize("method, host, path", [
    ("GET", "www.baidu.com", "/"),
    ("GET", "example.com", "/some/page?q=1"),
    ("GET", "10.0.0.8", "/me"),
    ("POST", "example.com", "/bind"),       # refused before any CSRF check or binding
    ("GET", "captive.apple.com", "/"),      # Apple's probe host, not a probe path
])
def test_any_other_host_is_sent_to_the_portal(app, db_path, method, host, path):
    release(db_path)  # even a released phone: the page it asked for is not ours
    response = app.test_client().open(path, method=method, headers={"Host": host},
                                      environ_base={"REMOTE_ADDR": PHONE_IP})
    assert response.status_code == 302
    assert response.headers["Location"] == PORTAL
    assert response.headers["Cache-Control"] == "no-store"
    assert query(db_path, "SELECT count(*) FROM bindings_local") == [(0,)]


@pytest.mark.parametrize("host", ["10.42.0.1", "10.42.0.1:80", "portal.hospital.example"])
def test_the_portal_host_itself_is_served(app, host):
    response = get(app, "/", host)
    assert response.status_code == 200 and 'action="/bind"' in response.get_data(as_text=True)


def test_healthz_answers_on_any_host(app):
    assert get(app, "/healthz", "192.168.7.20").get_json()["ok"] is True


def test_without_portal_url_captive_probes_go_to_this_hosts_start_page(db_path, leases, arp):
    lease(leases, PHONE_IP, PHONE_MAC)
    app = create_app(portal_config(db_path, leases, arp, PORTAL_URL=None))
    response = get(app, "/generate_204", "127.0.0.1:8080")
    assert response.status_code == 302 and response.headers["Location"] == "http://127.0.0.1:8080/"
    assert get(app, "/", "example.com").status_code == 200  # no foreign-host redirect


# --- RFC 8908 Captive Portal API ---------------------------------------------

def api(app, ip=PHONE_IP):
    response = get(app, "/api/captive", "portal.hospital.example", ip,
                   base_url="https://portal.hospital.example/")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/captive+json"
    assert response.headers["Cache-Control"] == "private, no-store"
    assert len(response.get_data()) <= 4096
    return json.loads(response.get_data())


@pytest.mark.parametrize("ip", [PHONE_IP, "10.42.0.99"], ids=["captive", "unknown device"])
def test_api_captive(app, ip):
    assert api(app, ip) == {"captive": True, "user-portal-url": PORTAL, "venue-info-url": VENUE}


def test_api_released_gives_seconds_remaining(app, db_path):
    release(db_path)
    body = api(app)
    assert body["captive"] is False
    assert body["user-portal-url"] == PORTAL and body["venue-info-url"] == VENUE
    assert isinstance(body["seconds-remaining"], int)
    assert RELEASE - 10 <= body["seconds-remaining"] <= RELEASE
    assert set(body) == {"captive", "user-portal-url", "venue-info-url", "seconds-remaining"}


def test_api_released_after_binding_counts_down_from_release_seconds(app, db_path):
    until = iso(datetime.now(timezone.utc) + timedelta(seconds=100))
    db = open_db(db_path)
    with db.atomic():
        db.conn.execute("INSERT INTO released (mac, until) VALUES (?, ?)", (PHONE_MAC, until))
    db.close()
    assert 90 <= api(app)["seconds-remaining"] <= 100


def test_api_without_venue_info_url_omits_it(db_path, leases, arp):
    app = create_app(portal_config(db_path, leases, arp, PORTAL_URL=PORTAL))
    assert api(app) == {"captive": True, "user-portal-url": PORTAL}
