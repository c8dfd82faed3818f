"""Salesforce datetime text: one grammar for SOQL literals and for values sent in records."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

# YYYY-MM-DD, then optionally a time (seconds, fraction up to nanoseconds) and a UTC offset.
_DATETIME_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:([Tt ])(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?"
    r"([Zz]|[+-]\d{2}:?\d{2})?)?"
)


def _to_utc(moment: datetime, zone: str | None) -> datetime:
    if zone and zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        moment -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return moment


def parse_literal(text: str) -> tuple[datetime, int]:
    """A SOQL datetime literal as (UTC datetime at whole seconds, nanoseconds).

    Strict: `T` (any case), seconds and a zone are required; ValueError otherwise.
    """
    match = _DATETIME_RE.fullmatch(text)
    if match is None or match.group(4) not in ("T", "t") or not match.group(7):
        raise ValueError(text)
    if not match.group(9):
        raise ValueError(text)
    year, month, day, hour, minute, second = (int(match.group(i)) for i in (1, 2, 3, 5, 6, 7))
    fraction = (match.group(8) or "").ljust(9, "0")
    moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    return _to_utc(moment, match.group(9)), int(fraction)


def parse_value(text: str) -> datetime | None:
    """A datetime sent in a record (or a date alone, as midnight UTC); None if it is not one.

    Lenient where Salesforce is: a space for `T`, no seconds, no zone (UTC); microseconds kept.
    """
    match = _DATETIME_RE.fullmatch(text.strip())
    if match is None or match.group(4) == "t" or match.group(9) == "z":
        return None
    try:
        year, month, day = (int(match.group(i)) for i in (1, 2, 3))
        base = datetime(year, month, day, tzinfo=UTC)
    except ValueError:
        return None
    if match.group(4) is None:
        return base
    hh, mm, ss, frac = match.group(5, 6, 7, 8)
    micro = int((frac or "0")[:6].ljust(6, "0"))
    try:
        moment = base.replace(hour=int(hh), minute=int(mm), second=int(ss or 0), microsecond=micro)
    except ValueError:
        return None
    return _to_utc(moment, match.group(9))
