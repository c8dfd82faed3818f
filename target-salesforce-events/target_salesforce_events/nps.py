"""Latest NPS fields: which NPS answers may be written to which Lead/Contact.

Per field, latest wins by the answer's own event time (ties broken by event id, so every
run decides the same way): the score field holds the newest score, the feedback field the
newest non-empty feedback (an empty or whitespace-only feedback is no answer: it neither
clears the field nor counts as a feedback time). Within a batch the newest answer per field
is chosen; across batches and runs the ledger keeps each field's time per record.

`nps_date_field`, when configured, holds the newest event time written to the record, in
whole seconds (as Salesforce keeps it). It guards against other writers (the webhook
receiver with its own ledger, a person): when it is newer than anything this ledger wrote
to the record, or the ledger knows nothing of the record, only answers not older than it
apply to a field someone else changed, read with the date in the same query: one whose
value is not the one this ledger last wrote there (or, for a field this ledger never
wrote, one that holds a value; an empty field takes any answer). A field the other writer
did not touch keeps going by the ledger's time. Once the record is written, the ledger
takes the date's time as the floor of each such field, with the value found there.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from typing import Any

from salesforce_appcues_clients.appcues_events import (
    NPS_FEEDBACK,
    NPS_SCORE,
    NPS_SCORE_AND_FEEDBACK,
)

from .events import AppcuesEvent, InvalidEventError, salesforce_datetime
from .ledger import ledger_time
from .matching import MatchedRecord
from .templates import fit

SCORE = "score"
FEEDBACK = "feedback"


@dataclass(frozen=True)
class NpsAnswer:
    event: AppcuesEvent
    target: MatchedRecord
    part: str  # SCORE or FEEDBACK
    value: Any


@dataclass(frozen=True)
class NpsFields:
    score_field: str
    feedback_field: str
    date_field: str | None = None
    score_as_text: bool = False  # the score field is a text field
    feedback_max: int = 32_768
    date_only: bool = False  # the date field is a Date, not a Date/Time


def _score(value: Any) -> int | float:
    if isinstance(value, bool) or value is None:
        raise ValueError
    number = float(str(value).strip()) if isinstance(value, str) else float(value)
    if not math.isfinite(number) or not 0 <= number <= 10:
        raise ValueError
    return int(number) if number.is_integer() else number


def answers_from(event: AppcuesEvent, target: MatchedRecord) -> list[NpsAnswer]:
    """The NPS answers one event carries; InvalidEventError if its score is unusable."""
    answers: list[NpsAnswer] = []
    raw_score = event.attributes.get("score")
    if event.name in (NPS_SCORE, NPS_SCORE_AND_FEEDBACK) and raw_score is not None:
        try:
            answers.append(NpsAnswer(event, target, SCORE, _score(raw_score)))
        except (ValueError, OverflowError):
            raise InvalidEventError(
                "invalid_nps_score",
                f"attribute 'score' of {event.name} is {raw_score!r}, not a number from 0 to 10",
            ) from None
    elif event.name == NPS_SCORE:
        raise InvalidEventError("invalid_nps_score", f"{event.name} has no 'score' attribute")
    feedback = event.attributes.get("feedback")
    if event.name in (NPS_FEEDBACK, NPS_SCORE_AND_FEEDBACK) and str(feedback or "").strip():
        answers.append(NpsAnswer(event, target, FEEDBACK, str(feedback)))
    return answers


def latest_per_field(answers: Iterable[NpsAnswer]) -> dict[tuple[str, str], NpsAnswer]:
    """(record id, part) -> the newest answer among these."""
    latest: dict[tuple[str, str], NpsAnswer] = {}
    for answer in answers:
        key = (answer.target.record_id, answer.part)
        held = latest.get(key)
        if held is None or answer.event.sort_key > held.event.sort_key:
            latest[key] = answer
    return latest


@dataclass
class RecordUpdate:
    sobject: str
    record_id: str
    values: dict[str, Any]
    answers: list[NpsAnswer] = field(default_factory=list)
    floor: datetime | None = None  # the date field's time, when it bounds some field
    # part -> the hash of the value found on the record (None: not read), for each field
    # the floor bounds
    floored: dict[str, str | None] = field(default_factory=dict)

    def as_record(self) -> dict[str, Any]:
        return {"Id": self.record_id, **self.values}

    def ledger_rows(self) -> list[tuple[str, str, datetime, str, str | None]]:
        """What the ledger keeps once this update is confirmed: each answer's time and the
        hash of the value written; for a field the floor bounds and this update leaves
        alone, the floor (an empty event id: any answer of that very time is newer) and the
        hash of the other writer's value, which the ledger thereby takes as its own."""
        rows: list[tuple[str, str, datetime, str, str | None]] = [
            (self.record_id, a.part, a.event.timestamp, a.event.event_id, value_hash(a.value))
            for a in self.answers
        ]
        written = {a.part for a in self.answers}
        if self.floor is not None:
            rows += [
                (self.record_id, part, self.floor, "", held)
                for part, held in sorted(self.floored.items())
                if part not in written
            ]
        return rows


