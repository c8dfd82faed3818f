"""Appcues analytics rows -> `appcues_events` records, with a deterministic event id."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from salesforce_appcues_clients.appcues_events import (
    APPCUES_EVENT_PREFIX,
    record_fields,
    text_or_none,
)

# The id is shared with the webhook receiver: one event, one id, whichever path it takes.
from salesforce_appcues_clients.appcues_events import event_id as event_id

from .timefmt import canonical_datetime

# Raw columns the tap asks the analytics API for.
ANALYTICS_COLUMNS = ["timestamp", "user_id", "name", "group_id", "attributes", "context", "url"]

EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "timestamp": {"type": "string", "format": "date-time"},
        "user_id": {"type": ["string", "null"]},
        "group_id": {"type": ["string", "null"]},
        "attributes": {"type": "object", "additionalProperties": True},
        "context": {
            "type": "object",
            "properties": {
                "url": {"type": ["string", "null"]},
                "title": {"type": ["string", "null"]},
            },
        },
    },
    "required": ["id", "name", "timestamp"],
}


def event_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """One analytics row as an `appcues_events` record."""
    timestamp = canonical_datetime(str(row["timestamp"]))
    record = record_fields(row, timestamp, url_keys=("url", "context_url"))
    store_id = text_or_none(row.get("id"))
    return {
        "id": store_id
        or event_id(record["user_id"], record["name"], timestamp, record["attributes"]),
        **record,
    }


def is_wanted(name: str, names: Iterable[str], include_custom: bool) -> bool:
    """Configured names, plus custom events (not `appcues:`-prefixed) when enabled."""
    return name in set(names) or (include_custom and not name.startswith(APPCUES_EVENT_PREFIX))


def name_conditions(names: Iterable[str], include_custom: bool) -> list[list[Any]]:
    """One condition list per analytics query: the configured names, then custom events."""
    queries: list[list[Any]] = []
    listed = list(names)
    if listed:
        queries.append([["name", "in", listed]])
    if include_custom:
        queries.append([["name", "not like", APPCUES_EVENT_PREFIX + "%"]])
    return queries


def sort_key(record: Mapping[str, Any]) -> tuple[str, str]:
    return (str(record["timestamp"]), str(record["id"]))


def spec_time(value: datetime) -> str:
    """An RFC 3339 instant for a spec's start_time / end_time."""
    return canonical_datetime(value)
