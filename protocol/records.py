"""Record types and the batch envelope (DESIGN.md, MQTT contract).

Validation is strict (unknown types and fields are refused) and cheap: the hub
runs it on every record it ingests, so each check is a plain type test.
"""

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import NamedTuple

from . import PROTOCOL_VERSION
from .clock import parse_iso

MAX_RECORDS_PER_BATCH = 1000
_HEX16 = re.compile(r"[0-9a-f]{16}\Z")
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
# The one timestamp form (protocol.clock.iso): the hub compares stored
# timestamps as text, which orders them only when all share it.
_WIRE_TS = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z\Z")
# Timestamps a node can mean: from the epoch (a Pi without a real-time clock
# boots there) to well before datetime's end, so the hub's date arithmetic
# (duplicate windows, clock corrections) never overflows.
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(9999, 1, 1, tzinfo=timezone.utc)


class InvalidRecord(ValueError):
    """A record that does not follow the contract; the message says why."""


class InvalidEnvelope(ValueError):
    """A batch payload that cannot be read as an envelope at all."""


def _unicode(v: str) -> bool:
    """True unless ``v`` holds a lone surrogate (JSON allows ``"\\ud800"``),
    which no UTF-8 database column can store."""
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(limit):
    def check(v):
        if not isinstance(v, str) or not v or len(v) > limit:
            raise InvalidRecord(f"expected text of 1..{limit} characters")
        if not _unicode(v):
            raise InvalidRecord("text is not valid Unicode (a lone surrogate)")
    return check


def _opt(check):
    def opt(v):
        if v is not None:
            check(v)
    return opt


def _timestamp(v):
    if not isinstance(v, str) or not _WIRE_TS.match(v):
        raise InvalidRecord(f"expected an ISO 8601 UTC time with milliseconds "
                            f"(2025-03-10T08:00:00.000Z), not {v!r:.40}")
    try:
        moment = parse_iso(v)
    except ValueError as exc:
        raise InvalidRecord(str(exc)) from None
    if not EARLIEST <= moment < LATEST:
        raise InvalidRecord(f"timestamp out of range ({EARLIEST.year}..{LATEST.year - 1})")


def _device(v):
    if not isinstance(v, str) or not _HEX16.match(v):
        raise InvalidRecord("expected a 16-hex-character device HMAC")


def _bool(v):
    if not isinstance(v, bool):
        raise InvalidRecord("expected true or false")


def _count(v):
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 100_000:
        raise InvalidRecord("expected a count 0..100000")


def _method(v):
    if v not in ("portal", "presence"):
        raise InvalidRecord("expected 'portal' or 'presence'")


def _coordinate(bound):
    def check(v):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not -bound <= v <= bound:
            raise InvalidRecord(f"expected a number in -{bound}..{bound}")
    return check


def _photos(v):
    if not isinstance(v, list) or len(v) > 4 or not all(
        isinstance(p, str) and _SHA256.match(p) for p in v
    ):
        raise InvalidRecord("expected a list of at most 4 sha256 hex digests")


_id_text = _text(64)
_staff = _text(64)
_zone = _text(64)
MAX_ANSWERS = 50          # questions a questionnaire may have
MAX_ANSWER_TEXT = 500     # a free-text answer, characters
MAX_CHOICES = 20          # options ticked in one multi-choice answer


def _version(v):
    if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 1_000_000:
        raise InvalidRecord("expected a version number 1..1000000")


