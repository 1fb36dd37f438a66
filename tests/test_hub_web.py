"""The hub web app against a real SQLite file: JSON API and dashboard pages."""

import json
import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from hub.attendance.attendance import set_expected
from hub.web import create_app
from protocol.clock import iso, now_iso
from runtime.settings import ConfigError

from .hubweb import signed_in
from .test_attendance import add_event as add_lecture
from .test_attendance import checkin, ingest, occupancy, presence, ts

TZ = ZoneInfo("Asia/Shanghai")


def local(day: date, hour: int, minute: int = 0) -> str:
    """The wire timestamp of a wall-clock time in the hospital's zone."""
    return iso(datetime(day.year, day.month, day.day, hour, minute, tzinfo=TZ))


@pytest.fixture
def db(hub_db):
    return hub_db


@pytest.fixture
def client(hub_app, db):
    return signed_in(hub_app, db, "office")


@pytest.fixture
def english(client):
    """The office client with English chosen (zh-CN is the default language)."""
    client.get("/lang/en")
    return client


def add_event(db, event_id, title, start, end, zones=("hall-a",), **extra):
    db["events"].insert(
        {"id": event_id, "title": title, "kind": "lecture", "zones": json.dumps(list(zones)),
         "start": start, "end": end, **extra}
    )


_seq = iter(range(1_000_000))


def add_checkin(db, event_id, staff_id, ts, method="portal", node="node-hall-a"):
    db["checkins"].insert(
        {"id": f"chk-{next(_seq)}", "node": node, "ts": ts, "received_at": now_iso(),
         "staff_id": staff_id, "event_id": event_id, "zone": "hall-a", "method": method}
    )


def add_staff(db, staff_id, name, department="Cardiology"):
    db["staff"].insert({"staff_id": staff_id, "name": name, "department": department})


# --- health -----------------------------------------------------------------


def test_health_counts_nodes_and_quarantine(client, db):
    for node in [
        {"node": "n1", "state": "online"},
        {"node": "n2", "state": "online"},
        {"node": "n3", "state": "offline"},
        {"node": "n4"},  # registered, never reported: offline
        {"node": "n5", "state": "online", "revoked": 1},  # revoked: not counted
    ]:
        db["nodes"].insert(node)
    db["quarantine"].insert(
        {"received_at": now_iso(), "topic": "rounds/v1/x", "reason": "bad json", "payload": b"{"}
    )

    response = client.get("/api/v1/health")

    assert response.status_code == 200
    assert response.get_json() == {
        "ok": True, "site": "general-hospital", "db": "ok",
        "nodes": {"online": 2, "offline": 2}, "quarantine": 1,
    }


def test_health_reports_an_unusable_database(tmp_path):
    app = create_app({"TESTING": True, "HUB_DB": str(tmp_path), "SITE": "s"})  # a directory

    response = app.test_client().get("/api/v1/health")

    assert response.status_code == 503
    assert response.get_json() == {"ok": False, "site": "s", "db": "error"}


# --- events -----------------------------------------------------------------


def test_events_lists_events_with_distinct_checked_in_counts(client, db):
    day = date(2025, 3, 10)
    add_event(db, "ev-1", "Hand hygiene", local(day, 9), local(day, 10),
              zones=("hall-a", "ward-3"), credit_hours=1.5, min_presence=0.5)
    add_event(db, "ev-2", "Fire safety", local(day, 14), local(day, 15))
    add_checkin(db, "ev-1", "S1", local(day, 9, 1))
    add_checkin(db, "ev-1", "S1", local(day, 9, 2), method="presence")  # same person again
    add_checkin(db, "ev-1", "S2", local(day, 9, 3))
    add_checkin(db, None, "S3", local(day, 9, 4))  # no event: counts nowhere

    events = client.get("/api/v1/events").get_json()

    assert [e["id"] for e in events] == ["ev-1", "ev-2"]
    assert events[0] == {
        "id": "ev-1", "title": "Hand hygiene", "kind": "lecture", "zones": ["hall-a", "ward-3"],
        "start": local(day, 9), "end": local(day, 10), "credit_hours": 1.5,
        "min_presence": 0.5, "checked_in": 2,
        # S1's presence check-in shows hall-a has a presence source that never saw
        # anyone: both check-ins alone are partial.
        "present": 0, "partial": 2, "absent": 0, "expected": 0,
    }
    assert events[1]["checked_in"] == 0


