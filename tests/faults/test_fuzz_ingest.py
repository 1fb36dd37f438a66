"""Property-based fuzzing of the hub's ingest (hypothesis).

Batches of valid records of all five types, records broken in every way the
contract rules out (a missing or mistyped field, an unknown one, text too
long or not Unicode, NaN and numbers out of range, bad or out-of-range
timestamps, deep nesting, something that is not a record at all), duplicate
ids and re-sends, and payloads broken as a whole (another node's name, a
wrong version, no record list, more than 1000 records, cut short, not UTF-8,
nested past the parser's depth, an integer too long to read, random bytes)
go through the real ``Ingest.handle(topic, payload, properties)`` on a real
hub database, its acks through a real Mosquitto to a listener with the
node's credentials. Status and photo uplinks get the same treatment.

Properties, after every payload: handle() never raises; each bad record is
in quarantine with a reason and its raw form, a bad payload whole and byte
for byte, and nothing of it is stored; each good record is stored once under
its id with the fields it was sent with (a presence id sent again extends
its interval); good + quarantined = sent. At the end: every record with a
valid id was acked, every report without photos became a ticket, and the
record tables hold exactly the ids sent good.

The expected outcome of each record comes from how it was built (from
DESIGN.md's record table below), never from ``protocol.records``.
"""

import itertools
import json
import math
import re
import threading
import uuid
import zlib
from collections import Counter
from datetime import datetime, timezone
from hashlib import sha256
from io import BytesIO

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from PIL import Image

from hub.db import open_db
from hub.ingest.subscriber import Ingest
from protocol import topics
from protocol.clock import iso
from runtime.mqttclient import make_client

from ..conftest import SITE
from ..scale import report, scaled
from ..support import wait_for

NODE = "n1"
TOPIC = topics.node_up(SITE, NODE, "batch")
BATCHES = scaled(1500, 10_000)
OTHER_UPLINKS = scaled(200, 2000)
# One hub takes every example, so an example's outcome depends on those before
# it: no shrinking (a replay would meet another hub), the first failure is shown.
FUZZ = settings(deadline=None, derandomize=True, database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.large_base_example])

# --- the contract, from DESIGN.md ---------------------------------------------------
# type -> {field: (required, kind)}; every record also has id, type and ts.
FIELDS = {
    "binding": {"device": (True, "device"), "staff_id": (True, "text")},
    "checkin": {"staff_id": (True, "text"), "event_id": (False, "text"),
                "zone": (True, "text"), "method": (True, "method"),
                "device": (False, "device")},
    "presence": {"device": (True, "device"), "staff_id": (False, "text"),
                 "zone": (True, "text"), "first_seen": (True, "time"),
                 "last_seen": (True, "time"), "closed": (True, "bool")},
    "occupancy": {"zone": (True, "text"), "minute": (True, "time"), "devices": (True, "count")},
    "report": {"report_id": (True, "text"), "staff_id": (True, "text"),
               "category": (True, "text"), "note": (False, "note"), "zone": (True, "text"),
               "lat": (False, "lat"), "lon": (False, "lon"), "photos": (True, "photos"),
               "taken_at": (True, "time")},
}
TABLES = {"binding": "bindings", "checkin": "checkins", "presence": "presence",
          "occupancy": "occupancy", "report": "reports"}
COMMON = {"id", "type", "ts", "clock_synced", "boot", "mono"}
TIME_FIELDS = {"ts", "first_seen", "last_seen", "minute", "taken_at"}
LIMITS = {"text": 64, "note": 2000}
HEX = "0123456789abcdef"
BOOTS = ("boot-a", "boot-b")
FRESH = "<fresh id>"  # replaced by a new UUID when the batch is sent
ABSENT = object()


def wire_time(d: datetime) -> str:
    """ISO 8601 UTC with milliseconds, for any year (iso() is for real ones)."""
    return (f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:"
            f"{d.second:02d}.{d.microsecond // 1000:03d}Z")


