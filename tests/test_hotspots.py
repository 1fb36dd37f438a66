"""Hotspots on real tickets: weekly counts and the recurring rule."""

from datetime import datetime, timedelta, timezone

import pytest

from hub.tickets import hotspots, tickets
from protocol.clock import iso

from .hubweb import signed_in

from .test_tickets import file, report

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
T0 = datetime(2026, 11, 24, 8, 0, tzinfo=timezone.utc)  # what test_tickets.report counts from


def minutes_before_now(days: float) -> float:
    return ((NOW - timedelta(days=days)) - T0).total_seconds() / 60


def history(db, zone, category, days_ago):
    """One ticket per entry, each far enough apart not to be duplicates."""
    for days in days_ago:
        file(db, report(minutes_before_now(days), zone=zone, category=category,
                        staff_id=f"S{days}"), minute=minutes_before_now(days) + 1)


@pytest.fixture
def db(hub_db):
    database = hub_db  # closed by hub_db
    yield database


def flags(db):
    return {(r["zone"], r["category"]): r for r in hotspots.recurring(db, NOW, all_rows=True)}


def test_a_spike_over_a_quiet_baseline_is_flagged(db):
    history(db, "ward-3", "hygiene", [20, 40])            # baseline 2 in 8 weeks
    history(db, "ward-3", "hygiene", [0.5, 1.5, 2.5, 4])  # 4 in the last week
    row = flags(db)[("ward-3", "hygiene")]
    assert (row["recent"], row["baseline_weekly"], row["threshold"], row["recurring"]) == (
        4, 0.25, 3, True)
    assert row["p_value"] < 0.01
    assert [(r["zone"], r["category"]) for r in hotspots.recurring(db, NOW)] == [
        ("ward-3", "hygiene")]


def test_a_flat_history_is_not_flagged(db):
    # about two a week for nine weeks, this week included: busy, not rising
    history(db, "lobby", "queue", [d + 0.5 for d in range(0, 63, 3)])
    row = flags(db)[("lobby", "queue")]
    assert row["recent"] == 3 and row["recurring"] is False
    assert hotspots.recurring(db, NOW) == []


def test_against_one_a_week_three_is_not_enough_four_is(db):
    history(db, "ward-5", "signage", [7.5 + 7 * w for w in range(8)])  # baseline 1 / week
    history(db, "ward-5", "signage", [0.5, 2.5, 4.5])
    row = flags(db)[("ward-5", "signage")]
    assert (row["baseline_weekly"], row["threshold"], row["recent"], row["recurring"]) == (
        1.0, 4.0, 3, False)
    history(db, "ward-5", "signage", [6.5])
    assert flags(db)[("ward-5", "signage")]["recurring"] is True


def test_two_reports_in_a_new_place_are_not_a_hotspot_and_rejected_do_not_count(db):
    history(db, "icu", "safety", [1, 2])
    assert flags(db)[("icu", "safety")]["recurring"] is False
    history(db, "icu", "safety", [3])
    assert flags(db)[("icu", "safety")]["recurring"] is True
    [t] = [t["id"] for t in tickets.list_tickets(db) if t["reported_at"] ==
           iso(NOW - timedelta(days=3))]
    tickets.transition(db, t, "rejected", "H001")
    assert flags(db)[("icu", "safety")]["recurring"] is False


def test_weekly_counts_by_zone_category_iso_week(db):
    history(db, "ward-3", "hygiene", [0.5, 1, 8])  # 2026-11-24 is a Tuesday of W48
    history(db, "ward-3", "safety", [0.5])
    assert hotspots.weekly_counts(db, NOW) == [
        {"zone": "ward-3", "category": "hygiene", "week": "2026-W47", "count": 1},
        {"zone": "ward-3", "category": "hygiene", "week": "2026-W48", "count": 2},
        {"zone": "ward-3", "category": "safety", "week": "2026-W48", "count": 1}]


def test_poisson_tail():
    assert hotspots.poisson_tail(0, 2.0) == 1.0
    assert hotspots.poisson_tail(1, 2.0) == pytest.approx(1 - 2.718281828 ** -2)
    assert hotspots.poisson_tail(3, 0) == 0.0


def test_api_hotspots(hub_app, db):
    client = signed_in(hub_app, db, "office")
    now = datetime.now(timezone.utc)
    offset = (now - T0).total_seconds() / 60
    for i, hours_ago in enumerate((2, 20, 40, 60)):
        file(db, report(offset - hours_ago * 60, zone="ward-9", staff_id=f"S{i}"),
             minute=offset - hours_ago * 60 + 1)
    body = client.get("/api/v1/hotspots").get_json()
    assert [(r["zone"], r["category"], r["recent"]) for r in body["recurring"]] == [
        ("ward-9", "hygiene", 4)]
    assert sum(w["count"] for w in body["weekly"]) == 4
    assert "previous 8 weeks" in body["rule"]
    assert client.get("/api/v1/hotspots?weeks=0").status_code == 400
