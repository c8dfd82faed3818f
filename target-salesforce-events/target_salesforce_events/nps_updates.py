"""NPS updates: the Latest NPS fields of the matched Leads and Contacts, read and written.

Which answer wins is decided by the pure rules of `nps.py`; this step reads what it needs
to decide (the ledger; with `nps_date_field`, also the date, score and feedback fields on
the records), writes the winners (mixed-type sObject Collections, or one Bulk API 2.0
update job per object past `bulk_threshold` where that costs fewer calls) and returns the
events whose answers are all settled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from salesforce_appcues_clients import soql
from salesforce_appcues_clients.bulk_ingest import BulkIngest
from salesforce_appcues_clients.salesforce import RecordResult, SalesforceClient
from salesforce_appcues_clients.salesforce_composite import CollectionOp
from salesforce_appcues_clients.termination import STOP

from .confirmations import RunLedger
from .dead_lettering import DeadLettering
from .events import AppcuesEvent, InvalidEventError, parse_timestamp
from .idempotency import DeliveryError
from .matching import MatchedRecord
from .nps import (
    FEEDBACK,
    SCORE,
    NpsAnswer,
    NpsFields,
    RecordUpdate,
    answers_from,
    latest_per_field,
    plan_updates,
)
from .org_setup import plan_extra_object
from .recipients import StaleMatches
from .settings import (
    COLLECTIONS_PER_CALL,
    COMPOSITE_PER_CALL,
    NPS_PART,
    EventSettings,
    bulk_is_cheaper,
    rest_calls,
)
from .summary import RunSummary


class NpsUpdates:
    """Applies a batch's NPS answers; counts the updates and dead-letters what failed."""

    def __init__(
        self,
        client: SalesforceClient,
        bulk: BulkIngest,
        nps_fields: dict[str, NpsFields],
        ledger: RunLedger,
        settings: EventSettings,
        letters: DeadLettering,
        summary: RunSummary,
    ) -> None:
        self._client = client
        self._bulk = bulk
        self._nps_fields = nps_fields  # by object; grows by objects reached via conversion
        self._ledger = ledger
        self._settings = settings
        self._letters = letters
        self._summary = summary

    def update(
        self,
        items: list[tuple[AppcuesEvent, MatchedRecord]],
        stream: str,
        stale_matches: StaleMatches | None = None,
    ) -> set[str]:
        """Applies the latest NPS answers; returns the ids of the events whose answers are
        all settled (written, or superseded by a newer answer that is)."""
        planned = self.plan(items, stream, per_call=COLLECTIONS_PER_CALL)
        results = self._client.update_mixed(list(planned.op_records)) if planned.op else []
        return self.confirm(planned, results, stream, stale_matches)

    def plan(
        self,
        items: list[tuple[AppcuesEvent, MatchedRecord]],
        stream: str,
        per_call: int = COMPOSITE_PER_CALL,
    ) -> NpsPlan:
        """`update` up to its collections write: reads what deciding needs and plans the
        winners; `op` (mixed-type updates) is left for the caller to send, with other steps'
        operations, before `confirm` (in Composite: `per_call` records a call). Objects that
        go by Bulk are written by `confirm`."""
        answers: list[NpsAnswer] = []
        usable: list[AppcuesEvent] = []
        for event, target in items:
            try:
                answers.extend(answers_from(event, target))
            except InvalidEventError as exc:
                self._letters.add(
                    exc.reason,
                    exc.message,
                    event,
                    part=NPS_PART,
                    fields=[exc.field] if exc.field else [],
                    stream=stream,
                )
            else:
                usable.append(event)
        by_object: dict[str, dict[tuple[str, str], NpsAnswer]] = {}
        for key, answer in latest_per_field(answers).items():
            by_object.setdefault(answer.target.sobject, {})[key] = answer
        # Planned per object (fields and prior values differ by object), written together:
        # mixed-type collections of 200 records, whatever mix of Contacts and Leads.
        planned: list[tuple[RecordUpdate, NpsFields]] = []
        settled: set[tuple[str, str]] = set()  # (record id, part) whose latest answer holds
        for sobject, group in sorted(by_object.items()):
            fields = self._fields_of(sobject)
            record_ids = sorted({rid for rid, _ in group})
            # The ledger is local; the date field (and the values it dates) come with this
            # one query per batch.
            dates, values = (
                self._read_on_record(sobject, fields, record_ids) if fields.date_field else ({}, {})
            )
            ledger = self._ledger.open()
            updates, stale = plan_updates(
                group,
                fields,
                ledger_prior=ledger.nps_latest(record_ids),
                date_prior=dates,
                ledger_values=ledger.nps_written_values(record_ids),
                on_record=values,
            )
            self._summary.nps_answers_superseded += len(stale)
            settled.update((a.target.record_id, a.part) for a in stale)
            planned.extend((update, fields) for update in updates)
        STOP.checkpoint()  # stopped: the answers are applied by the next run
        records = [{"attributes": {"type": u.sobject}, **u.as_record()} for u, _ in planned]
        positions: dict[str, list[int]] = {}
        for i, record in enumerate(records):
            positions.setdefault(record["attributes"]["type"], []).append(i)
        counts = {t: len(held) for t, held in positions.items()}
        by_bulk = objects_by_bulk(counts, self._settings, per_call)
        rest = [i for i, r in enumerate(records) if r["attributes"]["type"] not in by_bulk]
        op_records = [records[i] for i in rest]
        op = CollectionOp.update_mixed(op_records) if op_records else None
        return NpsPlan(answers, usable, planned, settled, records, positions, by_bulk, rest, op)

    def confirm(
        self,
        plan: NpsPlan,
        results: list[RecordResult],
        stream: str,
        stale_matches: StaleMatches | None = None,
        uncertain: bool = False,
    ) -> set[str]:
        """`update`'s answer once `op` was sent (`results`, its RecordResults; with
        `uncertain`, those known before a failure: an update repeats harmlessly, so the rest
        is sent again). Bulk objects are written here."""
        if uncertain:
            answered = {r.index for r in results}
            missing = [i for i in range(len(plan.rest)) if i not in answered]
            again = self._client.update_mixed([plan.op_records[i] for i in missing])
            results = [*results, *(replace(r, index=missing[r.index]) for r in again)]
        mapped = [replace(r, index=plan.rest[r.index]) for r in results]
        results = sorted(mapped + self._apply_bulk(plan), key=lambda r: r.index)
        planned, settled = plan.planned, set(plan.settled)
        applied: list[tuple[str, str, datetime, str, str | None]] = []
        for result in results:
            update, fields = planned[result.index]
            if not result.success:
                error = result.errors[0] if result.errors else {}
                for answer in update.answers:
                    if stale_matches is None or not stale_matches.hold(
                        NPS_PART, answer.event, answer.target, error
                    ):
                        self._letters.rejected(
                            result.errors, answer.event, part=NPS_PART, stream=stream
                        )
                continue
            self._summary.nps_records_updated += 1
            for answer in update.answers:
                name = fields.score_field if answer.part == SCORE else fields.feedback_field
                self._summary.nps_fields_updated[name] += 1
                settled.add((update.record_id, answer.part))
            applied.extend(update.ledger_rows())
        if applied:
            self._ledger.open().set_nps_latest(applied)
        unsettled = {
            a.event.event_id for a in plan.answers if (a.target.record_id, a.part) not in settled
        }
        return {e.event_id for e in plan.usable} - unsettled

    def _fields_of(self, sobject: str) -> NpsFields:
        if sobject not in self._nps_fields:  # e.g. Contact, reached by a converted Lead
            self._nps_fields[sobject] = plan_extra_object(self._client, self._settings, sobject)
        return self._nps_fields[sobject]

    def _apply_bulk(self, plan: NpsPlan) -> list[RecordResult]:
        """The objects `objects_by_bulk` picked get one Bulk update job each (keyed by Id);
        the others share the mixed-type collections of `plan.op`. An update repeats
        harmlessly, so these jobs need no journal."""
        results: list[RecordResult] = []
        for sobject in sorted(plan.by_bulk):
            held = plan.positions[sobject]
            outcome = self._bulk.write(
                sobject, "update", [plan.records[i] for i in held], key_field="Id"
            )
            results.extend(replace(r, index=held[r.index]) for r in outcome.results)
            if outcome.failure or outcome.unconfirmed:
                reason = outcome.failure or "rows missing from the result files"
                raise DeliveryError(
                    f"{len(outcome.unconfirmed)} of {len(held)} {sobject} NPS updates were not "
                    f"confirmed by Bulk API 2.0 ({reason}); the batch is not confirmed"
                )
        return results

    def _read_on_record(
        self, sobject: str, fields: NpsFields, record_ids: list[str]
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """The date field's value on each record (the time of the answer written last), and
        its score and feedback values (to tell whether someone else changed them)."""
        assert fields.date_field is not None
        names = (fields.date_field, fields.score_field, fields.feedback_field)
        selected = ", ".join(soql.field_name(name) for name in names)
        prefix = f"SELECT Id, {selected} FROM {sobject} WHERE"
        dates: dict[str, Any] = {}
        values: dict[str, dict[str, Any]] = {}
        for query in soql.in_chunks(prefix, "Id", record_ids):
            for row in self._client.query(query):
                record_id = str(row["Id"])
                values[record_id] = {
                    SCORE: row.get(fields.score_field),
                    FEEDBACK: row.get(fields.feedback_field),
                }
                value = row.get(fields.date_field)
                if value in (None, ""):
                    dates[record_id] = None
                elif fields.date_only:
                    dates[record_id] = parse_timestamp(str(value) + "T00:00:00Z").date()
                else:
                    dates[record_id] = parse_timestamp(value).replace(microsecond=0)
        return dates, values


@dataclass
class NpsPlan:
    """A batch's planned NPS updates: `records[i]` writes `planned[i]`; the records at
    positions `rest` go by `op` (`op_records`, in that order), the objects in `by_bulk` by
    Bulk jobs."""

    answers: list[NpsAnswer]
    usable: list[AppcuesEvent]
    planned: list[tuple[RecordUpdate, NpsFields]]
    settled: set[tuple[str, str]]
    records: list[dict[str, Any]]
    positions: dict[str, list[int]]
    by_bulk: set[str]
    rest: list[int]
    op: CollectionOp | None

    @property
    def op_records(self) -> list[dict[str, Any]]:
        return [self.records[i] for i in self.rest]


def objects_by_bulk(counts: Mapping[str, int], settings: EventSettings, per_call: int) -> set[str]:
    """The objects whose NPS updates (`counts`: rows by object) go by one Bulk update job
    each: those past `bulk_threshold` (every one under `BULK2`, none under `REST`), and
    under AUTO only where the job costs fewer calls than the REST calls (`per_call` rows
    each: Composite in the pipeline) it saves. REST calls are shared by every object, so an
    object's saving is the calls its rows add to the others'; a tie goes to REST, which
    answers at once."""
    chosen = {t for t, n in counts.items() if settings.uses_bulk(n, per_call)}
    if settings.api_type != "AUTO":
        return chosen
    rest = sum(n for t, n in counts.items() if t not in chosen)
    for sobject in sorted(chosen, key=lambda t: (counts[t], t)):  # the smallest first
        saved = rest_calls(rest + counts[sobject], per_call) - rest_calls(rest, per_call)
        if not bulk_is_cheaper(saved):
            chosen.discard(sobject)
            rest += counts[sobject]
    return chosen