UTC = st.just(timezone.utc)
moments = st.datetimes(datetime(1970, 1, 1), datetime(9998, 12, 31, 23, 59, 59), timezones=UTC)
VALID = {
    "text": st.text(min_size=1, max_size=64),
    "note": st.one_of(st.text(min_size=1, max_size=200),
                      st.integers(1990, 2000).map(lambda n: "污" * n)),
    "device": st.text(HEX, min_size=16, max_size=16),
    "method": st.sampled_from(["portal", "presence"]),
    "time": moments.map(iso),
    "bool": st.booleans(),
    "count": st.integers(0, 100_000),
    "lat": st.one_of(st.floats(-90, 90), st.integers(-90, 90)),
    "lon": st.one_of(st.floats(-180, 180), st.integers(-180, 180)),
    "photos": st.lists(st.text(HEX, min_size=64, max_size=64), max_size=4),
}

# --- values each field must refuse -----------------------------------------------------
JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8))
NOT_TEXT = st.one_of(st.integers(), st.floats(), st.booleans(),
                     st.lists(st.integers(), max_size=3),
                     st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
out_of_range = st.one_of(
    st.datetimes(datetime(1, 1, 1), datetime(1969, 12, 31, 23, 59, 59), timezones=UTC),
    st.datetimes(datetime(9999, 1, 1), datetime(9999, 12, 31, 23, 59, 59), timezones=UTC))
BAD_TIME = st.one_of(
    NOT_TEXT,
    out_of_range.map(wire_time),
    st.text(max_size=30).filter(lambda s: not s.endswith("Z")),
    # parseable ISO 8601, but not the one form the hub compares as text
    moments.map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")),
    moments.map(lambda d: iso(d).replace("T", " ")),
    moments.map(lambda d: iso(d)[:-1] + "+00:00"),
    st.sampled_from(["", "yesterday", "2025-13-01T00:00:00.000Z", "2025-02-30T00:00:00.000Z",
                     "2025-03-10T24:00:00.000Z", "２０２５-03-10T08:00:00.000Z"]),
)
_SHA = re.compile(r"[0-9a-f]{64}\Z")
_DEVICE = re.compile(r"[0-9a-f]{16}\Z")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
WRONG = {
    "text": st.one_of(st.just(""), NOT_TEXT),
    "note": st.one_of(st.just(""), NOT_TEXT),
    "device": st.one_of(NOT_TEXT, st.text("ABCDEF", min_size=16, max_size=16),
                        st.text(max_size=40).filter(lambda s: not _DEVICE.match(s))),
    "method": st.one_of(NOT_TEXT, st.text(max_size=20).filter(
        lambda s: s not in ("portal", "presence"))),
    "time": BAD_TIME,
    "bool": st.one_of(st.integers(), st.floats(), st.text(max_size=5)),
    "count": st.one_of(st.booleans(), st.floats(), st.integers(max_value=-1),
                       st.integers(min_value=100_001), st.text(max_size=5)),
    "lat": st.one_of(st.sampled_from([math.nan, math.inf, -math.inf]),
                     st.floats(min_value=90, exclude_min=True),
                     st.floats(max_value=-90, exclude_max=True),
                     st.booleans(), st.text(max_size=5)),
    "lon": st.one_of(st.sampled_from([math.nan, math.inf, -math.inf]),
                     st.floats(min_value=180, exclude_min=True),
                     st.floats(max_value=-180, exclude_max=True),
                     st.booleans(), st.text(max_size=5)),
    "photos": st.one_of(st.integers(), st.text(max_size=8),
                        st.lists(st.text(HEX, min_size=64, max_size=64), min_size=5,
                                 max_size=8),
                        st.lists(st.text(max_size=70).filter(lambda s: not _SHA.match(s)),
                                 min_size=1, max_size=4)),
    "id": st.one_of(NOT_TEXT, st.uuids().map(lambda u: u.hex),
                    st.uuids().map(lambda u: str(u).upper()).filter(lambda s: s != s.lower()),
                    st.text(max_size=40).filter(lambda s: not _UUID.match(s))),
    "type": st.one_of(NOT_TEXT, st.text(max_size=20).filter(lambda s: s not in FIELDS)),
    "clock_synced": st.one_of(st.none(), st.integers(), st.text(max_size=5)),
    "boot": st.one_of(st.just(""), st.just("b" * 65), NOT_TEXT),
    "mono": st.one_of(st.sampled_from([-1, math.nan, math.inf, 1e10, True]), st.text(max_size=5)),
}


def kind_of(record_type: str, name: str) -> tuple[bool, str]:
    """(required, kind) of a field, the common ones included."""
    if name in ("id", "type", "ts"):
        return True, {"ts": "time"}.get(name, name)
    return FIELDS[record_type][name]


# --- records and batches --------------------------------------------------------------

KINDS = st.sampled_from(sorted(FIELDS))
CLOCKS = st.one_of(
    st.just({}), st.just({"clock_synced": True}),
    # made before NTP set the node's clock
    st.fixed_dictionaries({"clock_synced": st.just(False), "boot": st.sampled_from(BOOTS)},
                          optional={"mono": st.floats(0, 10**6)}))
# Each type's fields: the required ones, and the optional ones absent, null or set.
BODIES = {kind: st.fixed_dictionaries(
    {name: VALID[k] for name, (required, k) in fields.items() if required},
    optional={name: st.one_of(st.none(), VALID[k])
              for name, (required, k) in fields.items() if not required})
    for kind, fields in FIELDS.items()}


@st.composite
def valid_records(draw):
    kind = draw(KINDS)
    return {"id": FRESH, "type": kind, "ts": draw(VALID["time"]), **draw(CLOCKS),
            **draw(BODIES[kind])}


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


BREAKS = st.sampled_from(["drop", "wrong", "wrong", "extra", "huge", "surrogate", "deep",
                          "not a record", "clock"])
# per type: the fields to drop, to mistype (with the values each refuses), to
# overfill, and names no record has
DROPPABLE = {kind: st.sampled_from(["id", "type", "ts"] + [
    n for n, (required, _) in fields.items() if required]) for kind, fields in FIELDS.items()}
MISTYPED = {kind: st.sampled_from(["id", "type", "ts", *fields])
            for kind, fields in FIELDS.items()}
WRONG_VALUE = {kind: {name: WRONG[field_kind] if not required
                      else st.one_of(st.none(), WRONG[field_kind])
                      for name in ["id", "type", "ts", *fields]
                      for required, field_kind in [kind_of(kind, name)]}
               for kind, fields in FIELDS.items()}
TEXTS = {kind: st.sampled_from([n for n, (_, k) in fields.items() if k in LIMITS])
         for kind, fields in FIELDS.items()}
UNKNOWN_NAMES = {kind: st.text(max_size=20).filter(lambda s, known=COMMON | set(fields):
                                                   s not in known)
                 for kind, fields in FIELDS.items()}
NESTABLE = {kind: st.sampled_from(["id", "ts", *fields]) for kind, fields in FIELDS.items()}
LONE_SURROGATE = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)