def _score(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 100:
        raise InvalidRecord("expected a score 0..100")


def _registration_action(v):
    if v not in ("register", "cancel"):
        raise InvalidRecord("expected 'register' or 'cancel'")


def _answer(v):
    if isinstance(v, bool):
        raise InvalidRecord("expected a number, a text or a list of options, not true/false")
    if isinstance(v, int):
        if not -1000 <= v <= 1000:
            raise InvalidRecord("expected a number -1000..1000")
    elif isinstance(v, str):
        _text(MAX_ANSWER_TEXT)(v)
    elif isinstance(v, list):
        if not 1 <= len(v) <= MAX_CHOICES or len(set(map(str, v))) != len(v):
            raise InvalidRecord(f"expected 1..{MAX_CHOICES} different options")
        for option in v:
            _id_text(option)
    else:
        raise InvalidRecord("expected a number, a text or a list of options")


def _answers(v):
    """A survey response's answers: question id -> a number (a 1-5 scale), a
    text (short text) or a list of option ids (single and multiple choice)."""
    if not isinstance(v, dict) or not 1 <= len(v) <= MAX_ANSWERS:
        raise InvalidRecord(f"expected an object of 1..{MAX_ANSWERS} answers")
    for question, answer in v.items():
        try:
            _id_text(question)
            _answer(answer)
        except InvalidRecord as exc:
            raise InvalidRecord(f"{str(question)[:64]!r}: {exc}") from None

# type -> {field: (required, check)}; every record also has id, type, ts and
# may carry clock_synced (false when the node's clock was not yet set), boot
# (the node's boot id) and mono (its monotonic clock, seconds since boot, when
# the record was made), both with clock_synced false: see ``Clock``.
SCHEMAS = {
    "binding": {"device": (True, _device), "staff_id": (True, _staff)},
    "checkin": {
        "staff_id": (True, _staff),
        "event_id": (False, _opt(_id_text)),
        "zone": (True, _zone),
        "method": (True, _method),
        "device": (False, _opt(_device)),
    },
    "presence": {
        "device": (True, _device),
        "staff_id": (False, _opt(_staff)),
        "zone": (True, _zone),
        "first_seen": (True, _timestamp),
        "last_seen": (True, _timestamp),
        "closed": (True, _bool),
    },
    "occupancy": {
        "zone": (True, _zone),
        "minute": (True, _timestamp),
        "devices": (True, _count),
    },
    "report": {
        "report_id": (True, _id_text),
        "staff_id": (True, _staff),
        "category": (True, _text(64)),
        "note": (False, _opt(_text(2000))),
        "zone": (True, _zone),
        "lat": (False, _opt(_coordinate(90))),
        "lon": (False, _opt(_coordinate(180))),
        "photos": (True, _photos),
        "taken_at": (True, _timestamp),
    },
    # One respondent's answers, taken by a survey taker (``staff_id``); nothing
    # about the respondent (no name, phone number or device) is in it.
    "survey_response": {
        "task_id": (True, _id_text),
        "questionnaire": (True, _id_text),
        "version": (True, _version),
        "staff_id": (True, _staff),
        "zone": (True, _zone),
        "answers": (True, _answers),
        "taken_at": (True, _timestamp),
    },
    # One person's score for one act of a contest (hub/contests); a later
    # score of the same person for the same act replaces it until the act closes.
    "score": {
        "event_id": (True, _id_text),
        "act": (True, _id_text),
        "staff_id": (True, _staff),
        "value": (True, _score),
        "taken_at": (True, _timestamp),
    },
    # One person's registration for an event (or its cancellation), made on a
    # node's portal; the hub decides capacity and the waiting list
    # (hub/schedule/registration.py), applying them in ``taken_at`` order.
    "registration": {
        "event_id": (True, _id_text),
        "staff_id": (True, _staff),
        "action": (True, _registration_action),
        "taken_at": (True, _timestamp),
    },
}
_COMMON = {"id", "type", "ts", "clock_synced", "boot", "mono"}
# The time fields of each record type (besides ts): what a clock correction shifts.
TIME_FIELDS = {"presence": ("first_seen", "last_seen"), "occupancy": ("minute",),
               "report": ("taken_at",), "survey_response": ("taken_at",),
               "score": ("taken_at",), "registration": ("taken_at",)}


def validate(record) -> dict:
    """Return ``record`` if it follows the contract, else raise InvalidRecord."""
    if not isinstance(record, dict):
        raise InvalidRecord("record is not an object")
    rid = record.get("id")
    if not isinstance(rid, str) or not _UUID.match(rid):
        raise InvalidRecord("id: expected a UUID (lower-case hex, 8-4-4-4-12)")
    kind = record.get("type")
    schema = SCHEMAS.get(kind) if isinstance(kind, str) else None  # a list is unhashable
    if schema is None:
        raise InvalidRecord(f"type: unknown record type {record.get('type')!r}")
    try:
        _timestamp(record.get("ts"))
    except InvalidRecord as exc:
        raise InvalidRecord(f"ts: {exc}") from None
    if "clock_synced" in record and not isinstance(record["clock_synced"], bool):
        raise InvalidRecord("clock_synced: expected true or false")
    boot = record.get("boot")
    if "boot" in record and not (isinstance(boot, str) and 0 < len(boot) <= 64 and _unicode(boot)):
        raise InvalidRecord("boot: expected the node's boot id")
    if "mono" in record and not _is_mono(record["mono"]):
        raise InvalidRecord("mono: expected seconds since boot (a number >= 0)")
    for name, (required, check) in schema.items():
        if name not in record:
            if required:
                raise InvalidRecord(f"{name}: missing")
            continue
        try:
            check(record[name])
        except InvalidRecord as exc:
            raise InvalidRecord(f"{name}: {exc}") from None
    extra = record.keys() - schema.keys() - _COMMON
    if extra:
        raise InvalidRecord(f"unknown field(s): {', '.join(sorted(map(str, extra)))}")
    return record


def _is_mono(v) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)
            and 0 <= v < 1e10)  # also refuses NaN and infinity


