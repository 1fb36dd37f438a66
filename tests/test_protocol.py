"""The wire contract: topics, record validation, envelopes, PINs."""

import json
import uuid

import pytest

from protocol import topics
from protocol.ids import record_id
from protocol.pins import device_id, hash_pin, verify_pin
from protocol.records import (Clock, InvalidEnvelope, InvalidRecord, join_envelope, make_envelope,
                              parse_envelope, validate)

TS = "2026-11-24T08:00:00.000Z"
GOOD = {
    "binding": {"device": "0123456789abcdef", "staff_id": "D001"},
    "checkin": {"staff_id": "D001", "event_id": "ev1", "zone": "hall-a", "method": "portal",
                "device": None},
    "presence": {"device": "0123456789abcdef", "staff_id": None, "zone": "hall-a",
                 "first_seen": TS, "last_seen": TS, "closed": False},
    "occupancy": {"zone": "hall-a", "minute": TS, "devices": 12},
    "report": {"report_id": "r1", "staff_id": "D001", "category": "hygiene", "note": "spill",
               "zone": "ward-3e", "lat": 31.2, "lon": 121.4, "photos": ["a" * 64],
               "taken_at": TS},
    "survey_response": {"task_id": "t1", "questionnaire": "inpatient", "version": 2,
                        "staff_id": "S001", "zone": "ward-3e", "taken_at": TS,
                        "answers": {"overall": 5, "liked": ["nurses", "food"],
                                    "comment": "很好 <b>thanks</b>"}},
    "score": {"event_id": "contest-1", "act": "act-2", "staff_id": "D001", "value": 8.5,
              "taken_at": TS},
}


def record(kind, **overrides):
    return {"id": str(uuid.uuid4()), "type": kind, "ts": TS, **GOOD[kind], **overrides}


@pytest.mark.parametrize("kind", sorted(GOOD))
def test_each_record_type_validates(kind):
    assert validate(record(kind)) is not None


@pytest.mark.parametrize("kind, change, field", [
    ("checkin", {"method": "sms"}, "method"),
    ("checkin", {"staff_id": ""}, "staff_id"),
    ("checkin", {"id": "not-a-uuid"}, "id"),
    ("checkin", {"ts": "2026-11-24 08:00"}, "ts"),
    ("checkin", {"clock_synced": "yes"}, "clock_synced"),
    ("checkin", {"colour": "red"}, "unknown field"),
    ("binding", {"device": "AA:BB:CC:DD:EE:FF"}, "device"),  # a raw MAC never leaves the node
    ("presence", {"closed": 0}, "closed"),
    ("occupancy", {"devices": -1}, "devices"),
    ("occupancy", {"devices": True}, "devices"),
    ("report", {"lat": 91}, "lat"),
    ("report", {"photos": ["x"]}, "photos"),
    ("report", {"photos": ["a" * 64] * 5}, "photos"),
    ("survey_response", {"answers": {}}, "answers"),
    ("survey_response", {"answers": {"overall": True}}, "answers: 'overall'"),
    ("survey_response", {"answers": {"comment": "x" * 501}}, "answers: 'comment'"),
    ("survey_response", {"answers": {"liked": ["a", "a"]}}, "answers: 'liked'"),
    ("survey_response", {"answers": {"liked": []}}, "answers: 'liked'"),
    ("survey_response", {"answers": {f"q{i}": 1 for i in range(51)}}, "answers"),
    ("survey_response", {"answers": {"overall": 1.5}}, "answers"),
    ("survey_response", {"version": 0}, "version"),
    ("survey_response", {"phone": "13800000000"}, "unknown field"),  # nothing of the respondent
    ("score", {"value": 101}, "value"),
    ("score", {"value": True}, "value"),
    ("score", {"act": ""}, "act"),
])
def test_bad_fields_are_refused_with_the_field_named(kind, change, field):
    with pytest.raises(InvalidRecord, match=field):
        validate(record(kind, **change))


def test_missing_field_and_unknown_type():
    incomplete = record("checkin")
    del incomplete["zone"]
    with pytest.raises(InvalidRecord, match="zone: missing"):
        validate(incomplete)
    with pytest.raises(InvalidRecord, match="unknown record type"):
        validate({**record("checkin"), "type": "teleport"})


def test_envelope_round_trip_and_join_agree():
    records = [record("checkin"), record("occupancy")]
    built = make_envelope("n1", records, batch="b1")
    joined = join_envelope("n1", [json.dumps(r) for r in records], "b1")
    assert json.loads(built) == json.loads(joined)
    good, bad, batch, clock = parse_envelope(built, "n1")
    assert good == records and bad == [] and batch == "b1" and clock is None


def test_envelope_carries_the_node_clock_and_records_their_boot():
    unsynced = {**record("checkin"), "clock_synced": False, "boot": "b00t"}
    clock = Clock("2025-03-10T01:00:00.000Z", False, "b00t")
    parsed = parse_envelope(make_envelope("n1", [unsynced], clock=clock), "n1")
    assert parsed.good == [unsynced] and parsed.clock == clock
    # A malformed clock is ignored (the records still count), never trusted.
    broken = json.loads(make_envelope("n1", [unsynced], clock=clock))
    broken["sent_at"] = "yesterday"
    assert parse_envelope(json.dumps(broken).encode(), "n1").clock is None
    with pytest.raises(InvalidRecord, match="boot"):
        validate({**unsynced, "boot": 7})


@pytest.mark.parametrize("payload, reason", [
    (b"\xff\xfe", "not JSON"),
    (b"[]", "not an object"),
    (make_envelope("n2", []), "names node 'n2'"),
    (json.dumps({"v": 1, "node": "n1", "records": [{}] * 1001}).encode(), "more than 1000"),
])
def test_unreadable_envelopes(payload, reason):
    with pytest.raises(InvalidEnvelope, match=reason):
        parse_envelope(payload, "n1")


def test_topics():
    assert topics.node_up("s", "n1", "batch") == "rounds/v1/s/node/n1/up/batch"
    assert topics.parse_node_up("s", "rounds/v1/s/node/n1/up/batch") == ("n1", "batch")
    assert topics.parse_node_up("s", "rounds/v1/other/node/n1/up/batch") is None
    assert topics.parse_node_up("s", "rounds/v1/s/node/n1/down/ack") is None


def test_pins_and_device_ids():
    stored = hash_pin("2468")
    assert verify_pin("2468", stored) and not verify_pin("2469", stored)
    assert not verify_pin("2468", "garbage") and not verify_pin("2468", "scrypt$1$2$3$zz$zz")
    assert hash_pin("2468") != stored  # salted
    a = device_id(b"secret", "AA:BB:CC:DD:EE:FF")
    assert a == device_id(b"secret", "aa:bb:cc:dd:ee:ff") and len(a) == 16
    assert a != device_id(b"other", "aa:bb:cc:dd:ee:ff")


def test_record_ids_are_uuid7_in_the_order_they_are_made():

    made = [record_id(1_750_000_000_000 + n) for n in range(200)]
    assert all(uuid.UUID(i).version == 7 and uuid.UUID(i).variant == uuid.RFC_4122
               for i in made)
    assert sorted(made) == made and len(set(made)) == len(made)
    assert int(made[0].replace("-", "")[:12], 16) == 1_750_000_000_000  # the moment, in ms
    assert all(validate(record("checkin", id=i)) for i in made)  # what the hub accepts
    # an unset clock (1970) or a wild one still makes valid, distinct ids
    odd = [record_id(-5), record_id(0), record_id(2 ** 60)]
    assert len(set(odd)) == 3 and all(validate(record("checkin", id=i)) for i in odd)
