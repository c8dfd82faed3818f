"""What tests, benchmarks and scripts use to drive a running sandbox from outside.

- `SandboxControl`: one service's control API (`<base>/_sandbox`: reset, seed, faults, clock,
  stats, settings). Control calls are never counted as API calls.
- `salesforce_login`: a refresh-token login as connectors make it (a counted OAuth call).
- `salesforce_config` / `appcues_config`: a connection (the `connection` dict of `Sandbox`,
  or the connection file `serve --connection-file` writes) as the plugins' settings.

It speaks plain HTTPS with `requests` and imports nothing of the clients or the plugins, so
every package's tests can use it.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

import requests

__all__ = [
    "ControlError",
    "SandboxControl",
    "appcues_config",
    "salesforce_config",
    "salesforce_login",
]


class ControlError(AssertionError):
    """A control call the sandbox refused (an assertion: a test's set-up went wrong)."""


class SandboxControl:
    """One service's control API; a context manager that closes its session."""

    def __init__(self, control_url: str, ca_bundle: str, *, timeout: float = 120) -> None:
        self.url = control_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = False  # the machines preset REQUESTS_CA_BUNDLE
        self.session.verify = str(ca_bundle)

    @classmethod
    def of(cls, connection: dict[str, Any], service: str, **kwargs: Any) -> Self:
        """The control API of `service` ("salesforce" or "appcues") of a connection."""
        return cls(connection[service]["control_url"], str(connection["ca_bundle"]), **kwargs)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """One control call; its JSON answer (None for an empty body). ControlError on >= 400."""
        response = self.session.request(
            method, f"{self.url}/{path}", json=body, timeout=self.timeout
        )
        if response.status_code >= 400:
            raise ControlError(f"{method} {path}: {response.status_code} {response.text[:2000]}")
        return response.json() if response.content else None

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- data --------------------------------------------------------------------------
    def reset(self) -> None:
        self.call("POST", "reset")

    def seed(self, spec: dict[str, Any]) -> Any:
        return self.call("POST", "seed", spec)

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self.call("GET", "stats")
        return stats

    def calls(self) -> dict[str, int]:
        """API calls counted so far, by `METHOD /path pattern`."""
        calls: dict[str, int] = self.stats()["calls"]
        return calls

    def count_calls(self, key_fragment: str = "") -> int:
        """API calls counted so far whose `METHOD /path` key contains `key_fragment`."""
        return sum(n for k, n in self.calls().items() if key_fragment in k)

    def settings(self, **changes: Any) -> dict[str, Any]:
        """The service's settings after `changes` (none: just read them)."""
        if changes:
            found: dict[str, Any] = self.call("POST", "settings", changes)
        else:
            found = self.call("GET", "settings")
        return found

    # --- faults ------------------------------------------------------------------------
    def faults(self, *rules: dict[str, Any], seed: int | None = None) -> None:
        """Replace the fault rules (`seed` makes probabilistic rules repeatable)."""
        body: dict[str, Any] = {"rules": list(rules)}
        if seed is not None:
            body["seed"] = seed
        self.call("POST", "faults", body)

    def fired(self) -> int:
        """How often the current rules fired (the service-wide counter is never reset)."""
        return sum(int(rule["fired"]) for rule in self.call("GET", "faults")["rules"])

    def fired_by_rule(self) -> list[int]:
        """How often each current rule fired, in the order given."""
        return [int(rule["fired"]) for rule in self.call("GET", "faults")["rules"]]

    def clear_faults(self) -> int:
        """Drop the rules; returns how often they fired."""
        fired = self.fired()
        self.call("DELETE", "faults")
        return fired

    # --- the clock (one clock, shared by both services) --------------------------------
    def set_clock(self, now: Any, *, freeze: bool = True) -> str:
        """Set the clock to `now` (a datetime or ISO text); frozen unless `freeze=False`."""
        text = now.isoformat() if hasattr(now, "isoformat") else str(now)
        moved: str = self.call("POST", "clock", {"now": text, "freeze": freeze})["now"]
        return moved

    def advance_clock(self, seconds: float) -> str:
        now: str = self.call("POST", "clock", {"advance_seconds": seconds})["now"]
        return now

    def reset_clock(self) -> None:
        """Back to real time."""
        self.call("POST", "clock", {"reset": True})

    def now(self) -> str:
        now: str = self.call("GET", "clock")["now"]
        return now


def salesforce_login(connection: dict[str, Any], session: requests.Session) -> dict[str, Any]:
    """The token answer (`access_token`, `instance_url`, ...) of a refresh-token login;
    `session` must trust the sandbox's CA."""
    sf = connection["salesforce"]
    response = session.post(
        sf["login_url"].rstrip("/") + "/services/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "client_id": sf["client_id"],
            "client_secret": sf["client_secret"],
            "refresh_token": sf["refresh_token"],
        },
        timeout=60,
    )
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


# --- connection -> plugin settings -------------------------------------------------------
def salesforce_config(connection: dict[str, Any], flow: str = "refresh_token") -> dict[str, Any]:
    """The Salesforce settings (clients, tap, events target) that reach the sandbox org.

    `flow`: refresh_token (the default), jwt_bearer or client_credentials.
    """
    sf = connection["salesforce"]
    config: dict[str, Any] = {
        "domain": sf["login_url"],
        "client_id": sf["client_id"],
        "ca_bundle": str(connection["ca_bundle"]),
    }
    if flow == "refresh_token":
        config.update(client_secret=sf["client_secret"], refresh_token=sf["refresh_token"])
    elif flow == "jwt_bearer":
        config.update(username=sf["username"], private_key_file=sf["jwt_private_key_file"])
    elif flow == "client_credentials":
        config.update(client_secret=sf["client_secret"])
    else:
        raise ValueError(f"unknown flow {flow!r}")
    return config


def appcues_config(connection: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """The Appcues settings that reach the sandbox account; `prefix` names them as the tap
    does (`appcues_`)."""
    ac = connection["appcues"]
    config = {
        "base_url": ac["base_url"],
        "account_id": ac["account_id"],
        "api_key": ac["api_key"],
        "api_secret": ac["api_secret"],
        "ca_bundle": str(connection["ca_bundle"]),
    }
    return {prefix + key: value for key, value in config.items()}
