"""Timestamps as the wire carries them: ISO 8601 UTC with milliseconds."""

from datetime import datetime, timezone


def iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{dt.microsecond // 1000:03d}Z"
    )


def now_iso() -> str:
    return iso(datetime.now(timezone.utc))


def parse_iso(text: str) -> datetime:
    """Parse a wire timestamp; raises ValueError when it is not one."""
    if not isinstance(text, str) or not text.endswith("Z"):
        raise ValueError(f"not an ISO 8601 UTC timestamp: {text!r}")
    return datetime.fromisoformat(text[:-1] + "+00:00")