def test_events_date_filter_uses_the_hospital_time_zone(client, db):
    day = date(2025, 3, 10)
    # 01:00 in Shanghai on the 10th is still the 9th in UTC.
    add_event(db, "early", "Early round", local(day, 1), local(day, 2))
    add_event(db, "before", "Day before", local(day - timedelta(days=1), 22),
              local(day - timedelta(days=1), 23))
    add_event(db, "after", "Day after", local(day + timedelta(days=1), 0, 30),
              local(day + timedelta(days=1), 1))

    on_day = client.get("/api/v1/events?date=2025-03-10").get_json()
    day_before = client.get("/api/v1/events?date=2025-03-09").get_json()

    assert [e["id"] for e in on_day] == ["early"]
    assert [e["id"] for e in day_before] == ["before"]


def test_events_rejects_a_malformed_date_with_json(client):
    response = client.get("/api/v1/events?date=10/03/2025")

    assert response.status_code == 400
    assert "error" in response.get_json()


# --- attendance -------------------------------------------------------------


def test_attendance_ordered_by_earliest_checkin_with_unknown_staff(client, db):
    day = date(2025, 3, 10)
    add_event(db, "ev-1", "Hand hygiene", local(day, 9), local(day, 10))
    add_event(db, "ev-2", "Other", local(day, 11), local(day, 12))
    add_staff(db, "S1", "Li Na", "Nursing")
    add_staff(db, "S2", "Wang Wei", "Cardiology")
    add_checkin(db, "ev-1", "S1", local(day, 9, 20), method="portal", node="node-b")
    add_checkin(db, "ev-1", "S2", local(day, 9, 10), method="portal", node="node-a")
    # S1 was also seen earlier by presence: that earliest check-in wins.
    add_checkin(db, "ev-1", "S1", local(day, 8, 55), method="presence", node="node-a")
    add_checkin(db, "ev-1", "X9", local(day, 9, 15), method="portal", node="node-a")  # not in roster
    add_checkin(db, "ev-2", "S2", local(day, 8, 0))  # another event: not listed

    response = client.get("/api/v1/events/ev-1/attendance")

    assert response.status_code == 200
    body = response.get_json()
    assert body["event"]["id"] == "ev-1"
    assert body["event"]["checked_in"] == 3
    fields = ("staff_id", "name", "department", "checked_in_at", "method", "node")
    assert [{k: row[k] for k in fields} for row in body["attendance"]] == [
        {"staff_id": "S1", "name": "Li Na", "department": "Nursing",
         "checked_in_at": local(day, 8, 55), "method": "presence", "node": "node-a"},
        {"staff_id": "S2", "name": "Wang Wei", "department": "Cardiology",
         "checked_in_at": local(day, 9, 10), "method": "portal", "node": "node-a"},
        {"staff_id": "X9", "name": None, "department": None,
         "checked_in_at": local(day, 9, 15), "method": "portal", "node": "node-a"},
    ]


def test_attendance_of_unknown_event_is_404_json(client):
    response = client.get("/api/v1/events/no-such-event/attendance")

    assert response.status_code == 404
    assert response.is_json
    assert "no-such-event" in response.get_json()["error"]


def test_unrouted_api_path_is_404_json_but_pages_stay_html(client):
    api = client.get("/api/v1/nothing-here")
    page = client.get("/nothing-here")

    assert api.status_code == 404 and api.is_json and "error" in api.get_json()
    assert page.status_code == 404 and not page.is_json


