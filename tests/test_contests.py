"""Live scoring on the hub (issue 14): a contest's set-up, acts opened with a
countdown and closed, the scores that count (checked-in people and judges,
inside the window, the latest per person, once per record id), the judges'
extremes dropped, the weighted total and ranks, the ranking frozen after the
last act, and a 300-person hall scoring one act in 30 seconds."""

import json
import random
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from hub.contests import acts, scoring
from hub.contests.acts import ContestError, Rule
from hub.ingest import downlink
from hub.ingest.store import write_batch
from protocol.clock import iso
from protocol.records import validate

T0 = datetime(2026, 12, 8, 6, 0, tzinfo=timezone.utc)
JUDGES = ["J1", "J2", "J3", "J4"]
AUDIENCE = [f"A{n:03d}" for n in range(300)]


@pytest.fixture
def db(hub_db):
    database = hub_db  # closed by hub_db
    with database.conn:
        database["staff"].insert_all([{"staff_id": s, "name": s, "department": "nursing",
                                       "role": "staff"} for s in JUDGES + AUDIENCE + ["X001"]])
        database["events"].insert({"id": "speech", "title": "健康科普演讲比赛", "kind": "contest",
                                   "zones": '["hall-a"]', "start": iso(T0),
                                   "end": iso(T0 + timedelta(hours=2))})
        database["checkins"].insert_all([
            {"id": str(uuid.uuid4()), "node": "hall-a-1", "ts": iso(T0), "clock_synced": 1,
             "received_at": iso(T0), "staff_id": s, "event_id": "speech", "zone": "hall-a",
             "method": "portal", "device": None} for s in AUDIENCE])
        acts.set_up(database, "speech", Rule(1, 10, True, 0.6),
                    [{"act": "a1", "title": "洗手的学问", "performers": "护理部"},
                     {"act": "a2", "title": "合理用药", "performers": "药剂科"},
                     {"act": "a3", "title": "急救常识", "performers": "急诊科"}], JUDGES)
    yield database


def score(staff, act, value, seconds):
    at = iso(T0 + timedelta(seconds=seconds))
    return validate({"id": str(uuid.uuid4()), "type": "score", "ts": at, "event_id": "speech",
                     "act": act, "staff_id": staff, "value": value, "taken_at": at})


def ingest(db, records):
    with db.atomic():
        write_batch(db, "rounds/v1/test/node/hall-a-1/up/batch", "hall-a-1", records, [])


def at(seconds):
    return T0 + timedelta(seconds=seconds)


def test_set_up_is_checked(db):
    with pytest.raises(ContestError, match="not a contest"):
        with db.conn:
            db["events"].insert({"id": "talk", "title": "t", "kind": "lecture", "zones": "[]",
                                 "start": iso(T0), "end": iso(T0)})
        acts.set_up(db, "talk", Rule(), [{"act": "a", "title": "t"}], [])
    with pytest.raises(ContestError, match="Unknown judge"):
        acts.set_up(db, "speech", Rule(), [{"act": "a", "title": "t"}], ["NOBODY"])
    with pytest.raises(ContestError, match="own id"):
        acts.set_up(db, "speech", Rule(), [{"act": "a", "title": "t"}] * 2, [])
    with pytest.raises(ContestError, match="scale"):
        acts.set_up(db, "speech", Rule(5, 5), [{"act": "a", "title": "t"}], [])
    acts.open_act(db, "speech", "a1", 30, at(0))
    with pytest.raises(ContestError, match="Scoring has started"):
        acts.set_up(db, "speech", Rule(), [{"act": "a", "title": "t"}], [])


def test_an_act_opens_with_a_countdown_and_closes_by_itself_or_early(db):
    acts.open_act(db, "speech", "a1", 30, at(0))
    c = acts.contest(db, "speech", at(10))
    assert c["current"]["act"] == "a1" and c["current"]["seconds_left"] == 20
    assert [a["state"] for a in c["acts"]] == ["open", "waiting", "waiting"]
    assert acts.contest(db, "speech", at(31))["current"] is None  # the countdown ended
    acts.open_act(db, "speech", "a2", 60, at(40))
    acts.open_act(db, "speech", "a3", 60, at(50))  # opening the next closes a2 early
    c = acts.contest(db, "speech", at(55))
    assert [(a["state"], a["closed_at"]) for a in c["acts"]] == [
        ("closed", iso(at(30))), ("closed", iso(at(50))), ("open", None)]


