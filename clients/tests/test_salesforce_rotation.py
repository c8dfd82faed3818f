"""A second sandbox org: rotates refresh tokens, sends the extended Sforce-Limit-Info and has
30 objects (so describes need two composite batches)."""

from __future__ import annotations

import logging
from importlib import resources

import pytest
import yaml

from salesforce_appcues_clients.errors import QuotaExceededError
from salesforce_appcues_clients.salesforce import SalesforceClient
from salesforce_appcues_sandbox.server import Sandbox

EXTRA_OBJECTS = [f"Extra_{i:02d}__c" for i in range(24)]


@pytest.fixture(scope="module")
def rotating_sandbox(tmp_path_factory):
    schema = yaml.safe_load(
        (
            resources.files("salesforce_appcues_sandbox.salesforce") / "default_schema.yaml"
        ).read_text()
    )
    for i, name in enumerate(EXTRA_OBJECTS):
        schema["objects"][name] = {
            "label": name,
            "label_plural": name,
            "key_prefix": f"a{i + 10:02d}",
            "custom": True,
            "fields": {"Name": {"type": "string", "length": 80, "required": True}},
        }
    schema_file = tmp_path_factory.mktemp("schema") / "schema.yaml"
    schema_file.write_text(yaml.safe_dump(schema))
    options = {
        "salesforce": {
            "rotate_refresh_tokens": True,
            "limit_info_format": "extended",
            "daily_api_limit": 1000,
            "schema_file": str(schema_file),
        }
    }
    with Sandbox(options=options) as running:
        yield running


def _config(sb, **overrides):
    conn = sb.connection["salesforce"]
    return {
        "domain": conn["login_url"],
        "client_id": conn["client_id"],
        "client_secret": conn["client_secret"],
        "refresh_token": conn["refresh_token"],
        "ca_bundle": sb.connection["ca_bundle"],
        "retry_base_delay": 0.01,
        **overrides,
    }


def test_rotated_refresh_token_is_used_in_process_and_never_logged(rotating_sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    conn = rotating_sandbox.connection["salesforce"]
    client = SalesforceClient.from_config(_config(rotating_sandbox))
    try:
        client.limits()
        rotated = client._tokens._refresh_token
        assert rotated and rotated != conn["refresh_token"]
        assert "issued a new refresh token" in caplog.text
        assert "refresh_token setting" in caplog.text
        # the session dies; the refresh must use the rotated token (the old one is spent)
        rotating_sandbox.salesforce.expire_sessions()
        assert "DailyApiRequests" in client.limits()
        assert client._tokens._refresh_token not in (rotated, conn["refresh_token"])
        for secret in (conn["refresh_token"], rotated, client._tokens._refresh_token):
            assert secret not in caplog.text
    finally:
        client.close()


def test_quota_guard_reads_the_extended_limit_header(rotating_sandbox):
    sf = rotating_sandbox.salesforce
    sf.usage.set(used=900, maximum=1000)
    # client credentials: test 1 spent this org's original refresh token
    config = _config(rotating_sandbox, quota_percent_total=80, auth_flow="client_credentials")
    client = SalesforceClient.from_config(config)
    try:
        client.limits()
        assert client.api_usage is not None and client.api_usage[1] == 1000
        with pytest.raises(QuotaExceededError, match="quota_percent_total"):
            client.limits()
    finally:
        client.close()
        sf.usage.set(used=0, maximum=1000)


def test_describing_30_objects_takes_two_batches_then_none(rotating_sandbox):
    config = _config(rotating_sandbox, auth_flow="client_credentials")
    client = SalesforceClient.from_config(config)
    try:
        names = [o["name"] for o in client.describe_global()["sobjects"]]
        assert len(names) == 30 and set(EXTRA_OBJECTS) <= set(names)
        before = client.calls_made
        described = client.describe(names)
        assert client.calls_made - before == 2  # 25 + 5
        assert set(described) == set(names)
        assert described["Extra_07__c"]["name"] == "Extra_07__c"
        client.describe(reversed(names))
        assert client.calls_made - before == 2
    finally:
        client.close()