def test_api_server_error_is_json_without_details(tmp_path):
    app = create_app({"HUB_DB": str(tmp_path), "SITE": "s"})  # a directory: cannot open

    # A token request reaches the database (to find the token), which fails.
    response = app.test_client().get("/api/v1/events",
                                     headers={"Authorization": "Bearer rnd_x"})

    assert response.status_code == 500
    assert response.get_json() == {"error": "internal server error"}


ROW_FIELDS = {"staff_id", "name", "department", "status", "checked_in_at", "method", "node",
              "first_seen", "last_seen", "dwell_minutes", "late_minutes",
              "early_leave_minutes", "expected", "registered", "walk_in", "now"}


def seed_lecture(db):
    """09:00-10:00 on 2025-03-10 in hall-a, expecting Nursing and P1: N1 comes
    late and leaves early, N2 stays throughout, N3 and P1 never come, C1 walks in."""
    add_lecture(db)  # "ev", "Hand hygiene"
    add_staff(db, "N1", "Li Na", "Nursing")
    add_staff(db, "N2", "Wang Wei", "Nursing")
    add_staff(db, "N3", "Zhang Min", "Nursing")
    add_staff(db, "P1", "Sun Na", "Pharmacy")
    add_staff(db, "C1", "Chen Jie", "Cardiology")
    set_expected(db, "ev", departments=["Nursing"], staff=["P1"])
    ingest(db, checkin("N1", 12), presence("N1", 12, 45), checkin("N2", -2),
           presence("N2", -5, 65), checkin("C1", 1, method="portal"))
    ingest(db, presence("C1", 0, 58), node="hall-a-2")


def test_attendance_api_gives_counts_and_every_person_with_status(client, db):
    seed_lecture(db)

    body = client.get("/api/v1/events/ev/attendance").get_json()

    assert set(body) == {"event", "counts", "attendance"}
    assert body["event"]["id"] == "ev" and body["event"]["checked_in"] == 3
    assert body["counts"] == {"present": 2, "partial": 1, "absent": 2, "expected": 4,
                              "now": None}
    rows = body["attendance"]
    assert all(set(row) == ROW_FIELDS for row in rows)
    assert [(r["staff_id"], r["status"], r["expected"]) for r in rows] == [
        ("N2", "present", True), ("C1", "present", False), ("N1", "partial", True),
        ("P1", "absent", True), ("N3", "absent", True)]  # absent by name: Sun Na, Zhang Min
    late = rows[2]
    assert (late["dwell_minutes"], late["late_minutes"], late["early_leave_minutes"]) == (
        33.0, 12.0, 15.0)
    assert (late["first_seen"], late["last_seen"], late["method"], late["node"]) == (
        ts(12), ts(45), "presence", "hall-a-1")
    assert rows[1]["method"] == "portal" and rows[1]["dwell_minutes"] == 58.0


def test_events_list_carries_the_status_counts(client, db):
    seed_lecture(db)

    [event] = client.get("/api/v1/events").get_json()

    assert {k: event[k] for k in ("checked_in", "present", "partial", "absent", "expected")} == {
        "checked_in": 3, "present": 2, "partial": 1, "absent": 2, "expected": 4}


# --- occupancy --------------------------------------------------------------------------


