"""Latest NPS fields: which NPS answers may be written to which Lead/Contact.

Latest wins by the event's timestamp (ties broken by event id, so every run decides the
same way): within a batch, across batches and across runs. Across runs the reference is
`nps_date_field` on the record when configured (it holds the time of the answer last
written, to Salesforce's one-second precision; an answer in that same second still
applies), else the ledger, which keeps score and feedback times apart.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
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


@dataclass
class RecordUpdate:
    sobject: str
    record_id: str
    values: dict[str, Any]
    answers: list[NpsAnswer] = field(default_factory=list)

    def as_record(self) -> dict[str, Any]:
        return {"Id": self.record_id, **self.values}


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
    if event.name in (NPS_FEEDBACK, NPS_SCORE_AND_FEEDBACK) and feedback not in (None, ""):
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


def _newer_than_ledger(answer: NpsAnswer, prior: tuple[str, str] | None) -> bool:
    if prior is None:
        return True
    return (ledger_time(answer.event.timestamp), answer.event.event_id) > prior


def _not_older_than(answer: NpsAnswer, prior: Any, date_only: bool) -> bool:
    if prior is None:
        return True
    at = answer.event.timestamp.replace(microsecond=0)
    if date_only:
        return at.date() >= prior if isinstance(prior, date) else True
    return at >= prior if isinstance(prior, datetime) else True


def plan_updates(
    latest: Mapping[tuple[str, str], NpsAnswer],
    fields: NpsFields,
    *,
    ledger_prior: Mapping[tuple[str, str], tuple[str, str]] | None = None,
    date_prior: Mapping[str, datetime | date | None] | None = None,
) -> tuple[list[RecordUpdate], list[NpsAnswer]]:
    """The record updates to send, and the answers skipped because a newer one is known."""
    updates: dict[str, RecordUpdate] = {}
    stale: list[NpsAnswer] = []
    for (record_id, part), answer in sorted(latest.items()):
        if fields.date_field:
            fresh = _not_older_than(answer, (date_prior or {}).get(record_id), fields.date_only)
        else:
            fresh = _newer_than_ledger(answer, (ledger_prior or {}).get((record_id, part)))
        if not fresh:
            stale.append(answer)
            continue
        update = updates.setdefault(record_id, RecordUpdate(answer.target.sobject, record_id, {}))
        if part == SCORE:
            value = answer.value
            update.values[fields.score_field] = str(value) if fields.score_as_text else value
        else:
            update.values[fields.feedback_field] = fit(answer.value, fields.feedback_max)[0]
        update.answers.append(answer)
    if fields.date_field:
        for update in updates.values():
            newest = max(a.event.timestamp for a in update.answers)
            update.values[fields.date_field] = (
                newest.date().isoformat() if fields.date_only else salesforce_datetime(newest)
            )
    return list(updates.values()), stale