@st.composite
def broken_records(draw):
    """A valid record broken in one way that the contract rules out."""
    record = draw(valid_records())
    kind = record["type"]
    how = draw(BREAKS)
    if how == "drop":
        del record[draw(DROPPABLE[kind])]
    elif how == "wrong":
        name = draw(MISTYPED[kind])
        record[name] = draw(WRONG_VALUE[kind][name])
    elif how == "extra":
        record[draw(UNKNOWN_NAMES[kind])] = draw(JSON_SCALARS)
    elif how == "huge":
        name = draw(TEXTS[kind])
        size = draw(st.integers(0, 19))  # one in twenty a megabyte
        over = 1_000_000 if size == 19 else LIMITS[FIELDS[kind][name][1]] + 1 + 37 * size
        record[name] = "长" * over
    elif how == "surrogate":
        record[draw(TEXTS[kind])] = (draw(st.text(max_size=20)) + draw(LONE_SURROGATE)
                                     + draw(st.text(max_size=20)))
    elif how == "deep":
        record[draw(NESTABLE[kind])] = nested(draw(st.integers(2, 400)))
    elif how == "not a record":
        return draw(st.one_of(NOT_TEXT, st.none(), st.text(max_size=20)))
    else:
        name = draw(st.sampled_from(["clock_synced", "boot", "mono"]))
        record[name] = draw(WRONG[name])
    return record