def test_what_counts_and_the_weighted_ranking(db):
    acts.open_act(db, "speech", "a1", 30, at(0))
    ingest(db, [score("J1", "a1", 9, 5), score("J2", "a1", 8, 5), score("J3", "a1", 2, 5),
                score("J4", "a1", 10, 5),            # judges: drop 10 and 2 -> mean 8.5
                score("A000", "a1", 4, 5), score("A000", "a1", 6, 20),  # changed: 6 counts
                score("A001", "a1", 8, 25),
                score("X001", "a1", 10, 6),          # not checked in: not counted
                score("A002", "a1", 11, 7),          # off the scale
                score("A003", "a1", 1, 40),          # after the act closed
                score("A004", "a1", 1, -5)])         # before it opened
    late = score("A005", "a1", 10, 29)
    ingest(db, [late])
    ingest(db, [late])  # the same record twice: once
    acts.open_act(db, "speech", "a2", 30, at(60))
    ingest(db, [score("A000", "a2", 9, 65)])  # audience only
    r = scoring.ranking(db, "speech", at(70))
    first, second, third = r["rows"]
    # a1: judges 8.5, audience mean(6, 8, 10) = 8 -> 0.6 * 8.5 + 0.4 * 8 = 8.3
    assert (first["act"], first["judge_mean"], first["audience_mean"], first["total"],
            first["rank"], first["scores_in"]) == ("a2", None, 9.0, 9.0, 1, 1)
    assert (second["act"], second["judge_mean"], second["audience_mean"], second["total"],
            second["rank"], second["judge_count"], second["audience_count"]) == (
        "a1", 8.5, 8.0, 8.3, 2, 4, 3)
    assert (third["act"], third["rank"], third["total"]) == ("a3", None, None)
    assert not r["final"] and not r["freeze_due"]
    dropped = {(j["judge"], j["dropped"]) for j in scoring.judge_sheet(db, "speech", at(70))}
    assert dropped == {("J1", False), ("J2", False), ("J3", True), ("J4", True)}


def test_the_ranking_freezes_after_the_last_act_and_late_scores_change_nothing(db):
    for n, act in enumerate(("a1", "a2", "a3")):
        acts.open_act(db, "speech", act, 30, at(100 * n))
        ingest(db, [score("J1", act, 5 + n, 100 * n + 10)])
    end = at(230)
    assert scoring.ranking(db, "speech", end + timedelta(seconds=5))["freeze_due"] is False
    with db.atomic():
        assert scoring.freeze(db, "speech", end + timedelta(seconds=16))
    ingest(db, [score("J2", "a1", 10, 15)])  # arrives after the freeze
    r = scoring.ranking(db, "speech", end + timedelta(minutes=5))
    assert r["final"] and r["frozen_at"] == iso(end)
    assert [(row["act"], row["total"]) for row in r["rows"]] == [("a3", 7), ("a2", 6),
                                                                 ("a1", 5)]
    with pytest.raises(ContestError, match="over"):
        acts.open_act(db, "speech", "a1", 30, end + timedelta(minutes=6))


def test_a_300_person_hall_scoring_one_act_in_30_seconds(db):
    rng = random.Random(14)
    acts.open_act(db, "speech", "a1", 30, at(0))
    records = [score(s, "a1", rng.randint(1, 10), rng.uniform(0.5, 29.5)) for s in AUDIENCE]
    for start in range(0, len(records), 50):  # batches as nodes send them
        ingest(db, records[start:start + 50])
    row = next(r for r in scoring.ranking(db, "speech", at(31))["rows"] if r["act"] == "a1")
    assert row["audience_count"] == 300
    assert row["audience_mean"] == round(sum(r["value"] for r in records) / 300, 2)
    assert json.loads(json.dumps(row))  # what the screen API returns is JSON


def test_a_hall_node_gets_the_contest_with_each_acts_window(db):
    with db.conn:
        db["nodes"].insert({"node": "hall-a-1", "zone": "hall-a", "revoked": 0})
    acts.open_act(db, "speech", "a1", 30, at(0))
    [event] = downlink.node_config_document(db, "hall-a-1", at(5))["events"]
    contest = event["contest"]
    assert contest["scale"] == [1, 10] and contest["judges"] == JUDGES
    assert [(a["act"], a["state"]) for a in contest["acts"]] == [
        ("a1", "open"), ("a2", "waiting"), ("a3", "waiting")]
    assert contest["acts"][0]["closes_at"] == iso(at(30))


@pytest.mark.parametrize("change, reason", [
    ({"act": "a9"}, "no act 'a9'"), ({"event_id": "other"}, "in contest 'other'"),
    ({"value": 11}, "off the scale 1..10"), ({"value": 0}, "off the scale"),
])
def test_a_score_for_no_act_or_off_the_scale_is_quarantined(db, change, reason):
    record = {**score("A001", "a1", 5, 5), **change}
    ingest(db, [record])
    assert db["scores"].count == 0
    [why] = [r for (r,) in db.conn.execute("SELECT reason FROM quarantine")]
    assert reason in why
