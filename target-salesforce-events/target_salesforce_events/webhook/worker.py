"""Drains the spool into Salesforce through the events target's own `EventPipeline`.

A batch is loaded when `webhook_batch_size` deliveries wait or the oldest has waited
`webhook_batch_max_age_ms`, whichever comes first. Under load (deliveries arriving at
`webhook_busy_rate_per_second` or more) the oldest may wait up to
`webhook_busy_batch_max_age_ms` for the batch to fill: a few calls per 200 events instead of
a few per handful, at a latency still of seconds. Rows leave the spool only once the
pipeline returned (every event confirmed in Salesforce, or dead-lettered with its reason);
a batch Salesforce did not confirm stays and is retried with a doubling pause, so an
outage grows the spool and loses nothing. After an Event insert that got no answer at all
the pause is the longest one (`webhook_retry_max_seconds`, or the Salesforce
`request_timeout` if longer) at once: Salesforce may still be applying that insert, and a
check made before it lands would miss its Events and send them again (a duplicate).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from salesforce_appcues_clients.appcues_events import event_id, record_fields
from salesforce_appcues_clients.plugin_kit.singer_input import BadLine

from ..events import parse_timestamp, salesforce_datetime
from ..idempotency import Strategy, UnansweredInsertError
from ..org_setup import SetupError
from ..pipeline import EventPipeline
from .metrics import ReceiverMetrics
from .settings import WebhookSettings
from .spool import Spool, SpooledDelivery

log = logging.getLogger(__name__)

STREAM = "appcues_events"  # the tap's stream name: dead letters replay through the target
RECORD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "timestamp": {"type": "string"},
        "user_id": {"type": ["string", "null"]},
        "group_id": {"type": ["string", "null"]},
        "attributes": {"type": "object"},
        "context": {"type": "object"},
    },
}


def event_record(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A webhook payload as an `appcues_events` record, shaped and identified as the tap
    shapes the same event read from the analytics API: the id comes from user, name,
    canonical timestamp and attributes (never the payload's own `id`), so both paths give
    one event one Salesforce Event. A payload whose time is unreadable gets no id: the
    pipeline dead-letters it naming the field."""
    record = record_fields(payload, payload.get("timestamp"))
    try:
        timestamp = salesforce_datetime(parse_timestamp(payload.get("timestamp")))
    except (ValueError, OverflowError, OSError):
        return record
    record["timestamp"] = timestamp
    record["id"] = event_id(record["user_id"], record["name"], timestamp, record["attributes"])
    return record


def spool_key(body: bytes) -> tuple[str, float | None]:
    """The spool's duplicate key (the event id) and the event's time, from a body."""
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        record = event_record(payload)
        if "id" in record:
            return str(record["id"]), parse_timestamp(record["timestamp"]).timestamp()
    return "sha256:" + hashlib.sha256(body).hexdigest(), None


def retry_pause(exc: Exception, previous: float, settings: WebhookSettings) -> float:
    """The wait before a batch is tried again: doubling from 0.5 s up to
    `retry_max_seconds`, but after an unanswered insert, whose Events Salesforce may commit
    after a quick retry checked for them (a read timeout does not stop Salesforce applying
    it), the longest at once, and never less than the insert's own `request_timeout`."""
    if isinstance(exc, UnansweredInsertError):
        return max(settings.retry_max_seconds, settings.unanswered_pause_seconds)
    return min(settings.retry_max_seconds, max(0.5, previous * 2))


