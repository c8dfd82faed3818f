"""The target's own settings (the Salesforce connection settings come from the clients)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from singer_sdk.exceptions import ConfigValidationError

from salesforce_appcues_clients.appcues_events import (
    APPCUES_EVENT_PREFIX,
    DEFAULT_EVENT_NAMES,
    NPS_EVENTS,
)
from salesforce_appcues_clients.bulk_ingest import JOB_CALLS
from salesforce_appcues_clients.errors import ConfigurationError
from salesforce_appcues_clients.plugin_kit.local_files import (
    as_setting_error,
    check_folder_path,
    check_state_file,
    setting_path,
)
from salesforce_appcues_clients.salesforce import COLLECTION_SIZE
from salesforce_appcues_clients.salesforce_composite import COMPOSITE_COLLECTIONS
from salesforce_appcues_clients.settings import (
    USER_ID_FIELD,
    USER_OBJECTS,
    schema_defaults,
    setting_flag,
)

EVENT_PART, NPS_PART = "event", "nps"  # an event's effects (also dead letters' `part`)

# Far beyond the tap's lookback (an hour by default): only a manual re-run of older history
# ever re-reads an event after this, and it then costs calls, not duplicates.
DEFAULT_LEDGER_RETENTION_DAYS = 30
# A day: longer Events need the org's multiday events (and never more than 14 days).
MAX_DURATION_MINUTES = 1440

API_TYPES = ("AUTO", "REST", "BULK2")
# Under AUTO a Bulk 2.0 ingest job (about 6 calls: create, upload, close, a poll or two,
# results) is used only past this many writes AND where REST would cost more calls
# (`bulk_is_cheaper`). Below 2,000 even inserts (collections of 200: 10 calls) stay on REST,
# which answers at once where a job waits seconds for its queue; above, the cost decides.
DEFAULT_BULK_THRESHOLD = 2000
# Records per REST call: a collections call holds 200, a Composite call 5 collections.
COLLECTIONS_PER_CALL = COLLECTION_SIZE
COMPOSITE_PER_CALL = COMPOSITE_COLLECTIONS * COLLECTION_SIZE


def rest_calls(writes: int, per_call: int) -> int:
    """The REST calls that `writes` records cost at `per_call` records a call."""
    return -(-writes // per_call)


def bulk_is_cheaper(saved_rest_calls: int) -> bool:
    """Whether a Bulk job (about `JOB_CALLS` calls) replacing this many REST calls costs
    fewer calls; a tie goes to REST, which answers at once."""
    return saved_rest_calls > JOB_CALLS


# Every setting of this target may be null: the parser then applies the default.
_STRING = {"type": ["string", "null"]}
_BOOLEAN = {"type": ["boolean", "null"]}
_STRINGS = {"type": ["array", "null"], "items": {"type": ["string"]}}


def target_properties() -> dict[str, Any]:
    """JSON-schema properties of this target's own settings."""
    return {
        "user_objects": {
            **_STRINGS,
            "title": "User objects",
            "default": list(USER_OBJECTS),
            "description": "Objects searched for the event's user, in priority order.",
        },
        "user_id_field": {
            **_STRING,
            "title": "User id field",
            "default": USER_ID_FIELD,
            "description": "Text field on each user object holding the Appcues user id. "
            "For a numeric id, create a formula field TEXT(<field>) and name it here.",
        },
        "sync_events": {
            **_BOOLEAN,
            "title": "Write Events",
            "default": True,
            "description": "Write Appcues events as Salesforce Event records.",
        },
        "event_names": {
            **_STRINGS,
            "title": "Event names",
            "default": list(DEFAULT_EVENT_NAMES),
            "description": "Appcues events (names with the 'appcues:' prefix) written as Events.",
        },
        "include_custom_events": {
            **_BOOLEAN,
            "title": "Include custom events",
            "default": False,
            "description": "Also write custom (click-to-track) events, i.e. names without "
            "the 'appcues:' prefix.",
        },
        "templates": {
            "type": ["object", "null"],
            "properties": {},
            "additionalProperties": {
                "type": "object",
                "properties": {"subject": {**_STRING}, "description": {**_STRING}},
                "additionalProperties": True,
            },
            "title": "Templates",
            "default": {},
            "description": "Per event name, Jinja2 'subject' and/or 'description' replacing "
            "the defaults; the key '*' overrides the custom-event templates.",
        },
        "duration_minutes": {
            "type": ["integer", "null"],
            "minimum": 0,
            "maximum": MAX_DURATION_MINUTES,
            "title": "Event duration",
            "default": 0,
            "description": "DurationInMinutes of each Event, 0 to 1440 (a day; Salesforce "
            "refuses negative durations, and longer ones unless the org allows multiday "
            "events).",
        },
        "event_id_field": {
            **_STRING,
            "title": "Event id field",
            "default": "Appcues_Event_Id__c",
            "description": "Event field holding the Appcues event id: upsert key when it is an "
            "External ID, else checked by query before insert. A field the integration user "
            'cannot see or set stops the run (and --check). Empty ("" or null) chooses '
            "the local ledger as the only guard against duplicates.",
        },
        "sync_nps_fields": {
            **_BOOLEAN,
            "title": "Update NPS fields",
            "default": True,
            "description": "Keep the latest NPS score and feedback on the matched Lead/Contact.",
        },
        "nps_score_field": {
            **_STRING,
            "title": "NPS score field",
            "default": "Appcues_NPS_Score__c",
            "description": "Number field on each user object for the latest NPS score (0-10).",
        },
        "nps_feedback_field": {
            **_STRING,
            "title": "NPS feedback field",
            "default": "Appcues_NPS_Feedback__c",
            "description": "Long Text Area on each user object for the latest NPS feedback.",
        },
        "nps_date_field": {
            **_STRING,
            "title": "NPS date field",
            "description": "Optional Date/Time field set to the newest NPS answer time written "
            "to the record; answers older than it are not applied when someone else (the "
            "webhook receiver, a person) wrote after this ledger's last write.",
        },
        "api_type": {
            **_STRING,
            "enum": list(API_TYPES),
            "title": "Salesforce API for writes",
            "default": "AUTO",
            "description": "`AUTO`: a batch's Event writes (after the ledger and user matching) "
            "and each object's NPS field updates go through Bulk API 2.0 ingest when more than "
            "`bulk_threshold` and the REST calls they would take (Composite calls of 1,000 "
            "records for upserts and NPS updates, one collections call per 200 inserts) are "
            "more than a job's (about 6); REST otherwise. `REST` or `BULK2` force one API.",
        },
        "bulk_threshold": {
            "type": ["integer", "null"],
            "minimum": 0,
            "maximum": 100_000_000,
            "title": "Bulk threshold (records)",
            "default": DEFAULT_BULK_THRESHOLD,
            "description": "Under `AUTO`, only more writes than this in a batch may go through "
            "one Bulk API 2.0 ingest job (about 6 API calls), and only where REST would take "
            "more calls: upserts and NPS updates ride 1,000 a call in Composite (a job from "
            "6,001 at the least), Event inserts one collections call per 200 (from 1,201).",
        },
        "state_dir": {
            **_STRING,
            "title": "State folder",
            "default": ".target-salesforce-events",
            "description": "Folder for the ledger and the dead-letter file.",
        },
        "ledger_path": {
            **_STRING,
            "title": "Ledger file",
            "description": "SQLite ledger (default <state_dir>/ledger.sqlite3).",
        },
        "ledger_retention_days": {
            "type": ["integer", "null"],
            "minimum": 0,
            "maximum": 36500,
            "title": "Ledger retention (days)",
            "default": DEFAULT_LEDGER_RETENTION_DAYS,
            "description": "Days the ledger remembers an event Salesforce confirmed, so a re-read "
            "costs no API call (later, calls but never a duplicate); 0 = forever. The "
            "local_ledger strategy's record of written Events is always kept.",
        },
        "dead_letter_path": {
            **_STRING,
            "title": "Dead-letter file",
            "description": "JSON-lines file of events not delivered "
            "(default <state_dir>/dead-letters.jsonl).",
        },
    }


