"""The org's daily API allocation: what `Sforce-Limit-Info` and `/limits` report."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from ..common.clock import SandboxClock

_WINDOW = timedelta(hours=24)


class ApiUsage:
    """Counts REST calls in a 24-hour window that starts at the first call."""

    def __init__(self, clock: SandboxClock, daily_limit: int, header_format: str = "bare") -> None:
        self.bulk_jobs_created: Callable[[], int] = lambda: 0  # set by the service
        self.bulk_batches_created: Callable[[], int] = lambda: 0  # Bulk 1.0, set by the service
        self.clock = clock
        self.max = daily_limit
        self._configured_max = daily_limit
        self.header_format = header_format
        self.used = 0
        self._window_start: datetime | None = None
        self._lock = threading.Lock()

    def _roll(self) -> None:
        now = self.clock.now()
        if self._window_start is None or now - self._window_start >= _WINDOW:
            self._window_start = now
            self.used = 0

    def take(self) -> bool:
        """Count one call; False when the allocation is spent (the call is refused)."""
        with self._lock:
            self._roll()
            if self.used >= self.max:
                return False
            self.used += 1
            return True

    def header(self) -> str:
        with self._lock:
            value = f"api-usage={self.used}/{self.max}"
        if self.header_format == "extended":
            value += f"; per-app-api-usage={self.used}/{self.max}(appName=sandbox)"
        return value

    def set(self, used: int | None = None, maximum: int | None = None) -> None:
        with self._lock:
            self._roll()
            if maximum is not None:
                self.max = maximum
            if used is not None:
                self.used = used

    def reset(self) -> None:
        """Back to the configured allocation, nothing used."""
        with self._lock:
            self.max = self._configured_max
            self._window_start = None
            self.used = 0

    def limits_json(self) -> dict[str, Any]:
        with self._lock:
            self._roll()
            used, maximum = self.used, self.max

        def item(limit: int, left: int) -> dict[str, int]:
            return {"Max": limit, "Remaining": max(0, left)}

        return {
            "ConcurrentAsyncGetReportInstances": item(200, 200),
            "ConcurrentSyncReportRuns": item(20, 20),
            "DailyApiRequests": item(maximum, maximum - used),
            "DailyAsyncApexExecutions": item(250000, 250000),
            "DailyBulkApiBatches": item(15000, 15000 - self.bulk_batches_created()),
            "DailyBulkV2QueryFileStorageMB": item(976562, 976562),
            "DailyBulkV2QueryJobs": item(10000, 10000 - self.bulk_jobs_created()),
            "DailyStreamingApiEvents": item(1000000, 1000000),
            "DataStorageMB": item(1024, 1024),
            "FileStorageMB": item(1024, 1024),
            "HourlyODataCallout": item(20000, 20000),
            "SingleEmail": item(5000, 5000),
        }
