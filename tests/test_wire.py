"""The fast path (protocol/wire.py) never accepts what the careful path
(protocol/records.py) refuses, and stores exactly what the careful path
stores; batches that need a reason or a clock correction go the careful way."""

import json
import uuid

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.db import open_db
from hub.ingest.store import ingest_batch, write_batch
from protocol import wire
from protocol.records import make_envelope, parse_envelope

NODE = "n1"
TOPIC = f"rounds/v1/test/node/{NODE}/up/batch"
TS = "2026-11-24T08:00:00.000Z"
BASE = {
    "binding": {"device": "0123456789abcdef", "staff_id": "D001"},
    "checkin": {"staff_id": "D001", "event_id": "ev1", "zone": "hall-a", "method": "portal",
                "device": "0123456789abcdef"},
    "presence": {"device": "0123456789abcdef", "staff_id": "D001", "zone": "hall-a",
                 "first_seen": TS, "last_seen": "2026-11-24T08:05:00.000Z", "closed": True},
    "occupancy": {"zone": "hall-a", "minute": "2026-11-24T08:00:00.000Z", "devices": 12},
}
TABLES = ("bindings", "checkins", "presence", "occupancy", "devices", "quarantine",
          "clock_flags")


def record(kind, **changes):
    out = {"id": str(uuid.uuid4()), "type": kind, "ts": TS, **BASE[kind], **changes}
    return {k: v for k, v in out.items() if v is not DROP}


DROP = object()  # a change that removes the field


def stored(db) -> dict:
    """Every table the ingest writes, without the hub's receipt times."""
    out = {}
    for table in TABLES:
        rows = [{k: v for k, v in row.items() if k not in ("received_at", "rowid", "bound_at")}
                for row in db[table].rows]
        out[table] = sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))
    return out


def test_a_clean_batch_takes_the_fast_path_and_stores_what_the_careful_one_does(tmp_path):
    records = [record(kind) for kind in BASE for _ in range(3)]
    records.append(record("checkin", clock_synced=True, event_id=None, device=None))
    records.append(record("presence", staff_id=None, closed=False))
    payload = make_envelope(NODE, records, batch="b1")
    assert wire.decode_clean(payload, NODE) is not None
    fast_db, careful_db = open_db(tmp_path / "fast.db"), open_db(tmp_path / "careful.db")
    ids, batch, reports = ingest_batch(fast_db, TOPIC, NODE, payload)
    good, bad, _, clock = parse_envelope(payload, NODE)
    assert ids == write_batch(careful_db, TOPIC, NODE, good, bad, clock)
    assert batch == "b1" and reports is False and bad == []
    assert stored(fast_db) == stored(careful_db)
    assert len(stored(fast_db)["checkins"]) == 4
    assert wire.decode_clean(make_envelope(NODE, []), NODE).ids == []  # nothing to check


def test_batches_that_need_the_careful_path_are_left_to_it():
    cases = {
        "a bad record": [record("checkin"), record("checkin", method="sms")],
        "a report": [record("checkin"), {"id": str(uuid.uuid4()), "type": "report", "ts": TS,
                                         "report_id": "r1", "staff_id": "D001",
                                         "category": "hygiene", "zone": "w", "photos": [],
                                         "taken_at": TS}],
        "an unsynchronised clock": [record("checkin", clock_synced=False, boot="b",
                                           mono=12.5)],
        "a presence ending before it starts": [record("presence", last_seen=TS,
                                                      first_seen="2026-11-24T09:00:00.000Z")],
        "29 February of a common year": [record("checkin", ts="2027-02-29T08:00:00.000Z")],
        "a separator out of place": [record("checkin", ts="20261-1-24T08:00:00.000Z")],
        "a UUID's hyphen out of place": [record("checkin",
                                                id="0000000-00000-0000-0000-000000000000")],
    }
    for why, records in cases.items():
        assert wire.decode_clean(make_envelope(NODE, records), NODE) is None, why
    assert wire.decode_clean(make_envelope("n2", [record("checkin")]), NODE) is None
    # bad UTF-8 where the fast path does not read (an unknown envelope key)
    payload = make_envelope(NODE, [record("checkin")])
    assert wire.decode_clean(payload, NODE) is not None
    bad_utf8 = payload[:-1] + b',"note":"' + bytes([0xFF]) + b'"}'
    assert wire.decode_clean(bad_utf8, NODE) is None


