"""The instant fast paths give exactly what the general parser and formatter give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tap_salesforce_appcues import timefmt
from tap_salesforce_appcues.timefmt import canonical_datetime, format_datetime, parse_datetime


def outcome(func, value):
    """A call's result, or the type of what it raised."""
    try:
        return ("ok", func(value))
    except Exception as exc:
        return ("raised", type(exc))


def general_canonical(value):
    return format_datetime(timefmt._parse_any(value))


instants = st.datetimes(  # hypothesis takes naive bounds
    min_value=datetime(1, 1, 2),  # noqa: DTZ001
    max_value=datetime(9999, 12, 30),  # noqa: DTZ001
    timezones=st.just(UTC),
)
# Salesforce's spellings, and near relatives that must take the general path.
spellings = st.sampled_from(
    [
        "%Y-%m-%dT%H:%M:%S.{ms}+0000",
        "%Y-%m-%dT%H:%M:%S.{ms}Z",
        "%Y-%m-%dT%H:%M:%S.{ms}z",
        "%Y-%m-%dT%H:%M:%S.{ms}+00:00",
        "%Y-%m-%dT%H:%M:%SZ",
        "%Y-%m-%d %H:%M:%S.{ms}+0000",
        "%Y-%m-%dT%H:%M:%S.{ms}-0000",
        "%Y-%m-%dT%H:%M:%S.{ms}",
        "%Y-%m-%dT%H:%M:%S.%f+0000",
    ]
)


def spell(moment: datetime, pattern: str) -> str:
    text = moment.strftime(pattern.replace("{ms}", f"{moment.microsecond // 1000:03d}"))
    # strftime writes years before 1000 without leading zeros; ISO 8601 wants four digits
    return text if moment.year >= 1000 else f"{moment.year:04d}" + text[len(str(moment.year)) :]


@given(instants, spellings)
def test_salesforce_spellings_match_the_general_path(moment, pattern):
    text = spell(moment, pattern)
    assert outcome(canonical_datetime, text) == outcome(general_canonical, text)
    assert outcome(parse_datetime, text) == outcome(timefmt._parse_any, text)


digit_or_not = st.sampled_from("0123456789") | st.characters(codec="utf-8")


@given(
    st.lists(digit_or_not, min_size=23, max_size=23),
    st.sampled_from(["+0000", "Z", "+00:00", "-0000", "", "+0100"]),
)
@example(list("2026-02-30T10:00:00.000"), "+0000")  # no 30 February
@example(list("2026-01-01T24:00:00.000"), "Z")  # no hour 24
@example(list("2026-01-01T23:59:60.000"), "Z")  # no leap second
@example(list("0999-01-01T00:00:00.000"), "Z")  # before year 1000
@example(list("0000-01-01T00:00:00.000"), "Z")  # no year 0
@example(list("2024-02-29T00:00:00.000"), "+0000")  # a leap day
@example(list("2026-01-01T10:00:00.000"), "\n")
def test_near_misses_match_the_general_path(chars, suffix):
    """Random characters over the Salesforce layout: valid or not, both paths agree."""
    layout = "dddd-dd-ddTdd:dd:dd.ddd"
    text = "".join(c if layout[i] == "d" else layout[i] for i, c in enumerate(chars)) + suffix
    assert outcome(canonical_datetime, text) == outcome(general_canonical, text)
    assert outcome(parse_datetime, text) == outcome(timefmt._parse_any, text)


@given(
    st.integers(0, 9999),
    st.integers(0, 13),
    st.integers(0, 32),
    st.integers(0, 25),
    st.integers(0, 61),
    st.integers(0, 61),
    st.integers(0, 999),
    st.sampled_from(["+0000", "Z"]),
)
def test_fields_in_and_out_of_range_match_the_general_path(
    year, month, day, hour, minute, second, millis, suffix
):
    """The layout's every field at, inside and past its limits (calendar and clock)."""
    text = (
        f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}."
        f"{millis:03d}{suffix}"
    )
    assert outcome(canonical_datetime, text) == outcome(general_canonical, text)
    assert outcome(parse_datetime, text) == outcome(timefmt._parse_any, text)


@given(instants, st.integers(min_value=-14 * 60, max_value=14 * 60))
def test_datetimes_and_offsets_take_the_general_path(moment, minutes):
    local = moment.astimezone(timezone(timedelta(minutes=minutes)))
    assert canonical_datetime(local) == general_canonical(local)
    assert parse_datetime(local) == timefmt._parse_any(local)


def test_fast_path_results():
    assert canonical_datetime("2026-10-30T21:14:54.120+0000") == "2026-10-30T21:14:54.120Z"
    parsed = parse_datetime("2026-10-30T21:14:54.120Z")
    assert parsed == datetime(2026, 10, 30, 21, 14, 54, 120_000, tzinfo=UTC)
    assert parsed.tzinfo is UTC
    with pytest.raises(ValueError):
        canonical_datetime("2026-02-30T10:00:00.000+0000")
