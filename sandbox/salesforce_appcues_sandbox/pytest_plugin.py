"""pytest fixtures: `sandbox` (one in-process sandbox per session), `clean_sandbox` (the same,
with both services reset, faults cleared and the clock back to real time) and `sandbox_ca_env`.

Tests that talk TLS to it must trust `sandbox.connection["ca_bundle"]` themselves (the
machines preset REQUESTS_CA_BUNDLE); `sandbox_ca_env` does that through monkeypatch.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from .server import Sandbox


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as running:
        yield running


@pytest.fixture
def sandbox_ca_env(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> str:
    ca = str(sandbox.connection["ca_bundle"])
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca)
    monkeypatch.setenv("SSL_CERT_FILE", ca)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    return ca


@pytest.fixture
def clean_sandbox(sandbox: Sandbox) -> Sandbox:
    """The session sandbox with both services emptied, faults cleared and the clock reset."""
    with requests.Session() as http:
        http.trust_env = False  # the machine's REQUESTS_CA_BUNDLE would override verify
        http.verify = str(sandbox.connection["ca_bundle"])
        for name in ("salesforce", "appcues"):
            control = sandbox.connection[name]["control_url"]
            http.delete(f"{control}/faults").raise_for_status()
            http.post(f"{control}/reset").raise_for_status()
        control = sandbox.connection["salesforce"]["control_url"]
        http.post(f"{control}/clock", json={"reset": True}).raise_for_status()
    return sandbox