class SettingsError(ConfigValidationError, ValueError):
    """A setting is invalid; the message names it. The SDK's command line prints it as one
    line (no traceback) and exits 1."""

    def __init__(self, message: str) -> None:
        super().__init__(message, errors=[message])


def _text_or_none(value: Any) -> str | None:
    return str(value).strip() or None if value not in (None, "") else None


def _duration(value: Any, default: int) -> int:
    if value in (None, ""):
        return default
    try:
        minutes = int(value) if not isinstance(value, bool) and float(value) == int(value) else -1
    except (TypeError, ValueError, OverflowError):
        minutes = -1
    if not 0 <= minutes <= MAX_DURATION_MINUTES:
        raise SettingsError(
            f"setting duration_minutes: {value!r} is not a whole number of minutes from 0 to "
            f"{MAX_DURATION_MINUTES} (Salesforce refuses negative Event durations, and longer "
            "ones unless the org allows multiday events)"
        )
    return minutes


def _retention_days(value: Any, default: int) -> int:
    if value in (None, ""):
        return default
    try:
        days = int(value)
    except (TypeError, ValueError):
        days = -1
    if not 0 <= days <= 36500 or isinstance(value, bool):
        raise SettingsError(
            f"setting ledger_retention_days: {value!r} is not a whole number of days "
            "(0 = never forget)"
        )
    return days


