"""Event writes: each matched event becomes an Event record (its templates rendered), written
once by the exactly-once strategy (`idempotency.EventWriter`: sObject Collections, or Bulk
API 2.0 ingest past `bulk_threshold`); the step returns the events Salesforce confirmed."""

from __future__ import annotations

from typing import Any

from jinja2 import TemplateError

from .dead_lettering import DeadLettering
from .events import AppcuesEvent
from .idempotency import EventWriter, PendingEvent, StrategyChoice
from .matching import MatchedRecord
from .recipients import StaleMatches
from .settings import EVENT_PART, EventSettings
from .summary import RunSummary
from .templates import EventTemplates, template_context


def event_record(
    event: AppcuesEvent,
    target: MatchedRecord,
    templates: EventTemplates,
    settings: EventSettings,
    strategy: StrategyChoice,
) -> tuple[dict[str, Any], bool]:
    """The Event's fields, and whether a template's text was cut to fit its field. Raises
    what a template raises."""
    variables = template_context(
        name=event.name,
        attributes=event.attributes,
        context=event.context,
        event_id=event.event_id,
        user_id=event.user_id,
        timestamp=event.timestamp_text,
        group_id=event.group_id,
    )
    text = templates.render(event.name, variables)
    record: dict[str, Any] = {
        "Subject": text.subject,
        "Description": text.description,
        "WhoId": target.record_id,
        "ActivityDateTime": event.timestamp_text,
        "DurationInMinutes": settings.duration_minutes,
    }
    if strategy.field:
        record[strategy.field] = event.external_key
    return record, text.cut


class EventWrites:
    """Renders and writes a batch's Events; counts them and dead-letters what failed."""

    def __init__(
        self,
        writer: EventWriter,
        templates: EventTemplates,
        settings: EventSettings,
        letters: DeadLettering,
        summary: RunSummary,
    ) -> None:
        self._writer = writer
        self._templates = templates
        self._settings = settings
        self._letters = letters
        self._summary = summary

    def write(
        self,
        items: list[tuple[AppcuesEvent, MatchedRecord]],
        stream: str,
        stale_matches: StaleMatches | None = None,
    ) -> set[str]:
        """Writes the Events; returns the ids of those Salesforce holds now. A refusal that
        says the matched record is gone goes to `stale_matches`, when given, not to dead
        letters."""
        targets = {event.event_id: target for event, target in items}
        pending: list[PendingEvent] = []
        for event, target in items:
            try:
                record, cut = event_record(
                    event, target, self._templates, self._settings, self._writer.choice
                )
            except (TemplateError, TypeError, ValueError, LookupError, AttributeError) as exc:
                self._letters.add(
                    "template_error",
                    f"a template of {event.name} failed: {type(exc).__name__}: {exc}",
                    event,
                    stream=stream,
                )
                continue
            if cut:
                self._summary.subjects_or_descriptions_cut += 1
            pending.append(PendingEvent(event, record))
        confirmed: set[str] = set()
        for outcome in self._writer.write(pending):
            event = outcome.pending.event
            if not outcome.success:
                error = outcome.errors[0] if outcome.errors else {}
                target = targets[event.event_id]
                if stale_matches is None or not stale_matches.hold(
                    EVENT_PART, event, target, error
                ):
                    self._letters.rejected(outcome.errors, event, stream=stream)
                continue
            confirmed.add(event.event_id)
            if outcome.already_present:
                self._summary.events_already_present[event.name] += 1
            else:
                self._summary.events_written[event.name] += 1
        return confirmed
