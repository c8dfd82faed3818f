"""The sandbox clock: real time plus an offset that the control API can move."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class SandboxClock:
    """Thread-safe clock shared by both services of one sandbox."""

    def __init__(self) -> None:
        self._offset = timedelta(0)
        self._frozen: datetime | None = None
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            return datetime.now(UTC) + self._offset

    def set(self, now: datetime, *, freeze: bool = False) -> None:
        """Jump to `now`; time keeps running from there unless frozen."""
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        with self._lock:
            if freeze:
                self._frozen = now
            else:
                self._frozen = None
                self._offset = now - datetime.now(UTC)

    def advance(self, seconds: float) -> None:
        with self._lock:
            if self._frozen is not None:
                self._frozen += timedelta(seconds=seconds)
            else:
                self._offset += timedelta(seconds=seconds)

    def reset(self) -> None:
        with self._lock:
            self._offset = timedelta(0)
            self._frozen = None
