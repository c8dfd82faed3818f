"""Shared helpers of the third-party fidelity tests: the sandbox's Salesforce side over HTTPS
(the clients' pinned virtualenvs: `pinned_python` in tests/conftest.py)."""

from dataclasses import dataclass

import pytest
import requests

from salesforce_appcues_sandbox.testing import SandboxControl, salesforce_login


@dataclass
class SalesforceOrg:
    """The sandbox's Salesforce org as a third-party client sees it."""

    connection: dict
    ca_bundle: str

    @property
    def info(self) -> dict:
        return self.connection["salesforce"]

    def session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # the machine's REQUESTS_CA_BUNDLE would override verify
        session.verify = self.ca_bundle
        return session

    def control(self, method: str, path: str, body: dict | None = None) -> dict:
        with SandboxControl.of(self.connection, "salesforce", timeout=300) as control:
            return control.call(method, path, body) or {}

    def reseed(self, **counts) -> dict:
        """An org holding exactly what the deterministic generator makes from `counts`."""
        self.control("POST", "reset")
        return self.control("POST", "seed", counts)

    def token(self) -> dict:
        """A refresh-token login, as the connectors do it."""
        with self.session() as session:
            return salesforce_login(self.connection, session)


@pytest.fixture(scope="module")
def org(sandbox):
    return SalesforceOrg(sandbox.connection, str(sandbox.connection["ca_bundle"]))
