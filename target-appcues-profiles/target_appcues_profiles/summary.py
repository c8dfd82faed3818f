"""Counters of one run, shared by every sink, logged once at the end."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any


class RunSummary:
    """Thread-safe named counters (sinks drain in parallel threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def add(self, name: str, amount: int = 1) -> None:
        if amount:
            with self._lock:
                self.counts[name] += amount

    def get(self, name: str) -> int:
        with self._lock:
            return self.counts[name]

    def report(self, dead_letters: Mapping[str, int], api_calls: int | None) -> dict[str, Any]:
        """The summary as a dict: what was written, skipped, dead-lettered and spent."""
        with self._lock:
            c = dict(self.counts)
        return {
            "users_created": c.get("user_new", 0),
            "users_updated": c.get("user_changed", 0),
            "users_unchanged_skipped": c.get("user_unchanged", 0),
            "groups_created": c.get("group_new", 0),
            "groups_updated": c.get("group_changed", 0),
            "groups_unchanged_skipped": c.get("group_unchanged", 0),
            "memberships_added": c.get("membership_added", 0),
            "memberships_unchanged_skipped": c.get("membership_unchanged", 0),
            "deleted_records_skipped": c.get("deleted", 0),
            "duplicate_records_merged": c.get("duplicate", 0),
            "unrouted_records_ignored": c.get("unrouted", 0),
            "dead_lettered": sum(dead_letters.values()),
            "dead_lettered_by_reason": dict(sorted(dead_letters.items())),
            "import_jobs": c.get("import_jobs", 0),
            "import_readbacks": c.get("import_readbacks", 0),
            "import_rows_resent": c.get("import_rows_resent", 0),
            "api_calls": api_calls if api_calls is not None else 0,
        }
