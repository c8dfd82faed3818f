"""The event-id form stored in Salesforce (issue 15): two ids that differ, even only by case,
never share it; the same id always gets the same one; Appcues' uuid ids keep theirs."""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from target_salesforce_events.events import salesforce_key

ids = st.text(min_size=1, max_size=20)


@settings(max_examples=300, deadline=None)
@given(ids, ids)
def test_different_ids_never_share_a_key_even_ignoring_case(a, b):
    assert (salesforce_key(a).lower() == salesforce_key(b).lower()) == (a == b)


@settings(max_examples=300, deadline=None)
@given(ids)
def test_a_key_is_ascii_without_uppercase_and_case_variants_differ(event_id):
    key = salesforce_key(event_id)
    assert key.isascii() and key == key.lower() and key == key.casefold()
    assert salesforce_key(event_id) == key  # deterministic
    for variant in {event_id.upper(), event_id.lower(), event_id.swapcase()} - {event_id}:
        assert salesforce_key(variant) != key


def test_examples():
    assert salesforce_key("P9-CROSS") == "^p9-^c^r^o^s^s"
    assert salesforce_key("p9-cross") == "p9-cross"
    assert salesforce_key("a^b") == "a^^b"
    assert salesforce_key("é") == "^{e9}"
    some_uuid = str(uuid.uuid4())
    assert salesforce_key(some_uuid) == some_uuid  # ids stored by earlier versions match
