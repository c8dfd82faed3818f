"""`target-salesforce-events --check`: plain-word findings about the config and the org."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from target_salesforce_events.target import TargetSalesforceEvents


def check(config, tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    result = CliRunner().invoke(TargetSalesforceEvents.cli, ["--config", str(path), "--check"])
    return result.exit_code, result.output


def test_default_org_passes_with_the_upsert_strategy(org, tmp_path):
    code, out = check(org.config(), tmp_path)
    assert code == 0, out
    assert "[OK  ] credentials: logged in to https://127.0.0.1:" in out
    assert "Contact.Product_User_Id__c is a Text field" in out
    assert "strategy upsert_by_external_id" in out
    assert "Preflight: ready to run" in out
    for secret in (org.config()["client_secret"], org.config()["refresh_token"]):
        assert secret not in out


def test_numeric_user_id_field_gets_the_formula_advice(org, tmp_path):
    code, out = check(org.config(user_id_field="Product_User_Number__c"), tmp_path)
    assert code == 1
    assert "Contact.Product_User_Number__c is a number field (double)" in out
    assert "formula TEXT(Product_User_Number__c)" in out
    assert "set user_id_field to that field" in out
    assert "1 problem" not in out and "problem(s) to fix before a run" in out


def test_formula_text_field_is_accepted(org, tmp_path):
    code, out = check(org.config(user_id_field="Product_User_Id_Text__c"), tmp_path)
    assert code == 0, out
    assert "Lead.Product_User_Id_Text__c is a Text field (a formula field)" in out


def without_lead_nps_score(raw):
    del raw["objects"]["Lead"]["fields"]["Appcues_NPS_Score__c"]


@pytest.fixture(scope="module")
def org_without_lead_score(variant_org):
    return variant_org(without_lead_nps_score)


def test_missing_nps_field_is_named_with_its_setting(org_without_lead_score, tmp_path):
    org = org_without_lead_score
    code, out = check(org.config(), tmp_path)
    assert code == 1
    assert (
        "[FAIL] Lead.Appcues_NPS_Score__c: Lead has no field Appcues_NPS_Score__c "
        "(setting nps_score_field)"
    ) in out
    assert "set sync_nps_fields to false" in out
    # With NPS sync off the same org is fine.
    code, out = check(org.config(sync_nps_fields=False), tmp_path)
    assert code == 0, out


def test_a_run_refuses_to_start_on_a_failing_check(org, kit):
    user = org.user("refused")
    org.create("Contact", Product_User_Id__c=user)
    with pytest.raises(Exception, match="formula TEXT"):
        kit.run_target(
            org.config(user_id_field="Product_User_Number__c"),
            [kit.event(user, "appcues:goal_reached", "2026-01-01T00:00:00Z", "r1")],
        )


def test_wrong_credentials_are_explained(org, tmp_path):
    code, out = check(org.config(refresh_token="not-a-token"), tmp_path)
    assert code == 1
    assert "[FAIL] credentials: Salesforce refused the login" in out
    assert "not-a-token" not in out


def test_unknown_object_and_ledger_strategy(org, tmp_path):
    code, out = check(
        org.config(user_objects=["Contact", "Prospect__c"], event_id_field=None), tmp_path
    )
    assert code == 1
    assert "Salesforce has no object Prospect__c" in out
    assert "strategy local_ledger" in out
