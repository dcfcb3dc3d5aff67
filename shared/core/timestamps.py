"""Timestamps as the pipeline writes them: UTC, ISO 8601, with ``Z``."""

from __future__ import annotations

from datetime import UTC, datetime


def format_timestamp(moment: datetime) -> str:
    """UTC ISO 8601 with ``Z``: ``2027-01-31T00:00:00Z`` (microseconds only when non-zero)."""
    utc = moment.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}"
    return text + "Z"


def parse_timestamp(value: object) -> datetime | None:
    """An ISO 8601 timestamp (``Z`` or an offset) written by us, or ``None`` when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
