"""pytest fixtures: `sandbox` (one in-process sandbox per session) and a clean-state variant.

Tests that talk TLS to it must trust `sandbox.connection["ca_bundle"]` themselves (the
machines preset REQUESTS_CA_BUNDLE); `sandbox_ca_env` does that through monkeypatch.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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