def value_hash(value: Any) -> str:
    """A field's value as the ledger remembers it: a hash, equal for the value written and
    the value read back (a number as a float, text without its outer whitespace)."""
    if value is None or isinstance(value, bool):
        text = "" if value is None else str(value)
    elif isinstance(value, int | float):
        text = repr(float(value))
    else:
        text = str(value).replace("\r\n", "\n").strip()
        try:
            number = float(text)
        except ValueError:
            pass
        else:
            text = repr(number) if math.isfinite(number) else text
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _newer_than_ledger(answer: NpsAnswer, prior: tuple[str, str] | None) -> bool:
    if prior is None:
        return True
    return (ledger_time(answer.event.timestamp), answer.event.event_id) > prior


def _at_precision(moment: datetime, date_only: bool) -> datetime | date:
    return moment.date() if date_only else moment.replace(microsecond=0)


def _as_time(prior: datetime | date) -> datetime:
    if isinstance(prior, datetime):
        return prior
    return datetime.combine(prior, time(), tzinfo=UTC)


def _other_writer_since(
    record_id: str,
    ledger_prior: Mapping[tuple[str, str], tuple[str, str]],
    date_prior: datetime | date | None,
    date_only: bool,
) -> datetime | None:
    """The date field's time when someone else may have written the record since this
    ledger did: the ledger knows nothing of it, or the field is newer (to the field's
    whole seconds) than the newest time the ledger wrote to it. None otherwise."""
    if date_prior is None:
        return None
    held = [
        ledger_prior[key][0]
        for key in ((record_id, SCORE), (record_id, FEEDBACK))
        if key in ledger_prior
    ]
    if held:
        newest = datetime.strptime(max(held), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        if date_prior <= _at_precision(newest, date_only):
            return None
    return _as_time(date_prior)


def _bounded(
    key: tuple[str, str],
    ledger_prior: Mapping[tuple[str, str], tuple[str, str]],
    ledger_values: Mapping[tuple[str, str], str | None],
    on_record: Mapping[str, Any] | None,
) -> bool:
    """Whether the floor bounds this field: its value on the record is not the one this
    ledger last wrote there (someone else changed it), or unknown. A field the ledger never
    wrote is bounded only when it holds a value: an empty field takes any answer."""
    if on_record is None:
        return True  # the record's values were not read: the conservative floor
    held = on_record.get(key[1])
    if key not in ledger_prior:
        return value_hash(held) != value_hash(None)
    written = ledger_values.get(key)
    return written is None or written != value_hash(held)


def plan_updates(
    latest: Mapping[tuple[str, str], NpsAnswer],
    fields: NpsFields,
    *,
    ledger_prior: Mapping[tuple[str, str], tuple[str, str]] | None = None,
    date_prior: Mapping[str, datetime | date | None] | None = None,
    ledger_values: Mapping[tuple[str, str], str | None] | None = None,
    on_record: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[list[RecordUpdate], list[NpsAnswer]]:
    """The record updates to send, and the answers skipped because a newer one is known.

    `ledger_prior`: (record id, part) -> (ledger time, event id) of the newest answer the
    ledger wrote (or its floor); `ledger_values`: (record id, part) -> the hash of the value
    it wrote (None: unknown); `date_prior`: record id -> the date field's value and
    `on_record`: record id -> {SCORE: value, FEEDBACK: value} of the score and feedback
    fields, read with it, only when `fields.date_field` is set (a record missing from
    `on_record`: its values are unknown, every field is bounded)."""
    ledger_prior = ledger_prior or {}
    ledger_values = ledger_values or {}
    dates = date_prior or {}
    found = on_record or {}
    updates: dict[str, RecordUpdate] = {}
    stale: list[NpsAnswer] = []
    floors: dict[str, tuple[datetime | None, dict[str, str | None]]] = {}
    for (record_id, part), answer in sorted(latest.items()):
        if record_id not in floors:
            prior = dates.get(record_id) if fields.date_field else None
            since = _other_writer_since(record_id, ledger_prior, prior, fields.date_only)
            values = found.get(record_id)
            floored = {
                p: None if values is None else value_hash(values.get(p))
                for p in (SCORE, FEEDBACK)
                if since is not None
                and _bounded((record_id, p), ledger_prior, ledger_values, values)
            }
            floors[record_id] = (since if floored else None, floored)
        floor, floored = floors[record_id]
        fresh = _newer_than_ledger(answer, ledger_prior.get((record_id, part)))
        if fresh and floor is not None and part in floored:
            fresh = answer.event.timestamp >= floor  # the field holds whole seconds
        if not fresh:
            stale.append(answer)
            continue
        update = updates.setdefault(
            record_id,
            RecordUpdate(answer.target.sobject, record_id, {}, floor=floor, floored=floored),
        )
        if part == SCORE:
            value = answer.value
            update.values[fields.score_field] = str(value) if fields.score_as_text else value
        else:
            value = fit(answer.value, fields.feedback_max)[0]
            update.values[fields.feedback_field] = value
        update.answers.append(replace(answer, value=value))
    if fields.date_field:
        for update in updates.values():
            newest = max(a.event.timestamp for a in update.answers)
            held = dates.get(update.record_id)
            if held is not None and _at_precision(newest, fields.date_only) <= held:
                continue  # an older field's answer: the date keeps the newest time written
            # Whole seconds, as the field keeps them: a rounding org would otherwise store
            # a later second than this ledger's time and take its own write for another's.
            update.values[fields.date_field] = (
                newest.date().isoformat()
                if fields.date_only
                else salesforce_datetime(newest.replace(microsecond=0))
            )
    return list(updates.values()), stale
