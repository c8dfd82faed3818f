"""The receiver's settings: the events target's settings plus the webhook's own."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from salesforce_appcues_clients.plugin_kit.local_files import (
    as_setting_error,
    check_state_file,
    setting_path,
)
from salesforce_appcues_clients.settings import bounded, salesforce_properties, schema_defaults

from ..settings import SettingsError, target_properties

# <signed string>:<encoding>. The real scheme is not public (docs/sandbox.md, "Webhook
# sender"): the default is the reference notes' proposal, the others are the plausible rest.
SIGNATURE_SCHEMES = ("timestamp.body:hex", "timestamp.body:base64", "body:hex", "body:base64")
# The receiver's own state folder by default: its ledger and run lock must not be the poll
# job's (docs/operations.md, "Real time: the webhook receiver").
DEFAULT_STATE_DIR = ".appcues-webhook-receiver"


def webhook_properties() -> dict[str, Any]:
    """JSON-schema properties of the webhook's own settings (each may be null: default)."""
    return {
        "webhook_host": {
            "type": ["string", "null"],
            "default": "127.0.0.1",
            "description": "Address the receiver listens on (plain HTTP: put a TLS reverse "
            "proxy in front of it).",
        },
        "webhook_port": {
            "type": ["integer", "null"],
            "minimum": 0,
            "maximum": 65535,
            "default": 8787,
            "description": "Port the receiver listens on (0 = any free port).",
        },
        "webhook_path": {
            "type": ["string", "null"],
            "default": "/appcues/webhooks",
            "description": "URL path Appcues posts to.",
        },
        "webhook_secrets": {
            "type": ["array", "null"],
            "items": {"type": ["string"]},
            "secret": True,
            "writeOnly": True,
            "description": "Appcues webhook secret(s); two during a rotation (either verifies).",
        },
        "webhook_signature_scheme": {
            "type": ["string", "null"],
            "enum": list(SIGNATURE_SCHEMES),
            "default": SIGNATURE_SCHEMES[0],
            "description": "What X-Apc-Signature signs and how it is encoded: "
            + ", ".join(SIGNATURE_SCHEMES)
            + ". A delivery signed another way is refused and the scheme it matched is logged.",
        },
        "webhook_replay_window_seconds": {
            "type": ["integer", "null"],
            "minimum": 1,
            "default": 300,
            "description": "Deliveries whose X-Apc-Timestamp is further than this from now "
            "are refused (401).",
        },
        "webhook_spool_path": {
            "type": ["string", "null"],
            "description": "SQLite spool of accepted deliveries (default "
            "<state_dir>/webhook-spool.sqlite3).",
        },
        "webhook_batch_size": {
            "type": ["integer", "null"],
            "minimum": 1,
            "maximum": 10_000,
            "default": 200,
            "description": "Most deliveries loaded into Salesforce per batch.",
        },
        "webhook_batch_max_age_ms": {
            "type": ["integer", "null"],
            "minimum": 0,
            "default": 250,
            "description": "A batch is loaded when it is full or its oldest delivery is this old.",
        },
        "webhook_busy_rate_per_second": {
            "type": ["number", "null"],
            "minimum": 0,
            "default": 20,
            "description": "At this many deliveries per second or more, a batch may wait up to "
            "webhook_busy_batch_max_age_ms to fill: fewer, fuller Salesforce calls under load.",
        },
        "webhook_busy_batch_max_age_ms": {
            "type": ["integer", "null"],
            "minimum": 0,
            "default": 3000,
            "description": "The longest a batch waits to fill under load (see "
            "webhook_busy_rate_per_second).",
        },
        "webhook_run_seconds": {
            "type": ["number", "null"],
            "minimum": 0,
            "default": 300,
            "description": "The receiver works in 'runs' of this length, as the poll job does: "
            "user matches are cached for a run, and each run logs its summary.",
        },
        "webhook_retry_max_seconds": {
            "type": ["number", "null"],
            "minimum": 0,
            "default": 60,
            "description": "Longest pause between retries of a batch Salesforce did not "
            "confirm. After an Event insert that got no answer (a timeout, a 502/504) the "
            "batch waits this long at once, or request_timeout if that is longer: Salesforce "
            "may still be applying it, and the retry checks which Events exist before "
            "sending the rest.",
        },
        "webhook_max_body_bytes": {
            "type": ["integer", "null"],
            "minimum": 1024,
            "default": 1_048_576,
            "description": "Larger deliveries are refused (413).",
        },
    }


