"""The fast path for clean batches: the envelope and the high-volume record
types as compiled msgspec schemas.

``records.parse_envelope`` checks a batch record by record in Python and says
why each bad one is bad; that costs ~14 µs a record, more than SQLite takes to
store it. Nearly every batch a hub receives is clean, though: check-ins,
presence intervals, occupancy counts and bindings from nodes whose clocks are
set. ``decode_clean`` decodes such a batch in one C pass into typed records
(types, lengths, ranges, required and unknown fields), then checks the
fixed-form fields (ids, device ids, timestamps) of the whole batch at once
with string operations that run in C: ~1 µs a record in all. It answers None
for anything else, and the caller then takes the careful path, which finds
the reasons. It never accepts a record
the careful path would refuse; tests/test_wire.py checks that on generated
batches. What it leaves to the careful path:
- any record that fails a check (its reason is the careful path's job);
- reports (rare; their photos and tickets need the full path anyway);
- records made with the node's clock unsynchronised, or a presence interval
  ending before it starts (the hub corrects or flags those: hub/ingest/clockfix.py).
"""

from datetime import date
from operator import itemgetter
from typing import Annotated, Literal, NamedTuple

import msgspec

from . import PROTOCOL_VERSION
from .records import MAX_RECORDS_PER_BATCH

# Fixed-form text: its length here, its characters in _fixed_forms_valid.
RecordId = Annotated[str, msgspec.Meta(min_length=36, max_length=36)]  # a lower-case UUID
Device = Annotated[str, msgspec.Meta(min_length=16, max_length=16)]  # 16 lower-case hex
Timestamp = Annotated[str, msgspec.Meta(min_length=24, max_length=24)]  # 2025-03-10T08:00:00.000Z
Text64 = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Count = Annotated[int, msgspec.Meta(ge=0, le=100_000)]


class _Record(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
              tag_field="type"):
    id: RecordId
    ts: Timestamp
    # Only a synchronised clock (or a node that does not say) takes this path.
    clock_synced: Literal[True] | msgspec.UnsetType = msgspec.UNSET


class Binding(_Record, tag="binding"):
    device: Device
    staff_id: Text64


class Checkin(_Record, tag="checkin"):
    staff_id: Text64
    zone: Text64
    method: Literal["portal", "presence"]
    event_id: Text64 | None = None
    device: Device | None = None


class Presence(_Record, tag="presence"):
    device: Device
    zone: Text64
    first_seen: Timestamp
    last_seen: Timestamp
    closed: bool
    staff_id: Text64 | None = None


class Occupancy(_Record, tag="occupancy"):
    zone: Text64
    minute: Timestamp
    devices: Count


Record = Binding | Checkin | Presence | Occupancy


class Batch(msgspec.Struct, frozen=True):
    """The envelope as the fast path reads it. Its clock head (``sent_at``
    ...) is not read: it only matters for unsynchronised records, which go
    the careful way. Unknown envelope keys are ignored, as there."""
    v: Literal[PROTOCOL_VERSION]
    node: str
    records: Annotated[list[Record], msgspec.Meta(max_length=MAX_RECORDS_PER_BATCH)]
    batch: Annotated[str, msgspec.Meta(max_length=64)] | None = None


_decoder = msgspec.json.Decoder(Batch)


class Clean(NamedTuple):
    """A clean batch: its records by type (each list in arrival order), the
    ids of all of them in arrival order (what the hub acknowledges), and the
    node's name for the batch."""
    groups: dict[type, list[Record]]
    ids: list[str]
    batch: str | None


def decode_clean(payload: bytes, topic_node: str) -> Clean | None:
    """The batch, when ``payload`` is a clean batch of ``topic_node``'s (see
    the module's docstring); else None, and nothing is decided."""
    try:
        # msgspec skips the values of keys it does not read (the clock head,
        # unknown keys) without checking their UTF-8; the careful path
        # refuses a payload with bad UTF-8 anywhere, so the check is here too.
        payload.decode("utf-8")
        batch = _decoder.decode(payload)
    except (UnicodeDecodeError, msgspec.DecodeError):  # ValidationError is a DecodeError
        return None
    if batch.node != topic_node:
        return None
    groups: dict[type, list[Record]] = {}
    for record in batch.records:
        groups.setdefault(type(record), []).append(record)
    ids = [record.id for record in batch.records]
    if not _fixed_forms_valid(batch.records, groups, ids):
        return None
    return Clean(groups, ids, batch.batch)


_NO_HEX = str.maketrans("", "", "0123456789abcdef")
_NO_DIGITS = str.maketrans("", "", "0123456789")
_TS_FORM = "--T::.Z"  # what a wire timestamp holds besides its digits, and where:
_TS_SEPARATORS = tuple(zip((4, 7, 10, 13, 16, 19, 23), _TS_FORM))
_DATE, _HOUR = itemgetter(slice(0, 10)), itemgetter(slice(11, 13))
# records.EARLIEST..LATEST: 1970-01-01 to the last day before 9999-01-01.
_FIRST_YEAR, _LAST_YEAR = 1970, 9998


def _fixed_forms_valid(records: list[Record], groups: dict, ids: list[str]) -> bool:
    """Every id a lower-case UUID, every device id 16 lower-case hex, every
    timestamp the one wire form of a real moment in range, and no presence
    interval ending before it starts: what records.validate checks field by
    field with regular expressions (0.4 µs each), here on each kind of
    field of the whole batch joined into one string (the lengths are
    already checked, so every value sits at a known offset)."""
    presence = groups.get(Presence, ())
    if any(p.last_seen < p.first_seen for p in presence):
        return False
    stamps = [r.ts for r in records]
    stamps += [p.first_seen for p in presence]
    stamps += [p.last_seen for p in presence]
    stamps += [o.minute for o in groups.get(Occupancy, ())]
    devices = [p.device for p in presence]
    devices += [c.device for c in groups.get(Checkin, ()) if c.device is not None]
    devices += [b.device for b in groups.get(Binding, ())]
    return _uuids(ids) and not "".join(devices).translate(_NO_HEX) and _timestamps(stamps)


def _uuids(ids: list[str]) -> bool:
    joined = "".join(ids)
    hyphens = "-" * len(ids)
    return (joined.translate(_NO_HEX) == hyphens * 4
            and all(joined[at::36] == hyphens for at in (8, 13, 18, 23)))


def _timestamps(stamps: list[str]) -> bool:
    joined = "".join(stamps)
    if joined.translate(_NO_DIGITS) != _TS_FORM * len(stamps):
        return False  # something not an ASCII digit where a digit belongs
    if any(joined[at::24] != char * len(stamps) for at, char in _TS_SEPARATORS):
        return False  # a separator out of place
    if max(joined[14::24], default="") > "5" or max(joined[17::24], default="") > "5":
        return False  # minutes, seconds
    if max(map(_HOUR, stamps), default="") > "23":
        return False
    for day in set(map(_DATE, stamps)):  # a batch spans few days
        try:
            year = date.fromisoformat(day).year  # months, days, leap years
        except ValueError:
            return False
        if not _FIRST_YEAR <= year <= _LAST_YEAR:
            return False
    return True
