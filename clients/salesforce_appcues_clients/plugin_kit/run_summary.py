"""A run's summary as one structured log record and as singer-sdk METRIC counters.

Each plugin ends its run with one INFO record: the message is the plugin's human line, the
named fields ride in the record's `extra`. singer-sdk's StructuredFormatter writes them as
JSON when Meltano runs a plugin with the `structured-logging` capability, and Meltano parses
that line back into fields of its own log record (shown by `meltano --log-format=json`).
Plain `tap | target` runs print only the message.

`TargetRunSummary` is what both targets count the same way; each target's summary is a
subclass that adds its own counters and says how they appear in `details`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from singer_sdk import metrics

# The fields every plugin's summary record carries (docs/operations.md, "Monitoring").
SUMMARY_FIELDS = (
    "run_summary",
    "duration_seconds",
    "records_read",
    "records_written",
    "records_skipped",
    "dead_letters",
    "api_calls",
    "details",
)


@dataclass(frozen=True)
class RunTotals:
    """What one run read, wrote, skipped, dead-lettered and spent."""

    failed: bool
    duration_seconds: float
    records_read: Mapping[str, int]  # by stream
    records_written: Mapping[str, int]  # by stream
    records_skipped: Mapping[str, int]  # by stream
    dead_letters: Mapping[str, int]  # by reason
    api_calls: Mapping[str, int]  # by service: salesforce, appcues
    details: Mapping[str, Any] = field(default_factory=dict)  # the plugin's own counters

    def fields(self) -> dict[str, Any]:
        return {
            "run_summary": "failed" if self.failed else "complete",
            "duration_seconds": round(self.duration_seconds, 3),
            "records_read": _sorted(self.records_read),
            "records_written": _sorted(self.records_written),
            "records_skipped": _sorted(self.records_skipped),
            "dead_letters": _sorted(self.dead_letters),
            "api_calls": _sorted(self.api_calls),
            "details": dict(self.details),
        }


@dataclass
class TargetRunSummary:
    """The counters every target keeps for one run, and how they become `RunTotals`.

    Per input stream: records read, written and skipped (needing no write); dead letters by
    the key the target counts them under; the calls made to the one service the target
    writes to. A subclass adds the target's own counters and reports them in `details`.
    `lock` guards updates made from parallel threads (the profiles target's sinks drain in
    parallel); a target that loads one batch at a time may update the counters directly.
    """

    service: ClassVar[str]  # the service the API calls go to: "appcues" or "salesforce"

    records_read: Counter[str] = field(default_factory=Counter)  # by stream
    records_written: Counter[str] = field(default_factory=Counter)  # by stream
    records_skipped: Counter[str] = field(default_factory=Counter)  # by stream
    dead_lettered: Counter[str] = field(default_factory=Counter)  # by reason
    api_calls: int = 0
    started: float = field(default_factory=time.monotonic)
    lock: threading.RLock = field(
        default_factory=threading.RLock, init=False, repr=False, compare=False
    )

    def details(self) -> dict[str, Any]:
        """The target's own counters, as the summary's `details` field."""
        raise NotImplementedError

    def totals(self, *, failed: bool) -> RunTotals:
        """The shared summary shape: per stream, reason and service."""
        with self.lock:
            return RunTotals(
                failed=failed,
                duration_seconds=time.monotonic() - self.started,
                records_read=Counter(self.records_read),
                records_written=+self.records_written,
                records_skipped=+self.records_skipped,
                dead_letters=Counter(self.dead_lettered),
                api_calls={self.service: self.api_calls},
                details=self.details(),
            )


def _sorted(counts: Mapping[str, int]) -> dict[str, int]:
    return {k: int(v) for k, v in sorted(counts.items())}


def log_run_summary(logger: logging.Logger, totals: RunTotals, message: str, *args: Any) -> None:
    """The summary record (the human `message` with the fields), then the METRIC counters."""
    logger.info(message, *args, extra=totals.fields())
    log_counters(totals)


def log_counters(totals: RunTotals) -> None:
    """singer-sdk METRIC points of the run's counts: records written, skipped and
    dead-lettered by stream or reason (`record_count` with an `outcome` tag; the SDK
    already counts records read), and API calls by service (`http_request_count`)."""
    logger = metrics.get_metrics_logger()
    pid = os.getpid()

    def point(metric: metrics.Metric, value: int, **tags: Any) -> None:
        metrics.log(logger, metrics.Point("counter", metric, value, {**tags, "pid": pid}))

    for stream, count in sorted(totals.records_written.items()):
        point(metrics.Metric.RECORD_COUNT, count, stream=stream, outcome="written")
    for stream, count in sorted(totals.records_skipped.items()):
        point(metrics.Metric.RECORD_COUNT, count, stream=stream, outcome="skipped")
    for reason, count in sorted(totals.dead_letters.items()):
        point(metrics.Metric.RECORD_COUNT, count, outcome="dead_lettered", reason=reason)
    for service, count in sorted(totals.api_calls.items()):
        point(metrics.Metric.HTTP_REQUEST_COUNT, count, service=service)
