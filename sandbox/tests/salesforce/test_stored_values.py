"""How values are stored: datetimes keep whole seconds, a null checkbox is refused (or false)."""

import pytest

from salesforce_appcues_sandbox.server import Sandbox


def _error(response):
    assert response.status_code == 400, response.text
    return response.json()[0]


def test_datetimes_are_truncated_to_whole_seconds_on_write(org):
    event = org.create(
        "Event", ActivityDateTime="2024-01-01T10:00:00.789Z", EndDateTime="2024-01-01T10:45:00.999Z"
    )
    record = org.get("Event", event)
    assert record["ActivityDateTime"] == "2024-01-01T10:00:00.000+0000"
    assert record["EndDateTime"] == "2024-01-01T10:45:00.000+0000"
    assert record["DurationInMinutes"] == 45
    # Offsets and sub-millisecond digits too; SOQL sees the stored (truncated) value.
    org.http.patch(
        org.url(f"sobjects/Event/{event}"),
        json={"ActivityDateTime": "2024-01-01T12:00:05.999999+02:00", "DurationInMinutes": 5},
    ).raise_for_status()
    assert org.get("Event", event)["ActivityDateTime"] == "2024-01-01T10:00:05.000+0000"
    exact = org.query("SELECT Id FROM Event WHERE ActivityDateTime = 2024-01-01T10:00:05Z")
    assert [r["Id"] for r in exact["records"]] == [event]
    later = org.query("SELECT Id FROM Event WHERE ActivityDateTime > 2024-01-01T10:00:05.500Z")
    assert later["records"] == []


@pytest.mark.parametrize("method", ["create", "update"])
def test_a_null_checkbox_is_refused_as_not_of_the_required_type(org, method):
    base = {"ActivityDateTime": "2024-01-01T00:00:00Z", "DurationInMinutes": 5}
    if method == "create":
        response = org.http.post(org.url("sobjects/Event/"), json={**base, "IsAllDayEvent": None})
    else:
        event = org.create("Event", **base)
        response = org.http.patch(org.url(f"sobjects/Event/{event}"), json={"IsAllDayEvent": None})
    error = _error(response)
    assert error["errorCode"] == "INVALID_TYPE_ON_FIELD_IN_RECORD"
    assert error["fields"] == ["IsAllDayEvent"]


@pytest.fixture(scope="module")
def null_is_false():
    with Sandbox(options={"salesforce": {"null_boolean": "false"}}) as running:
        yield running


def test_the_null_boolean_switch_stores_false(null_is_false, org_factory):
    org = org_factory(null_is_false.connection["salesforce"], null_is_false.connection["ca_bundle"])
    base = {"ActivityDateTime": "2024-01-01T00:00:00Z", "DurationInMinutes": 5}
    event = org.create("Event", **base, IsAllDayEvent=None)
    assert org.get("Event", event)["IsAllDayEvent"] is False


@pytest.fixture(scope="module")
def rounding():
    with Sandbox(options={"salesforce": {"datetime_fraction": "round"}}) as running:
        yield running


def test_the_datetime_fraction_switch_rounds_half_up(rounding, org_factory):
    org = org_factory(rounding.connection["salesforce"], rounding.connection["ca_bundle"])
    up = org.create("Event", ActivityDateTime="2024-01-01T10:00:00.500Z", DurationInMinutes=45)
    record = org.get("Event", up)
    assert record["ActivityDateTime"] == "2024-01-01T10:00:01.000+0000"
    assert record["EndDateTime"] == "2024-01-01T10:45:01.000+0000"
    down = org.create("Event", ActivityDateTime="2024-01-01T10:00:00.499Z", DurationInMinutes=5)
    assert org.get("Event", down)["ActivityDateTime"] == "2024-01-01T10:00:00.000+0000"
