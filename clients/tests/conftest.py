"""Shared helpers for the clients' sandbox tests: configs, control calls, secret scanning."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
import requests

from salesforce_appcues_clients.appcues import AppcuesClient
from salesforce_appcues_clients.salesforce import SalesforceClient


class Control:
    """The sandbox control API of one service (faults, clock, stats, ...)."""

    def __init__(self, url: str, ca: str) -> None:
        self.url = url
        self.ca = ca
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = ca

    def call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.session.request(method, f"{self.url}/{path}", json=body, timeout=30)
        assert response.status_code < 400, response.text
        return response.json() if response.content else None

    def faults(self, *rules: dict[str, Any]) -> None:
        self.call("POST", "faults", {"rules": list(rules)})

    def injected(self) -> int:
        return int(self.call("GET", "faults")["injected"])

    def fired(self) -> list[int]:
        return [r["fired"] for r in self.call("GET", "faults")["rules"]]

    def clear(self) -> None:
        self.call("DELETE", "faults")

    def stats(self) -> dict[str, Any]:
        return self.call("GET", "stats")

    def calls(self, key_fragment: str = "") -> int:
        return sum(n for k, n in self.stats()["calls"].items() if key_fragment in k)


@pytest.fixture
def sf_control(sandbox):
    control = Control(
        sandbox.connection["salesforce"]["control_url"], sandbox.connection["ca_bundle"]
    )
    control.clear()
    yield control
    control.clear()


@pytest.fixture
def ac_control(sandbox):
    control = Control(sandbox.connection["appcues"]["control_url"], sandbox.connection["ca_bundle"])
    control.clear()
    yield control
    control.clear()


def _sf_config(sandbox, flow: str = "refresh_token", **overrides: Any) -> dict[str, Any]:
    conn = sandbox.connection["salesforce"]
    config: dict[str, Any] = {
        "domain": conn["login_url"],
        "client_id": conn["client_id"],
        "ca_bundle": sandbox.connection["ca_bundle"],
        "api_version": "62.0",
        "retry_base_delay": 0.01,
        "max_retries": 4,
        "quota_percent_per_run": 100,
        "quota_percent_total": 100,
    }
    if flow == "refresh_token":
        config.update(refresh_token=conn["refresh_token"], client_secret=conn["client_secret"])
    elif flow == "jwt_bearer":
        config.update(username=conn["username"], private_key_file=conn["jwt_private_key_file"])
    elif flow == "client_credentials":
        config.update(client_secret=conn["client_secret"])
    config.update(overrides)
    return config


def _ac_config(sandbox, prefix: str = "", **overrides: Any) -> dict[str, Any]:
    conn = sandbox.connection["appcues"]
    config = {
        "base_url": conn["base_url"],
        "account_id": conn["account_id"],
        "api_key": conn["api_key"],
        "api_secret": conn["api_secret"],
        "ca_bundle": sandbox.connection["ca_bundle"],
        "retry_base_delay": 0.01,
        **overrides,
    }
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