# An item of a batch: ("good", record) | ("bad", record) | ("copy", k) an exact
# copy of the batch's k-th good record | ("same id", k, record) a new record of
# the k-th one's type under its id | ("resend", k) a good record of an earlier
# batch, sent again.
ITEM_KINDS = st.sampled_from(["good"] * 9 + ["bad"] * 6 + ["copy", "same id"] * 2 + ["resend"])


@st.composite
def items(draw):
    what = draw(ITEM_KINDS)
    if what in ("good", "bad"):
        return what, draw(valid_records() if what == "good" else broken_records())
    if what == "same id":
        return what, draw(st.integers(0, 50)), draw(valid_records())
    return what, draw(st.integers(0, 10**6))


ENVELOPE_BREAKS = ("other node", "version", "no record list", "cut short", "not UTF-8",
                   "too deep", "long integer", "not an object", "empty", "random bytes") * 3 \
    + ("over 1000 records",)  # rarer: each one is a thousand records


@st.composite
def batches(draw):
    head = {}
    if draw(st.booleans()):
        head["batch"] = draw(st.text(max_size=70))
    if draw(st.booleans()):  # the node's clock at sending (protocol.records.Clock)
        head.update(sent_at=draw(VALID["time"]), clock_synced=draw(st.booleans()),
                    boot=draw(st.sampled_from(BOOTS)), mono=draw(st.floats(0, 10**6)))
    head.update(draw(st.dictionaries(
        st.text(max_size=8).filter(lambda k: k not in {"v", "node", "records", "batch",
                                                       "sent_at", "clock_synced", "boot",
                                                       "mono"}),
        JSON_SCALARS, max_size=2)))
    broken = None
    if draw(st.integers(0, 99)) < 10:  # (hypothesis favours small numbers: ~1 in 5)
        broken = (draw(st.sampled_from(ENVELOPE_BREAKS)), draw(st.integers(0, 2**32)),
                  draw(st.one_of(st.text(max_size=10).filter(lambda s: s != NODE), NOT_TEXT,
                                 st.none())),
                  draw(st.binary(max_size=200)))
    return head, draw(st.lists(items(), max_size=12)), broken


# --- the hub under test ---------------------------------------------------------------

class Acks:
    """The node's side of the hub's acks: every id named in a down/ack."""

    def __init__(self, broker):
        self.ids: set = set()
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.client = make_client("fuzz-ack-listener", broker.settings(NODE))
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: self.ready.set()
        self.client.connect("127.0.0.1", broker.port)
        self.client.subscribe(topics.node_down(SITE, NODE, "ack"), qos=1)
        self.client.loop_start()
        assert self.ready.wait(10), "the ack listener was not subscribed"

    def _on_message(self, client, userdata, message):
        with self.lock:
            self.ids.update(json.loads(message.payload)["ids"])

    def missing(self, expected: set) -> set:
        with self.lock:
            return expected - self.ids

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


