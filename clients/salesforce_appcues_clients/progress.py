"""Progress of a long job while it is polled: its state and counts every `interval` seconds.

A 30-minute Bulk 2.0 backfill or Appcues export would otherwise log nothing between its
start and its end. Each line is one structured record (fields `job`, `job_id`,
`job_state`, `elapsed_seconds` and the job's counts), so it also shows as fields under
`meltano --log-format=json`.
"""

from __future__ import annotations

import logging
import time

PROGRESS_INTERVAL_SECONDS = 30.0


class JobProgress:
    """Call `polled` after every poll; it logs at most once per interval, plus the end."""

    def __init__(
        self,
        logger: logging.Logger,
        job: str,
        job_id: str,
        interval: float = PROGRESS_INTERVAL_SECONDS,
    ) -> None:
        self.logger = logger
        self.job = job
        self.job_id = job_id
        self.interval = interval
        self.started = time.monotonic()
        self._last = self.started

    def polled(self, state: str, *, done: bool = False, **counts: int | None) -> None:
        """Logs the state and the counts the job reports (a count it lacks is left out)."""
        now = time.monotonic()
        if not done and now - self._last < self.interval:
            return
        self._last = now
        elapsed = now - self.started
        detail = "".join(
            f", {name.replace('_', ' ')} {value}"
            for name, value in counts.items()
            if value is not None
        )
        self.logger.info(
            "%s %s: %s after %.0f s%s",
            self.job,
            self.job_id,
            state,
            elapsed,
            detail,
            extra={
                "job": self.job,
                "job_id": self.job_id,
                "job_state": state,
                "elapsed_seconds": round(elapsed, 3),
                **{k: v for k, v in counts.items() if v is not None},
            },
        )
