"""The ledger's part in a run: events whose effects an earlier run confirmed cost no call,
and an event is recorded as confirmed only once Salesforce confirmed every effect of it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from datetime import UTC, datetime, timedelta

from .events import AppcuesEvent
from .ledger import Ledger
from .settings import EventSettings
from .summary import RunSummary


class RunLedger:
    """The run's ledger, opened on first need: a local file, no API call. Confirmations
    older than `ledger_retention_days` are forgotten as it opens."""

    def __init__(self, settings: EventSettings) -> None:
        self._settings = settings
        self._ledger: Ledger | None = None

    def open(self) -> Ledger:
        if self._ledger is None:
            self._ledger = Ledger(self._settings.ledger_path)
            days = self._settings.ledger_retention_days
            if days:
                self._ledger.prune_confirmed(datetime.now(tz=UTC) - timedelta(days=days))
        return self._ledger

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()


def not_confirmed_earlier(
    events: list[AppcuesEvent], ledger: RunLedger, settings: EventSettings, summary: RunSummary
) -> list[AppcuesEvent]:
    """Drops events whose effects an earlier run confirmed (a lookback re-read, a replay):
    they were written once, their NPS answers applied or superseded then."""
    if not events:
        return events  # nothing to look up: the ledger file is not even opened
    required = {e.event_id: settings.effects(e.name) for e in events}
    known = ledger.open().confirmed(required)
    for event in events:
        if event.event_id in known:
            summary.confirmed_earlier += 1
            if settings.writes_event(event.name):
                summary.events_already_present[event.name] += 1
    return [e for e in events if e.event_id not in known]


def record_confirmed(
    ledger: RunLedger,
    events: Iterable[AppcuesEvent],
    done: Mapping[str, Set[str]],
    settings: EventSettings,
) -> None:
    """Remembers the events all of whose effects (`settings.effects`) are in `done` (event
    id -> effects Salesforce confirmed): a dead-lettered or failed effect leaves its event
    to be tried again when it is read again."""
    ledger.open().add_confirmed(
        (e.event_id, settings.effects(e.name))
        for e in events
        if settings.effects(e.name) <= done.get(e.event_id, set())
    )
