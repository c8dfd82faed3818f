"""Exactly-once Event writes: the strategy the org's Event describe allows, and the writer.

- upsert_by_external_id: `event_id_field` is an External ID -> sObject Collections upsert by
  it; a replay updates the same Event instead of adding one.
- query_then_insert: a plain filterable text field -> one query for the batch's ids (deleted
  Events included, so a replay never resurrects one a user deleted), insert the rest.
- local_ledger: no usable field -> a local SQLite ledger of written event ids.

An insert that failed after it may have reached Salesforce (the clients' UncertainWriteError)
is never blindly repeated: the writer first asks Salesforce which of those Events exist
(by id field, or for the ledger by WhoId + ActivityDateTime + Subject) and inserts only the
rest.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from salesforce_appcues_clients import soql
from salesforce_appcues_clients.errors import UncertainWriteError
from salesforce_appcues_clients.salesforce import COLLECTION_SIZE, RecordResult
from salesforce_appcues_clients.termination import STOP

from .events import AppcuesEvent, parse_timestamp
from .ledger import Ledger

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


_SECOND = timedelta(seconds=1)


class DeliveryError(RuntimeError):
    """Salesforce stayed unavailable; the batch is not confirmed and no STATE may follow."""


def _same_second(stored: datetime, sent: datetime) -> bool:
    """Whether Salesforce may have stored `sent` as `stored`: it keeps whole seconds, by
    truncating (what the sandbox does) or, should it round, the next second from .5 on."""
    floor = sent.replace(microsecond=0)
    stored = stored.replace(microsecond=0)
    return stored == floor or (sent.microsecond >= 500_000 and stored == floor + _SECOND)


class EventWriter:
    """Writes Events through sObject Collections with the chosen strategy."""

    def __init__(
        self, client: EventWriteClient, choice: StrategyChoice, ledger: Ledger | None
    ) -> None:
        if choice.strategy is Strategy.LEDGER and ledger is None:
            raise ValueError("the ledger strategy needs a ledger")
        self._client = client
        self.choice = choice
        self._ledger = ledger

    def write(self, pending: Sequence[PendingEvent]) -> list[WriteOutcome]:
        if not pending:
            return []
        if self.choice.strategy is Strategy.UPSERT:
            return self._upsert(pending)
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
        todo = [p for p in pending if p.event.event_id not in present]
        for start in range(0, len(todo), COLLECTION_SIZE):
            STOP.checkpoint()  # stopped: no new insert; the ones in flight are recorded
            outcomes.extend(self._insert_chunk(todo[start : start + COLLECTION_SIZE]))
        return outcomes

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

    def _insert_chunk(self, chunk: list[PendingEvent]) -> list[WriteOutcome]:
        outcomes: list[WriteOutcome] = []
        remaining = chunk
        for attempt in range(1, _UNCERTAIN_ATTEMPTS + 1):
            if self._ledger is not None:
                self._ledger.mark_in_flight(p.event.event_id for p in remaining)
            try:
                results = self._client.insert("Event", [p.record for p in remaining])
            except UncertainWriteError as exc:
                log.warning(
                    "insert of %d Events may or may not have reached Salesforce (%s); "
                    "checking which exist before trying again (attempt %d of %d)",
                    len(remaining),
                    exc.message,
                    attempt,
                    _UNCERTAIN_ATTEMPTS,
                )
                present = (
                    self._present_by_id(remaining)
                    if self.choice.strategy is Strategy.QUERY
                    else self._present_by_content(remaining)
                )
                confirmed = [
                    WriteOutcome(p, True, present[p.event.event_id])
                    for p in remaining
                    if p.event.event_id in present
                ]
                self._remember(confirmed)
                outcomes.extend(confirmed)
                remaining = [p for p in remaining if p.event.event_id not in present]
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
