"""A second sandbox org, playing a Salesforce *sandbox* org: rotates refresh tokens, sends the
extended Sforce-Limit-Info and has 30 objects (so describes need two composite batches); the
refresh token store across clients; the JWT audience of a sandbox org."""

from __future__ import annotations

import json
import logging
import stat
import threading
from importlib import resources

import pytest
import yaml

from salesforce_appcues_clients.errors import AuthenticationError, QuotaExceededError
from salesforce_appcues_clients.salesforce import SalesforceClient
from salesforce_appcues_clients.token_store import RefreshTokenStore
from salesforce_appcues_sandbox.server import Sandbox
from salesforce_appcues_sandbox.testing import salesforce_config

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
            "sandbox_org": True,  # JWT audience https://test.salesforce.com
            "limit_info_format": "extended",
            "daily_api_limit": 1000,
            "schema_file": str(schema_file),
        }
    }
    with Sandbox(options=options) as running:
        yield running


def _config(sb, **overrides):
    return {**salesforce_config(sb.connection), "retry_base_delay": 0.01, **overrides}


@pytest.fixture(scope="module")
def token_dir(tmp_path_factory):
    """One store for the module: its tests continue one rotation chain of the org's token."""
    return tmp_path_factory.mktemp("tokens") / "store"


def _stored_files(directory):
    return sorted(directory.glob("refresh-token-*.json"))


def test_a_rotated_refresh_token_is_kept_for_the_next_run_and_never_logged(
    rotating_sandbox, token_dir, caplog
):
    caplog.set_level(logging.DEBUG)
    conn = rotating_sandbox.connection["salesforce"]
    config = _config(rotating_sandbox, token_store_dir=str(token_dir))
    first = SalesforceClient.from_config(config)
    try:
        first.limits()
    finally:
        first.close()
    (stored_file,) = _stored_files(token_dir)
    assert stat.S_IMODE(stored_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(token_dir.stat().st_mode) == 0o700
    kept = json.loads(stored_file.read_text())["refresh_token"]
    assert kept != conn["refresh_token"]
    assert "kept in" in caplog.text
    # The next run (a new client, same setting) starts from the kept token: the configured
    # one is spent, so it would be refused.
    second = SalesforceClient.from_config(config)
    try:
        assert "DailyApiRequests" in second.limits()
        rotating_sandbox.salesforce.expire_sessions()
        assert "DailyApiRequests" in second.limits()  # mid-run refresh: from the store too
    finally:
        second.close()
    newest = json.loads(stored_file.read_text())["refresh_token"]
    assert newest not in (kept, conn["refresh_token"])
    assert "refused" not in caplog.text  # never had to fall back
    for secret in (conn["refresh_token"], kept, newest):
        assert secret not in caplog.text


def test_clients_logging_in_at_once_share_one_chain_of_tokens(rotating_sandbox, token_dir):
    """Six clients (as the tap and the events target are two) refresh at the same moments
    three times over; the store's lock lets each start from the newest token."""
    config = _config(rotating_sandbox, token_store_dir=str(token_dir))
    barrier = threading.Barrier(6, timeout=60)
    errors: list[BaseException] = []

    def work() -> None:
        client = SalesforceClient.from_config(config)
        try:
            for _ in range(3):
                client.limits()
                if barrier.wait() == 0:
                    rotating_sandbox.salesforce.expire_sessions()
                barrier.wait()
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()
        finally:
            client.close()

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[:1]
    assert len(_stored_files(token_dir)) == 1


def test_a_new_refresh_token_setting_wins_over_the_store(rotating_sandbox, token_dir, tmp_path):
    (stored_file,) = _stored_files(token_dir)
    fresh = json.loads(stored_file.read_text())["refresh_token"]  # as if pasted by a user
    config = _config(rotating_sandbox, refresh_token=fresh, token_store_dir=str(token_dir))
    client = SalesforceClient.from_config(config)
    try:
        client.limits()
    finally:
        client.close()
    assert len(_stored_files(token_dir)) == 2  # a store entry of its own; the old one stays
    assert client._tokens.store is not None and client._tokens.store.path != stored_file


def test_a_refused_stored_token_falls_back_to_the_configured_one(
    sandbox, sf_config, tmp_path, caplog
):
    config = sf_config(token_store_dir=str(tmp_path / "tokens"))
    store = RefreshTokenStore(
        tmp_path / "tokens", config["client_id"], config["refresh_token"], lock_timeout=5
    )
    with store.locked():
        store.write("5Aep861revoked.by.an.admin")
    client = SalesforceClient.from_config(config)
    try:
        assert "DailyApiRequests" in client.limits()
    finally:
        client.close()
    assert "refused the stored refresh token" in caplog.text
    assert store.read() is None  # forgotten: the next run does not try it again
    assert "revoked.by.an.admin" not in caplog.text


def test_quota_guard_reads_the_extended_limit_header(rotating_sandbox):
    sf = rotating_sandbox.salesforce
    sf.usage.set(used=900, maximum=1000)
    # client credentials: the tests above walked this org's refresh token chain
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


def test_jwt_for_a_sandbox_org_signs_the_test_audience_whatever_the_login_host(
    rotating_sandbox,
):
    conn = rotating_sandbox.connection["salesforce"]
    jwt_config = _config(
        rotating_sandbox,
        auth_flow="jwt_bearer",
        username=conn["username"],
        private_key_file=conn["jwt_private_key_file"],
    )
    as_sandbox = SalesforceClient.from_config({**jwt_config, "is_sandbox": True})
    as_production = SalesforceClient.from_config(jwt_config)
    try:
        assert "DailyApiRequests" in as_sandbox.limits()
        with pytest.raises(AuthenticationError, match="audience is invalid"):
            as_production.limits()  # signs login.salesforce.com: this org wants test
    finally:
        as_sandbox.close()
        as_production.close()
