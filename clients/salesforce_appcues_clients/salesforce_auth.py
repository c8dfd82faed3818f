"""Salesforce login: the OAuth flows (refresh token, JWT bearer, client credentials) and the
access token they give.

A rotated refresh token is kept across runs in a `RefreshTokenStore` (token_store.py). The
token source is handed to the transport adapter (which puts the token on every API call and
refreshes it once on INVALID_SESSION_ID) and to `SalesforceApi` (the instance URL).
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from .errors import AuthenticationError, ConfigurationError, RetriesExhaustedError, scrub
from .settings import SalesforceSettings
from .token_store import RefreshTokenStore
from .transport import http_date

log = logging.getLogger(__name__)


class AccessToken:
    """An access token that never shows itself in a repr or a log line."""

    __slots__ = ("generation", "instance_url", "value")

    def __init__(self, value: str, instance_url: str, generation: int) -> None:
        self.value = value
        self.instance_url = instance_url
        self.generation = generation

    def __repr__(self) -> str:
        return f"<access token #{self.generation} for {self.instance_url}>"


class TokenSource:
    """Obtains access tokens with the configured OAuth flow; thread-safe, no timers."""

    def __init__(self, settings: SalesforceSettings, session: requests.Session) -> None:
        self.settings = settings
        self.session = session
        self.flow = self._choose_flow()
        self._refresh_token = settings.refresh_token
        self._spent: list[str] = []  # refresh tokens seen this run (kept out of messages)
        self.store: RefreshTokenStore | None = None
        if self.flow == "refresh_token":
            self.store = RefreshTokenStore(
                settings.token_store_dir,
                str(settings.client_id),
                str(settings.refresh_token),
                lock_timeout=settings.request_timeout + settings.retry_max_seconds,
            )
        self._lock = threading.Lock()
        self._token: AccessToken | None = None
        self._generation = 0
        self.last_date: datetime | None = None

    def __repr__(self) -> str:
        return f"<Salesforce {self.flow} login at {self.settings.login_url}>"

    def _choose_flow(self) -> str:
        s = self.settings
        flow = s.auth_flow
        if flow == "auto":
            if s.username and s.private_key:
                flow = "jwt_bearer"
            elif s.refresh_token:
                flow = "refresh_token"
            elif s.client_id and s.client_secret:
                flow = "client_credentials"
            else:
                raise ConfigurationError(
                    "no Salesforce login configured: set `refresh_token` (+ `client_id`), or "
                    "`username` + `private_key` (JWT bearer), or `client_id` + `client_secret` "
                    "(client credentials on a My Domain)"
                )
        required = {
            "refresh_token": ("client_id", "refresh_token"),
            "jwt_bearer": ("client_id", "username", "private_key"),
            "client_credentials": ("client_id", "client_secret"),
        }[flow]
        missing = [name for name in required if not getattr(s, name)]
        if missing:
            raise ConfigurationError(f"the {flow} flow needs the setting(s) {', '.join(missing)}")
        return flow

    def current(self) -> AccessToken:
        with self._lock:
            if self._token is None:
                self._token = self._obtain()
            return self._token

    def refresh(self, stale: AccessToken) -> AccessToken:
        """A new token, unless another thread already replaced `stale`."""
        with self._lock:
            if self._token is None or self._token.generation == stale.generation:
                self._token = self._obtain()
            return self._token

    def _form(self, refresh_token: str | None = None) -> dict[str, str]:
        s = self.settings
        if self.flow == "refresh_token":
            form = {
                "grant_type": "refresh_token",
                "client_id": str(s.client_id),
                "refresh_token": str(refresh_token or self._refresh_token),
            }
            if s.client_secret:
                form["client_secret"] = s.client_secret
            return form
        if self.flow == "jwt_bearer":
            import jwt  # only this flow signs anything

            claims = {
                "iss": s.client_id,
                "sub": s.username,
                "aud": s.jwt_audience,  # never the My Domain host: Salesforce refuses it
                "exp": int((datetime.now(UTC) + timedelta(minutes=3)).timestamp()),
            }
            try:
                assertion = jwt.encode(claims, str(s.private_key), algorithm="RS256")
            except (ValueError, TypeError, jwt.PyJWTError) as exc:
                raise ConfigurationError(
                    f"setting 'private_key' is not a usable RSA private key ({type(exc).__name__})"
                ) from None
            return {
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": assertion,
            }
        return {
            "grant_type": "client_credentials",
            "client_id": str(s.client_id),
            "client_secret": str(s.client_secret),
        }

    def _obtain(self) -> AccessToken:
        if self.store is None:
            return self._accept(*self._request(self._form()))
        with self.store.locked() as usable:
            return self._refresh_from_store(self.store, usable)

    def _refresh_from_store(self, store: RefreshTokenStore, usable: bool) -> AccessToken:
        """Refresh with the newest token (stored, else this run's, else configured), under the
        store's lock; keep what Salesforce rotates to. A refused stored token falls back to
        the older candidates (the configured one last)."""
        stored = store.read() if usable else None
        newest_first = (stored, self._refresh_token, self.settings.refresh_token)
        candidates = [t for t in dict.fromkeys(newest_first) if t]
        self._spent.extend(candidates)
        for number, candidate in enumerate(candidates, 1):
            response, body = self._request(self._form(candidate))
            if number < len(candidates) and self._refused(response, body) == "invalid_grant":
                log.warning(
                    "Salesforce refused the %s refresh token (invalid_grant); trying the %s one",
                    "stored" if candidate == stored else "current",
                    "configured" if number + 1 == len(candidates) else "current",
                )
                continue
            token = self._accept(response, body)  # raises if this one was refused too
            rotated = body.get("refresh_token")
            if rotated and rotated != candidate:
                self._refresh_token = str(rotated)
                self._spent.append(self._refresh_token)
                if usable and store.write(self._refresh_token):
                    log.info(
                        "Salesforce rotated the refresh token; the new one is kept in %s for "
                        "the next runs",
                        store.path,
                    )
            else:
                self._refresh_token = candidate
                if stored and candidate != stored:
                    store.forget()  # refused: later runs need not try it again
            return token
        raise AssertionError("unreachable: the last candidate returns or raises")

    def _request(self, form: dict[str, str]) -> tuple[requests.Response, Any]:
        url = f"{self.settings.login_url}/services/oauth2/token"
        try:
            response = self.session.post(
                url,
                data=form,
                headers={"Accept": "application/json"},
            )
        except (RetriesExhaustedError, requests.RequestException) as exc:
            raise AuthenticationError(
                f"Salesforce login at {self.settings.login_url} failed: "
                f"{scrub(str(exc), self.secrets())}"
            ) from None
        self.last_date = http_date(response.headers.get("Date")) or self.last_date
        body: Any
        try:
            body = response.json()
        except ValueError:
            body = {}
        return response, body

    @staticmethod
    def _refused(response: requests.Response, body: Any) -> str | None:
        """The OAuth error code of a refused login ("" if unnamed), None if it succeeded."""
        if response.status_code == 200 and isinstance(body, dict) and "access_token" in body:
            return None
        return str(body.get("error", "")) if isinstance(body, dict) else ""

    def _accept(self, response: requests.Response, body: Any) -> AccessToken:
        code = self._refused(response, body)
        if code is not None:
            text = body.get("error_description", "") if isinstance(body, dict) else ""
            raise AuthenticationError(
                f"Salesforce refused the {self.flow} login ({response.status_code} "
                f"{scrub(code)}: {scrub(str(text), self.secrets())}); check the "
                f"settings {self._settings_hint()}"
            )
        self._generation += 1
        instance_url = str(body.get("instance_url") or self.settings.login_url).rstrip("/")
        if _scheme(instance_url) != "https" and _scheme(self.settings.login_url) == "https":
            # Every later call would carry the access token to it in clear text.
            raise AuthenticationError(
                f"Salesforce's {self.flow} login answered an instance_url that is not "
                f"https:// ({_scheme(instance_url) or 'no scheme'}); refusing to send the "
                "access token there. Check `domain` and any proxy between this host and "
                "Salesforce"
            )
        log.debug("Salesforce login (%s) succeeded for %s", self.flow, instance_url)
        return AccessToken(str(body["access_token"]), instance_url, self._generation)

    def _settings_hint(self) -> str:
        return {
            "refresh_token": "client_id, client_secret, refresh_token and domain",
            "jwt_bearer": "client_id, username, private_key and domain",
            "client_credentials": "client_id, client_secret and domain (a My Domain)",
        }[self.flow]

    def secrets(self) -> tuple[str, ...]:
        extra = [self._refresh_token or "", *self._spent]
        if self._token is not None:
            extra.append(self._token.value)
        return (*self.settings.secrets(), *(e for e in extra if e))


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""