def receiver_properties() -> dict[str, Any]:
    """The events target's settings (same names, but the receiver's own state folder) plus
    the webhook's."""
    target = target_properties()
    state_dir = {**target["state_dir"], "default": DEFAULT_STATE_DIR}
    return {
        **salesforce_properties(),
        **target,
        "state_dir": state_dir,
        **webhook_properties(),
    }


def receiver_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": receiver_properties(),
        "required": ["webhook_secrets"],
    }


@dataclass(frozen=True)
class WebhookSettings:
    host: str
    port: int
    path: str
    secrets: tuple[str, ...]
    scheme: str
    replay_window_seconds: int
    spool_path: Path
    batch_size: int
    batch_max_age_seconds: float
    busy_rate_per_second: float
    busy_batch_max_age_seconds: float
    retry_max_seconds: float
    run_seconds: float
    max_body_bytes: int
    # After an unanswered insert: never shorter than the time the insert was given to answer
    # (a low retry_max_seconds, set for quick outage retries, must not shorten this one).
    unanswered_pause_seconds: float = 0.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> WebhookSettings:
        errors = sorted(
            jsonschema.Draft7Validator(receiver_schema()).iter_errors(dict(config)),
            key=lambda e: list(e.path),
        )
        if errors:
            where = ".".join(str(p) for p in errors[0].path) or "config"
            # the message may quote the value: never a secret's
            message = (
                f"is not valid (expected {errors[0].validator_value!r} for {errors[0].validator}; "
                "the value is not shown, it is secret)"
                if "secret" in where
                else errors[0].message
            )
            raise SettingsError(f"setting {where}: {message}")
        secrets = tuple(str(s) for s in config["webhook_secrets"] if s)
        if not 1 <= len(secrets) <= 2:
            raise SettingsError("setting webhook_secrets: give one secret, or two while rotating")
        defaults = schema_defaults(receiver_properties())

        def given(name: str) -> Any:  # an empty value (None, "", 0) takes the default
            return config.get(name) or defaults[name]

        def get(name: str) -> Any:  # only a missing setting takes the default
            return config.get(name, defaults[name])

        state_dir = setting_path(str(given("state_dir")))
        path = str(given("webhook_path"))
        settings = cls(
            host=str(given("webhook_host")),
            port=int(get("webhook_port")),
            path=path if path.startswith("/") else "/" + path,
            secrets=secrets,
            scheme=str(given("webhook_signature_scheme")),
            replay_window_seconds=int(given("webhook_replay_window_seconds")),
            spool_path=setting_path(
                config.get("webhook_spool_path") or state_dir / "webhook-spool.sqlite3"
            ),
            batch_size=int(given("webhook_batch_size")),
            batch_max_age_seconds=int(get("webhook_batch_max_age_ms")) / 1000,
            busy_rate_per_second=float(get("webhook_busy_rate_per_second")),
            busy_batch_max_age_seconds=int(get("webhook_busy_batch_max_age_ms")) / 1000,
            retry_max_seconds=float(given("webhook_retry_max_seconds")),
            run_seconds=float(get("webhook_run_seconds")),
            max_body_bytes=int(given("webhook_max_body_bytes")),
            unanswered_pause_seconds=max(
                float(given("webhook_retry_max_seconds")),
                bounded(config, "request_timeout", salesforce_properties()["request_timeout"]),
            ),
        )
        with as_setting_error(SettingsError):
            check_state_file(settings.spool_path, config, "webhook_spool_path")
        return settings


def pipeline_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config the receiver's `EventPipeline` gets: the receiver's own state folder unless
    one is set."""
    state_dir = config.get("state_dir") or schema_defaults(receiver_properties())["state_dir"]
    return {**config, "state_dir": str(state_dir)}