def test_occupancy_sums_the_nodes_of_a_zone_per_minute(client, db):
    ingest(db, occupancy("hall-a", 10, 5), occupancy("hall-a", 11, 3), node="hall-a-1")
    ingest(db, occupancy("hall-a", 10, 4), occupancy("hall-a", 12, 2), node="hall-a-2")
    ingest(db, occupancy("hall-b", 10, 7), node="hall-b-1")
    ingest(db, occupancy("hall-a", 10, 6), node="hall-a-1")  # a restarted node, same minute

    hall_a = client.get(f"/api/v1/occupancy?zone=hall-a&from={ts(0)}&to={ts(60)}").get_json()
    every = client.get(f"/api/v1/occupancy?from={ts(0)}&to={ts(60)}").get_json()
    window = client.get(f"/api/v1/occupancy?zone=hall-a&from={ts(11)}&to={ts(12)}").get_json()

    assert hall_a == {"zone": "hall-a", "from": ts(0), "to": ts(60), "occupancy": [
        {"zone": "hall-a", "minute": ts(10), "devices": 10},  # 6 (node 1's larger) + 4
        {"zone": "hall-a", "minute": ts(11), "devices": 3},
        {"zone": "hall-a", "minute": ts(12), "devices": 2}]}
    assert [(o["zone"], o["minute"], o["devices"]) for o in every["occupancy"]] == [
        ("hall-a", ts(10), 10), ("hall-a", ts(11), 3), ("hall-a", ts(12), 2),
        ("hall-b", ts(10), 7)]
    assert every["zone"] is None
    assert window["occupancy"] == [{"zone": "hall-a", "minute": ts(11), "devices": 3}]


def test_occupancy_takes_offsets_and_defaults_to_the_last_two_hours(client, db):
    now = datetime.now(TZ)
    recent = now.replace(second=0, microsecond=0) - timedelta(minutes=30)
    old = recent - timedelta(hours=3)
    ingest(db, *[{**occupancy("hall-a", 0, n), "minute": iso(t), "ts": iso(t)}
                 for t, n in ((recent, 8), (old, 9))])
    ingest(db, occupancy("hall-a", 10, 5))

    default = client.get("/api/v1/occupancy?zone=hall-a").get_json()
    # 09:00-10:00 in Shanghai, written with its offset ('+' encoded as in a URL).
    offset = client.get("/api/v1/occupancy?zone=hall-a"
                        "&from=2025-03-10T09:00:00%2B08:00&to=2025-03-10T10:00:00%2B08:00")

    assert default["occupancy"] == [{"zone": "hall-a", "minute": iso(recent), "devices": 8}]
    assert offset.get_json()["occupancy"] == [
        {"zone": "hall-a", "minute": ts(10), "devices": 5}]
    assert offset.get_json()["from"] == ts(0)


@pytest.mark.parametrize("query, reason", [
    ("from=yesterday", "from must be an ISO 8601 time"),
    ("to=2025-03-10T25:00:00Z", "to must be an ISO 8601 time"),
    ("from=2025-03-10T09:00:00&to=2025-03-10T10:00:00Z", "from needs a time zone"),
    ("from=2025-03-10T10:00:00Z&to=2025-03-10T09:00:00Z", "from must be before to"),
    ("from=2025-01-01T00:00:00Z&to=2025-03-10T00:00:00Z", "at most 31 days"),
    ("zone=" + "x" * 65, "zone must be 1..64 characters"),
    ("zone=", "zone must be 1..64 characters"),
    ("from=0001-01-01T00:00:00Z&to=0001-01-01T01:00:00Z", "out of range"),
])
def test_occupancy_rejects_bad_parameters_with_a_reason(client, query, reason):
    response = client.get(f"/api/v1/occupancy?{query}")

    assert response.status_code == 400
    assert reason in response.get_json()["error"]


# --- pages --------------------------------------------------------------------


def test_today_page_lists_todays_events_and_who_checked_in(client, db):
    today = datetime.now(TZ).date()
    yesterday = today - timedelta(days=1)
    add_event(db, "ev-today", "Infection control briefing", local(today, 10), local(today, 11))
    add_event(db, "ev-old", "Yesterday's drill", local(yesterday, 10), local(yesterday, 11))
    add_staff(db, "S1", "Zhang Min")
    add_staff(db, "S2", "Chen Jie")
    add_checkin(db, "ev-today", "S1", local(today, 10, 5))
    add_checkin(db, "ev-old", "S2", local(yesterday, 10, 5))

    response = client.get("/")

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Infection control briefing" in page
    assert "Zhang Min" in page
    assert "10:05" in page  # the check-in time, shown in the hospital's zone
    assert "Yesterday's drill" not in page
    assert "Chen Jie" not in page
    assert '<meta http-equiv="refresh" content="10">' in page