class FuzzedHub:
    """A real Ingest on a real hub database, connected to a real broker (for
    its acks); handle() is called the way its MQTT callback calls it."""

    def __init__(self, broker, tmp_path):
        self.ingest = Ingest(site=SITE, db_path=tmp_path / "hub.db", mqtt=broker.settings("hub"))
        self.ingest.db = open_db(self.ingest.db_path)
        self.ingest.client.connect("127.0.0.1", broker.port)
        self.ingest.client.loop_start()
        assert self.ingest.subscribed.wait(10), "ingest did not subscribe"
        self.conn = self.ingest.db.conn
        self.quarantine_seen = self._last_quarantine_id()

    def handle(self, payload: bytes, topic: str = TOPIC, properties=None) -> list[dict]:
        """Hand ``payload`` to ingest; the quarantine rows it added."""
        self.ingest.handle(topic, payload, properties)
        rows = self.rows("SELECT * FROM quarantine WHERE id > ? ORDER BY id",
                         self.quarantine_seen)
        self.quarantine_seen = self._last_quarantine_id()
        return rows

    def rows(self, sql: str, *args) -> list[dict]:
        cursor = self.conn.execute(sql, args)
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    def _last_quarantine_id(self) -> int:
        return self.conn.execute("SELECT coalesce(max(id), 0) FROM quarantine").fetchone()[0]

    def close(self):
        self.ingest.client.disconnect()
        self.ingest.client.loop_stop()
        self.ingest.db.close()


def canonical(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)


class Ledger:
    """What the hub must hold: the first copy of each good record by id (a
    presence id merged as the contract says), and the counts."""

    def __init__(self):
        self.expected: dict[str, dict] = {}
        self.unsynced: set = set()  # ids a clock correction may have shifted
        self.history: list[dict] = []  # good records sent, for re-sends
        self.ack_ids: set = set()
        self.counts = Counter()
        self._ids = itertools.count(1)
        self._salt = uuid.uuid4().int >> 64 << 64

    def fresh_id(self) -> str:
        return str(uuid.UUID(int=self._salt | next(self._ids)))

    def good(self, record: dict) -> None:
        rid = record["id"]
        if record.get("clock_synced") is False:
            self.unsynced.add(rid)
        known = self.expected.get(rid)
        if record["type"] == "presence":  # never negative dwell (hub/ingest/clockfix.py)
            record = {**record, "last_seen": max(record["first_seen"], record["last_seen"])}
        if known is None:
            self.expected[rid] = dict(record)
            self.history.append(record)
        elif record["type"] == "presence":  # re-sent while open: the interval extends
            known["last_seen"] = max(known["last_seen"], record["last_seen"])
            known["closed"] = known["closed"] or record["closed"]
            if record.get("staff_id") is not None:
                known["staff_id"] = record["staff_id"]
        self.ack_ids.add(rid)


def build(plan, ledger: Ledger) -> tuple[bytes, list, list]:
    """The payload of a batch plan, its good records and its bad ones."""
    head, plan_items, _ = plan
    records, good, bad = [], [], []
    for item in plan_items:
        if item[0] == "good":
            record = {**item[1], "id": ledger.fresh_id()}
            good.append(record)
        elif item[0] == "bad":
            record = item[1]
            if isinstance(record, dict) and record.get("id") == FRESH:
                record = {**record, "id": ledger.fresh_id()}
            bad.append(record)
        elif item[0] == "copy" and good:
            record = dict(good[item[1] % len(good)])
            good.append(record)
        elif item[0] == "same id" and good:
            original = good[item[1] % len(good)]
            record = {**item[2], "id": original["id"], "type": original["type"]}
            if record["type"] != item[2]["type"]:
                record = {**original, "ts": item[2]["ts"]}
            good.append(record)
        elif item[0] == "resend" and ledger.history:
            record = dict(ledger.history[item[1] % len(ledger.history)])
            good.append(record)
        else:
            continue
        records.append(record)
    envelope = {"v": 1, "node": NODE, **head, "records": records}
    return json.dumps(envelope).encode(), good, bad


