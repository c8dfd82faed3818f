"""pytest fixtures: `sandbox` (one in-process sandbox per session), `clean_sandbox` (the same,
with both services reset, faults cleared and the clock back to real time) and `sandbox_ca_env`.

Tests that talk TLS to it must trust `sandbox.connection["ca_bundle"]` themselves (the
machines preset REQUESTS_CA_BUNDLE); `sandbox_ca_env` does that through monkeypatch.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .server import Sandbox
from .testing import SandboxControl


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
    for name in ("salesforce", "appcues"):
        with SandboxControl.of(sandbox.connection, name) as control:
            control.call("DELETE", "faults")
            control.reset()
    with SandboxControl.of(sandbox.connection, "salesforce") as control:
        control.reset_clock()  # one clock for both services
    return sandbox
