"""One Salesforce API call: its URL, and an error answer turned into `SalesforceError` once.

`SalesforceApi` is what the query, Bulk and collections modules are given: the client's
session (whose adapter does auth, retries, quota and counting; salesforce_transport.py) and
the endpoints of the org the token belongs to. `check_api_version` is the adapter's 404 hook.
"""

from __future__ import annotations

import re
import threading
from typing import Any
from urllib.parse import urlsplit

import requests

from .errors import ConfigurationError, SalesforceError
from .salesforce_auth import TokenSource

# Checked before a name or an id from an answer becomes a URL path segment.
SOBJECT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
RECORD_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")


def raise_for_answer(response: requests.Response, context: str) -> None:
    """An answer that is not a success (after the adapter's retries) as SalesforceError."""
    if response.status_code < 300:
        return
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text[:500]
    response.close()
    raise SalesforceError.from_body(response.status_code, body, context)


class SalesforceApi:
    """The org's REST endpoints over one session; see the module docstring."""

    def __init__(self, api_version: str, session: requests.Session, tokens: TokenSource) -> None:
        self.api_version = api_version
        self.session = session
        self.tokens = tokens
        self._version_checked = False
        self._version_lock = threading.Lock()

    @property
    def instance_url(self) -> str:
        return self.tokens.current().instance_url

    @property
    def base_url(self) -> str:
        return f"{self.instance_url}/services/data/v{self.api_version}/"

    def request(
        self, method: str, path_or_url: str, *, context: str | None = None, **kwargs: Any
    ) -> requests.Response:
        """One API call (retried by the adapter); an error answer left raises SalesforceError
        whose message starts with `context` (default: method and path)."""
        url = path_or_url if "://" in path_or_url else self.base_url + path_or_url.lstrip("/")
        response = self.session.request(method, url, **kwargs)
        raise_for_answer(response, context or f"{method} {urlsplit(url).path}")
        return response

    def json(self, method: str, path_or_url: str, **kwargs: Any) -> Any:
        """The JSON of one API call's answer (None when it has no body)."""
        response = self.request(method, path_or_url, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def check_api_version(self, path: str, response: requests.Response) -> None:
        """After a 404 under this client's version: is `api_version` one the org serves?

        Salesforce answers every call of a version it does not serve with 404 NOT_FOUND,
        which reads like a missing record. Only on a 404 (so the normal path costs nothing),
        once per client, the versions resource (no API call for Salesforce) is asked; a
        version it does not list raises ConfigurationError naming the setting.
        """
        if not path.startswith(f"/services/data/v{self.api_version}/"):
            return
        with self._version_lock:  # the flag also stops the versions call checking itself
            checked, self._version_checked = self._version_checked, True
        if checked:
            return
        listing = self.session.get(f"{self.instance_url}/services/data/")
        try:
            offered = [str(v["version"]) for v in listing.json()]
        except (ValueError, TypeError, KeyError):
            return  # no readable list: leave the 404 as Salesforce sent it
        finally:
            listing.close()
        if offered and self.api_version not in offered:
            response.close()
            highest = max(offered, key=_version_key)
            raise ConfigurationError(
                f"setting 'api_version' is {self.api_version}, a Salesforce API version this "
                f"org does not serve (it answers 404 NOT_FOUND); the highest it offers is "
                f"{highest}"
            )


def _version_key(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return (-1,)
