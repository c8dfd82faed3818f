"""Property: whatever values a Singer record holds, the mapped attributes are valid Appcues."""

from __future__ import annotations

import json
import math
from datetime import UTC

from hypothesis import given, settings
from hypothesis import strategies as st

from target_appcues_profiles.mapping import AttributeMapper, ValueCoercer

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