def test_event_page_shows_attendance_and_404s_for_unknown(client, db):
    day = date(2025, 3, 10)
    add_event(db, "ev-1", "Hand hygiene", local(day, 9), local(day, 10))
    add_staff(db, "S1", "Li Na")
    add_checkin(db, "ev-1", "S1", local(day, 9, 7), method="presence")

    page = client.get("/events/ev-1").get_data(as_text=True)

    assert "Hand hygiene" in page and "Li Na" in page and "09:07" in page
    assert "<td>Wi-Fi 感知</td>" in page  # the check-in method's words, not "presence"
    assert "<td>Detected by Wi-Fi</td>" in client.get("/events/ev-1?lang=en").get_data(
        as_text=True)
    assert client.get("/events/nope").status_code == 404


def test_staff_names_are_escaped_on_the_page(client, db):
    today = datetime.now(TZ).date()
    add_event(db, "ev-1", "Ward round", local(today, 10), local(today, 11))
    add_staff(db, "S1", "<script>alert(1)</script>")
    add_checkin(db, "ev-1", "S1", local(today, 10, 1))

    page = client.get("/").get_data(as_text=True)

    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# --- configuration ------------------------------------------------------------


def test_create_app_reads_the_hub_config_file(tmp_path, monkeypatch):
    config = tmp_path / "hub.json"
    config.write_text(json.dumps({"site": "west-campus", "db": "data/hub.db",
                                  "timezone": "Europe/Berlin", "secret_key": "k"}))
    monkeypatch.setenv("ROUNDS_HUB_CONFIG", str(config))

    app = create_app()

    assert app.config["SITE"] == "west-campus"
    assert app.config["HUB_DB"] == str(tmp_path / "data" / "hub.db")
    assert app.config["TIMEZONE"] == "Europe/Berlin"
    assert app.config["SECRET_KEY"] == "k"
    assert app.test_client().get("/api/v1/health").get_json()["site"] == "west-campus"


def test_create_app_without_config_fails_clearly(monkeypatch):
    monkeypatch.delenv("ROUNDS_HUB_CONFIG", raising=False)

    with pytest.raises(ConfigError, match="ROUNDS_HUB_CONFIG"):
        create_app()


# --- attendance on the pages ------------------------------------------------------------


def test_event_page_shows_counts_statuses_markers_and_absent_people(english, db):
    seed_lecture(db)

    page = english.get("/events/ev").get_data(as_text=True)

    assert '<strong class="count">2</strong> present' in page
    assert '<strong class="count">1</strong> partial' in page
    assert '<strong class="count">2</strong> absent' in page
    assert "4 expected" in page
    for word in ('status-present">present<', 'status-partial">partial<',
                 'status-absent">absent<'):
        assert word in page
    assert "late 12 min" in page and "left 15 min early" in page
    assert "33 min" in page and "60 min" in page  # dwell of N1 and N2
    assert "Zhang Min" in page and "Sun Na" in page  # expected, never came
    assert "not on the list" in page  # C1 walked in
    assert "09:12" in page and "09:45" in page  # N1 in the room, hospital time
    assert "Expected: Nursing; P1" in page
    assert '<noscript><meta http-equiv="refresh" content="15"></noscript>' in page


def test_today_page_shows_each_events_counts_and_statuses(english, db):
    seed_lecture(db)

    page = english.get("/?date=2025-03-10").get_data(as_text=True)

    assert "Hand hygiene" in page
    assert '<strong class="count">2</strong> absent' in page
    assert "late 12 min" in page and "left 15 min early" in page
    assert page.index("Wang Wei") < page.index("Li Na") < page.index("Zhang Min")
    assert '<meta http-equiv="refresh" content="10">' in page


