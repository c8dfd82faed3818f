"""The target's own settings: JSON-schema properties and a validated, typed view of them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from salesforce_appcues_clients.errors import ConfigurationError
from salesforce_appcues_clients.plugin_kit.local_files import (
    as_setting_error,
    check_folder_path,
    check_state_file,
    setting_path,
)
from salesforce_appcues_clients.settings import (
    GROUP_ID_FIELD,
    USER_ID_FIELD,
    USER_OBJECTS,
    schema_defaults,
    setting_flag,
)

from .mapping import DATE_FORMATS, RESERVED_ATTRIBUTES, DateFormat

StreamKind = Literal["user", "group"]

DEFAULT_STATE_DIR = ".target-appcues-profiles"
DEAD_LETTER_FILE = "dead-letters.jsonl"


def target_properties() -> dict[str, dict[str, Any]]:
    """JSON-schema properties of the settings this target adds to the Appcues ones."""
    strings = {"type": "array", "items": {"type": "string"}}
    return {
        "user_streams": {
            **strings,
            "title": "User streams",
            "default": list(USER_OBJECTS),
            "description": "Streams whose records become Appcues user profiles.",
        },
        "group_streams": {
            **strings,
            "title": "Group streams",
            "default": ["Account"],
            "description": "Streams whose records become Appcues group (account) profiles.",
        },
        "user_id_field": {
            "type": "string",
            "title": "User id field",
            "default": USER_ID_FIELD,
            "description": (
                "Field holding the id the product passes to `Appcues.identify()`. Must be text "
                "(integers are accepted as their decimal text)."
            ),
        },
        "group_id_field": {
            "type": "string",
            "title": "Group id field",
            "default": GROUP_ID_FIELD,
            "description": "Field holding the id the product passes to `Appcues.group()`.",
        },
        "id_fields": {
            "type": "object",
            "title": "Id field per stream",
            "additionalProperties": {"type": "string"},
            "description": (
                'Overrides the id field for single streams, e.g. {"Workspace__c": '
                '"Workspace_Id__c"}.'
            ),
        },
        "user_group_field": {
            "type": ["string", "null"],
            "title": "User's group field",
            "description": (
                "Field of a user record holding its group id, e.g. "
                "`Account.Product_Account_Id__c` (a relationship path, nested or as a flat "
                "property). When set, users are added to that group."
            ),
        },
        "attributes": {
            "type": "object",
            "title": "Attributes per stream",
            "description": (
                "Per stream, the fields to send: an object {source field: Appcues attribute "
                "name} or a list of fields sent under their own names. Source fields may be "
                "dotted relationship paths. Streams not listed send every non-system field."
            ),
        },
        "attribute_prefix": {
            "type": "string",
            "title": "Attribute prefix",
            "default": "",
            "description": "Prepended to every Appcues attribute name (e.g. `sf_`).",
        },
        "date_format": {
            "type": "string",
            "title": "Date format",
            "enum": list(DATE_FORMATS),
            "default": "iso8601",
            "description": (
                "How dates and date-times are sent: `iso8601` text (UTC, e.g. "
                "2026-01-02T03:04:05.000Z; dates as 2026-01-02) or `epoch_ms` numbers."
            ),
        },
        "skip_unchanged": {
            "type": "boolean",
            "title": "Skip unchanged profiles",
            "default": True,
            "description": (
                "Send nothing for a profile whose mapped attributes equal what Appcues last "
                "confirmed (remembered in a ledger under `state_dir`)."
            ),
        },
        "state_dir": {
            "type": "string",
            "title": "State directory",
            "default": DEFAULT_STATE_DIR,
            "description": "Directory of the ledger (and of the dead-letter file by default).",
        },
        "import_threshold": {
            "type": "integer",
            "title": "Bulk import threshold",
            "default": 100,
            "minimum": 1,
            "maximum": 100_000_000,
            "description": (
                "A batch with at least this many profiles to send goes through Appcues bulk "
                "imports; smaller ones through PATCH requests."
            ),
        },
        "import_max_rows": {
            "type": "integer",
            "title": "Rows per import job",
            "default": 10000,
            "minimum": 1,
            "maximum": 1_000_000,
            "description": "Largest number of rows sent in one bulk import job.",
        },
        "import_timeout": {
            "type": "integer",
            "title": "Import job timeout (seconds)",
            "default": 900,
            "minimum": 1,
            "maximum": 86400,
            "description": (
                "How long to wait for one import job to finish; after it, the job's rows "
                "are not taken as written and are sent by PATCH."
            ),
        },
        "max_concurrency": {
            "type": "integer",
            "title": "Concurrent PATCH requests",
            "default": 8,
            "minimum": 1,
            "maximum": 64,
            "description": "PATCH requests in flight at once (all under the shared rate cap).",
        },
        "dead_letter_path": {
            "type": "string",
            "title": "Dead-letter file",
            "description": (
                "JSON-lines file of records that could not be delivered, with the reason. "
                f"Default: `<state_dir>/{DEAD_LETTER_FILE}`."
            ),
        },
    }


class SettingsError(ValueError):
    """A target setting is invalid; the message names it."""


@dataclass(frozen=True)
class TargetSettings:
    user_streams: tuple[str, ...]
    group_streams: tuple[str, ...]
    user_id_field: str
    group_id_field: str
    id_fields: Mapping[str, str]
    user_group_field: str | None
    attributes: Mapping[str, Mapping[str, str]]
    attribute_prefix: str
    date_format: DateFormat
    skip_unchanged: bool
    state_dir: Path
    import_threshold: int
    import_max_rows: int
    import_timeout: float
    max_concurrency: int
    dead_letter_path: Path

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TargetSettings:
        props = target_properties()
        defaults = schema_defaults(props)

        def get(name: str, unset: Any = None) -> Any:
            # `unset` only for settings without a default, where no value means "none"
            value = config.get(name)
            return defaults.get(name, unset) if value is None else value

        def whole(name: str) -> int:
            return _positive(get(name), name, props[name]["maximum"])

        users = tuple(_strings(get("user_streams"), "user_streams"))
        groups = tuple(_strings(get("group_streams"), "group_streams"))
        both = sorted(set(users) & set(groups))
        if both:
            raise SettingsError(
                f"settings user_streams and group_streams both name {', '.join(both)}"
            )
        prefix = str(get("attribute_prefix"))
        if prefix.startswith("_"):
            raise SettingsError(
                "setting attribute_prefix must not start with '_' (Appcues reserves those names)"
            )
        date_format = get("date_format")
        if date_format not in DATE_FORMATS:
            raise SettingsError(f"setting date_format must be one of {', '.join(DATE_FORMATS)}")
        state_dir = setting_path(str(get("state_dir")))
        dead_letters = config.get("dead_letter_path")
        group_field = config.get("user_group_field") or None
        with as_setting_error(SettingsError):
            check_folder_path(state_dir, "state_dir")
        settings = cls(
            user_streams=users,
            group_streams=groups,
            user_id_field=_text(get("user_id_field"), "user_id_field"),
            group_id_field=_text(get("group_id_field"), "group_id_field"),
            id_fields=_id_fields(get("id_fields", unset={})),
            user_group_field=_text(group_field, "user_group_field") if group_field else None,
            attributes=_attribute_maps(get("attributes", unset={}), prefix),
            attribute_prefix=prefix,
            date_format=date_format,
            skip_unchanged=_flag(config, "skip_unchanged", defaults["skip_unchanged"]),
            state_dir=state_dir,
            import_threshold=whole("import_threshold"),
            import_max_rows=whole("import_max_rows"),
            import_timeout=_seconds(get("import_timeout"), "import_timeout"),
            max_concurrency=whole("max_concurrency"),
            dead_letter_path=(
                setting_path(str(dead_letters)) if dead_letters else state_dir / DEAD_LETTER_FILE
            ),
        )
        with as_setting_error(SettingsError):
            check_state_file(settings.dead_letter_path, config, "dead_letter_path")
        return settings

    def stream_kind(self, stream_name: str) -> StreamKind | None:
        """Which profiles a stream feeds; None for streams this target does not route."""
        if stream_name in self.user_streams:
            return "user"
        if stream_name in self.group_streams:
            return "group"
        return None

    def id_field(self, stream_name: str) -> str:
        kind = self.stream_kind(stream_name)
        default = self.group_id_field if kind == "group" else self.user_id_field
        return self.id_fields.get(stream_name, default)


def _flag(config: Mapping[str, Any], name: str, default: bool) -> bool:
    try:
        return setting_flag(config.get(name), name, default)
    except ConfigurationError as exc:
        raise SettingsError(str(exc)) from None


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SettingsError(f"setting {name} must be a non-empty string")
    return value


def _strings(value: Any, name: str) -> list[str]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise SettingsError(f"setting {name} must be a list of stream names")
    return value


def _positive(value: Any, name: str, maximum: int) -> int:
    if isinstance(value, str) and value.strip().isdigit():  # Meltano may pass text
        value = int(value)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 1 <= int(value) <= maximum
        or value != int(value)
    ):
        raise SettingsError(f"setting {name} must be a whole number from 1 to {maximum}")
    return int(value)


def _seconds(value: Any, name: str) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = 0.0
    if isinstance(value, bool) or not 1 <= seconds <= 86_400:
        raise SettingsError(f"setting {name} must be a number of seconds from 1 to 86400")
    return seconds


def _id_fields(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise SettingsError("setting id_fields must be an object {stream: field}")
    return {str(k): _text(v, f"id_fields.{k}") for k, v in value.items()}


def _attribute_maps(value: Any, prefix: str) -> dict[str, dict[str, str]]:
    if not isinstance(value, Mapping):
        raise SettingsError("setting attributes must be an object keyed by stream name")
    maps: dict[str, dict[str, str]] = {}
    for stream, spec in value.items():
        where = f"attributes.{stream}"
        if isinstance(spec, list):
            spec = {source: source for source in spec}
        if not isinstance(spec, Mapping):
            raise SettingsError(f"setting {where} must be an object or a list of field names")
        chosen: dict[str, str] = {}
        for source, name in spec.items():
            if not isinstance(source, str) or not source:
                raise SettingsError(f"setting {where} has an empty source field name")
            if not isinstance(name, str) or not name:
                raise SettingsError(f"setting {where}.{source} must name an Appcues attribute")
            attribute = f"{prefix}{name}"
            if attribute.startswith("_"):
                raise SettingsError(
                    f"setting {where}.{source}: attribute {attribute!r} starts with '_', "
                    "which Appcues reserves for its own attributes"
                )
            if attribute in RESERVED_ATTRIBUTES:
                raise SettingsError(
                    f"setting {where}.{source}: {attribute!r} is the profile key, not an attribute"
                )
            chosen[source] = name
        maps[str(stream)] = chosen
    return maps
