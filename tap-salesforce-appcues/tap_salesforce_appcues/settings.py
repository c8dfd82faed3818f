"""The tap's own settings (beyond the shared Salesforce and Appcues connection settings).

Titles and descriptions are written for users: Meltano shows them as the settings docs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from salesforce_appcues_clients.appcues_events import DEFAULT_EVENT_NAMES
from salesforce_appcues_clients.errors import ConfigurationError
from salesforce_appcues_clients.settings import bounded, schema_defaults, setting_flag

from .timefmt import parse_datetime

API_TYPES = ("AUTO", "REST", "BULK2")


def tap_properties() -> dict[str, dict[str, Any]]:
    """JSON-schema properties of the tap-specific settings."""
    return {
        "start_date": {
            "type": "string",
            "format": "date-time",
            "title": "Salesforce start date",
            "description": (
                "First run only: read Salesforce records whose SystemModstamp is at or after "
                "this instant (ISO 8601, e.g. `2024-01-01T00:00:00Z`). Unset: the whole history."
            ),
        },
        "user_objects": {
            "type": "array",
            "items": {"type": "string", "enum": ["Lead", "Contact"]},
            "default": ["Contact"],
            "title": "User objects",
            "description": (
                "Salesforce objects that hold your product's users: `Contact`, `Lead`, or both. "
                "Each becomes a stream named after the object."
            ),
        },
        "account_object": {
            "type": "string",
            "default": "Account",
            "title": "Account object",
            "description": (
                "API name of the object that holds your product's accounts (groups), "
                "e.g. `Account` or a custom object such as `Workspace__c`. Empty: none."
            ),
        },
        "relationship_fields": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "default": {},
            "title": "Parent fields per object",
            "description": (
                "Fields of parent records to read with each object, as relationship paths, "
                'e.g. `{"Contact": ["Account.Product_Account_Id__c"]}`. A record carries them '
                'nested the way Salesforce names them: `{"Account": {"Product_Account_Id__c": '
                '"..."}}` (all values null when the record has no parent).'
            ),
        },
        "api_type": {
            "type": "string",
            "enum": list(API_TYPES),
            "default": "AUTO",
            "title": "Salesforce API",
            "description": (
                "`AUTO`: every window is read with REST `queryAll`, whose first page tells how "
                "many records changed; above `bulk_threshold` the tap stops there and reads the "
                "window with Bulk API 2.0 instead (the sizing costs no extra call; one call when "
                "nothing changed). `REST` or `BULK2` force one API. Objects Bulk refuses are "
                "read with REST."
            ),
        },
        "bulk_threshold": {
            "type": "integer",
            "default": 10000,
            "minimum": 0,
            "maximum": 100_000_000,
            "title": "Bulk threshold (records)",
            "description": (
                "Under `AUTO`, a window with more changed records than this is read with "
                "Bulk API 2.0 instead of REST."
            ),
        },
        "lookback_window": {
            "type": "integer",
            "default": 600,
            "minimum": 0,
            "maximum": 2_592_000,
            "title": "Lookback (seconds)",
            "description": (
                "Each run re-reads this many seconds before the bookmark, so records committed "
                "late with an older SystemModstamp are still delivered (re-sent records are "
                "harmless: the targets are idempotent)."
            ),
        },
        "lag": {
            "type": "integer",
            "default": 60,
            "minimum": 0,
            "maximum": 86_400,
            "title": "Lag (seconds)",
            "description": (
                "Each run reads up to the org's clock minus this many seconds, leaving time for "
                "in-flight transactions to commit. The bookmark never passes this point."
            ),
        },
        "include_deleted": {
            "type": "boolean",
            "default": True,
            "title": "Include deleted records",
            "description": (
                "Read with `queryAll`, so deleted (recycle bin) and merged records come through "
                "with `IsDeleted: true` and the targets can act on them."
            ),
        },
        "appcues_event_names": {
            "type": "array",
            "items": {"type": "string"},
            "default": list(DEFAULT_EVENT_NAMES),
            "title": "Appcues event names",
            "description": (
                "Appcues events to read into the `appcues_events` stream (stored names, "
                "e.g. `appcues:nps_score`). Default: the NPS, flow-completed, checklist and "
                "goal events the Salesforce integration uses."
            ),
        },
        "appcues_include_custom_events": {
            "type": "boolean",
            "default": False,
            "title": "Include custom Appcues events",
            "description": (
                "Also read custom (click-to-track and `Appcues.track()`) events: every event "
                "whose name does not start with `appcues:`. Costs one more analytics query "
                "per window."
            ),
        },
        "appcues_start_date": {
            "type": "string",
            "format": "date-time",
            "title": "Appcues start date",
            "description": (
                "First run only: read Appcues events from this instant (ISO 8601). "
                "Unset: the last 90 days."
            ),
        },
        "appcues_lookback_window": {
            "type": "integer",
            "default": 3600,
            "minimum": 0,
            "maximum": 2_592_000,
            "title": "Appcues lookback (seconds)",
            "description": (
                "Each run re-reads this many seconds of events before the bookmark, because "
                "events reach Appcues analytics minutes after they happen."
            ),
        },
        "appcues_lag": {
            "type": "integer",
            "default": 300,
            "minimum": 0,
            "maximum": 86_400,
            "title": "Appcues lag (seconds)",
            "description": (
                "Each run reads events up to the current time minus this many seconds; the "
                "events bookmark never passes this point."
            ),
        },
        "appcues_export_after_days": {
            "type": "integer",
            "default": 7,
            "minimum": 1,
            "maximum": 90,
            "title": "Appcues export threshold (days)",
            "description": (
                "A window of events longer than this (a backfill) whose query comes back "
                "truncated at 1,000 rows is read through the asynchronous analytics export "
                "instead of being split into smaller queries."
            ),
        },
        "allow_future_bookmark": {
            "type": "boolean",
            "default": False,
            "title": "Allow a bookmark in the future",
            "description": (
                "A state whose bookmark lies after the source's clock (the org's, or Appcues') "
                "would make every run read nothing and keep it, so the tap refuses to run "
                "(exit 1) and says which stream. True: log a warning, read nothing and keep "
                "the bookmark until the clock passes it."
            ),
        },
    }


class SettingsError(ConfigurationError, ValueError):
    """A tap setting is invalid; the message names it and the accepted form."""


def _int(config: Mapping[str, Any], name: str) -> int:
    try:
        return int(bounded(config, name, tap_properties()[name]))
    except ConfigurationError as exc:
        raise SettingsError(str(exc)) from None


def _instant(config: Mapping[str, Any], name: str) -> datetime | None:
    value = config.get(name)
    if value in (None, ""):
        return None
    try:
        return parse_datetime(value)
    except (TypeError, ValueError):
        raise SettingsError(
            f"setting {name!r} must be an ISO 8601 instant such as 2024-01-01T00:00:00Z; "
            f"got {value!r}"
        ) from None


def _names(config: Mapping[str, Any], name: str, default: Any) -> tuple[str, ...]:
    value = config.get(name)
    if value is None:
        return tuple(default)
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",")]
    return tuple(dict.fromkeys(str(v) for v in value if str(v).strip()))


@dataclass(frozen=True)
class TapSettings:
    """The tap-specific settings, validated, with defaults applied."""

    start_date: datetime | None
    user_objects: tuple[str, ...]
    account_object: str | None
    relationship_fields: dict[str, tuple[str, ...]]
    api_type: str
    bulk_threshold: int
    lookback_window: int
    lag: int
    include_deleted: bool
    event_names: tuple[str, ...]
    include_custom_events: bool
    appcues_start_date: datetime | None
    appcues_lookback_window: int
    appcues_lag: int
    appcues_export_after_days: int
    allow_future_bookmark: bool

    @property
    def objects(self) -> tuple[str, ...]:
        """The Salesforce objects to read, each once, in configuration order."""
        names = [*self.user_objects, *([self.account_object] if self.account_object else [])]
        return tuple(dict.fromkeys(names))

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TapSettings:
        defaults = schema_defaults(tap_properties())
        api_type = str(config.get("api_type") or defaults["api_type"]).upper()
        if api_type not in API_TYPES:
            raise SettingsError(f"setting 'api_type' must be one of {', '.join(API_TYPES)}")
        user_objects = _names(config, "user_objects", defaults["user_objects"])
        for name in user_objects:
            if name not in ("Lead", "Contact"):
                raise SettingsError(f"setting 'user_objects': {name!r} is not Lead or Contact")
        rel = config.get("relationship_fields") or defaults["relationship_fields"]
        if not isinstance(rel, Mapping):
            raise SettingsError("setting 'relationship_fields' must map object names to lists")
        relationship_fields = {
            str(obj): _names(rel, obj, ()) for obj in rel if isinstance(obj, str)
        }
        account = config.get("account_object", defaults["account_object"])
        return cls(
            start_date=_instant(config, "start_date"),
            user_objects=user_objects,
            account_object=(str(account).strip() or None) if account is not None else None,
            relationship_fields=relationship_fields,
            api_type=api_type,
            bulk_threshold=_int(config, "bulk_threshold"),
            lookback_window=_int(config, "lookback_window"),
            lag=_int(config, "lag"),
            include_deleted=_flag(config, "include_deleted", defaults),
            event_names=_names(config, "appcues_event_names", defaults["appcues_event_names"]),
            include_custom_events=_flag(config, "appcues_include_custom_events", defaults),
            appcues_start_date=_instant(config, "appcues_start_date"),
            appcues_lookback_window=_int(config, "appcues_lookback_window"),
            appcues_lag=_int(config, "appcues_lag"),
            appcues_export_after_days=_int(config, "appcues_export_after_days"),
            allow_future_bookmark=_flag(config, "allow_future_bookmark", defaults),
        )


def _flag(config: Mapping[str, Any], name: str, defaults: Mapping[str, Any]) -> bool:
    try:
        return setting_flag(config.get(name), name, defaults[name])
    except ConfigurationError as exc:
        raise SettingsError(str(exc)) from None