def break_envelope(payload: bytes, broken, ledger: Ledger) -> bytes:
    how, number, not_node, noise = broken
    envelope = json.loads(payload)
    if how == "other node":
        envelope["node"] = not_node
    elif how == "version":
        envelope["v"] = [0, 2, "1", None, -1, 1.5][number % 6]
    elif how == "no record list":
        envelope["records"] = [None, {"0": 1}, "records", 7][number % 4]
    elif how == "over 1000 records":
        template = {"id": FRESH, "type": "occupancy", "ts": iso(datetime.now(timezone.utc)),
                    "zone": "hall-a", "minute": "2025-03-10T08:00:00.000Z", "devices": 3}
        envelope["records"] = [{**template, "id": ledger.fresh_id()}
                               for _ in range(1001 + number % 10)]
    elif how == "cut short":
        return payload[:number % len(payload)]
    elif how == "not UTF-8":
        at = 1 + number % (len(payload) - 1)
        return payload[:at] + [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80"][number % 4] \
            + payload[at:]
    elif how in ("too deep", "long integer"):  # one more item in the record list
        depth = 2000 + number % 200_000
        item = b"[" * depth + b"]" * depth if how == "too deep" \
            else b"7" * (4301 + number % 20_000)
        return payload[:-2] + (b"" if payload.endswith(b"[]}") else b",") + item + b"]}"
    elif how == "not an object":
        return json.dumps([[envelope], "records", 1, None][number % 4]).encode()
    elif how == "empty":
        return b""
    else:
        return noise
    return json.dumps(envelope).encode()


def check_stored(hub: FuzzedHub, ledger: Ledger, rid: str) -> None:
    expected = ledger.expected[rid]
    kind = expected["type"]
    [row] = hub.rows(f"SELECT * FROM {TABLES[kind]} WHERE id = ?", rid)
    assert row["node"] == NODE
    synced = expected.get("clock_synced")
    assert row["clock_synced"] == (None if synced is None else int(synced))
    for name in ("ts", *FIELDS[kind]):
        if rid in ledger.unsynced and (name in TIME_FIELDS or name == "event_id"):
            continue  # moved by the clock correction (hub/ingest/clockfix.py): not ours to say
        got, sent = row[name], expected.get(name)
        if name == "photos":
            got = json.loads(got)
        elif isinstance(sent, bool):
            sent = int(sent)
        assert got == sent, (rid, kind, name, got, sent)


def send_batch(hub: FuzzedHub, ledger: Ledger, plan) -> None:
    payload, good, bad = build(plan, ledger)
    broken = plan[2]
    sent = len(good) + len(bad)
    if broken:
        payload = break_envelope(payload, broken, ledger)
        if broken[0] == "over 1000 records":
            sent = len(json.loads(payload)["records"])
    new = hub.handle(payload)
    ledger.counts.update(payloads=1, records=sent)
    if broken:
        # The payload whole, byte for byte, one row; nothing of it stored.
        assert len(new) == 1, (broken[0], [q["reason"] for q in new])
        [row] = new
        assert row["payload"] == payload and row["reason"] and row["topic"] == TOPIC
        assert row["node"] == NODE and row["record_id"] is None
        ledger.counts.update(quarantined=sent, bad_payloads=1)
        ids = [r["id"] for r in good + bad if isinstance(r, dict) and isinstance(r.get("id"), str)]
        for rid in ids:
            if rid not in ledger.expected:
                for table in TABLES.values():
                    assert not hub.rows(f"SELECT 1 FROM {table} WHERE id = ?", rid), rid
        return
    assert all(row["reason"] and row["topic"] == TOPIC for row in new)
    assert sorted(canonical(json.loads(row["payload"])) for row in new) == \
        sorted(canonical(record) for record in bad), [row["reason"] for row in new]
    for record in bad:
        if isinstance(record, dict) and isinstance(record.get("id"), str) \
                and _UUID.match(record["id"]):
            ledger.ack_ids.add(record["id"])
    for record in good:
        ledger.good(record)
    for rid in {record["id"] for record in good}:
        check_stored(hub, ledger, rid)
    ledger.counts.update(quarantined=len(bad), bad_records=len(bad), good=len(good))


def check_totals(hub: FuzzedHub, ledger: Ledger, acks: Acks) -> None:
    stored = sum(hub.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                 for table in TABLES.values())
    assert stored == len(ledger.expected), "the record tables hold exactly the good ids"
    counts = ledger.counts
    assert counts["good"] + counts["quarantined"] == counts["records"]
    quarantine_rows = hub.conn.execute("SELECT count(*) FROM quarantine").fetchone()[0]
    assert quarantine_rows == counts["bad_records"] + counts["bad_payloads"]
    waiting = hub.conn.execute(
        "SELECT count(*) FROM reports r WHERE r.photos = '[]' AND NOT EXISTS "
        "(SELECT 1 FROM ticket_reports t WHERE t.report_id = r.report_id)").fetchone()[0]
    assert waiting == 0, "every report without photos became a ticket"
    wait_for(lambda: not acks.missing(ledger.ack_ids), timeout=30,
             message=f"acks for {len(acks.missing(ledger.ack_ids))} records")


def test_every_batch_is_stored_or_quarantined_and_ingest_never_raises(broker, tmp_path):
    hub, acks, ledger = FuzzedHub(broker, tmp_path), Acks(broker), Ledger()
    try:
        @settings(FUZZ, max_examples=BATCHES)
        @given(plan=batches())
        def sends(plan):
            send_batch(hub, ledger, plan)

        sends()
        check_totals(hub, ledger, acks)
    finally:
        acks.close()
        hub.close()
    counts = ledger.counts
    assert counts["payloads"] >= BATCHES and counts["bad_payloads"] and counts["good"]
    report("fuzz_ingest", {"payloads": counts["payloads"], "records": counts["records"],
                           "stored": len(ledger.expected), "quarantined": counts["quarantined"],
                           "bad_payloads": counts["bad_payloads"],
                           "bad_records": counts["bad_records"],
                           "duplicates_absorbed": counts["good"] - len(ledger.expected)})


# --- status, photo and stray uplinks ------------------------------------------------

def image(kind: str, colour: int, side: int) -> bytes:
    out = BytesIO()
    Image.new("RGB", (side, side + 3), (colour, 255 - colour, colour // 2)).save(out, kind)
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (len(data).to_bytes(4, "big") + kind + data
                + zlib.crc32(kind + data).to_bytes(4, "big"))
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


@st.composite
def photo_uplinks(draw):
    """(payload, claimed sha256 or None, whether the hub must keep it)."""
    colour, side = draw(st.integers(0, 255)), draw(st.integers(1, 48))
    how = draw(st.sampled_from(["jpeg", "png", "jpeg + junk", "truncated", "bomb",
                                "random bytes", "empty"]))
    if how in ("jpeg", "png"):
        payload = image(how.upper(), colour, side)
    elif how == "jpeg + junk":  # decodes: what follows the image is not looked at
        payload = image("JPEG", colour, side) + draw(st.binary(min_size=1, max_size=64))
    elif how == "truncated":
        whole = image("JPEG", colour, side)
        payload = whole[:draw(st.integers(0, len(whole) // 2))]
    elif how == "bomb":
        payload = png_claiming(draw(st.integers(8000, 50000)), draw(st.integers(8000, 50000)))
    elif how == "random bytes":
        payload = draw(st.binary(min_size=1, max_size=300))
    else:
        payload = b""
    decodes = how in ("jpeg", "png", "jpeg + junk")
    name = draw(st.sampled_from(["right", "right", "wrong", "none", "garbage"]))
    claimed = {"right": sha256(payload).hexdigest(), "wrong": sha256(payload + b"!").hexdigest(),
               "none": None, "garbage": draw(st.text(max_size=70))}[name]
    return payload, claimed, decodes and name == "right"


@st.composite
def status_uplinks(draw):
    """(payload, the state the node row must show, or None: quarantined)."""
    status = {"state": draw(st.sampled_from(["online", "offline"]))}
    for name, values in (("version", st.text(max_size=20)),
                         ("backlog", st.integers(0, 2**63 - 1)),
                         ("disk_free", st.integers(0, 2**63 - 1)),
                         ("clock_synced", st.booleans()),
                         ("ts", VALID["time"])):
        if draw(st.booleans()):
            status[name] = draw(values)
    how = draw(st.sampled_from(["valid", "valid", "state", "number", "text", "not an object",
                                "not JSON"]))
    if how == "valid":
        return json.dumps(status).encode(), status["state"]
    if how == "state":
        status["state"] = draw(st.one_of(NOT_TEXT, st.none(), st.text(max_size=10).filter(
            lambda s: s not in ("online", "offline"))))
    elif how == "number":
        status[draw(st.sampled_from(["backlog", "disk_free"]))] = draw(st.one_of(
            st.integers(max_value=-1), st.integers(min_value=2**63), st.floats(),
            st.booleans(), st.text(max_size=5)))
    elif how == "text":
        lone = draw(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF))
        status[draw(st.sampled_from(["version", "ts"]))] = draw(st.one_of(
            st.just("v" + lone), NOT_TEXT))
    elif how == "not an object":
        return json.dumps(draw(st.one_of(NOT_TEXT, st.none()))).encode(), None
    else:
        return draw(st.sampled_from([b"{", b"\xff\xfe", b"[" * 5000, b"9" * 5000,
                                     b'{"state": "online"'])), None
    return json.dumps(status).encode(), None


def user_properties(**values) -> Properties:
    properties = Properties(PacketTypes.PUBLISH)
    properties.UserProperty = [(k, v) for k, v in values.items() if v is not None]
    return properties


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # the bombs
def test_status_photo_and_stray_uplinks_are_kept_or_quarantined(broker, tmp_path):
    hub, counts = FuzzedHub(broker, tmp_path), Counter()
    photos_dir = hub.ingest.photos_dir

    def state_of(node):
        rows = hub.rows("SELECT state FROM nodes WHERE node = ?", node)
        return rows[0]["state"] if rows else None

    @settings(FUZZ, max_examples=OTHER_UPLINKS)
    @given(photo=photo_uplinks(), status=status_uplinks(),
           stray=st.tuples(st.text(min_size=1, max_size=12).filter(
               lambda k: k not in ("batch", "status", "photo") and "/" not in k),
               st.sampled_from([f"rounds/v1/other-site/node/{NODE}/up/batch", "rounds/v1",
                                f"rounds/v1/{SITE}/node//up/batch", "x/y/z/a/b/c/d"]),
               st.binary(max_size=100)))
    def sends(photo, status, stray):
        payload, claimed, keep = photo
        kept_before = hub.rows("SELECT sha256 FROM photos")
        new = hub.handle(payload, topics.node_up(SITE, NODE, "photo"),
                         user_properties(sha256=claimed, report_id=str(uuid.uuid4())))
        if keep:
            assert not new
            [row] = hub.rows("SELECT path FROM photos WHERE sha256 = ?", claimed)
            with open(row["path"], "rb") as stored:
                assert stored.read() == payload
        else:
            assert [(q["payload"], bool(q["reason"])) for q in new] == [(payload, True)]
            assert hub.rows("SELECT sha256 FROM photos") == kept_before
        counts.update(payloads=1, photos_kept=keep, quarantined=not keep)

        payload, state = status
        node = f"node-{counts['payloads']}"  # a fresh node row each time
        new = hub.handle(payload, topics.node_up(SITE, node, "status"))
        if state:
            assert not new and state_of(node) == state
        else:
            assert [(q["payload"], q["node"]) for q in new] == [(payload, node)]
            assert state_of(node) is None
        counts.update(payloads=1, statuses_kept=bool(state), quarantined=not state)

        kind, topic, payload = stray
        for topic in (topics.node_up(SITE, NODE, kind), topic):
            new = hub.handle(payload, topic)
            assert [(q["payload"], q["topic"]) for q in new] == [(payload, topic)]
            counts.update(payloads=1, quarantined=1)

    try:
        sends()
    finally:
        hub.close()
    assert counts["photos_kept"] and counts["statuses_kept"]
    assert not [p for p in photos_dir.rglob("*") if p.name.endswith(".tmp")]
    report("fuzz_uplinks", dict(counts))
