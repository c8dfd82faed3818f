"""Helpers for the Salesforce sandbox tests: a clean org per test and an authorised session."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import requests

API = "v61.0"


def tls_session(ca_bundle: str) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # the machine's REQUESTS_CA_BUNDLE would override verify
    session.verify = ca_bundle
    return session


@dataclass
class Org:
    conn: dict[str, Any]
    http: requests.Session  # authorised with a fresh access token
    anon: requests.Session  # no Authorization header

    @property
    def base(self) -> str:
        return f"{self.conn['instance_url']}/services/data/{API}"

    @property
    def control(self) -> str:
        return self.conn["control_url"]

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    def token(self, **extra: str) -> requests.Response:
        form = {
            "grant_type": "refresh_token",
            "client_id": self.conn["client_id"],
            "client_secret": self.conn["client_secret"],
            "refresh_token": self.conn["refresh_token"],
            **extra,
        }
        return self.anon.post(f"{self.conn['login_url']}/services/oauth2/token", data=form)

    def login(self) -> None:
        response = self.token()
        response.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def login_with_password(self) -> None:
        form = {
            "grant_type": "password",
            "client_id": self.conn["client_id"],
            "client_secret": self.conn["client_secret"],
            "username": self.conn["username"],
            "password": self.conn["password"],
        }
        response = self.anon.post(f"{self.conn['login_url']}/services/oauth2/token", data=form)
        response.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def seed(self, **counts: int) -> dict[str, Any]:
        response = self.anon.post(f"{self.control}/seed", json=counts)
        response.raise_for_status()
        return response.json()

    def create(self, obj: str, **fields: Any) -> str:
        response = self.http.post(self.url(f"sobjects/{obj}/"), json=fields)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def get(self, obj: str, record_id: str) -> dict[str, Any]:
        response = self.http.get(self.url(f"sobjects/{obj}/{record_id}"))
        assert response.status_code == 200, response.text
        return response.json()

    def query(self, soql: str) -> dict[str, Any]:
        response = self.http.get(self.url("query"), params={"q": soql})
        assert response.status_code == 200, response.text
        return response.json()

    def faults(self, *rules: dict[str, Any]) -> None:
        self.anon.post(f"{self.control}/faults", json={"rules": list(rules)}).raise_for_status()


def make_org(conn: dict[str, Any], ca_bundle: str, *, login: bool = True) -> Org:
    org = Org(conn, tls_session(ca_bundle), tls_session(ca_bundle))
    org.anon.delete(f"{org.control}/faults").raise_for_status()
    org.anon.post(f"{org.control}/clock", json={"reset": True}).raise_for_status()
    org.anon.post(f"{org.control}/reset").raise_for_status()
    if login:
        org.login()
    return org


@pytest.fixture
def org(sandbox) -> Org:
    """The shared sandbox's Salesforce org, emptied, with faults and clock reset."""
    return make_org(sandbox.connection["salesforce"], sandbox.connection["ca_bundle"])


def _errors_of(response: requests.Response) -> list[str]:
    body = response.json()
    assert isinstance(body, list), body
    return [item["errorCode"] for item in body]


@pytest.fixture
def errors_of():
    """errors_of(response) -> the errorCodes of a REST error list."""
    return _errors_of


@pytest.fixture
def org_factory():
    """org_factory(connection_section, ca_bundle) -> Org, for tests running their own sandbox."""
    return make_org
