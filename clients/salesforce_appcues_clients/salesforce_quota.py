"""The Salesforce quota guard and the API call counter of one client.

`QuotaGuard` reads `Sforce-Limit-Info` from every API answer and is asked before every call,
so a run stops before it passes its share of the org's daily limit (a write is never cut off
after Salesforce applied it).
"""

from __future__ import annotations

import re
import threading

from .errors import QuotaExceededError

_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")


class CallCounter:
    """API calls one client made in this process (retries and replays included)."""

    def __init__(self) -> None:
        self._made = 0
        self._lock = threading.Lock()

    @property
    def made(self) -> int:
        return self._made

    def count(self) -> None:
        with self._lock:
            self._made += 1


class QuotaGuard:
    """Tracks `Sforce-Limit-Info` and stops the run before it eats too much of the org's quota."""

    def __init__(self, percent_total: float, percent_per_run: float) -> None:
        self.percent_total = percent_total
        self.percent_per_run = percent_per_run
        self.used: int | None = None
        self.limit: int | None = None
        self._lock = threading.Lock()

    def observe(self, header: str | None) -> None:
        if not header:
            return
        match = _USAGE.search(header)
        if match:
            with self._lock:
                self.used, self.limit = int(match.group(1)), int(match.group(2))

    def check(self, calls_made: int) -> None:
        """Raise QuotaExceededError if one more call would pass either cap."""
        with self._lock:
            used, limit = self.used, self.limit
        if not limit:
            return
        allowed = limit * self.percent_per_run / 100
        if calls_made + 1 > allowed:
            raise QuotaExceededError(
                0,
                "QUOTA_PER_RUN",
                f"this run made {calls_made} API calls, the cap of {self.percent_per_run:g}% "
                f"of the org's daily limit of {limit} ({int(allowed)} calls; the org has used "
                f"{used if used is not None else '?'}/{limit}); raise the setting "
                f"quota_percent_per_run to let a run use more",
            )
        if used is not None and used * 100 / limit > self.percent_total:
            raise QuotaExceededError(
                0,
                "QUOTA_TOTAL",
                f"the org has used {used} of its {limit} daily API calls "
                f"({used * 100 / limit:.1f}%), past the cap of {self.percent_total:g}%; "
                f"raise the setting quota_percent_total or wait for usage to fall",
            )
