"""What tests, benchmarks and scripts use to drive a running sandbox from outside.

- `SandboxControl`: one service's control API (`<base>/_sandbox`: reset, seed, faults, clock,
  stats, settings). Control calls are never counted as API calls.
- `salesforce_login`: a refresh-token login as connectors make it (a counted OAuth call).
- `salesforce_config` / `appcues_config`: a connection (the `connection` dict of `Sandbox`,
  or the connection file `serve --connection-file` writes) as the plugins' settings.
- `sandbox_variables` / `meltano_environment`: a connection as the SANDBOX_* variables that
  meltano.yml's `sandbox` environment reads, and the whole environment of a `meltano` command.
- `seed_linked` / `seeded_sandbox`: both services seeded with one linked data set.
- `ca_environment`: the environment of a child process (a plugin, a third-party connector)
  that trusts the sandbox's CA.

It speaks plain HTTPS with `requests` and imports nothing of the clients or the plugins, so
every package's tests can use it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import requests

if TYPE_CHECKING:
    from .server import Sandbox

__all__ = [
    "ControlError",
    "SandboxControl",
    "appcues_config",
    "ca_environment",
    "meltano_environment",
    "salesforce_config",
    "salesforce_login",
    "sandbox_variables",
    "seed_linked",
    "seeded_sandbox",
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


def ca_environment(
    connection: dict[str, Any], base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """`base` (default: this process's environment) for a child process that must trust the
    sandbox's CA: requests (REQUESTS_CA_BUNDLE) and OpenSSL (SSL_CERT_FILE) name it, and a
    CURL_CA_BUNDLE, which requests would prefer, is dropped."""
    env = dict(os.environ if base is None else base)
    env["REQUESTS_CA_BUNDLE"] = env["SSL_CERT_FILE"] = str(connection["ca_bundle"])
    env.pop("CURL_CA_BUNDLE", None)
    return env


# --- connection -> the Meltano project's `sandbox` environment ---------------------------
# Connection-file key -> the setting it feeds, where the names differ.
SETTING_ALIASES: dict[str, dict[str, str]] = {"salesforce": {"login_url": "domain"}, "appcues": {}}
# Variables of a user's shell or `.env` that would steer Meltano away from the sandbox.
MELTANO_STEERING = (
    "MELTANO_ENVIRONMENT",
    "MELTANO_STATE_BACKEND_URI",
    "MELTANO_DATABASE_URI",
    "MELTANO_SYS_DIR_ROOT",
)


def _variable(*parts: str) -> str:
    return "_".join("".join(c if c.isalnum() else "_" for c in p).upper() for p in parts)


def sandbox_variables(connection: dict[str, Any], run_dir: Path) -> dict[str, str]:
    """The SANDBOX_* variables of one connection (scripts/sandbox_env.py prints them).

    Every key becomes SANDBOX_<SERVICE>_<KEY> (SANDBOX_CA_BUNDLE for the top-level CA); a key
    whose setting has another name gets an alias named after the setting (`login_url` ->
    SANDBOX_SALESFORCE_DOMAIN, the CA -> SANDBOX_<SERVICE>_CA_BUNDLE). `run_dir` (created)
    holds what the runs write: the plugins' files (SANDBOX_DIR) and Meltano's system
    database (MELTANO_DATABASE_URI), so a new sandbox never meets an old one's bookmarks.
    """
    run_dir = run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    variables: dict[str, str] = {}
    ca_bundle = connection.get("ca_bundle")
    if ca_bundle:
        variables["SANDBOX_CA_BUNDLE"] = str(ca_bundle)
    for service, aliases in SETTING_ALIASES.items():
        section = connection.get(service) or {}
        for key, value in section.items():
            if value is None or isinstance(value, (dict, list)):
                continue
            variables[_variable("SANDBOX", service, key)] = str(value)
            if key in aliases:
                variables[_variable("SANDBOX", service, aliases[key])] = str(value)
        if ca_bundle:
            variables[_variable("SANDBOX", service, "ca_bundle")] = str(ca_bundle)
    variables["SANDBOX_DIR"] = str(run_dir)
    variables["MELTANO_DATABASE_URI"] = f"sqlite:///{run_dir / 'meltano.db'}"
    return variables


def meltano_environment(
    connection: dict[str, Any],
    run_dir: Path,
    sys_dir: Path | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a `meltano --environment=sandbox` command on this connection:
    `base` (default: this process's) without the variables that would steer Meltano
    elsewhere, plus `sandbox_variables`; `sys_dir` moves Meltano's `.meltano`."""
    env = dict(os.environ if base is None else base)
    for name in MELTANO_STEERING:
        env.pop(name, None)
    env.update(sandbox_variables(connection, run_dir))
    if sys_dir is not None:
        env["MELTANO_SYS_DIR_ROOT"] = str(sys_dir.resolve())
    env["NO_COLOR"] = "1"
    return env


# --- seeding -----------------------------------------------------------------------------
def seed_linked(
    connection: dict[str, Any], salesforce_seed: dict[str, Any], **appcues_extra: Any
) -> None:
    """Seed both services from one spec (`{"seed": 11, "Account": 12, ...}`): the same seed
    and counts on both, so Appcues users and Salesforce Contacts/Leads share product ids;
    `appcues_extra` adds Appcues-only counts (`unknown_users`, `events`)."""
    seeds = {"salesforce": salesforce_seed, "appcues": {**salesforce_seed, **appcues_extra}}
    for service, spec in seeds.items():
        with SandboxControl.of(connection, service) as control:
            control.seed(spec)


@contextmanager
def seeded_sandbox(salesforce_seed: dict[str, Any], **appcues_extra: Any) -> Iterator[Sandbox]:
    """A sandbox of its own (other suites reset and fault the shared one), seeded with
    `seed_linked`; stopped when the block ends."""
    from .server import Sandbox  # on use: the control client alone needs no server

    with Sandbox() as running:
        seed_linked(running.connection, salesforce_seed, **appcues_extra)
        yield running
