"""Shared helpers of the third-party fidelity tests: the sandbox's Salesforce side over HTTPS
(the clients' pinned virtualenvs: `pinned_python` in tests/conftest.py)."""

from dataclasses import dataclass

import pytest
import requests


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
        with self.session() as session:
            resp = session.request(
                method, f"{self.info['control_url'].rstrip('/')}/{path}", json=body, timeout=300
            )
        assert resp.status_code < 300, resp.text
        return resp.json() if resp.content else {}

    def reseed(self, **counts) -> dict:
        """An org holding exactly what the deterministic generator makes from `counts`."""
        self.control("POST", "reset")
        return self.control("POST", "seed", counts)

    def token(self) -> dict:
        """A refresh-token login, as the connectors do it."""
        with self.session() as session:
            resp = session.post(
                f"{self.info['login_url'].rstrip('/')}/services/oauth2/token",
                data={
                    "grant_type": "refresh_token",
                    "client_id": self.info["client_id"],
                    "client_secret": self.info["client_secret"],
                    "refresh_token": self.info["refresh_token"],
                },
                timeout=60,
            )
        assert resp.status_code == 200, resp.text
        return resp.json()


@pytest.fixture(scope="module")
def org(sandbox):
    return SalesforceOrg(sandbox.connection, str(sandbox.connection["ca_bundle"]))
