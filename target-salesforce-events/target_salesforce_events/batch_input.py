"""The first steps of a batch, with no call: records -> events (a record that makes no
event is dead-lettered with the reason), one per event id, only those the settings want."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .dead_lettering import DeadLettering
from .events import AppcuesEvent, InvalidEventError, parse_event
from .settings import EventSettings
from .summary import RunSummary


def parse_events(
    records: Iterable[Mapping[str, Any]],
    stream: str,
    letters: DeadLettering,
    summary: RunSummary,
) -> list[AppcuesEvent]:
    """The batch's events in input order, the first of each event id (the rest are counted
    as duplicates in the input)."""
    events: dict[str, AppcuesEvent] = {}
    key_properties = letters.key_properties(stream)
    for record in records:
        try:
            _check_key_properties(record, key_properties, stream)
            event = parse_event(record)
        except InvalidEventError as exc:
            raw_id = record.get("id")
            letters.add(
                exc.reason,
                exc.message,
                event_id=str(raw_id) if raw_id not in (None, "") else None,
                user_id=str(record.get("user_id")) if record.get("user_id") else None,
                event_name=str(record.get("name")) if record.get("name") else None,
                fields=[exc.field] if exc.field else [],
                stream=stream,
                record=dict(record),
            )
            continue
        if event.event_id in events:
            summary.duplicates_in_input += 1
            continue
        events[event.event_id] = event
    return list(events.values())


def selected(
    events: Iterable[AppcuesEvent], settings: EventSettings, summary: RunSummary
) -> list[AppcuesEvent]:
    """The events the settings write as Events or read NPS answers from."""
    wanted = []
    for event in events:
        if settings.writes_event(event.name) or settings.updates_nps(event.name):
            wanted.append(event)
        else:
            summary.events_not_selected[event.name] += 1
    return wanted


def _check_key_properties(
    record: Mapping[str, Any], key_properties: list[str], stream: str
) -> None:
    """singer-sdk would end the run on such a record; this one record is dead-lettered."""
    missing = [k for k in key_properties if k not in record]
    if missing:
        raise InvalidEventError(
            "missing_key_property",
            f"event {record.get('name')!r} of user {record.get('user_id')!r} has no key "
            f"property {', '.join(repr(k) for k in missing)} (stream {stream!r})",
            field=missing[0],
        )
