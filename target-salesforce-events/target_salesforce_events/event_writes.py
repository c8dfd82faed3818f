"""Event writes: each matched event becomes an Event record (its templates rendered), written
once by the exactly-once strategy (`idempotency.EventWriter`: sObject Collections, or Bulk
API 2.0 ingest past `bulk_threshold`); the step returns the events Salesforce confirmed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateError

from salesforce_appcues_clients.salesforce import RecordResult

from .dead_lettering import DeadLettering
from .events import AppcuesEvent
from .idempotency import EventWritePlan, EventWriter, PendingEvent, StrategyChoice, WriteOutcome
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
        planned = self._render(items, stream)
        outcomes = self._writer.write(planned.pending)
        return self._confirmed(planned, outcomes, stream, stale_matches)

    def plan(self, items: list[tuple[AppcuesEvent, MatchedRecord]], stream: str) -> EventsPlan:
        """`write` up to its REST write: renders the Events and runs the writer's checks (and
        Bulk paths); `write_plan.op` is the write left for the caller to send, with other
        steps' operations, before `confirm`."""
        planned = self._render(items, stream)
        planned.write_plan = self._writer.plan(planned.pending)
        return planned

    def _render(self, items: list[tuple[AppcuesEvent, MatchedRecord]], stream: str) -> EventsPlan:
        """The Events' records; a template failure becomes a dead letter."""
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
        return EventsPlan(targets, pending, None)

    def confirm(
        self,
        planned: EventsPlan,
        results: list[RecordResult],
        stream: str,
        stale_matches: StaleMatches | None = None,
        uncertain: bool = False,
    ) -> set[str]:
        """`write`'s answer for a plan whose REST write the caller sent (`results`)."""
        assert planned.write_plan is not None
        outcomes = self._writer.confirm(planned.write_plan, results, uncertain)
        return self._confirmed(planned, outcomes, stream, stale_matches)

    def _confirmed(
        self,
        planned: EventsPlan,
        outcomes: list[WriteOutcome],
        stream: str,
        stale_matches: StaleMatches | None,
    ) -> set[str]:
        confirmed: set[str] = set()
        for outcome in outcomes:
            event = outcome.pending.event
            if not outcome.success:
                error = outcome.errors[0] if outcome.errors else {}
                target = planned.targets[event.event_id]
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


@dataclass
class EventsPlan:
    """A batch's rendered Events; `write_plan` once the writer planned their write."""

    targets: dict[str, MatchedRecord]
    pending: list[PendingEvent]
    write_plan: EventWritePlan | None
