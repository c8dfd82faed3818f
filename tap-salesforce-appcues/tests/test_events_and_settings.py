"""Event records and ids; the tap's settings and their documentation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from singer_sdk.exceptions import ConfigValidationError

from salesforce_appcues_clients.appcues_events import DEFAULT_EVENT_NAMES
from salesforce_appcues_clients.settings import schema_defaults
from tap_salesforce_appcues.events import (
    event_id,
    event_record,
    is_wanted,
    name_conditions,
)
from tap_salesforce_appcues.settings import TapSettings, tap_properties
from tap_salesforce_appcues.tap import TapSalesforceAppcues

ROW = {
    "timestamp": "2026-03-01T10:00:00.123Z",
    "user_id": "u-1",
    "name": "appcues:nps_score",
    "group_id": "acct-1",
    "attributes": {"score": 9, "flowId": "f-1"},
    "context": {"url": "https://app.example.com/home", "title": "Home"},
}


def test_event_record_shape():
    record = event_record(ROW)
    assert set(record) == {
        "id",
        "name",
        "timestamp",
        "user_id",
        "group_id",
        "attributes",
        "context",
    }
    assert record["timestamp"] == "2026-03-01T10:00:00.123Z"
    assert record["context"] == {"url": "https://app.example.com/home", "title": "Home"}
    assert record["attributes"] == {"score": 9, "flowId": "f-1"}


def test_event_id_is_stable_across_rereads_and_spellings():
    first = event_record(ROW)["id"]
    reread = dict(
        ROW,
        timestamp="2026-03-01T10:00:00.123+00:00",
        attributes='{"flowId": "f-1", "score": 9}',  # JSON text, other key order
    )
    assert event_record(reread)["id"] == first
    assert event_record(dict(ROW, attributes={"score": 8, "flowId": "f-1"}))["id"] != first
    assert event_record(dict(ROW, user_id="u-2"))["id"] != first
    assert event_id("u-1", "x", "2026-03-01T10:00:00.123Z", {}) == event_id(
        "u-1", "x", "2026-03-01T10:00:00.123Z", {}
    )


def test_store_id_wins_when_the_api_returns_one():
    assert event_record(dict(ROW, id="evt-42"))["id"] == "evt-42"


def test_context_falls_back_to_url_column_and_identity_title():
    identity = {"_identity": {"_currentPageTitle": "P"}}
    row = dict(ROW, context=None, url="https://x.test/p", attributes=identity)
    assert event_record(row)["context"] == {"url": "https://x.test/p", "title": "P"}


def test_custom_events_are_names_without_the_appcues_prefix():
    names = ["appcues:nps_score"]
    assert is_wanted("appcues:nps_score", names, include_custom=False)
    assert not is_wanted("Clicked Upgrade", names, include_custom=False)
    assert is_wanted("Clicked Upgrade", names, include_custom=True)
    assert not is_wanted("appcues:flow_started", names, include_custom=True)
    assert name_conditions(names, include_custom=False) == [[["name", "in", names]]]
    assert name_conditions(names, include_custom=True)[1] == [["name", "not like", "appcues:%"]]


def test_settings_defaults():
    s = TapSettings.from_config({})
    assert s.objects == ("Contact", "Account")
    assert s.api_type == "AUTO" and s.include_deleted
    assert s.event_names == DEFAULT_EVENT_NAMES
    assert "appcues:nps_score_and_feedback" in s.event_names


# Settings whose parsed attribute has another name than the setting.
TAP_ATTRIBUTES = {
    "appcues_event_names": "event_names",
    "appcues_include_custom_events": "include_custom_events",
}


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def test_an_empty_config_parses_to_the_schema_defaults():
    defaults = schema_defaults(tap_properties())
    parsed = TapSettings.from_config({})
    found = {name: _plain(getattr(parsed, TAP_ATTRIBUTES.get(name, name))) for name in defaults}
    assert found == defaults
    # the contract with the events target: both default to the same events
    assert defaults["appcues_event_names"] == list(DEFAULT_EVENT_NAMES)


def test_settings_objects_dedupe_and_custom_account_object():
    s = TapSettings.from_config(
        {"user_objects": ["Lead", "Contact", "Lead"], "account_object": "Workspace__c"}
    )
    assert s.objects == ("Lead", "Contact", "Workspace__c")
    assert TapSettings.from_config({"account_object": ""}).objects == ("Contact",)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"api_type": "SOAP"}, "api_type"),
        ({"user_objects": ["Opportunity"]}, "user_objects"),
        ({"lag": -1}, "'lag'"),
        ({"bulk_threshold": "many"}, "bulk_threshold"),
    ],
)
def test_bad_settings_are_named(config, message):
    with pytest.raises(ValueError, match=message):
        TapSettings.from_config(config)


def test_config_schema_documents_every_setting():
    props = TapSalesforceAppcues.config_jsonschema["properties"]
    for name in (
        "start_date",
        "user_objects",
        "account_object",
        "relationship_fields",
        "api_type",
        "bulk_threshold",
        "lookback_window",
        "lag",
        "include_deleted",
        "appcues_event_names",
        "appcues_include_custom_events",
        "appcues_start_date",
        "appcues_account_id",
        "appcues_api_secret",
        "refresh_token",
    ):
        assert props[name].get("title") and props[name].get("description"), name
    assert props["appcues_api_secret"]["secret"] is True


def test_half_configured_appcues_names_the_missing_setting():
    config = {"appcues_account_id": "a", "appcues_api_key": "k", "user_objects": []}
    with pytest.raises(ConfigValidationError, match="appcues_api_secret"):
        TapSalesforceAppcues(config=config, validate_config=False).streams  # noqa: B018


@pytest.mark.parametrize("mode", [["--discover"], []], ids=["discover", "sync"])
def test_half_configured_appcues_is_a_clear_error_not_a_traceback(tmp_path, mode):
    """Meltano runs `--discover` first, then the sync: both say what is missing and exit 1."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"appcues_account_id": "a", "appcues_api_key": "k"}))
    tap = Path(sys.executable).parent / "tap-salesforce-appcues"
    result = subprocess.run(
        [tap, "--config", config, *mode], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert "missing Appcues setting(s): appcues_api_secret" in result.stderr
    assert "Traceback" not in result.stderr


def test_flags_as_text_mean_what_they_say():
    """bool("false") is True: a library caller passing text gets what the text says."""
    parsed = TapSettings.from_config(
        {"include_deleted": "false", "appcues_include_custom_events": "TRUE"}
    )
    assert (parsed.include_deleted, parsed.include_custom_events) == (False, True)
    with pytest.raises(ValueError, match="setting 'include_deleted' must be true or false"):
        TapSettings.from_config({"include_deleted": "nope"})
