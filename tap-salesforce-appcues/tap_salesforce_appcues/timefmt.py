"""One canonical text form for instants, so REST, Bulk and state values compare as strings."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

# Salesforce REST writes `+0000`; Python's fromisoformat needs `+00:00`.
_COMPACT_OFFSET = re.compile(r"([+-]\d{2})(\d{2})$")


def parse_datetime(value: str | datetime | date) -> datetime:
    """Parse an ISO 8601 instant (`Z`, `+0000`, `+00:00`, or naive = UTC) to an aware datetime."""
    if isinstance(value, datetime):
        result = value
    elif isinstance(value, date):
        result = datetime(value.year, value.month, value.day, tzinfo=UTC)
    else:
        text = value.strip().replace(" ", "T", 1) if "T" not in value else value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        text = _COMPACT_OFFSET.sub(r"\1:\2", text)
        result = datetime.fromisoformat(text)
    if result.tzinfo is None:
        result = result.replace(tzinfo=UTC)
    return result.astimezone(UTC)


def format_datetime(value: datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SS.mmmZ` in UTC: Salesforce's precision, sortable as text."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def canonical_datetime(value: str | datetime) -> str:
    """Re-spell any ISO 8601 instant in the canonical form."""
    return format_datetime(parse_datetime(value))
