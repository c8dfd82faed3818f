"""One canonical text form for instants, so REST, Bulk and state values compare as strings."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

# Salesforce REST writes `+0000`; Python's fromisoformat needs `+00:00`.
_COMPACT_OFFSET = re.compile(r"([+-]\d{2})(\d{2})$")
# How Salesforce spells every instant: REST `...00.000+0000`, Bulk and our own `...00.000Z`.
# Years from 1000 only: strftime writes earlier ones without leading zeros.
_SALESFORCE_UTC = re.compile(
    r"[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}(?:\+0000|Z)"
)


def parse_datetime(value: str | datetime | date) -> datetime:
    """Parse an ISO 8601 instant (`Z`, `+0000`, `+00:00`, or naive = UTC) to an aware datetime."""
    if isinstance(value, str) and _SALESFORCE_UTC.fullmatch(value):
        # Fast path, same result: the digits before the UTC suffix, read as UTC.
        return datetime.fromisoformat(value[:23]).replace(tzinfo=UTC)
    return _parse_any(value)


def _parse_any(value: str | datetime | date) -> datetime:
    """`parse_datetime` for every spelling (the fast paths must agree with this)."""
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
    if isinstance(value, str) and _SALESFORCE_UTC.fullmatch(value):
        # Fast path (every REST and Bulk value): already canonical but for the suffix.
        # fromisoformat still rejects what the full path would (a 30 February, hour 25).
        head = value[:23]
        datetime.fromisoformat(head)
        return head + "Z"
    return format_datetime(_parse_any(value))