def _api_type(value: Any, default: str) -> str:
    api_type = str(value or default).strip().upper()
    if api_type not in API_TYPES:
        raise SettingsError(f"setting api_type: {value!r} is not one of {', '.join(API_TYPES)}")
    return api_type


def _bulk_threshold(value: Any, default: int) -> int:
    if value in (None, ""):
        return default
    try:
        threshold = int(value) if not isinstance(value, bool) else -1
    except (TypeError, ValueError):
        threshold = -1
    if threshold < 0:
        raise SettingsError(f"setting bulk_threshold: {value!r} is not a whole number >= 0")
    return threshold


@dataclass(frozen=True)
class EventSettings:
    """The target's settings, with defaults applied and paths resolved."""

    user_objects: tuple[str, ...]
    user_id_field: str
    sync_events: bool
    event_names: frozenset[str]
    include_custom_events: bool
    templates: Mapping[str, Mapping[str, str]]
    duration_minutes: int
    event_id_field: str | None
    sync_nps_fields: bool
    nps_score_field: str
    nps_feedback_field: str
    nps_date_field: str | None
    ledger_path: Path
    ledger_retention_days: int
    dead_letter_path: Path
    api_type: str
    bulk_threshold: int

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> EventSettings:
        defaults = schema_defaults(target_properties())

        def given(name: str) -> Any:  # an empty value (None, "", [], {}) takes the default
            return config.get(name) or defaults[name]

        def get(name: str) -> Any:  # only a missing setting takes the default
            return config.get(name, defaults[name])

        def flag(name: str) -> bool:  # null or "" takes the default; text as it says
            try:
                return setting_flag(config.get(name), name, defaults[name])
            except ConfigurationError as exc:
                raise SettingsError(str(exc)) from None

        state_dir = setting_path(str(given("state_dir")))
        objects = tuple(given("user_objects"))
        if not objects:
            raise SettingsError("setting user_objects: name at least one object, e.g. Contact")
        with as_setting_error(SettingsError):
            check_folder_path(state_dir, "state_dir")
        settings = cls(
            user_objects=objects,
            user_id_field=str(given("user_id_field")),
            sync_events=flag("sync_events"),
            event_names=frozenset(given("event_names")),
            include_custom_events=flag("include_custom_events"),
            templates=dict(given("templates")),
            duration_minutes=_duration(
                config.get("duration_minutes"), defaults["duration_minutes"]
            ),
            event_id_field=_text_or_none(get("event_id_field")),
            sync_nps_fields=flag("sync_nps_fields"),
            nps_score_field=str(given("nps_score_field")),
            nps_feedback_field=str(given("nps_feedback_field")),
            nps_date_field=_text_or_none(config.get("nps_date_field")),
            ledger_path=setting_path(config.get("ledger_path") or state_dir / "ledger.sqlite3"),
            ledger_retention_days=_retention_days(
                config.get("ledger_retention_days"), defaults["ledger_retention_days"]
            ),
            dead_letter_path=setting_path(
                config.get("dead_letter_path") or state_dir / "dead-letters.jsonl"
            ),
            api_type=_api_type(config.get("api_type"), defaults["api_type"]),
            bulk_threshold=_bulk_threshold(
                config.get("bulk_threshold"), defaults["bulk_threshold"]
            ),
        )
        with as_setting_error(SettingsError):
            check_state_file(settings.ledger_path, config, "ledger_path")
            check_state_file(settings.dead_letter_path, config, "dead_letter_path")
        return settings

    def writes_event(self, name: str) -> bool:
        """Whether an event of this name becomes a Salesforce Event."""
        if not self.sync_events:
            return False
        if name.startswith(APPCUES_EVENT_PREFIX):
            return name in self.event_names
        return self.include_custom_events or name in self.event_names

    def uses_bulk(self, writes: int, per_call: int) -> bool:
        """Whether this many writes of one kind go through a Bulk API 2.0 ingest job rather
        than REST calls of `per_call` records each (`COMPOSITE_PER_CALL` where they ride in
        Composite, `COLLECTIONS_PER_CALL` where each collection is its own call)."""
        if writes == 0 or self.api_type == "REST":
            return False
        if self.api_type == "BULK2":
            return True
        return writes > self.bulk_threshold and bulk_is_cheaper(rest_calls(writes, per_call))

    def updates_nps(self, name: str) -> bool:
        return self.sync_nps_fields and name in NPS_EVENTS

    def effects(self, name: str) -> frozenset[str]:
        """What an event of this name must achieve in Salesforce: its Event, its NPS answers."""
        return frozenset(
            [
                *([EVENT_PART] if self.writes_event(name) else []),
                *([NPS_PART] if self.updates_nps(name) else []),
            ]
        )
