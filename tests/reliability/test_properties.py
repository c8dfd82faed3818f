"""Property-based tests against the real validators: what the plugins produce from arbitrary
input is accepted by the sandboxes and reads back as sent.

Already in the package suites (not repeated here, see docs/reliability.md):
- SOQL literal escaping: any string round-trips to an exact match through the sandbox
  (clients/tests/test_salesforce_sandbox.py::test_any_string_round_trips_to_an_exact_match,
  clients/tests/test_soql.py, target-salesforce-events/tests/test_delivery.py::
  test_no_user_id_text_can_break_the_lookup);
- record -> attribute coercion gives valid Appcues types (target-appcues-profiles/tests/
  test_coercion_property.py);
- templates render without error within 255 / 32,000 UTF-16 units (target-salesforce-events/
  tests/test_templates.py::test_any_attributes_render_within_limits).
Added here: the same generated inputs sent over the wire, so the limits the plugins assume
are the limits the sandboxes (Appcues profiles, Salesforce Event) actually enforce.
"""

from __future__ import annotations

from datetime import UTC

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from salesforce_appcues_clients.appcues_events import DEFAULT_EVENT_NAMES
from target_appcues_profiles.mapping import AttributeMapper, ValueCoercer
from target_salesforce_events.templates import EventTemplates, template_context

# JSON values a Singer reader hands a sink (floats as Decimal) and the dates it parses.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.text(max_size=200),
    st.dates(),
    st.datetimes(timezones=st.one_of(st.none(), st.just(UTC))),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
records = st.dictionaries(st.text(min_size=1, max_size=12), values, min_size=1, max_size=6)
attribute_values = st.one_of(
    scalars.filter(lambda v: not hasattr(v, "isoformat")),
    st.text(min_size=200, max_size=40_000),  # past both Event limits
    st.lists(st.text(max_size=20), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=20), max_size=3),
)
attribute_maps = st.dictionaries(
    st.sampled_from(["flowName", "score", "feedback", "itemLabel", "goalName", "checklistName"])
    | st.text(max_size=10),
    attribute_values,
    max_size=5,
)
WIRE = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def clients(world, harness):
    world.reset(events=False)
    world.appcues.call("POST", "settings", {"rate_limit_per_second": 100000})
    sf, ac = harness.verification_clients(world)
    (contact,) = sf.query("SELECT Id FROM Contact ORDER BY Id LIMIT 1")
    yield sf, ac, contact["Id"]
    world.appcues.call("POST", "settings", {"rate_limit_per_second": 60})
    sf.close()
    ac.close()


@WIRE
@given(record=records, date_format=st.sampled_from(["iso8601", "epoch_ms"]))
def test_mapped_attributes_are_accepted_by_appcues_and_read_back(clients, record, date_format):
    _, ac, _ = clients
    attributes = AttributeMapper(coercer=ValueCoercer(date_format)).map(record)
    ac.patch_user_profile("property-user", attributes)  # a refusal raises AppcuesError
    stored = ac.get_user_profile("property-user") or {}
    for name, value in attributes.items():
        assert stored.get(name) == value, (name, value, stored.get(name))


@WIRE
@given(
    batch=st.lists(
        st.tuples(st.sampled_from(DEFAULT_EVENT_NAMES) | st.text(max_size=300), attribute_maps),
        min_size=1,
        max_size=10,
    )
)
def test_rendered_events_are_accepted_by_salesforce(clients, batch):
    """Any attributes render, and the Subject/Description fit the Event's real limits."""
    sf, _, who = clients
    templates = EventTemplates()
    events = []
    for number, (name, attributes) in enumerate(batch):
        variables = template_context(
            name=name,
            attributes=attributes,
            context={"url": "https://app.example.com/x", "title": "X"},
            event_id=f"prop-{number}",
            user_id="u-1",
            timestamp="2026-01-02T03:04:05.000Z",
        )
        text = templates.render(name, variables)
        events.append(
            {
                "WhoId": who,
                "Subject": text.subject,
                "Description": text.description,
                "ActivityDateTime": "2026-01-02T03:04:05.000Z",
                "DurationInMinutes": 0,
            }
        )
    results = sf.insert("Event", events)
    assert all(r.success for r in results), [r.errors for r in results if not r.success]
    stored = {
        row["Id"]: row
        for row in sf.query(
            "SELECT Id, Subject, Description FROM Event WHERE Id IN ("
            + ",".join(f"'{r.id}'" for r in results)
            + ")"
        )
    }
    for sent, result in zip(events, results, strict=True):
        assert stored[result.id]["Subject"] == sent["Subject"]
        assert (stored[result.id]["Description"] or "") == (sent["Description"] or "")
