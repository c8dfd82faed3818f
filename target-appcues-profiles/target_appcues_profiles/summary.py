"""Counters of one run, shared by every sink, logged once at the end."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from salesforce_appcues_clients.plugin_kit.run_summary import RunTotals

# Per-stream outcomes: which counters are records written, which are records skipped.
WRITTEN = ("user_new", "user_changed", "group_new", "group_changed")
SKIPPED = ("user_unchanged", "group_unchanged", "deleted", "duplicate", "unrouted")


class RunSummary:
    """Thread-safe named counters (sinks drain in parallel threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.by_stream: Counter[tuple[str, str]] = Counter()  # (counter, stream)
        self.started = time.monotonic()

    def add(self, name: str, amount: int = 1, *, stream: str | None = None) -> None:
        if amount:
            with self._lock:
                self.counts[name] += amount
                if stream is not None:
                    self.by_stream[name, stream] += amount

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

    def totals(
        self, dead_letters: Mapping[str, int], api_calls: int | None, *, failed: bool
    ) -> RunTotals:
        """The shared summary shape (clients' run_summary): per stream, reason and service."""
        with self._lock:
            by_stream = dict(self.by_stream)
        read: Counter[str] = Counter()
        written: Counter[str] = Counter()
        skipped: Counter[str] = Counter()
        for (name, stream), count in by_stream.items():
            if name == "read":
                read[stream] += count
            elif name in WRITTEN:
                written[stream] += count
            elif name in SKIPPED:
                skipped[stream] += count
        return RunTotals(
            failed=failed,
            duration_seconds=time.monotonic() - self.started,
            records_read=read,
            records_written=written,
            records_skipped=skipped,
            dead_letters=dead_letters,
            api_calls={"appcues": api_calls or 0},
            details=self.report(dead_letters, api_calls),
        )
