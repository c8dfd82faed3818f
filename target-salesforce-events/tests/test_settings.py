"""Each setting's default is written once, in the schema: the parsers apply exactly those."""

from __future__ import annotations

from pathlib import Path

import pytest

from salesforce_appcues_clients.appcues_events import DEFAULT_EVENT_NAMES
from salesforce_appcues_clients.settings import schema_defaults
from target_salesforce_events.settings import (
    COLLECTIONS_PER_CALL,
    COMPOSITE_PER_CALL,
    EventSettings,
    SettingsError,
    target_properties,
)
from target_salesforce_events.webhook.settings import (
    WebhookSettings,
    pipeline_config,
    receiver_properties,
    webhook_properties,
)


def _plain(value):
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, frozenset):
        return sorted(value)
    return value


def test_an_empty_config_parses_to_the_schema_defaults():
    defaults = schema_defaults(target_properties())
    parsed = EventSettings.from_config({})
    derived = {"state_dir": str(parsed.ledger_path.parent)}
    found = {
        name: derived[name] if name in derived else _plain(getattr(parsed, name))
        for name in defaults
    }
    assert found == {**defaults, "event_names": sorted(defaults["event_names"])}
    # the contract with the tap: both default to the same events
    assert defaults["event_names"] == list(DEFAULT_EVENT_NAMES)


# The receiver's settings as parsed: its attribute, and the factor from the setting's unit.
WEBHOOK_ATTRIBUTES = {
    "webhook_host": ("host", 1),
    "webhook_port": ("port", 1),
    "webhook_path": ("path", 1),
    "webhook_signature_scheme": ("scheme", 1),
    "webhook_replay_window_seconds": ("replay_window_seconds", 1),
    "webhook_batch_size": ("batch_size", 1),
    "webhook_batch_max_age_ms": ("batch_max_age_seconds", 1000),
    "webhook_busy_rate_per_second": ("busy_rate_per_second", 1),
    "webhook_busy_batch_max_age_ms": ("busy_batch_max_age_seconds", 1000),
    "webhook_run_seconds": ("run_seconds", 1),
    "webhook_retry_max_seconds": ("retry_max_seconds", 1),
    "webhook_max_body_bytes": ("max_body_bytes", 1),
}


def test_a_minimal_receiver_config_parses_to_the_schema_defaults():
    defaults = schema_defaults(webhook_properties())
    parsed = WebhookSettings.from_config({"webhook_secrets": ["s"]})
    found = {}
    for name in defaults:
        attribute, factor = WEBHOOK_ATTRIBUTES[name]
        value = getattr(parsed, attribute)
        found[name] = value * factor if factor != 1 else value
    assert found == defaults
    # the receiver keeps its own state folder, and its schema says so
    state_dir = schema_defaults(receiver_properties())["state_dir"]
    assert state_dir != schema_defaults(target_properties())["state_dir"]
    assert parsed.spool_path.parent == Path(state_dir)
    assert pipeline_config({})["state_dir"] == state_dir


@pytest.mark.parametrize(
    ("value", "expected"),
    [("false", False), ("No", False), ("0", False), ("TRUE", True), ("yes", True), (None, None)],
)
def test_flags_given_as_text_mean_what_they_say(value, expected):
    """bool("false") is True: a library caller passing text gets what the text says; null
    takes the setting's default (each setting of this target may be null)."""
    names = ("sync_events", "include_custom_events", "sync_nps_fields")
    parsed = EventSettings.from_config(dict.fromkeys(names, value))
    defaults = schema_defaults(target_properties())
    for name in names:
        assert getattr(parsed, name) is (defaults[name] if expected is None else expected)


def test_a_flag_that_is_not_yes_or_no_is_refused_naming_it():
    with pytest.raises(SettingsError, match="setting 'sync_nps_fields' must be true or false"):
        EventSettings.from_config({"sync_nps_fields": "sometimes"})


UPSERT, INSERT = COMPOSITE_PER_CALL, COLLECTIONS_PER_CALL  # records per REST call


@pytest.mark.parametrize(
    ("config", "writes", "per_call", "bulk"),
    [
        # AUTO, default threshold (2,000): a job (about 6 calls) only where REST costs more
        ({}, 3000, UPSERT, False),  # 3 Composite calls
        ({}, 6000, UPSERT, False),  # 6 either way: REST answers at once
        ({}, 6001, UPSERT, True),
        ({}, 7000, UPSERT, True),
        ({}, 3000, INSERT, True),  # 15 collections calls
        ({}, 2000, INSERT, False),  # not past the threshold, though 10 calls
        ({"bulk_threshold": 0}, 1200, INSERT, False),  # 6 either way
        ({"bulk_threshold": 0}, 1201, INSERT, True),
        ({"bulk_threshold": 10_000}, 9000, UPSERT, False),  # 9 calls, under the threshold
        # forced either way, whatever the cost
        ({"api_type": "BULK2"}, 1, UPSERT, True),
        ({"api_type": "BULK2"}, 1, INSERT, True),
        ({"api_type": "BULK2"}, 0, INSERT, False),  # nothing to write
        ({"api_type": "REST"}, 50_000, UPSERT, False),
        ({"api_type": "REST", "bulk_threshold": 0}, 50_000, INSERT, False),
    ],
)
def test_auto_takes_a_bulk_job_only_where_it_costs_fewer_calls(
    tmp_path, config, writes, per_call, bulk
):
    settings = EventSettings.from_config({"state_dir": str(tmp_path), **config})
    assert settings.uses_bulk(writes, per_call) is bulk
