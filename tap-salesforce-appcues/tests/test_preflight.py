"""`tap-salesforce-appcues --check` against the sandbox: ready and not-ready configs, exit codes.

Only the configured parts are checked; each problem is one plain-word line naming what to fix.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from click.testing import CliRunner

from salesforce_appcues_sandbox.salesforce.schema_file import DEFAULT_SCHEMA_FILE
from salesforce_appcues_sandbox.server import Sandbox
from salesforce_appcues_sandbox.testing import salesforce_config
from tap_salesforce_appcues.tap import TapSalesforceAppcues

SALESFORCE_ONLY = ("appcues_account_id", "appcues_api_key", "appcues_api_secret")
APPCUES_ONLY = ("client_id", "client_secret", "refresh_token")


def check(config: dict[str, Any], tmp_path, catalog: dict | None = None) -> tuple[int, str]:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    args = ["--config", str(path), "--check"]
    if catalog is not None:
        (tmp_path / "catalog.json").write_text(json.dumps(catalog))
        args += ["--catalog", str(tmp_path / "catalog.json")]
    result = CliRunner().invoke(TapSalesforceAppcues.cli, args)
    return result.exit_code, result.output


def without(config: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in names}


def test_a_ready_config_passes_every_check(config, org, appcues_control, tmp_path):
    code, out = check(config(), tmp_path)
    assert code == 0, out
    for line in (
        "[OK  ] salesforce credentials: logged in to https://127.0.0.1:",
        "API v62.0 is served",
        "[OK  ] Contact: Contact is readable",
        "[OK  ] Account: Account is readable",
        "[OK  ] Contact.Product_User_Id__c: Contact.Product_User_Id__c is a Text field",
        "[OK  ] Account.Product_Account_Id__c: Account.Product_Account_Id__c is a Text field",
        "[OK  ] Contact.Account.Product_Account_Id__c: the parent field is visible",
        "[OK  ] salesforce quota: the org has used",
        "[OK  ] appcues credentials: the key is accepted for account",
        "[OK  ] appcues analytics: the analytics API answers",
        "Preflight: ready to run (API calls: 2 salesforce, 2 appcues).",
    ):
        assert line in out, out
    for secret in ("client_secret", "refresh_token", "appcues_api_secret"):
        assert config()[secret] not in out


def test_salesforce_settings_alone_check_salesforce_only(config, org, appcues_control, tmp_path):
    code, out = check(without(config(), SALESFORCE_ONLY), tmp_path)
    assert code == 0, out
    assert "salesforce credentials" in out
    assert not [line for line in out.splitlines() if line.startswith("[") and "] appcues" in line]
    assert "(API calls: 2 salesforce, 0 appcues)" in out


def test_appcues_settings_alone_check_appcues_only(config, org, appcues_control, tmp_path):
    code, out = check(without(config(), APPCUES_ONLY), tmp_path)
    assert code == 0, out
    assert "[OK  ] salesforce: no Salesforce credentials configured" in out
    assert "(API calls: 0 salesforce, 2 appcues)" in out


def test_nothing_configured_is_not_ready(config, tmp_path):
    code, out = check(without(config(), SALESFORCE_ONLY + APPCUES_ONLY), tmp_path)
    assert code == 1
    assert "[OK  ] salesforce: no Salesforce credentials configured" in out
    assert "[FAIL] settings: neither Salesforce" in out


def test_wrong_salesforce_credentials_say_so(config, org, tmp_path):
    code, out = check(without(config(refresh_token="not-a-token"), SALESFORCE_ONLY), tmp_path)
    assert code == 1
    assert "[FAIL] salesforce credentials: Salesforce refused the login" in out
    assert "Preflight: 1 problem(s) to fix before a run" in out


def test_an_api_version_the_org_does_not_serve_is_named(config, org, tmp_path):
    code, out = check(without(config(api_version="12.0"), SALESFORCE_ONLY), tmp_path)
    assert code == 1
    assert "[FAIL] salesforce settings: setting 'api_version' is 12.0" in out


def test_an_unknown_parent_field_is_named(config, org, tmp_path):
    fields = {"Contact": ["Account.No_Such_Field__c"]}
    code, out = check(without(config(relationship_fields=fields), SALESFORCE_ONLY), tmp_path)
    assert code == 1
    assert "[FAIL] relationship_fields:" in out and "No_Such_Field__c" in out


def test_a_selected_field_the_user_cannot_see_fails(config, org, tmp_path):
    catalog = {
        "streams": [
            {
                "tap_stream_id": "Contact",
                "stream": "Contact",
                "schema": {
                    "type": "object",
                    "properties": {
                        "Id": {"type": "string"},
                        "Email": {"type": ["string", "null"]},
                        "Gone_Field__c": {"type": ["string", "null"]},
                        "Account": {"type": ["object", "null"]},
                    },
                },
                "metadata": [
                    {"breadcrumb": [], "metadata": {"selected": True}},
                    {"breadcrumb": ["properties", "Id"], "metadata": {"inclusion": "automatic"}},
                    {"breadcrumb": ["properties", "Email"], "metadata": {"selected": True}},
                    {"breadcrumb": ["properties", "Gone_Field__c"], "metadata": {"selected": True}},
                ],
            }
        ]
    }
    code, out = check(without(config(), SALESFORCE_ONLY), tmp_path, catalog)
    assert code == 1
    assert "[FAIL] Contact fields: selected in the catalog but not visible" in out
    [line] = [line for line in out.splitlines() if line.startswith("[FAIL] Contact fields")]
    assert line.count("__c") == 1 and "Gone_Field__c" in line and "Email" not in line
    # Deselected, the same field is no problem.
    catalog["streams"][0]["metadata"][3]["metadata"]["selected"] = False
    code, out = check(without(config(), SALESFORCE_ONLY), tmp_path, catalog)
    assert code == 0, out
    assert "[OK  ] Contact fields: all 3 selected fields visible" in out


def test_the_quota_past_the_cap_stops_the_check(config, org, tmp_path):
    limit = org.call("GET", "api-usage")["max"]
    org.call("POST", "api-usage", {"used": limit * 9 // 10})
    try:
        code, out = check(without(config(), SALESFORCE_ONLY), tmp_path)
    finally:
        org.call("POST", "api-usage", {"used": 0})
    assert code == 1
    assert "quota_percent_total" in out and "[FAIL]" in out


def test_a_key_refused_in_the_eu_region_says_keys_are_per_region(config, appcues_control, tmp_path):
    # A key the EU API does not know, as a US account's key would be there.
    settings = without(config(appcues_api_key="us-key", appcues_region="eu"), APPCUES_ONLY)
    code, out = check(settings, tmp_path)
    assert code == 1
    assert "[FAIL] appcues credentials: Appcues refused the key (401 Unauthorized)" in out
    assert "the EU API" in out and "appcues_region eu" in out
    assert "a key of a US account is refused here" in out
    assert "set appcues_region to us" in out


def test_an_unknown_appcues_account_is_named(config, appcues_control, tmp_path):
    code, out = check(without(config(appcues_account_id="99999"), APPCUES_ONLY), tmp_path)
    assert code == 1
    assert "[FAIL] appcues account: Appcues has no account 99999" in out


def test_a_numeric_id_field_gets_the_text_formula_advice(config, tmp_path):
    """An org whose Product_User_Id__c is a Number (its own sandbox, another schema)."""
    raw = yaml.safe_load(DEFAULT_SCHEMA_FILE.read_text())
    raw["objects"]["Contact"]["fields"]["Product_User_Id__c"] = {
        "type": "double",
        "precision": 18,
        "scale": 0,
        "label": "Product User Id",
    }
    schema = tmp_path / "schema.yaml"
    schema.write_text(yaml.safe_dump(raw))
    with Sandbox(options={"salesforce": {"schema_file": str(schema)}}) as sb:
        own = config(**salesforce_config(sb.connection))
        code, out = check(without(own, SALESFORCE_ONLY), tmp_path)
    assert code == 1
    assert "[FAIL] Contact.Product_User_Id__c: Contact.Product_User_Id__c is a number field" in out
    assert "formula TEXT(Product_User_Id__c)" in out
