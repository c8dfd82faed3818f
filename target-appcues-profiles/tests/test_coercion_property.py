"""Property: whatever values a Singer record holds, the mapped attributes are valid Appcues."""

from __future__ import annotations

import json
import math
from datetime import UTC, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from target_appcues_profiles.mapping import (
    AttributeMapper,
    RecordError,
    ValueCoercer,
    attributes_digest,
)

# What a Singer reader can hand a sink: JSON values (floats as Decimal), plus the
# date/datetime objects the SDK parses from formatted strings.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.text(),
    st.dates(),
    st.datetimes(timezones=st.one_of(st.none(), st.just(UTC))),
    st.times(),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
records = st.dictionaries(st.text(max_size=12), values, max_size=8)


def _valid(attributes):
    for name, value in attributes.items():
        assert isinstance(name, str)
        assert name
        assert not name.startswith("_")
        assert name not in ("user_id", "group_id")
        assert value is None or isinstance(value, str | bool | int | float)
        if isinstance(value, float):
            assert math.isfinite(value)
        if isinstance(value, int) and not isinstance(value, bool):
            assert abs(value) <= 2**53 - 1
    json.dumps(attributes, allow_nan=False)  # the body Appcues receives


@settings(max_examples=200, deadline=None)
@given(records, st.sampled_from(["iso8601", "epoch_ms"]), st.sampled_from(["", "sf_"]))
def test_any_record_maps_to_valid_appcues_attributes(record, date_format, prefix):
    mapper = AttributeMapper(prefix=prefix, coercer=ValueCoercer(date_format))
    _valid(mapper.map(record))


@settings(max_examples=50, deadline=None)
@given(records)
def test_mapping_is_deterministic(record):
    mapper = AttributeMapper()
    assert mapper.map(record) == mapper.map(record)


# Issue 15: values the reader can hand over that no Appcues attribute can hold (a date-time
# leaving years 1-9999 once in UTC, text with lone surrogates) must fail that one record with
# a RecordError naming the field, never with another exception that ends the run.
offsets = st.timedeltas(
    min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)
)
aware = st.builds(
    lambda moment, offset: moment.replace(tzinfo=timezone(offset)),
    st.datetimes(),
    offsets,
)
hostile = st.one_of(
    aware,
    aware.map(lambda moment: moment.isoformat()),
    st.text(alphabet=st.characters(codec=None, categories=["Cs", "Ll", "Nd"]), max_size=6),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(),
)
dated_records = st.dictionaries(
    st.sampled_from(["When__c", "Day__c", "Text__c"]),
    st.one_of(hostile, st.lists(hostile, max_size=3)),
    min_size=1,
)
extremes = ["9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+14:00"]


@settings(max_examples=300, deadline=None)
@given(dated_records, st.sampled_from(["iso8601", "epoch_ms"]))
def test_any_date_or_text_maps_or_fails_as_a_record_error(record, date_format):
    mapper = AttributeMapper(
        coercer=ValueCoercer(date_format),
        date_kinds={"When__c": "date-time", "Day__c": "date"},
    )
    try:
        attributes = mapper.map(record)
    except RecordError as exc:
        assert exc.field_name in record
        assert exc.field_name in str(exc)
        return
    _valid(attributes)
    json.dumps(attributes, ensure_ascii=False).encode("utf-8")
    attributes_digest(attributes)


def test_date_times_outside_the_utc_years_are_record_errors():
    mapper = AttributeMapper(date_kinds={"When__c": "date-time"})
    for text in extremes:
        try:
            mapper.map({"When__c": text})
        except RecordError as exc:
            assert exc.reason == "invalid_date" and exc.field_name == "When__c"
            assert text in str(exc)
        else:  # pragma: no cover - the assertion below explains
            raise AssertionError(f"{text} mapped")
