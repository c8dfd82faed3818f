"""The receiver's Prometheus metrics (prometheus-client, on a registry of its own)."""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .spool import Spool

# Seconds from the event's time (Appcues' clock) to Salesforce's confirmation.
LATENCY_BUCKETS = (0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 300, 900, 3600)


class ReceiverMetrics:
    def __init__(self, spool: Spool, clock: Callable[[], float] = time.time) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.accepted = Counter(
            "appcues_webhook_deliveries_accepted",
            "Deliveries answered 2xx, by outcome (spooled, or duplicate of a spooled event).",
            ["outcome"],
            registry=r,
        )
        self.refused = Counter(
            "appcues_webhook_deliveries_refused",
            "Deliveries refused (never processed), by reason.",
            ["reason"],
            registry=r,
        )
        depth = Gauge("appcues_webhook_spool_depth", "Deliveries waiting in the spool.", registry=r)
        depth.set_function(lambda: float(spool.depth()))
        oldest = Gauge(
            "appcues_webhook_spool_oldest_age_seconds",
            "Age of the oldest delivery in the spool (0 when empty).",
            registry=r,
        )
        oldest.set_function(lambda: _age(spool.oldest_received_at(), clock()))
        self.events_written = Counter(
            "appcues_webhook_salesforce_events_written",
            "Salesforce Events created by the receiver.",
            registry=r,
        )
        self.salesforce_calls = Counter(
            "appcues_webhook_salesforce_api_calls", "Salesforce API calls made.", registry=r
        )
        self.dead_letters = Counter(
            "appcues_webhook_dead_letters", "Events written to the dead-letter file.", registry=r
        )
        self.batches = Counter(
            "appcues_webhook_batches",
            "Spool batches handed to the Salesforce pipeline, by result.",
            ["result"],
            registry=r,
        )
        self.latency = Histogram(
            "appcues_webhook_end_to_end_latency_seconds",
            "From the event's time to Salesforce's confirmation of its batch.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        for reason in (
            "unsigned",
            "missing_timestamp",
            "bad_timestamp",
            "bad_signature",
            "stale_timestamp",
            "too_large",
        ):
            self.refused.labels(reason)  # every reason shows, at 0, from the start
        for outcome in ("spooled", "duplicate"):
            self.accepted.labels(outcome)
        for result in ("confirmed", "failed"):
            self.batches.labels(result)


def _age(oldest: float | None, now: float) -> float:
    return 0.0 if oldest is None else max(0.0, now - oldest)
