"""Exactly-once Event writes: the strategy the org's Event describe allows, and the writer.

- upsert_by_external_id: `event_id_field` is an External ID -> sObject Collections upsert by
  it; a replay updates the same Event instead of adding one.
- query_then_insert: a plain filterable text field -> one query for the batch's ids (deleted
  Events included, so a replay never resurrects one a user deleted), insert the rest.
- local_ledger: no usable field -> a local SQLite ledger of written event ids.

An insert that failed after it may have reached Salesforce (the clients' UncertainWriteError)
is never blindly repeated: the writer first asks Salesforce which of those Events exist
(by id field, or for the ledger by WhoId + ActivityDateTime + Subject) and inserts only the
rest. When no answer came at all (a timeout, a connection lost after sending), Salesforce may
still be applying the insert, so that check waits for the next run: the batch fails
unconfirmed (the ledger keeps the ids in flight).

Large batches go through one Bulk API 2.0 ingest job instead of collections (`use_bulk`):
the same checks run before the job, only its successful results confirm rows (or, for rows
a completed job's results did not name, the insert strategies' check), and every job
is journaled in the ledger's SQLite before its data is sent. A run killed while a job ran
leaves the entry; the next `write` first waits for that job (and, for the ledger strategy,
reads its successful results into the ledger), so nothing is sent twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from salesforce_appcues_clients import soql
from salesforce_appcues_clients.bulk_ingest import BulkIngest, cell, null_cell
from salesforce_appcues_clients.errors import SalesforceError, UncertainWriteError
from salesforce_appcues_clients.salesforce import COLLECTION_SIZE, RecordResult
from salesforce_appcues_clients.salesforce_composite import CollectionOp
from salesforce_appcues_clients.termination import STOP

from .events import AppcuesEvent, parse_timestamp
from .ledger import Ledger
from .settings import COLLECTIONS_PER_CALL, COMPOSITE_PER_CALL

log = logging.getLogger(__name__)

_TEXT_TYPES = frozenset({"string", "textarea", "email", "phone", "url", "combobox"})
_UNCERTAIN_ATTEMPTS = 3
_MAX_TEXT_LENGTH = 255


class Strategy(StrEnum):
    UPSERT = "upsert_by_external_id"
    QUERY = "query_then_insert"
    LEDGER = "local_ledger"


@dataclass(frozen=True)
class StrategyChoice:
    strategy: Strategy
    field: str | None  # the Event field that receives the event id (None: not set)
    explanation: str


def find_field(describe: dict[str, Any], name: str) -> dict[str, Any] | None:
    """A field of a describe result, matched case-insensitively as Salesforce does."""
    lowered = name.lower()
    for spec in describe.get("fields", []):
        if str(spec.get("name", "")).lower() == lowered:
            return dict(spec)
    return None


def choose_strategy(event_describe: dict[str, Any], event_id_field: str | None) -> StrategyChoice:
    if not event_id_field:
        return StrategyChoice(
            Strategy.LEDGER,
            None,
            "no event_id_field is set, so a local ledger of written "
            "event ids prevents duplicates (keep its file between runs)",
        )
    spec = find_field(event_describe, event_id_field)
    if spec is None:
        return StrategyChoice(
            Strategy.LEDGER,
            None,
            f"Event has no field {event_id_field}, so a local ledger of "
            "written event ids prevents duplicates; create the field as an External ID to let "
            "Salesforce itself keep Events unique",
        )
    name = str(spec["name"])
    writable = bool(spec.get("createable")) and bool(spec.get("updateable"))
    if spec.get("externalId") and writable:
        return StrategyChoice(
            Strategy.UPSERT, name, f"Event.{name} is an External ID: Events are upserted by it"
        )
    if spec.get("filterable") and spec.get("createable") and spec.get("type") in _TEXT_TYPES:
        return StrategyChoice(
            Strategy.QUERY,
            name,
            f"Event.{name} is a plain text field: each batch queries the "
            "ids already present and inserts only the others (marking it External ID would "
            "save that query)",
        )
    return StrategyChoice(
        Strategy.LEDGER,
        name if spec.get("createable") else None,
        f"Event.{name} is neither an External ID nor a filterable text field, so a local "
        "ledger of written event ids prevents duplicates",
    )


class EventWriteClient(Protocol):
    def query(
        self, soql: str, include_deleted: bool = False, batch_size: int | None = None
    ) -> Iterable[dict[str, Any]]: ...

    def insert(
        self, sobject: str, records: list[dict[str, Any]], all_or_none: bool = False
    ) -> list[RecordResult]: ...

    def upsert(
        self,
        sobject: str,
        external_id_field: str,
        records: list[dict[str, Any]],
        all_or_none: bool = False,
    ) -> list[RecordResult]: ...


@dataclass
class PendingEvent:
    event: AppcuesEvent
    record: dict[str, Any]  # the Event's fields


@dataclass
class WriteOutcome:
    pending: PendingEvent
    success: bool
    salesforce_id: str | None = None
    already_present: bool = False  # a replay: the Event existed before this write
    errors: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class EventWritePlan:
    outcomes: list[WriteOutcome]  # settled before any REST write (present, Bulk)
    todo: list[PendingEvent]  # what `op` writes, in its record order
    op: CollectionOp | None


_SECOND = timedelta(seconds=1)


class DeliveryError(RuntimeError):
    """Salesforce stayed unavailable; the batch is not confirmed and no STATE may follow."""


class UnansweredInsertError(DeliveryError):
    """An insert got no answer at all: Salesforce may still be applying it, so whoever tries
    again must first give it time (the next run does; the webhook receiver pauses its
    longest), then check which Events exist before sending the rest."""


def _same_second(stored: datetime, sent: datetime) -> bool:
    """Whether Salesforce may have stored `sent` as `stored`: it keeps whole seconds, by
    truncating (what the sandbox does) or, should it round, the next second from .5 on."""
    floor = sent.replace(microsecond=0)
    stored = stored.replace(microsecond=0)
    return stored == floor or (sent.microsecond >= 500_000 and stored == floor + _SECOND)


class EventWriter:
    """Writes Events through sObject Collections with the chosen strategy."""

    def __init__(
        self,
        client: EventWriteClient,
        choice: StrategyChoice,
        ledger: Ledger | None,
        bulk: BulkIngest | None = None,
        journal: Ledger | None = None,
        use_bulk: Callable[[int, int], bool] = lambda writes, per_call: False,
    ) -> None:
        if choice.strategy is Strategy.LEDGER and ledger is None:
            raise ValueError("the ledger strategy needs a ledger")
        if bulk is not None and journal is None:
            raise ValueError("Bulk writes need a journal")
        self._client = client
        self.choice = choice
        self._ledger = ledger
        self._bulk = bulk
        self._journal = journal
        # (writes, records per REST call) -> by Bulk? (EventSettings.uses_bulk)
        self._use_bulk = use_bulk if bulk is not None else (lambda writes, per_call: False)

    def write(self, pending: Sequence[PendingEvent]) -> list[WriteOutcome]:
        if not pending:
            return []
        self._settle_open_jobs()
        if self.choice.strategy is Strategy.UPSERT:
            if self._use_bulk(len(pending), COLLECTIONS_PER_CALL):  # `_upsert`: 200 a call
                return self._bulk_write(pending, "upsert")
            return self._upsert(pending)
        outcomes, todo = self._known(pending)
        if self._use_bulk(len(todo), COLLECTIONS_PER_CALL):
            outcomes.extend(self._bulk_write(todo, "insert"))
            return outcomes
        for start in range(0, len(todo), COLLECTION_SIZE):
            STOP.checkpoint()  # stopped: no new insert; the ones in flight are recorded
            outcomes.extend(self._insert_chunk(todo[start : start + COLLECTION_SIZE]))
        return outcomes

    # --- plan and confirm: the REST writes sent by the caller with other steps' ----------
    def plan(self, pending: Sequence[PendingEvent]) -> EventWritePlan:
        """What `write` would do, up to the REST write itself: upserts are left as `op`, for
        the caller to send (with other steps' operations) and hand to `confirm`; Bulk paths
        and the insert strategies write now."""
        if not pending:
            return EventWritePlan([], [], None)
        if self.choice.strategy is not Strategy.UPSERT:
            # Inserts keep their own calls (tests/reliability "insert timed out after
            # Salesforce applied it": a Composite that got no answer was applied after the
            # check that followed it). A lone insert without answer is not checked at once
            # either (`_insert_chunk`).
            return EventWritePlan(self.write(pending), [], None)
        self._settle_open_jobs()
        assert self.choice.field is not None
        if self._use_bulk(len(pending), COMPOSITE_PER_CALL):  # `op` goes out in Composite
            return EventWritePlan(self._bulk_write(pending, "upsert"), [], None)
        records = [p.record for p in pending]
        op = CollectionOp.upsert("Event", self.choice.field, records)
        return EventWritePlan([], list(pending), op)

    def confirm(
        self, plan: EventWritePlan, results: list[RecordResult], uncertain: bool = False
    ) -> list[WriteOutcome]:
        """The outcomes of a plan whose `op` was sent: `results` are its RecordResults (with
        `uncertain`, those known before a failure that may or may not have applied the rest:
        an insert is then never resent blindly, the strategy's check runs first)."""
        outcomes = list(plan.outcomes)
        inserting = self.choice.strategy is not Strategy.UPSERT
        done = [
            WriteOutcome(
                plan.todo[r.index],
                r.success,
                r.id,
                already_present=r.success and r.created is False and not inserting,
                errors=r.errors,
            )
            for r in results
        ]
        if inserting:
            self._remember(done)
        outcomes.extend(done)
        if not uncertain:
            return outcomes
        answered = {r.index for r in results}
        remaining = [p for i, p in enumerate(plan.todo) if i not in answered]
        if not inserting:
            return outcomes + self._upsert(remaining)  # an upsert repeats harmlessly
        log.warning(
            "insert of %d Events may or may not have reached Salesforce; checking which exist "
            "before trying again",
            len(remaining),
        )
        todo = self._confirm_present(remaining, outcomes)
        for start in range(0, len(todo), COLLECTION_SIZE):
            STOP.checkpoint()
            outcomes.extend(self._insert_chunk(todo[start : start + COLLECTION_SIZE]))
        return outcomes

    def _known(
        self, pending: Sequence[PendingEvent]
    ) -> tuple[list[WriteOutcome], list[PendingEvent]]:
        """Insert strategies: the Events Salesforce already holds, and the others."""
        present: dict[str, str | None]
        if self.choice.strategy is Strategy.QUERY:
            present = dict(self._present_by_id(pending))
        else:
            assert self._ledger is not None
            present = dict.fromkeys(self._ledger.written(p.event.event_id for p in pending))
            # Sent by a run that died before recording the outcome: ask Salesforce.
            unsure = self._ledger.in_flight(p.event.event_id for p in pending)
            unsure -= present.keys()
            if unsure:
                found = self._present_by_content([p for p in pending if p.event.event_id in unsure])
                self._ledger.add_written(found.items())
                self._ledger.clear_in_flight(unsure - found.keys())
                present.update(found)
        outcomes = [
            WriteOutcome(p, True, present[p.event.event_id], already_present=True)
            for p in pending
            if p.event.event_id in present
        ]
        return outcomes, [p for p in pending if p.event.event_id not in present]

    # --- Bulk API 2.0 ingest ---------------------------------------------------------------
    def _bulk_write(self, items: Sequence[PendingEvent], operation: str) -> list[WriteOutcome]:
        """One job per 100 MB of CSV. Rows Salesforce reported are returned; any row it did
        not (a Failed/Aborted job, a row in no result file) fails the batch after the
        confirmed ones are recorded: the next run sends those again, by the same checks."""
        assert self._bulk is not None and self._journal is not None
        journal = self._journal
        keep_rows = self.choice.strategy is Strategy.LEDGER

        def on_job(job_id: str, positions: list[int]) -> None:
            rows = [items[i] for i in positions]
            journal.open_ingest_job(
                job_id,
                [(self._row_key(p.record), p.event.event_id) for p in rows] if keep_rows else (),
            )
            if self._ledger is not None:
                self._ledger.mark_in_flight(p.event.event_id for p in rows)
            log.info("Bulk ingest job %s: %s of %d Events", job_id, operation, len(rows))

        def on_settled(job_id: str, results: list[RecordResult]) -> None:
            self._remember([self._outcome(items, r) for r in results])
            journal.settle_ingest_job(job_id)

        outcome = self._bulk.write(
            "Event",
            operation,
            [p.record for p in items],
            key_field=self.choice.field,
            external_id_field=self.choice.field if operation == "upsert" else None,
            on_job=on_job,
            on_settled=on_settled,
        )
        outcomes = [self._outcome(items, r) for r in outcome.results]
        unconfirmed = outcome.unconfirmed
        if unconfirmed and not outcome.failure and self.choice.strategy is not Strategy.UPSERT:
            # Every job completed, yet no result row named these: their echo is spelled
            # otherwise than sent (a guess, docs/sandbox.md). Salesforce holds each or never
            # will: the strategy's check tells, rather than failing every such batch.
            left = self._confirm_present([items[i] for i in unconfirmed], outcomes)
            still = {p.event.event_id for p in left}
            unconfirmed = [i for i in unconfirmed if items[i].event.event_id in still]
        if outcome.failure or unconfirmed:
            raise DeliveryError(
                f"{len(unconfirmed)} of {len(items)} Events were not confirmed by Bulk "
                f"API 2.0 ({outcome.failure or 'rows missing from the result files'}); the "
                "batch is not confirmed and the next run sends them again after checking "
                "which exist"
            )
        return outcomes

    @staticmethod
    def _outcome(items: Sequence[PendingEvent], result: RecordResult) -> WriteOutcome:
        return WriteOutcome(
            items[result.index],
            result.success,
            result.id,
            already_present=result.success and result.created is False,
            errors=result.errors,
        )

    def _row_key(self, record: dict[str, Any]) -> str:
        """How a result row names this record: its event id field, else all its cells."""
        if self.choice.field:
            return cell(record.get(self.choice.field), null_cell("insert"))
        return json.dumps([[c.lower(), cell(v, null_cell("insert"))] for c, v in record.items()])

    def _settle_open_jobs(self) -> None:
        """Jobs an earlier run created and never settled (it was killed or stopped): wait for
        each to finish, record what it wrote, then forget it. No call when there is none."""
        if self._journal is None or self._bulk is None:
            return
        for job_id in self._journal.open_ingest_jobs():
            log.warning("Bulk ingest job %s was left open by an earlier run: settling it", job_id)
            try:
                state = self._bulk.state(job_id)
            except SalesforceError as exc:
                if exc.error_code != "NOT_FOUND":
                    raise
                state = "NOT_FOUND"  # deleted: the ledger's in-flight marks ask Salesforce
            if state == "Open":
                self._bulk.abort(job_id)  # its data never fully arrived: nothing written
            elif state != "NOT_FOUND":
                state = str(self._bulk.wait(job_id).get("state"))
            if self._ledger is not None and state in ("JobComplete", "Failed", "Aborted"):
                self._ledger.add_written(self._written_by(job_id))
            self._journal.settle_ingest_job(job_id)

    def _written_by(self, job_id: str) -> list[tuple[str, str | None]]:
        """(event id, Salesforce Id) of the journaled rows in the job's successful results."""
        assert self._bulk is not None and self._journal is not None
        keys = self._journal.ingest_job_rows(job_id)
        if not keys:
            return []
        columns = None
        if not self.choice.field and keys:
            columns = [c for c, _ in json.loads(next(iter(keys)))]
        written: list[tuple[str, str | None]] = []
        for row in self._bulk.result_rows(job_id, "successfulResults"):
            lowered = {k.lower(): v for k, v in row.items()}
            if columns is None:
                key = lowered.get(str(self.choice.field).lower(), "")
            else:
                key = json.dumps([[c, lowered.get(c, "")] for c in columns])
            event_ids = keys.get(key)
            if event_ids:
                written.append((event_ids.pop(), lowered.get("sf__id") or None))
        return written

    # --- strategies --------------------------------------------------------------------
    def _upsert(self, pending: Sequence[PendingEvent]) -> list[WriteOutcome]:
        assert self.choice.field is not None
        outcomes: list[WriteOutcome] = []
        # One call per collection, so that a stop (SIGTERM/SIGINT) waits for one call only.
        for start in range(0, len(pending), COLLECTION_SIZE):
            STOP.checkpoint()
            chunk = pending[start : start + COLLECTION_SIZE]
            results = self._client.upsert("Event", self.choice.field, [p.record for p in chunk])
            outcomes.extend(
                WriteOutcome(
                    chunk[r.index],
                    r.success,
                    r.id,
                    already_present=r.success and r.created is False,
                    errors=r.errors,
                )
                for r in results
            )
        return outcomes

    def _present_by_id(self, pending: Sequence[PendingEvent]) -> dict[str, str]:
        """Event id -> Salesforce Id of those whose Events exist, found by the stored key.

        The keys hold no uppercase letter (`salesforce_key`), so Salesforce's case-insensitive
        match finds exactly the Event of each key; the exact comparison below only drops rows
        it returns for other values."""
        assert self.choice.field is not None
        # An id longer than a Text field can hold is not stored anywhere (its insert will be
        # refused with STRING_TOO_LONG), and must not reach a query URI.
        wanted = {
            p.event.external_key: p.event.event_id
            for p in pending
            if len(p.event.external_key) <= _MAX_TEXT_LENGTH
        }
        present: dict[str, str] = {}
        prefix = f"SELECT Id, {self.choice.field} FROM Event WHERE"
        for query in soql.in_chunks(prefix, self.choice.field, sorted(wanted)):
            for row in self._client.query(query, include_deleted=True):
                value = row.get(self.choice.field)
                if isinstance(value, str) and value in wanted:
                    present[wanted[value]] = str(row.get("Id"))
        return present

    def _present_by_content(self, chunk: Sequence[PendingEvent]) -> dict[str, str]:
        """Ledger mode: which of these Events exist, by WhoId + ActivityDateTime + Subject."""
        times = [p.event.timestamp for p in chunk]
        low = min(times).replace(microsecond=0)
        high = max(times).replace(microsecond=0)
        prefix = (
            "SELECT Id, WhoId, ActivityDateTime, Subject FROM Event WHERE "
            f"ActivityDateTime >= {soql.quote(low)} AND "
            f"ActivityDateTime <= {soql.quote(high + _SECOND)} AND"
        )
        rows: list[dict[str, Any]] = []
        who_ids = sorted({str(p.record.get("WhoId")) for p in chunk})
        for query in soql.in_chunks(prefix, "WhoId", who_ids):
            rows.extend(self._client.query(query, include_deleted=True))
        present: dict[str, str] = {}
        taken: set[str] = set()
        for p in chunk:
            for row in rows:
                row_id = str(row.get("Id"))
                if (
                    row_id not in taken
                    and row.get("WhoId") == p.record.get("WhoId")
                    and row.get("Subject") == p.record.get("Subject")
                    and _same_second(
                        parse_timestamp(row.get("ActivityDateTime")), p.event.timestamp
                    )
                ):
                    present[p.event.event_id] = row_id
                    taken.add(row_id)
                    break
        return present

    def _confirm_present(
        self, uncertain: list[PendingEvent], outcomes: list[WriteOutcome]
    ) -> list[PendingEvent]:
        """After an insert whose fate is unknown: the Events Salesforce holds now are
        confirmed (added to `outcomes` and remembered); returns the others, to send again."""
        present = (
            self._present_by_id(uncertain)
            if self.choice.strategy is Strategy.QUERY
            else self._present_by_content(uncertain)
        )
        confirmed = [
            WriteOutcome(p, True, present[p.event.event_id])
            for p in uncertain
            if p.event.event_id in present
        ]
        self._remember(confirmed)
        outcomes.extend(confirmed)
        return [p for p in uncertain if p.event.event_id not in present]

    def _insert_chunk(self, chunk: list[PendingEvent]) -> list[WriteOutcome]:
        outcomes: list[WriteOutcome] = []
        remaining = chunk
        for attempt in range(1, _UNCERTAIN_ATTEMPTS + 1):
            if self._ledger is not None:
                self._ledger.mark_in_flight(p.event.event_id for p in remaining)
            try:
                results = self._client.insert("Event", [p.record for p in remaining])
            except UncertainWriteError as exc:
                if exc.unanswered:
                    # Salesforce may still be applying it: a check now could miss Events it
                    # commits later, and sending them again would duplicate them. The next
                    # attempt checks first (the ledger keeps them in flight; query_then_insert
                    # asks by id).
                    raise UnansweredInsertError(
                        f"insert of {len(remaining)} Events got no answer ({exc.message}); "
                        "Salesforce may still be applying it, so it is not checked and sent "
                        "again now: the batch is not confirmed and the next run checks which "
                        "exist before sending the rest"
                    ) from None
                log.warning(
                    "insert of %d Events may or may not have reached Salesforce (%s); "
                    "checking which exist before trying again (attempt %d of %d)",
                    len(remaining),
                    exc.message,
                    attempt,
                    _UNCERTAIN_ATTEMPTS,
                )
                remaining = self._confirm_present(remaining, outcomes)
                if not remaining:
                    return outcomes
                continue
            done = [
                WriteOutcome(remaining[r.index], r.success, r.id, errors=r.errors) for r in results
            ]
            self._remember(done)
            outcomes.extend(done)
            return outcomes
        raise DeliveryError(
            f"{len(remaining)} Events could not be confirmed as written after "
            f"{_UNCERTAIN_ATTEMPTS} attempts; the batch is not confirmed"
        )

    def _remember(self, outcomes: list[WriteOutcome]) -> None:
        if self._ledger is None:
            return
        written = [(o.pending.event.event_id, o.salesforce_id) for o in outcomes if o.success]
        if written:
            self._ledger.add_written(written)
        refused = [o.pending.event.event_id for o in outcomes if not o.success]
        if refused:
            self._ledger.clear_in_flight(refused)
