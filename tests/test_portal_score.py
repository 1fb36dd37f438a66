"""Live scoring on a hall node's portal (issue 14): a checked-in person or a
named judge scores the open act on a plain form; the score is a valid
``score`` record in the outbox and can be changed until the act closes; no
score without a check-in, for a closed act or off the scale."""

from datetime import datetime, timedelta, timezone

import pytest

from edge.portal.score import open_act
from protocol.clock import iso
from protocol.records import validate

from .test_portal import (  # noqa: F401 - fixtures
    EVENT, NOW, app, arp, check_in, client, csrf, db_path, leases, put_state, records, text,
)


def contest(opened=-60, closes=600, closed=None, judges=("N002",), now=None):
    """The lecture as a contest with act a1's window around ``now`` (the time of
    the call: a full run reaches this test minutes after collection)."""
    now = now or datetime.now(timezone.utc)
    act = {"act": "a1", "title": "洗手的学问", "performers": "护理部",
           "opened_at": iso(now + timedelta(seconds=opened)),
           "closes_at": iso(now + timedelta(seconds=closes)),
           "closed_at": iso(now + timedelta(seconds=closed)) if closed is not None else None}
    waiting = {"act": "a2", "title": "合理用药", "performers": "", "opened_at": None,
               "closes_at": None, "closed_at": None}
    return {**EVENT, "kind": "contest",
            "contest": {"scale": [1, 10], "judges": list(judges), "final": False,
                        "acts": [act, waiting]}}


@pytest.fixture
def hall(db_path):
    put_state(db_path, "config", {"node": "n1", "zone": "hall-a", "events": [contest()]})
    return db_path


def signed_in(client, staff_id="D001", pin="2468"):
    page = client.get("/score")
    assert "Sign in" in text(page)
    return client.post("/score/sign-in", data={"csrf_token": csrf(client, "/score"),
                                               "staff_id": staff_id, "pin": pin})


def give(client, value, act="a1"):
    return client.post("/score", data={"csrf_token": csrf(client), "act": act,
                                       "value": str(value)})


def test_a_checked_in_person_scores_and_changes_the_score(client, hall):
    check_in(client)
    assert signed_in(client).status_code in (302, 303)
    page = text(client.get("/score"))
    assert "洗手的学问" in page and "Send my score" in page
    assert give(client, 7).status_code in (302, 303)
    assert "Your score 7 for 洗手的学问 is in" in text(client.get("/score"))
    give(client, 9)
    scores = records(hall, "score")
    assert [(s["act"], s["staff_id"], s["value"]) for s in scores] == [
        ("a1", "D001", 7), ("a1", "D001", 9)]
    assert all(validate(s) for s in scores)
    assert "now 9" in text(client.get("/score"))


def test_no_score_without_a_check_in_but_a_judge_needs_none(client, hall):
    signed_in(client)
    assert client.get("/score").status_code == 403
    assert give(client, 5).status_code == 403
    client.post("/score/sign-out", data={"csrf_token": csrf(client)})
    signed_in(client, "N002", "1357")  # a judge
    assert "Judge" in text(client.get("/score"))
    assert give(client, 5).status_code in (302, 303)
    assert [s["staff_id"] for s in records(hall, "score")] == ["N002"]


@pytest.mark.parametrize("value, act, status", [(0, "a1", 400), (11, "a1", 400),
                                                ("x", "a1", 400), (5, "a2", 409)])
def test_off_the_scale_or_another_act_is_refused(client, hall, value, act, status):
    check_in(client)
    signed_in(client)
    assert give(client, value, act).status_code == status
    assert records(hall, "score") == []


def test_a_closed_act_takes_no_score_and_the_page_waits(client, db_path):
    put_state(db_path, "config", {"node": "n1", "zone": "hall-a",
                                  "events": [contest(opened=-120, closes=60, closed=-5)]})
    check_in(client)
    signed_in(client)
    page = client.get("/score").get_data(as_text=True)
    assert "Scoring is closed" in page and 'http-equiv="refresh"' in page
    assert give(client, 5).status_code == 409
    assert records(db_path, "score") == []


def test_no_contest_is_404_and_the_home_page_links_one_that_is_on(client, db_path, hall):
    assert "/score" in client.get("/").get_data(as_text=True)
    put_state(db_path, "config", {"node": "n1", "zone": "hall-a", "events": [EVENT]})
    assert client.get("/score").status_code == 404
    assert 'href="/score' not in client.get("/").get_data(as_text=True)


def test_the_open_act_follows_its_window():
    c = contest(opened=-10, closes=20, now=NOW)["contest"]
    assert open_act(c, NOW)["act"] == "a1"
    assert open_act(c, NOW + timedelta(seconds=21)) is None
    assert open_act(contest(opened=-10, closes=20, closed=-1, now=NOW)["contest"], NOW) is None
