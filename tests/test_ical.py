"""iCalendar feeds per zone and per department: read back with icalendar,
reachable without signing in only through the token the dashboard shows."""

import json
import re
from datetime import datetime, timedelta, timezone
from html import unescape

import pytest
from icalendar import Calendar

from hub.attendance.attendance import set_expected
from hub.schedule import ical
from protocol.clock import iso

from .hubweb import make_app, signed_in

NOW = datetime.now(timezone.utc).replace(microsecond=0)


@pytest.fixture
def db(hub_db):
    with hub_db.conn:
        hub_db["zones"].insert_all([
            {"zone": "hall-a", "name": "Lecture hall A"},
            {"zone": "ward-3e", "name": "Ward 3 East"}])
        hub_db["departments"].insert({"department": "nursing", "name": "Nursing"})
        hub_db["staff"].insert({"staff_id": "C1", "name": "Chen Jie",
                                "department": "cardiology"})
        for event_id, title, zones, start, hours in (
                ("ev-hall", "Hand hygiene, part 1; basics", ["hall-a"], timedelta(days=1), 1.5),
                ("ev-both", "Fire drill", ["hall-a", "ward-3e"], timedelta(days=2), 0),
                ("ev-ward", "Ward round", ["ward-3e"], timedelta(days=3), 0),
                ("ev-old", "Long ago", ["hall-a"], -timedelta(days=400), 1)):
            hub_db["events"].insert({
                "id": event_id, "title": title, "kind": "lecture" if hours else "meeting",
                "zones": json.dumps(zones), "start": iso(NOW + start),
                "end": iso(NOW + start + timedelta(hours=1)), "credit_hours": hours})
        set_expected(hub_db, "ev-hall", departments=["nursing"])
        set_expected(hub_db, "ev-ward", departments=["cardiology"])
    return hub_db


@pytest.fixture
def app(hub_location, tmp_path, db):
    return make_app(hub_location, SECRET_KEY="feed-test-secret", PHOTOS_DIR=str(tmp_path))


def feed(app, kind: str, name: str) -> str:
    return f"{ical.feed_path(kind, name)}?token={ical.feed_token('feed-test-secret', kind, name)}"


def read(response) -> Calendar:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/calendar"
    return Calendar.from_ical(response.get_data())


def test_zone_feed_has_the_zones_events_in_utc(app):
    calendar = read(app.test_client().get(feed(app, "zone", "hall-a")))  # no sign-in

    # a feed has no session: its name is in the dashboard's default language
    assert str(calendar["X-WR-CALNAME"]) == "general-hospital：Lecture hall A"
    assert str(calendar["X-WR-TIMEZONE"]) == "Asia/Shanghai"
    assert str(calendar["VERSION"]) == "2.0"
    events = calendar.walk("VEVENT")
    assert [str(e["UID"]) for e in events] == ["ev-hall@general-hospital",
                                               "ev-both@general-hospital"]
    first = events[0]
    assert str(first["SUMMARY"]) == "Hand hygiene, part 1; basics"
    assert first.decoded("DTSTART") == NOW + timedelta(days=1)
    assert first.decoded("DTSTART").utcoffset() == timedelta(0)
    assert first.decoded("DTEND") == NOW + timedelta(days=1, hours=1)
    assert str(first["LOCATION"]) == "Lecture hall A"
    assert "1.5" in str(first["DESCRIPTION"])
    assert "DTSTAMP" in first
    assert str(events[1]["LOCATION"]) == "Lecture hall A, Ward 3 East"
    raw = app.test_client().get(feed(app, "zone", "hall-a")).get_data()
    assert len(re.findall(rb"\r\nDTSTART:\d{8}T\d{6}Z\r\n", raw)) == 2  # UTC, no TZID


def test_department_feed_has_the_events_expecting_it(app):
    nursing = read(app.test_client().get(feed(app, "department", "nursing")))
    cardiology = read(app.test_client().get(feed(app, "department", "cardiology")))

    assert [str(e["UID"]) for e in nursing.walk("VEVENT")] == ["ev-hall@general-hospital"]
    assert [str(e["UID"]) for e in cardiology.walk("VEVENT")] == ["ev-ward@general-hospital"]
    assert str(nursing["X-WR-CALNAME"]) == "general-hospital：Nursing"
    english = read(app.test_client().get(feed(app, "department", "nursing") + "&lang=en"))
    assert str(english["X-WR-CALNAME"]) == "general-hospital: Nursing"
    assert [str(e["UID"]) for e in english.walk("VEVENT")] == ["ev-hall@general-hospital"]


@pytest.mark.parametrize("url", [
    "/calendar/zone/hall-a.ics",
    "/calendar/zone/hall-a.ics?token=",
    "/calendar/zone/hall-a.ics?token=" + "0" * 64,
    # a good token for another feed opens nothing else
    "/calendar/zone/hall-a.ics?token=" + ical.feed_token("feed-test-secret", "zone", "ward-3e"),
    "/calendar/department/nursing.ics?token="
    + ical.feed_token("feed-test-secret", "zone", "nursing"),
    # signed with another key
    "/calendar/zone/hall-a.ics?token=" + ical.feed_token("other-secret", "zone", "hall-a"),
    # a good token, but no such zone
    "/calendar/zone/roof.ics?token=" + ical.feed_token("feed-test-secret", "zone", "roof"),
])
def test_feed_without_its_token_is_not_found(app, url):
    response = app.test_client().get(url)

    assert response.status_code == 404
    assert b"VCALENDAR" not in response.get_data()


def test_pages_show_working_subscribe_links_to_office(app, db):
    office = signed_in(app, db, "office")
    links = []
    for page in ("/zones/", "/events/"):
        html = office.get(page).get_data(as_text=True)
        links += [unescape(m) for m in re.findall(r'href="(http://[^"]+\.ics\?token=[^"]+)"',
                                                  html)]

    assert {link.split("?")[0] for link in links} == {
        "http://localhost/calendar/zone/hall-a.ics", "http://localhost/calendar/zone/ward-3e.ics",
        "http://localhost/calendar/department/nursing.ics",
        "http://localhost/calendar/department/cardiology.ics"}
    anonymous = app.test_client()
    for link in links:
        assert read(anonymous.get(link.removeprefix("http://localhost")))