def test_absent_names_and_expected_departments_are_escaped(english, db):
    add_lecture(db)
    add_staff(db, "S1", "<b>Bold</b>", "<i>Ward</i>")
    set_expected(db, "ev", departments=["<i>Ward</i>"], staff=["<script>x</script>"])

    page = english.get("/events/ev").get_data(as_text=True)
    today = english.get("/?date=2025-03-10").get_data(as_text=True)

    for html in (page, today):
        assert "<b>Bold</b>" not in html and "&lt;b&gt;Bold&lt;/b&gt;" in html
        assert "<i>Ward</i>" not in html and "&lt;i&gt;Ward&lt;/i&gt;" in html
        assert "<script>x</script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html
        assert 'status-absent">absent<' in html


# --- a big event: status tabs and pages ------------------------------------------------------


def seed_big_lecture(db):
    """The lecture "ev" expecting Nursing's 450 people P000-P449 (names in the same order):
    P000-P249 present, P250-P369 partial (left after 20 minutes), P370-P449 absent."""
    add_lecture(db)
    db["staff"].insert_all({"staff_id": f"P{i:03d}", "name": f"Person {i:03d}",
                            "department": "Nursing"} for i in range(450))
    set_expected(db, "ev", departments=["Nursing"])
    ingest(db, *[record for i in range(370) for record in (
        checkin(f"P{i:03d}", 0), presence(f"P{i:03d}", 0, 60 if i < 250 else 20))])


def shown(page: str) -> list[tuple[str, str]]:
    """(staff id, status) of the rows of an attendance table, in order."""
    return re.findall(r'<tr class="row-(\w+)">\s*<td>[^<]*</td>\s*<td>([^<]+)</td>', page)


def test_event_page_shows_200_rows_a_page_with_counts_of_everyone(english, db):
    seed_big_lecture(db)

    pages = [english.get(f"/events/ev?page={n}") for n in (1, 2, 3)]
    first, second, third = (p.get_data(as_text=True) for p in pages)

    assert [p.status_code for p in pages] == [200, 200, 200]
    assert [len(shown(p)) for p in (first, second, third)] == [200, 200, 50]
    ids = [sid for page in (first, second, third) for _, sid in shown(page)]
    assert ids == [f"P{i:03d}" for i in range(450)]  # present, partial, absent; by name
    for page in (first, second, third):  # the counts cover everyone on every page
        assert '<strong class="count">250</strong> present' in page
        assert '<strong class="count">120</strong> partial' in page
        assert '<strong class="count">80</strong> absent' in page
        assert "450 expected" in page
        assert 'href="/events/ev/export.csv"' in page and 'href="/events/ev/export.xlsx"' in page
    assert 'rel="prev"' not in first and 'rel="next" href="/events/ev?page=2"' in first
    assert 'rel="prev" href="/events/ev?page=1"' in second
    assert 'rel="next" href="/events/ev?page=3"' in second
    assert 'rel="next"' not in third and "Page 3 of 3, people 401–450 of 450" in third
    assert 'data-src="/events/ev/live?page=3"' in third