class SpoolWorker:
    """One thread: batches from the spool, through the pipeline, then off the spool."""

    def __init__(
        self,
        spool: Spool,
        pipeline: EventPipeline,
        settings: WebhookSettings,
        metrics: ReceiverMetrics,
        clock: Callable[[], float] = time.time,
        renew: Callable[[], EventPipeline] | None = None,
    ) -> None:
        self.spool = spool
        self.pipeline = pipeline
        # A pipeline is one "run": its user matches are cached for its life, as in a poll-job
        # run; a fresh one every `webhook_run_seconds` picks up conversions and id changes.
        self._renew = renew
        self._pipeline_born = clock()
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        self.stopping = threading.Event()
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="spool-worker", daemon=True)
        self._seen = (0, 0, 0)  # pipeline totals already counted: written, dead, calls
        self.arrival_rate = 0.0  # deliveries per second, smoothed
        self._arrivals = (spool.appended, clock())
        pipeline.register_stream(STREAM, RECORD_SCHEMA, ["id"])

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30) -> None:
        """Lets the batch in hand finish (its writes are confirmed or retried later)."""
        self.stopping.set()
        self.spool.wake()
        self._thread.join(timeout)

    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            self._drain()
        finally:
            self.pipeline.close()  # in this thread: the ledger's SQLite connection was made here

    def _drain(self) -> None:
        pause = 0.0
        while not self.stopping.is_set():
            batch = self._next_batch()
            if not batch:
                continue
            try:
                self.load(batch)
            except Exception as exc:  # every failure is retried, never fatal
                self.metrics.batches.labels("failed").inc()
                self._count()
                self.last_error = f"{type(exc).__name__}: {exc}"
                pause = retry_pause(exc, pause, self.settings)
                log.error(
                    "Batch of %d deliveries not confirmed, kept in the spool; retrying in "
                    "%.1f s. %s",
                    len(batch),
                    pause,
                    self.last_error,
                )
                self.stopping.wait(pause)
                continue
            pause = 0.0
            self.last_error = None

    def _max_age(self) -> float:
        """The light-load age, or under load the longer wait that lets batches fill."""
        count, now = self.spool.appended, self.clock()
        before, then = self._arrivals
        if now - then >= 0.2:
            rate = (count - before) / (now - then)
            self.arrival_rate = rate if not self.arrival_rate else (self.arrival_rate + rate) / 2
            self._arrivals = (count, now)
        s = self.settings
        busy = 0 < s.busy_rate_per_second <= self.arrival_rate
        return max(s.batch_max_age_seconds, s.busy_batch_max_age_seconds if busy else 0)

    def _next_batch(self) -> list[SpooledDelivery]:
        size, max_age = self.settings.batch_size, self._max_age()
        oldest = self.spool.oldest_received_at()
        if oldest is None:
            self.spool.wait_for_rows(1, 0.5)
            return []
        left = oldest + max_age - self.clock()
        if left > 0:
            self.spool.wait_for_rows(size, left)  # full batch or old enough
        if self.stopping.is_set():
            return []
        return self.spool.oldest(size)

    def _renew_if_old(self) -> None:
        if self._renew is None or self.clock() - self._pipeline_born < self.settings.run_seconds:
            return
        self._count()
        old = self.pipeline
        old.close()
        log.info("%s", old.summary.describe())
        self.pipeline = self._renew()
        self.pipeline.register_stream(STREAM, RECORD_SCHEMA, ["id"])
        self._seen = (0, 0, 0)
        self._pipeline_born = self.clock()

    def load(self, batch: list[SpooledDelivery]) -> None:
        """Loads one batch; its rows leave the spool only when the pipeline returned."""
        self._renew_if_old()
        records: list[dict[str, Any]] = []
        for row in batch:
            try:
                payload = json.loads(row.body)
            except ValueError:
                payload = None
            if isinstance(payload, dict):
                records.append(event_record(payload))
            else:
                self.pipeline.dead_letter_line(
                    BadLine(
                        number=row.seq,
                        text=row.body[:2000].decode("utf-8", "replace"),
                        reason="malformed_delivery",
                        problem="(spooled webhook delivery) is not a JSON object",
                    )
                )
        if records:
            self.pipeline.prepare()  # the set-up the first load would do, no extra call
            self._refuse_ledger_only()
            self.pipeline.load(records, STREAM)
        now = self.clock()
        for row in batch:
            self.metrics.latency.observe(max(0.0, now - (row.event_time or row.received_at)))
        self.spool.remove([row.seq for row in batch])
        self.metrics.batches.labels("confirmed").inc()
        self._count()

    def _refuse_ledger_only(self) -> None:
        choice = self.pipeline.strategy
        if choice is not None and choice.strategy is Strategy.LEDGER:
            raise SetupError(
                "the receiver needs an Event id field (setting event_id_field): with the "
                "local ledger alone, the poll job could not see the receiver's Events and "
                "would write them again"
            )

    def _count(self) -> None:
        summary = self.pipeline.summary
        totals = (
            sum(summary.events_written.values()),
            sum(self.pipeline.dead_letters.counts.values()),
            summary.api_calls,
        )
        written, dead, calls = (max(0, a - b) for a, b in zip(totals, self._seen, strict=True))
        self.metrics.events_written.inc(written)
        self.metrics.dead_letters.inc(dead)
        self.metrics.salesforce_calls.inc(calls)
        self._seen = totals