@dataclass(frozen=True)
class Clock:
    """The node's clock when it sent a batch: ``sent_at`` (its wall clock),
    ``synced`` (set by NTP or not), ``boot`` (its boot id) and ``mono`` (its
    monotonic clock, seconds since boot, which never jumps).

    A node that boots without network has a wrong wall clock until NTP sets
    it; the records it makes meanwhile carry ``clock_synced: false``, the
    boot id and their own ``mono``. For a record of the batch's boot, the
    batch's ``mono`` minus the record's is how long before the batch it was
    made, whatever the wall clock did in between; the batch's true time is
    its ``sent_at`` once the node is synchronised, else the hub's receipt.
    Without ``mono`` (older nodes), while the clock stays unsynchronised in
    the same boot, its error is taken to be the same for those records as
    for the batch, so the hub corrects them by ``received_at - sent_at``.
    """
    sent_at: str
    synced: bool
    boot: str | None = None
    mono: float | None = None

    def head(self) -> dict:
        return {"sent_at": self.sent_at, "clock_synced": self.synced,
                **({"boot": self.boot} if self.boot else {}),
                **({"mono": self.mono} if self.mono is not None else {})}

    @classmethod
    def from_envelope(cls, envelope: dict) -> "Clock | None":
        sent_at, synced, boot, mono = (envelope.get(k) for k in
                                       ("sent_at", "clock_synced", "boot", "mono"))
        try:
            _timestamp(sent_at)
        except InvalidRecord:
            return None
        if not isinstance(synced, bool) or not (boot is None or isinstance(boot, str)):
            return None
        return cls(sent_at, synced, boot, mono if _is_mono(mono) else None)


class Envelope(NamedTuple):
    good: list
    bad: list  # (raw record, reason)
    batch: str | None
    clock: Clock | None


def make_envelope(node: str, records: list[dict], batch: str | None = None,
                  clock: Clock | None = None) -> bytes:
    return join_envelope(node, [json.dumps(r, separators=(",", ":")) for r in records], batch,
                         clock)


def join_envelope(node: str, bodies: list[str], batch: str | None = None,
                  clock: Clock | None = None) -> bytes:
    """The envelope around records that are already JSON text (the outbox keeps them so)."""
    head = {"v": PROTOCOL_VERSION, "node": node, **({"batch": batch} if batch else {}),
            **(clock.head() if clock else {})}
    return (json.dumps(head, separators=(",", ":"))[:-1]
            + ',"records":[' + ",".join(bodies) + "]}").encode()


def parse_envelope(payload: bytes, topic_node: str) -> Envelope:
    """Split a batch payload into ``Envelope(good, bad, batch, clock)``.

    ``bad`` is a list of ``(raw_record, reason)``; ``batch`` is the node's
    name for this batch (echoed in the ack) or None; ``clock`` the node's
    ``Clock`` at sending, or None. Raises InvalidEnvelope when
    the payload as a whole is unreadable or names another node than its topic.
    """
    try:
        # Strict UTF-8 (RFC 8259): json.loads would take UTF-16, or UTF-8 with
        # encoded surrogates, from bytes.
        envelope = json.loads(payload.decode("utf-8") if isinstance(payload, bytes) else payload)
    except (ValueError, RecursionError) as exc:
        # ValueError: bad JSON, bad UTF-8, or an integer of more than 4300
        # digits; RecursionError: arrays or objects nested too deep to parse.
        raise InvalidEnvelope(f"not JSON: {exc}") from None
    if not isinstance(envelope, dict):
        raise InvalidEnvelope("envelope is not an object")
    if envelope.get("v") != PROTOCOL_VERSION:
        raise InvalidEnvelope(f"unsupported envelope version {envelope.get('v')!r}")
    if envelope.get("node") != topic_node:
        raise InvalidEnvelope(
            f"envelope names node {envelope.get('node')!r} on node {topic_node!r}'s topic"
        )
    records = envelope.get("records")
    if not isinstance(records, list):
        raise InvalidEnvelope("records is not a list")
    if len(records) > MAX_RECORDS_PER_BATCH:
        raise InvalidEnvelope(f"more than {MAX_RECORDS_PER_BATCH} records in one batch")
    good, bad = [], []
    for record in records:
        try:
            good.append(validate(record))
        except InvalidRecord as exc:
            bad.append((record, str(exc)))
    batch = envelope.get("batch")
    return Envelope(good, bad, batch if isinstance(batch, str) and len(batch) <= 64 else None,
                    Clock.from_envelope(envelope))


def validate_status(status) -> dict:
    """Check a node's ``up/status`` document; raise InvalidRecord if malformed."""
    if not isinstance(status, dict) or status.get("state") not in ("online", "offline"):
        raise InvalidRecord("status: expected an object with state online|offline")
    for name in ("backlog", "disk_free"):
        value = status.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or not 0 <= value < 2 ** 63):  # an SQLite INTEGER
            raise InvalidRecord(f"{name}: expected a whole number 0..2**63-1")
    if "clock_synced" in status and not isinstance(status["clock_synced"], bool):
        raise InvalidRecord("clock_synced: expected true or false")
    for name in ("version", "ts"):
        if name in status and not (isinstance(status[name], str) and _unicode(status[name])):
            raise InvalidRecord(f"{name}: expected text")
    return status
