"""A second sandbox org that rotates refresh tokens and sends the extended Sforce-Limit-Info."""

from __future__ import annotations

import logging

import pytest

from salesforce_appcues_clients.errors import QuotaExceededError
from salesforce_appcues_clients.salesforce import SalesforceClient
from salesforce_appcues_sandbox.server import Sandbox


@pytest.fixture(scope="module")
def rotating_sandbox():
    options = {
        "salesforce": {
            "rotate_refresh_tokens": True,
            "limit_info_format": "extended",
            "daily_api_limit": 1000,
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
