"""The fast path for clean batches: the envelope and the high-volume record
types as compiled msgspec schemas.

``records.parse_envelope`` checks a batch record by record in Python and says
why each bad one is bad; that costs ~14 µs a record, more than SQLite takes to
store it. Nearly every batch a hub receives is clean, though: check-ins,
presence intervals, occupancy counts and bindings from nodes whose clocks are
set. ``decode_clean`` decodes and validates such a batch in one C pass
(~0.5 µs a record) into typed records, or answers None, and the caller then
takes the careful path, which finds the reasons. It never accepts a record
the careful path would refuse; tests/test_wire.py checks that on generated
batches. What it leaves to the careful path:
- any record that fails a check (its reason is the careful path's job);
- reports (rare; their photos and tickets need the full path anyway);
- records made with the node's clock unsynchronised, or a presence interval
  ending before it starts (the hub corrects or flags those: hub/clockfix.py);
- a batch holding 29 February anywhere (the timestamp pattern knows month
  lengths but not leap years).
"""

from typing import Annotated, Literal

import msgspec

from . import PROTOCOL_VERSION
from .records import MAX_RECORDS_PER_BATCH

# Timestamps in records.EARLIEST..LATEST (1970 to 9998) of a real calendar
# day (29 February excepted, see above), in the one wire form.
_YEAR = r"(?:19[7-9][0-9]|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9])"
_MONTH_DAY = (r"(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
              r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
              r"|02-(?:0[1-9]|1[0-9]|2[0-8]))")
_TIME = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\.[0-9]{3}Z"
Timestamp = Annotated[str, msgspec.Meta(pattern=rf"\A{_YEAR}-{_MONTH_DAY}T{_TIME}\Z")]
RecordId = Annotated[str, msgspec.Meta(
    pattern=r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")]
Device = Annotated[str, msgspec.Meta(pattern=r"\A[0-9a-f]{16}\Z")]
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


def decode_clean(payload: bytes, topic_node: str) -> Batch | None:
    """The batch, when ``payload`` is a clean batch of ``topic_node``'s (see
    the module's docstring); else None, and nothing is decided."""
    if b"-02-29T" in payload:
        return None
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
    for record in batch.records:
        if type(record) is Presence and record.last_seen < record.first_seen:
            return None
    return batch
