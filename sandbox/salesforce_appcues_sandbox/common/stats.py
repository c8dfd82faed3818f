"""Counts API calls by method and path pattern, for the control API's `GET stats`."""

from __future__ import annotations

import re
import threading
from collections import Counter
from typing import Any

# Ids and numbers in paths are folded so calls group by endpoint, not by record.
_PATTERNS = [
    (re.compile(r"/v\d+\.\d+/"), "/vXX.X/"),
    (re.compile(r"/[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?(?=/|$|-)"), "/{id}"),
    (re.compile(r"/\d+(?=/|$)"), "/{n}"),
]


def path_pattern(path: str) -> str:
    for pattern, replacement in _PATTERNS:
        path = pattern.sub(replacement, path)
    return path


class CallStats:
    """Thread-safe counters; services add their own named counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.counters: Counter[str] = Counter()

    def record_call(self, method: str, path: str) -> None:
        key = f"{method} {path_pattern(path)}"
        with self._lock:
            self.calls[key] += 1

    def incr(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self.counters[name] += amount

    def total_calls(self) -> int:
        with self._lock:
            return sum(self.calls.values())

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "total_calls": sum(self.calls.values()),
                "calls": dict(sorted(self.calls.items())),
                "counters": dict(sorted(self.counters.items())),
            }

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.counters.clear()
