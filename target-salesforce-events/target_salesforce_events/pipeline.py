"""One run's delivery of event batches, step by step; the Singer sink and the webhook
receiver's worker both feed it.

parse -> dedupe -> select -> ledger filter -> (connect) -> match -> plan Event writes and
NPS updates -> send their REST writes together (Composite) -> each step confirms its results
-> record what Salesforce confirmed. Nothing touches Salesforce before a batch holds an
event still to deliver. Per-record problems become dead letters and the rest of the batch
is delivered; anything that leaves the batch unconfirmed raises, so no STATE follows it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from salesforce_appcues_clients.plugin_kit.singer_input import BadLine
from salesforce_appcues_clients.salesforce import RecordResult, SalesforceClient
from salesforce_appcues_clients.salesforce_composite import CollectionOp, CompositeUncertainError

from .batch_input import parse_events, selected
from .confirmations import RunLedger, not_confirmed_earlier, record_confirmed
from .dead_letter import DeadLetterFile
from .dead_lettering import DeadLettering
from .event_writes import EventWrites
from .events import AppcuesEvent
from .idempotency import StrategyChoice
from .matching import DEFAULT_MAX_AGE_SECONDS, MatchedRecord
from .nps_updates import NpsUpdates
from .org_connection import ClientFactory, OrgConnection, connect
from .recipients import StaleMatches, match_recipients
from .settings import EVENT_PART, NPS_PART, EventSettings
from .summary import RunSummary
from .templates import EventTemplates


class EventPipeline:
    """The run's settings, templates, ledger, dead letters and summary; its connection to
    the org once a batch needs one."""

    def __init__(
        self,
        config: Mapping[str, Any],
        client_factory: ClientFactory = SalesforceClient.from_config,
        match_max_age_seconds: float | None = DEFAULT_MAX_AGE_SECONDS,
    ) -> None:
        self.config = dict(config)
        self._match_max_age = match_max_age_seconds  # None: user matches hold for the run
        self.settings = EventSettings.from_config(config)
        self.templates = EventTemplates(self.settings.templates)  # bad templates fail here
        self.summary = RunSummary()
        self.dead_letters = DeadLettering(
            DeadLetterFile(self.settings.dead_letter_path), self.summary
        )
        self.ledger = RunLedger(self.settings)
        self._client_factory = client_factory
        self.org: OrgConnection | None = None
        self._event_writes: EventWrites | None = None
        self._nps_updates: NpsUpdates | None = None

    def register_stream(
        self, stream: str, schema: Mapping[str, Any], key_properties: Iterable[str]
    ) -> None:
        self.dead_letters.register_stream(stream, schema, key_properties)

    def load(self, records: Iterable[Mapping[str, Any]], stream: str) -> None:
        records = list(records)
        marks = self.summary.count_batch(stream, len(records))
        try:
            self._deliver(records, stream)
        finally:
            self.summary.end_batch(stream, marks)
            self.dead_letters.flush()
            self._count_calls()

    def _deliver(self, records: list[Mapping[str, Any]], stream: str) -> None:
        settings, letters, summary = self.settings, self.dead_letters, self.summary
        events = parse_events(records, stream, letters, summary)  # one per event id
        events = selected(events, settings, summary)
        events = not_confirmed_earlier(events, self.ledger, settings, summary)
        if not events:
            return  # nothing new for Salesforce: no set-up, no call
        org = self.prepare()
        deliverable = match_recipients(org.matcher, events, stream, letters, summary)
        done: dict[str, set[str]] = {e.event_id: set() for e, _ in deliverable}
        stale = StaleMatches()  # records matched earlier that are gone now
        self._write(deliverable, stream, done, stale)
        retry = stale.rematch(org.matcher, stream, letters, summary)
        for part, items in retry.items():  # once, to the records found now
            self._write(items, stream, done, parts={part})
        record_confirmed(self.ledger, (e for e, _ in deliverable), done, settings)

    def _write(
        self,
        items: list[tuple[AppcuesEvent, MatchedRecord]],
        stream: str,
        done: dict[str, set[str]],
        stale: StaleMatches | None = None,
        parts: Collection[str] = (EVENT_PART, NPS_PART),
    ) -> None:
        """Each step plans its REST write; the writes go out together, as few Composite
        calls as they fit in (one plain collections call when they fit in one collection),
        then each step confirms its own results. The NPS updates are not sent while an
        Events Bulk job runs, though they do not depend on it: an Event insert may lock its
        Lead or Contact (LastActivityDate), so updating those records meanwhile risks
        UNABLE_TO_LOCK_ROW on either side (Salesforce's record-locking guidance)."""
        settings = self.settings
        event_step = self._event_writes if EVENT_PART in parts else None
        nps_step = self._nps_updates if NPS_PART in parts else None
        events = nps = None
        if event_step is not None:
            writes = [(e, t) for e, t in items if settings.writes_event(e.name)]
            events = event_step.plan(writes, stream)
        if nps_step is not None:
            answers = [(e, t) for e, t in items if settings.updates_nps(e.name)]
            nps = nps_step.plan(answers, stream)
        event_op = events.write_plan.op if events and events.write_plan else None
        nps_op = nps.op if nps else None
        ops = [op for op in (event_op, nps_op) if op is not None]
        results, uncertain = self._send_together(ops)
        found = iter(results)
        if event_step is not None and events is not None:
            event_results = next(found) if event_op is not None else []
            sent_unsure = event_op is not None and 0 in uncertain  # the event op goes first
            confirmed = event_step.confirm(
                events, event_results, stream, stale, uncertain=sent_unsure
            )
            for event_id in confirmed:
                done[event_id].add(EVENT_PART)
        if nps_step is not None and nps is not None:
            nps_results = next(found) if nps_op is not None else []
            sent_unsure = nps_op is not None and len(ops) - 1 in uncertain  # and this one last
            confirmed = nps_step.confirm(nps, nps_results, stream, stale, uncertain=sent_unsure)
            for event_id in confirmed:
                done[event_id].add(NPS_PART)

    def _send_together(self, ops: list[CollectionOp]) -> tuple[list[list[RecordResult]], set[int]]:
        """Each operation's results, and the operations whose outcome a failure left unknown
        (their steps check before anything is sent again)."""
        if not ops:
            return [], set()
        assert self.org is not None
        try:
            return self.org.client.write_together(ops), set()
        except CompositeUncertainError as exc:
            return exc.results, exc.uncertain

    def prepare(self) -> OrgConnection:
        """Connects once, on the first batch that needs Salesforce, or before it (the webhook
        receiver checks the exactly-once strategy before its first write)."""
        if self.org is None:
            org = connect(
                self.config,
                self.settings,
                self._client_factory,
                self.ledger,
                self.summary,
                self._match_max_age,
            )
            s, letters, summary = self.settings, self.dead_letters, self.summary
            if s.sync_events and org.writer is not None:
                self._event_writes = EventWrites(org.writer, self.templates, s, letters, summary)
            if s.sync_nps_fields:
                fields = dict(org.plan.nps_fields)
                self._nps_updates = NpsUpdates(
                    org.client, org.bulk, fields, self.ledger, s, letters, summary
                )
            self.org = org  # only a fully set-up run counts as connected
        return self.org

    @property
    def strategy(self) -> StrategyChoice | None:
        """The exactly-once strategy, once connected with `sync_events`."""
        return self.org.plan.strategy if self.org is not None else None

    def dead_letter_line(self, bad: BadLine) -> None:
        self.dead_letters.bad_line(bad)

    def _count_calls(self) -> None:
        if self.org is not None:
            self.summary.api_calls = self.org.client.calls_made

    def close(self) -> None:
        self._count_calls()
        if self.org is not None:
            self.org.client.close()
        self.ledger.close()