# Values a field may take in a generated record: good ones, and every way we
# know of being wrong.
ODD = st.sampled_from([
    None, True, False, 0, 1, -1, 100_000, 100_001, 1.5, float("1e300"), "", " ", "x", "x" * 64,
    "x" * 65, "portal", "presence", "sms", "0123456789abcdef", "0123456789ABCDEF",
    "0123456789abcde", "\u00e9\u4e2d", "a\x00b", [], {}, ["a" * 64],
    "2026-11-24T08:00:00.000Z", "2026-11-24T08:00:00Z", "2026-11-24T24:00:00.000Z",
    "2026-11-24T23:59:60.000Z", "2026-02-30T08:00:00.000Z", "2026-04-31T08:00:00.000Z",
    "2027-02-29T08:00:00.000Z", "2028-02-29T08:00:00.000Z", "1969-12-31T23:59:59.999Z",
    "1970-01-01T00:00:00.000Z", "9998-12-31T23:59:59.999Z", "9999-01-01T00:00:00.000Z",
    "2026-11-24T08:00:00.000Z\n", "2026-11-24t08:00:00.000z", "+2026-11-24T08:00:00.000Z",
    "00000000-0000-0000-0000-000000000000", "00000000-0000-0000-0000-00000000000G",
    "0000000000000000000000000000000000000", "0000000-00000-0000-0000-000000000000",
    "20261-1-24T08:00:00.000Z", "2026-11-24T08:00:00.000\u00c5", "2026-11-24T08:00:00.0\u0661\u0662Z",
    "2026-11-24T08:60:00.000Z", "2026-11-24T08:00:60.000Z", "2026-11-24T25:00:00.000Z", DROP,
])
FIELDS = sorted({"id", "type", "ts", "clock_synced", "boot", "mono", "colour",
                 *(f for fields in BASE.values() for f in fields)})


@st.composite
def batches(draw):
    records = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(sorted(BASE)))
        changes = draw(st.dictionaries(st.sampled_from(FIELDS), ODD, max_size=2))
        records.append(record(kind, **changes))
    return records


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
def test_the_fast_path_accepts_only_what_the_careful_path_accepts(records):
    payload = make_envelope(NODE, records)
    clean = wire.decode_clean(payload, NODE)
    good, bad, _batch, _clock = parse_envelope(payload, NODE)
    if clean is None:
        return
    assert bad == [], "the fast path took a batch with a record the careful path refuses"
    assert [r["id"] for r in good] == clean.ids
    kinds = {wire.Binding: "binding", wire.Checkin: "checkin", wire.Presence: "presence",
             wire.Occupancy: "occupancy"}
    assert sum(map(len, clean.groups.values())) == len(good)
    for kind, group in clean.groups.items():
        careful = [r for r in good if r["type"] == kinds[kind]]
        fast = [{k: v for k, v in msgspec.structs.asdict(r).items() if v is not msgspec.UNSET}
                for r in group]
        _same_records(fast, careful)


def _same_records(fast: list[dict], careful: list[dict]) -> None:
    for mine, theirs in zip(fast, careful, strict=True):
        theirs = {k: v for k, v in theirs.items() if k != "type"}
        assert {k: v for k, v in mine.items() if k in theirs or v is not None} == theirs


def test_duplicate_keys_read_alike():
    """JSON objects may repeat a key; both paths take the last one."""
    base = json.dumps(record("checkin"))[:-1]
    for tail in (', "type": "presence"}', ', "method": "sms"}', ', "method": "presence"}'):
        payload = b'{"v":1,"node":"n1","records":[' + (base + tail).encode() + b"]}"
        clean = wire.decode_clean(payload, NODE)
        good, bad, _, _ = parse_envelope(payload, NODE)
        assert (clean is not None) <= (bad == [])
        if clean is not None:
            [only] = [r for group in clean.groups.values() for r in group]
            assert only.method == good[0]["method"]
