"""Settings validation and stream routing."""

from __future__ import annotations

from pathlib import Path

import pytest

from salesforce_appcues_clients.settings import schema_defaults
from target_appcues_profiles.settings import SettingsError, TargetSettings, target_properties


def test_defaults_and_routing():
    s = TargetSettings.from_config({})
    assert s.stream_kind("Contact") == "user"
    assert s.stream_kind("Lead") == "user"
    assert s.stream_kind("Account") == "group"
    assert s.stream_kind("Opportunity") is None
    assert s.id_field("Contact") == "Product_User_Id__c"
    assert s.id_field("Account") == "Product_Account_Id__c"
    assert s.dead_letter_path == Path(".target-appcues-profiles/dead-letters.jsonl")


def _plain(value):
    if isinstance(value, tuple):
        return list(value)
    return str(value) if isinstance(value, Path) else value


def test_an_empty_config_parses_to_the_schema_defaults():
    defaults = schema_defaults(target_properties())
    parsed = TargetSettings.from_config({})
    assert {name: _plain(getattr(parsed, name)) for name in defaults} == defaults


def test_per_stream_id_fields_and_attribute_lists():
    s = TargetSettings.from_config(
        {
            "group_streams": ["Account", "Workspace__c"],
            "id_fields": {"Workspace__c": "Workspace_Id__c"},
            "attributes": {"Contact": ["Email", "FirstName"], "Account": {"Name": "company"}},
            "state_dir": "/tmp/x",
        }
    )
    assert s.id_field("Workspace__c") == "Workspace_Id__c"
    assert s.id_field("Account") == "Product_Account_Id__c"
    assert s.attributes["Contact"] == {"Email": "Email", "FirstName": "FirstName"}
    assert s.dead_letter_path == Path("/tmp/x/dead-letters.jsonl")


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"attribute_prefix": "_sf"}, "attribute_prefix"),
        ({"attributes": {"Contact": {"Email": "_email"}}}, "attributes.Contact.Email"),
        ({"attributes": {"Contact": {"Email": "user_id"}}}, "attributes.Contact.Email"),
        ({"user_streams": ["Account"]}, "group_streams"),
        ({"date_format": "unix"}, "date_format"),
        ({"import_threshold": 0}, "import_threshold"),
        ({"user_id_field": ""}, "user_id_field"),
    ],
)
def test_invalid_settings_name_the_setting(config, named):
    with pytest.raises(SettingsError, match=named.replace(".", r"\.")):
        TargetSettings.from_config(config)


def test_target_refuses_a_bad_setting_at_start(tmp_path):
    from singer_sdk.exceptions import ConfigValidationError

    from target_appcues_profiles.target import TargetAppcuesProfiles

    config = {
        "account_id": "1",
        "api_key": "k",
        "api_secret": "s3cret-value",
        "base_url": "https://127.0.0.1:9",
        "state_dir": str(tmp_path),
        "attributes": {"Contact": {"Email": "_email"}},
    }
    with pytest.raises(ConfigValidationError, match=r"attributes\.Contact\.Email"):
        TargetAppcuesProfiles(config=config)
    with pytest.raises(ConfigValidationError) as missing:
        TargetAppcuesProfiles(config={k: v for k, v in config.items() if k != "api_secret"})
    assert any("api_secret" in error for error in missing.value.errors)


def test_skip_unchanged_as_text_means_what_it_says():
    assert TargetSettings.from_config({"skip_unchanged": "false"}).skip_unchanged is False
    assert TargetSettings.from_config({"skip_unchanged": "Yes"}).skip_unchanged is True
    with pytest.raises(SettingsError, match="setting 'skip_unchanged' must be true or false"):
        TargetSettings.from_config({"skip_unchanged": "maybe"})