def test_event_page_status_tab_shows_only_that_status_and_keeps_the_counts(english, db):
    seed_big_lecture(db)

    partial = english.get("/events/ev?status=partial").get_data(as_text=True)
    present_2 = english.get("/events/ev?status=present&page=2").get_data(as_text=True)
    beyond = english.get("/events/ev?status=absent&page=9").get_data(as_text=True)

    assert [sid for _, sid in shown(partial)] == [f"P{i:03d}" for i in range(250, 370)]
    assert {status for status, _ in shown(partial)} == {"partial"}
    assert '<strong class="count">250</strong> present' in partial  # not only the tab's
    assert ('href="/events/ev?status=partial" aria-current="page"><span class="status '
            'status-partial"><strong class="count">120</strong> partial') in partial
    assert 'rel="next"' not in partial  # 120 rows: one page
    assert 'data-src="/events/ev/live?status=partial"' in partial
    assert [sid for _, sid in shown(present_2)] == [f"P{i:03d}" for i in range(200, 250)]
    assert 'rel="prev" href="/events/ev?status=present&amp;page=1"' in present_2
    assert 'data-src="/events/ev/live?status=present&amp;page=2"' in present_2
    # a page past the last one (the status shrank since the link was made) shows the last
    assert [sid for _, sid in shown(beyond)] == [f"P{i:03d}" for i in range(370, 450)]


def test_live_fragment_keeps_the_status_and_page_of_the_page(english, db):
    seed_big_lecture(db)

    everyone = english.get("/events/ev/live")
    third = english.get("/events/ev/live?page=3").get_data(as_text=True)
    absent = english.get("/events/ev/live?status=absent").get_data(as_text=True)

    assert everyone.status_code == 200 and everyone.headers["Cache-Control"] == "no-store"
    assert "<html" not in everyone.get_data(as_text=True)  # the fragment alone
    assert len(shown(everyone.get_data(as_text=True))) == 200
    assert [sid for _, sid in shown(third)] == [f"P{i:03d}" for i in range(400, 450)]
    assert {status for status, _ in shown(absent)} == {"absent"} and len(shown(absent)) == 80
    for fragment in (third, absent):
        assert '<strong class="count">120</strong> partial' in fragment
        # its links go to the page, not to the fragment
        assert 'href="/events/ev?status=present"' in fragment and "/live?" not in fragment
    assert 'rel="prev" href="/events/ev?page=2"' in third


@pytest.mark.parametrize("query, reason", [
    ("status=gone", "status must be one of: present, partial, absent"),
    ("page=0", "page must be a whole number from 1"),
    ("page=two", "page must be a whole number from 1"),
    ("page=%C2%B2", "page must be a whole number from 1"),  # "²" is a digit to str.isdigit
    ("page=" + "9" * 7, "page must be a whole number from 1"),
])
@pytest.mark.parametrize("path", ["/events/ev", "/events/ev/live"])
def test_event_page_and_fragment_refuse_a_bad_status_or_page(client, db, path, query, reason):
    add_lecture(db)

    response = client.get(f"{path}?{query}")

    assert response.status_code == 400
    assert reason in response.get_data(as_text=True)


def test_a_small_event_has_no_pages_and_no_export_note(english, db):
    seed_lecture(db)

    page = english.get("/events/ev").get_data(as_text=True)
    absent = english.get("/events/ev/live?status=absent&page=1").get_data(as_text=True)
    db["staff"].delete_where("staff_id IN ('N3', 'P1')")
    set_expected(db, "ev", departments=["Nursing"])  # N3 gone from the roster: nobody absent
    none_absent = english.get("/events/ev?status=absent").get_data(as_text=True)

    assert 'class="pages"' not in page and "export.csv" not in page
    assert 'data-src="/events/ev/live"' in page
    assert [sid for _, sid in shown(absent)] == ["P1", "N3"]  # Sun Na, Zhang Min
    assert shown(none_absent) == [] and "Nobody with this status." in none_absent
    assert '<strong class="count">0</strong> absent' in none_absent


def test_today_page_shows_the_first_200_of_a_big_event_and_links_to_the_rest(english, db):
    seed_big_lecture(db)

    page = english.get("/?date=2025-03-10").get_data(as_text=True)

    assert [sid for _, sid in shown(page)] == [f"P{i:03d}" for i in range(200)]
    assert '<strong class="count">80</strong> absent' in page
    assert '<a href="/events/ev">250 more on the event page</a>' in page
