"""Record ids: UUID version 7 (RFC 9562), made on the node.

The first 48 bits are the moment the record was made (Unix milliseconds), the
rest random (74 bits after the version and variant), so ids stay unique
however wrong the node's clock is, and ids made one after another sort one
after another. That is what keeps the hub cheap: each table's id index then
grows at its end, and a 500-record batch dirties a few index pages instead of
500 scattered ones (random version-4 ids made every commit write several
megabytes of WAL; with these the hub's ingest is ~35 % faster,
bench/README.md). The hub accepts any lower-case UUID (records.py): older
nodes' version-4 ids are as valid, only slower to index.
"""

import secrets
import uuid

_RAND_A_BITS, _RAND_B_BITS = 12, 62


def record_id(unix_ms: int, random_bits: int | None = None) -> str:
    """A UUIDv7 for a record made at ``unix_ms`` (clamped to 48 bits);
    ``random_bits`` (74 bits) only for reproducible tests and benchmarks."""
    if random_bits is None:
        random_bits = secrets.randbits(_RAND_A_BITS + _RAND_B_BITS)
    rand_a = random_bits >> _RAND_B_BITS & (1 << _RAND_A_BITS) - 1
    rand_b = random_bits & (1 << _RAND_B_BITS) - 1
    value = ((min(max(unix_ms, 0), (1 << 48) - 1) << 80) | (0x7 << 76) | (rand_a << 64)
             | (0b10 << 62) | rand_b)
    return str(uuid.UUID(int=value))
