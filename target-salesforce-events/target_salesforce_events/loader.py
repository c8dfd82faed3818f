"""One run's delivery of event batches: match users, write Events, update NPS fields.

Nothing touches Salesforce (no login, no describe) before a batch holds an event still to
write: events of other names, and events the ledger holds as confirmed by an earlier run,
cost no call. Per-record problems become dead letters and the rest of the batch is
delivered. Anything that leaves the batch unconfirmed (Salesforce unavailable after the
clients' retries, an unconfirmable insert) raises, so the SDK emits no STATE for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from jinja2 import TemplateError

from salesforce_appcues_clients import soql
from salesforce_appcues_clients.bulk_ingest import BulkIngest
from salesforce_appcues_clients.errors import SalesforceError
from salesforce_appcues_clients.plugin_kit.dead_letters import schema_for
from salesforce_appcues_clients.plugin_kit.singer_input import BadLine
from salesforce_appcues_clients.salesforce import RecordResult, SalesforceClient
from salesforce_appcues_clients.termination import STOP

from .dead_letter import DeadLetter, DeadLetterFile
from .events import AppcuesEvent, InvalidEventError, parse_event, parse_timestamp
from .idempotency import (
    DeliveryError,
    EventWriter,
    PendingEvent,
    Strategy,
    StrategyChoice,
    choose_strategy,
)
from .idempotency import find_field as find_field_spec
from .ledger import Ledger
from .matching import DEFAULT_MAX_AGE_SECONDS, STALE_REFERENCE_CODES, MatchedRecord, UserMatcher
from .nps import (
    SCORE,
    NpsAnswer,
    NpsFields,
    RecordUpdate,
    answers_from,
    latest_per_field,
    plan_updates,
)
from .preflight import FAIL, TEXT_TYPES, evaluate
from .settings import EVENT_PART, NPS_PART, EventSettings
from .summary import RunSummary
from .templates import EventTemplates, template_context

log = logging.getLogger(__name__)


class SetupError(RuntimeError):
    """The org does not fit the settings; the message says what to change."""


def _first_error(errors: list[dict[str, Any]]) -> dict[str, Any]:
    return errors[0] if errors else {"statusCode": "UNKNOWN_ERROR", "message": "no detail"}


class EventLoader:
    """Holds the run's client, describes, ledger, dead letters and summary."""

    def __init__(
        self,
        config: Mapping[str, Any],
        client_factory: Callable[[Mapping[str, Any]], SalesforceClient] = (
            SalesforceClient.from_config
        ),
        match_max_age_seconds: float | None = DEFAULT_MAX_AGE_SECONDS,
    ) -> None:
        self.config = dict(config)
        self._match_max_age = match_max_age_seconds  # None: user matches hold for the run
        self.settings = EventSettings.from_config(config)
        self.templates = EventTemplates(self.settings.templates)  # bad templates fail here
        self.dead_letters = DeadLetterFile(self.settings.dead_letter_path)
        self.summary = RunSummary()
        self._client_factory = client_factory
        self.client: SalesforceClient | None = None
        self.ledger: Ledger | None = None
        self._matcher: UserMatcher | None = None
        self._writer: EventWriter | None = None
        self._bulk: BulkIngest | None = None
        self._nps_fields: dict[str, NpsFields] = {}
        self.strategy: StrategyChoice | None = None
        # stream -> (SCHEMA as announced, key properties): what a dead letter keeps for replay
        self.streams: dict[str, tuple[Mapping[str, Any], list[str]]] = {}
        # Writes refused in this batch for a record a fresh match may replace (None: the
        # retry itself, whose refusals are dead-lettered): (part, event, record, error).
        self._stale: list[tuple[str, AppcuesEvent, MatchedRecord, dict[str, Any]]] | None = None

    def register_stream(
        self, stream: str, schema: Mapping[str, Any], key_properties: Iterable[str]
    ) -> None:
        self.streams[stream] = (schema, list(key_properties))

    # --- set-up on the first batch that needs Salesforce --------------------------------
    def prepare(self) -> None:
        """Set up now rather than on the first batch (the webhook receiver checks the
        exactly-once strategy before its first write); later batches reuse the set-up."""
        self._prepare()

    def _prepare(self) -> SalesforceClient:
        if self.client is not None:
            return self.client
        client = self._client_factory(self.config)
        try:
            self._set_up(client)
        except BaseException:
            self.summary.api_calls = client.calls_made
            client.close()
            raise
        self.client = client  # only a fully set-up loader counts as prepared
        return client

    def _set_up(self, client: SalesforceClient) -> None:
        settings = self.settings
        wanted = [*settings.user_objects, *(["Event"] if settings.sync_events else [])]
        describes = self._describe(client, wanted)
        failures = [f for f in evaluate(describes, settings) if f.level == FAIL]
        if failures:
            raise SetupError(
                "the Salesforce org does not fit the settings:\n"
                + "\n".join(f.line() for f in failures)
            )
        if settings.sync_events:
            self.strategy = choose_strategy(describes["Event"], settings.event_id_field)
            log.info(
                "Exactly-once strategy: %s (%s)",
                self.strategy.strategy.value,
                self.strategy.explanation,
            )
        if self.strategy is not None:
            # The journal is read whatever api_type is now: a job an earlier run left open
            # is settled before anything is sent, even if the setting changed since.
            self._writer = EventWriter(
                client,
                self.strategy,
                self._open_ledger() if self.strategy.strategy is Strategy.LEDGER else None,
                bulk=self._bulk_ingest(client),
                journal=self._open_ledger(),
                use_bulk=settings.uses_bulk,
            )
        self._matcher = UserMatcher(
            client,
            settings.user_objects,
            settings.user_id_field,
            describes,
            max_age_seconds=self._match_max_age,
        )
        for obj in settings.user_objects:
            self._nps_fields[obj] = self._nps_fields_of(describes[obj])

    def _bulk_ingest(self, client: SalesforceClient) -> BulkIngest:
        """Bulk API 2.0 ingest over the run's client (no call until a job is needed)."""
        if self._bulk is None:
            self._bulk = BulkIngest(client)
        return self._bulk

    def _describe(self, client: SalesforceClient, wanted: list[str]) -> dict[str, Any]:
        """One composite/batch for the objects the run needs. A converted Lead's NPS answers
        go to its Contact: when Contact is not a user object its describe rides along (the
        client caches it), unless the integration user cannot see Contact."""
        lowered = {name.lower() for name in wanted}
        converts = self.settings.sync_nps_fields and "lead" in lowered
        extra = ["Contact"] if converts and "contact" not in lowered else []
        try:
            try:
                return client.describe([*wanted, *extra])
            except SalesforceError:
                if not extra:
                    raise
                # Contact hidden: fails later only if needed. The client cached the describes
                # that came before Contact's in the batch, so this costs no second call.
                return client.describe(wanted)
        except SalesforceError as exc:
            if exc.error_code == "NOT_FOUND":
                raise SetupError(
                    f"{exc.message}: check the object names in setting user_objects"
                ) from None
            raise

    def _open_ledger(self) -> Ledger:
        """The ledger file is local: opening it costs no API call. Confirmations older than
        `ledger_retention_days` are forgotten first."""
        if self.ledger is None:
            self.ledger = Ledger(self.settings.ledger_path)
            days = self.settings.ledger_retention_days
            if days:
                self.ledger.prune_confirmed(datetime.now(tz=UTC) - timedelta(days=days))
        return self.ledger

    def _nps_fields_of(self, describe: dict[str, Any]) -> NpsFields:
        s = self.settings
        score = find_field_spec(describe, s.nps_score_field) or {}
        feedback = find_field_spec(describe, s.nps_feedback_field) or {}
        date = find_field_spec(describe, s.nps_date_field) if s.nps_date_field else None
        return NpsFields(
            score_field=str(score.get("name", s.nps_score_field)),
            feedback_field=str(feedback.get("name", s.nps_feedback_field)),
            date_field=str(date.get("name")) if date else None,
            score_as_text=score.get("type") in TEXT_TYPES,
            feedback_max=int(feedback.get("length") or 32_768),
            date_only=bool(date and date.get("type") == "date"),
        )

    # --- one batch -------------------------------------------------------------------------
    def load(self, records: Iterable[Mapping[str, Any]], stream: str) -> None:
        records = list(records)
        marks = self.summary.count_batch(stream, len(records))
        try:
            self._load(records, stream)
        finally:
            self.summary.end_batch(stream, marks)
            self.dead_letters.flush()
            self.summary.dead_lettered = self.dead_letters.counts.copy()
            if self.client is not None:
                self.summary.api_calls = self.client.calls_made

    def dead_letter_line(self, bad: BadLine) -> None:
        """An input line that is no usable Singer message: logged and written at once."""
        log.error("Dead-lettered: %s", bad.message)
        raw_id = (bad.record or {}).get("id")
        self._dead(
            bad.reason,
            bad.message,
            event_id=str(raw_id) if raw_id not in (None, "") else None,
            stream=bad.stream,
            record=bad.record,
            line_number=bad.number,
            line_text=bad.text,
        )
        self.dead_letters.flush()
        self.summary.dead_lettered = self.dead_letters.counts.copy()

    def _dead(
        self, reason: str, message: str, event: AppcuesEvent | None = None, **kw: Any
    ) -> None:
        if event is not None:
            kw.setdefault("event_id", event.event_id)
            kw.setdefault("user_id", event.user_id)
            kw.setdefault("event_name", event.name)
            kw.setdefault("record", dict(event.record))
        known = self.streams.get(str(kw.get("stream")))
        if known is not None and isinstance(kw.get("record"), Mapping):
            kw.setdefault("schema", schema_for(known[0], kw["record"]))
            kw.setdefault("key_properties", known[1])
        self.dead_letters.add(DeadLetter(reason=reason, message=message, **kw))

    def _load(self, records: Iterable[Mapping[str, Any]], stream: str) -> None:
        settings = self.settings
        events: dict[str, AppcuesEvent] = {}
        key_properties = self.streams.get(stream, ({}, []))[1]
        for record in records:
            try:
                _check_key_properties(record, key_properties, stream)
                event = parse_event(record)
            except InvalidEventError as exc:
                raw_id = record.get("id")
                self._dead(
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
                self.summary.duplicates_in_input += 1
                continue
            events[event.event_id] = event
        wanted = []
        for event in events.values():
            if settings.writes_event(event.name) or settings.updates_nps(event.name):
                wanted.append(event)
            else:
                self.summary.events_not_selected[event.name] += 1
        wanted = self._not_confirmed_before(wanted)
        if not wanted:
            return  # nothing new for Salesforce: no set-up, no call
        self._prepare()
        assert self._matcher is not None
        matched, unmatched = self._matcher.match(e.user_id for e in wanted)
        deliverable: list[tuple[AppcuesEvent, MatchedRecord]] = []
        for event in wanted:
            target = matched.get(event.user_id)
            if target is None:
                miss = unmatched[event.user_id]
                self.summary.skipped_unmatched += 1
                self._dead(miss.reason, miss.message, event, stream=stream)
            else:
                deliverable.append((event, target))
        done: dict[str, set[str]] = {}
        self._stale = []
        if settings.sync_events:
            for event_id in self._write_events(
                [(e, t) for e, t in deliverable if settings.writes_event(e.name)], stream
            ):
                done.setdefault(event_id, set()).add(EVENT_PART)
        if settings.sync_nps_fields:
            for event_id in self._update_nps(
                [(e, t) for e, t in deliverable if settings.updates_nps(e.name)], stream
            ):
                done.setdefault(event_id, set()).add(NPS_PART)
        # A record matched (and cached) earlier may have been deleted or converted since:
        # such refusals get one fresh match and are written again now to the record found.
        retry = self._rematch_stale(stream)
        if retry[EVENT_PART]:
            for event_id in self._write_events(retry[EVENT_PART], stream):
                done.setdefault(event_id, set()).add(EVENT_PART)
        if retry[NPS_PART]:
            for event_id in self._update_nps(retry[NPS_PART], stream):
                done.setdefault(event_id, set()).add(NPS_PART)
        # Remembered only now that Salesforce confirmed every effect: a dead-lettered or
        # failed part leaves the event to be tried again when it is read again.
        self._open_ledger().add_confirmed(
            (e.event_id, settings.effects(e.name))
            for e, _ in deliverable
            if settings.effects(e.name) <= done.get(e.event_id, set())
        )

    def _not_confirmed_before(self, events: list[AppcuesEvent]) -> list[AppcuesEvent]:
        """Drops events whose effects an earlier run confirmed (a lookback re-read, a replay):
        they were written once, their NPS answers applied or superseded then."""
        if not events:
            return events  # nothing to look up: the ledger file is not even opened
        required = {e.event_id: self.settings.effects(e.name) for e in events}
        known = self._open_ledger().confirmed(required)
        for event in events:
            if event.event_id in known:
                self.summary.confirmed_earlier += 1
                if self.settings.writes_event(event.name):
                    self.summary.events_already_present[event.name] += 1
        return [e for e in events if e.event_id not in known]

    def _event_record(self, event: AppcuesEvent, target: MatchedRecord) -> dict[str, Any]:
        variables = template_context(
            name=event.name,
            attributes=event.attributes,
            context=event.context,
            event_id=event.event_id,
            user_id=event.user_id,
            timestamp=event.timestamp_text,
            group_id=event.group_id,
        )
        text = self.templates.render(event.name, variables)
        if text.cut:
            self.summary.subjects_or_descriptions_cut += 1
        record: dict[str, Any] = {
            "Subject": text.subject,
            "Description": text.description,
            "WhoId": target.record_id,
            "ActivityDateTime": event.timestamp_text,
            "DurationInMinutes": self.settings.duration_minutes,
        }
        if self.strategy is not None and self.strategy.field:
            record[self.strategy.field] = event.external_key
        return record

    def _write_events(
        self, items: list[tuple[AppcuesEvent, MatchedRecord]], stream: str
    ) -> set[str]:
        """Writes the Events; returns the ids of those Salesforce holds now."""
        assert self._writer is not None
        confirmed: set[str] = set()
        pending: list[PendingEvent] = []
        targets = {event.event_id: target for event, target in items}
        for event, target in items:
            try:
                pending.append(PendingEvent(event, self._event_record(event, target)))
            except (TemplateError, TypeError, ValueError, LookupError, AttributeError) as exc:
                self._dead(
                    "template_error",
                    f"a template of {event.name} failed: {type(exc).__name__}: {exc}",
                    event,
                    stream=stream,
                )
        for outcome in self._writer.write(pending):
            event = outcome.pending.event
            if outcome.success:
                confirmed.add(event.event_id)
            if outcome.success and outcome.already_present:
                self.summary.events_already_present[event.name] += 1
            elif outcome.success:
                self.summary.events_written[event.name] += 1
            else:
                error = _first_error(outcome.errors)
                if self._held_as_stale(EVENT_PART, event, targets[event.event_id], error):
                    continue
                self._dead(
                    "salesforce_rejected",
                    str(error.get("message", "")),
                    event,
                    status=str(error.get("statusCode")),
                    fields=[str(f) for f in error.get("fields") or []],
                    stream=stream,
                )
        return confirmed

    def _held_as_stale(
        self, part: str, event: AppcuesEvent, target: MatchedRecord, error: dict[str, Any]
    ) -> bool:
        """Keeps a refusal that says the matched record is gone or converted for
        `_rematch_stale` (once per batch), instead of dead-lettering it now."""
        if self._stale is None or str(error.get("statusCode")) not in STALE_REFERENCE_CODES:
            return False
        self._stale.append((part, event, target, error))
        return True

    def _rematch_stale(self, stream: str) -> dict[str, list[tuple[AppcuesEvent, MatchedRecord]]]:
        """Matches the users of stale refusals afresh: events whose user is found on another
        record now are returned to be written again; the others are dead-lettered, with the
        fresh lookup's reason, or Salesforce's refusal when the same record is found again."""
        held, self._stale = self._stale or [], None
        retry: dict[str, list[tuple[AppcuesEvent, MatchedRecord]]] = {EVENT_PART: [], NPS_PART: []}
        if not held:
            return retry
        assert self._matcher is not None
        moved, gone = self._matcher.rematch({event.user_id: target for _, event, target, _ in held})
        seen: set[tuple[str, str]] = set()
        unmatched: set[str] = set()
        for part, event, target, error in held:
            if (part, event.event_id) in seen:
                continue  # one NPS event may carry two refused answers
            seen.add((part, event.event_id))
            if event.user_id in moved:
                retry[part].append((event, moved[event.user_id]))
            elif event.user_id in gone:
                miss = gone[event.user_id]
                if event.event_id not in unmatched:
                    unmatched.add(event.event_id)
                    self.summary.skipped_unmatched += 1
                self._dead(miss.reason, miss.message, event, part=part, stream=stream)
            else:
                self._dead(
                    "salesforce_rejected",
                    f"{error.get('message', '')} ({target.sobject} {target.record_id}, "
                    "found again by a fresh lookup)",
                    event,
                    part=part,
                    status=str(error.get("statusCode")),
                    fields=[str(f) for f in error.get("fields") or []],
                    stream=stream,
                )
        return retry

    def _update_nps(self, items: list[tuple[AppcuesEvent, MatchedRecord]], stream: str) -> set[str]:
        """Applies the latest NPS answers; returns the ids of the events whose answers are
        all settled (written, or superseded by a newer answer that is)."""
        client = self._prepare()
        answers: list[NpsAnswer] = []
        usable: list[AppcuesEvent] = []
        for event, target in items:
            try:
                answers.extend(answers_from(event, target))
            except InvalidEventError as exc:
                self._dead(
                    exc.reason,
                    exc.message,
                    event,
                    part=NPS_PART,
                    fields=[exc.field] if exc.field else [],
                    stream=stream,
                )
            else:
                usable.append(event)
        latest = latest_per_field(answers)
        by_object: dict[str, dict[tuple[str, str], NpsAnswer]] = {}
        for key, answer in latest.items():
            by_object.setdefault(answer.target.sobject, {})[key] = answer
        # Planned per object (fields and prior values differ by object), written together:
        # one mixed-type collections call per 200 records, whatever mix of Contacts and Leads.
        planned: list[tuple[RecordUpdate, NpsFields]] = []
        settled: set[tuple[str, str]] = set()  # (record id, part) whose latest answer holds
        for sobject, group in sorted(by_object.items()):
            fields = self._nps_fields.get(sobject) or self._nps_fields_for(sobject)
            record_ids = sorted({rid for rid, _ in group})
            if fields.date_field:
                updates, stale = plan_updates(
                    group, fields, date_prior=self._dates_on_record(sobject, fields, record_ids)
                )
            else:
                updates, stale = plan_updates(
                    group, fields, ledger_prior=self._open_ledger().nps_latest(record_ids)
                )
            self.summary.nps_answers_superseded += len(stale)
            settled.update((a.target.record_id, a.part) for a in stale)
            planned.extend((update, fields) for update in updates)
        STOP.checkpoint()  # stopped: the answers are applied by the next run
        results = self._apply_updates(
            client, [{"attributes": {"type": u.sobject}, **u.as_record()} for u, _ in planned]
        )
        applied: list[tuple[str, str, Any, str]] = []
        for result in results:
            update, fields = planned[result.index]
            if result.success:
                self.summary.nps_records_updated += 1
                for answer in update.answers:
                    name = fields.score_field if answer.part == SCORE else fields.feedback_field
                    self.summary.nps_fields_updated[name] += 1
                    event = answer.event
                    applied.append((update.record_id, answer.part, event.timestamp, event.event_id))
                    settled.add((update.record_id, answer.part))
                continue
            error = _first_error(result.errors)
            for answer in update.answers:
                if self._held_as_stale(NPS_PART, answer.event, answer.target, error):
                    continue
                self._dead(
                    "salesforce_rejected",
                    str(error.get("message", "")),
                    answer.event,
                    part=NPS_PART,
                    status=str(error.get("statusCode")),
                    fields=[str(f) for f in error.get("fields") or []],
                    stream=stream,
                )
        if applied and not self.settings.nps_date_field:
            self._open_ledger().set_nps_latest(applied)
        unsettled = {
            a.event.event_id for a in answers if (a.target.record_id, a.part) not in settled
        }
        return {e.event_id for e in usable} - unsettled

    def _apply_updates(
        self, client: SalesforceClient, records: list[dict[str, Any]]
    ) -> list[RecordResult]:
        """NPS updates: an object with more than the bulk threshold of records gets one Bulk
        update job (keyed by Id), the others share mixed-type collections calls. An update
        repeats harmlessly, so these jobs need no journal."""
        positions: dict[str, list[int]] = {}
        for i, record in enumerate(records):
            positions.setdefault(record["attributes"]["type"], []).append(i)
        by_bulk = {t for t, held in positions.items() if self.settings.uses_bulk(len(held))}
        rest = [i for i, r in enumerate(records) if r["attributes"]["type"] not in by_bulk]
        results: list[RecordResult] = []
        if rest:
            results.extend(
                replace(r, index=rest[r.index])
                for r in client.update_mixed([records[i] for i in rest])
            )
        for sobject in sorted(by_bulk):
            held = positions[sobject]
            outcome = self._bulk_ingest(client).write(
                sobject, "update", [records[i] for i in held], key_field="Id"
            )
            results.extend(replace(r, index=held[r.index]) for r in outcome.results)
            if outcome.failure or outcome.unconfirmed:
                reason = outcome.failure or "rows missing from the result files"
                raise DeliveryError(
                    f"{len(outcome.unconfirmed)} of {len(held)} {sobject} NPS updates were not "
                    f"confirmed by Bulk API 2.0 ({reason}); the batch is not confirmed"
                )
        results.sort(key=lambda r: r.index)
        return results

    def _nps_fields_for(self, sobject: str) -> NpsFields:
        """Fields of an object reached only through a converted Lead (e.g. Contact)."""
        client = self._prepare()
        describe = client.describe([sobject])[sobject]
        failures = [
            f
            for f in evaluate({sobject: describe}, _only(self.settings, sobject))
            if f.level == FAIL and f.topic != sobject + "." + self.settings.user_id_field
        ]
        if failures:
            raise SetupError("\n".join(f.line() for f in failures))
        self._nps_fields[sobject] = self._nps_fields_of(describe)
        return self._nps_fields[sobject]

    def _dates_on_record(
        self, sobject: str, fields: NpsFields, record_ids: list[str]
    ) -> dict[str, Any]:
        assert fields.date_field is not None and self.client is not None
        prefix = f"SELECT Id, {soql.field_name(fields.date_field)} FROM {sobject} WHERE"
        found: dict[str, Any] = {}
        for query in soql.in_chunks(prefix, "Id", record_ids):
            for row in self.client.query(query):
                value = row.get(fields.date_field)
                if value in (None, ""):
                    found[str(row["Id"])] = None
                elif fields.date_only:
                    found[str(row["Id"])] = parse_timestamp(str(value) + "T00:00:00Z").date()
                else:
                    found[str(row["Id"])] = parse_timestamp(value).replace(microsecond=0)
        return found

    def close(self) -> None:
        if self.client is not None:
            self.summary.api_calls = self.client.calls_made
            self.client.close()
        if self.ledger is not None:
            self.ledger.close()


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


def _only(settings: EventSettings, sobject: str) -> EventSettings:
    return replace(settings, user_objects=(sobject,), sync_events=False)
