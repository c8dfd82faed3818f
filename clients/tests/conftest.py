"""Shared helpers for the clients' sandbox tests: configs, control calls, secret scanning."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from salesforce_appcues_clients.appcues import AppcuesClient
from salesforce_appcues_clients.salesforce import SalesforceClient
from salesforce_appcues_sandbox.testing import SandboxControl, appcues_config, salesforce_config


def _fault_free(sandbox, service: str) -> Iterator[SandboxControl]:
    """The service's control API, its fault rules cleared before and after the test."""
    with SandboxControl.of(sandbox.connection, service, timeout=30) as control:
        control.clear_faults()
        yield control
        control.clear_faults()


@pytest.fixture
def sf_control(sandbox):
    yield from _fault_free(sandbox, "salesforce")


@pytest.fixture
def ac_control(sandbox):
    yield from _fault_free(sandbox, "appcues")


def _sf_config(sandbox, flow: str = "refresh_token", **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        **salesforce_config(sandbox.connection, flow),
        "api_version": "62.0",
        "retry_base_delay": 0.01,
        "max_retries": 4,
        "quota_percent_per_run": 100,
        "quota_percent_total": 100,
    }
    config.update(overrides)
    return config


def _ac_config(sandbox, prefix: str = "", **overrides: Any) -> dict[str, Any]:
    config = {**appcues_config(sandbox.connection), "retry_base_delay": 0.01, **overrides}
    return {f"{prefix}{k}": v for k, v in config.items()}


@pytest.fixture
def sf(sandbox, sf_control):
    client = SalesforceClient.from_config(_sf_config(sandbox))
    yield client
    client.close()


@pytest.fixture
def ac(sandbox, ac_control):
    client = AppcuesClient.from_config(_ac_config(sandbox))
    yield client
    client.close()


@pytest.fixture
def tag() -> str:
    """A marker unique to one test, so tests sharing the sandbox never see each other's rows."""
    return "t" + uuid.uuid4().hex[:12]


def _insert_contacts(sf: SalesforceClient, tag: str, count: int, **fields: Any) -> list[str]:
    results = sf.insert(
        "Contact", [{"LastName": tag, "FirstName": f"n{i:04d}", **fields} for i in range(count)]
    )
    assert all(r.success for r in results), [r.errors for r in results if not r.success][:3]
    return [str(r.id) for r in results]


@pytest.fixture
def debug_logs(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


def _assert_no_secrets(texts: list[str], secrets: list[str]) -> None:
    for secret in secrets:
        assert secret
        for text in texts:
            assert secret not in text, "a secret leaked into logs/output"


@pytest.fixture
def sf_config(sandbox):
    """sf_config(flow="refresh_token", **overrides) -> a config for the sandbox org."""
    return lambda *args, **kwargs: _sf_config(sandbox, *args, **kwargs)


@pytest.fixture
def ac_config(sandbox):
    """ac_config(prefix="", **overrides) -> a config for the sandbox Appcues account."""
    return lambda *args, **kwargs: _ac_config(sandbox, *args, **kwargs)


@pytest.fixture
def insert_contacts():
    return _insert_contacts


@pytest.fixture
def assert_no_secrets():
    return _assert_no_secrets


@pytest.fixture
def new_sf():
    """new_sf(config) -> a SalesforceClient closed when the test ends."""
    made: list[SalesforceClient] = []

    def make(config: dict[str, Any]) -> SalesforceClient:
        made.append(SalesforceClient.from_config(config))
        return made[-1]

    yield make
    for client in made:
        client.close()


@pytest.fixture
def new_ac():
    """new_ac(config, prefix="") -> an AppcuesClient closed when the test ends."""
    made: list[AppcuesClient] = []

    def make(config: dict[str, Any], prefix: str = "") -> AppcuesClient:
        made.append(AppcuesClient.from_config(config, prefix))
        return made[-1]

    yield make
    for client in made:
        client.close()
