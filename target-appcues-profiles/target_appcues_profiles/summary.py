"""The run summary: the shared counters (plugin_kit's `TargetRunSummary`) and this target's
own, updated by every sink (sinks drain in parallel threads) and logged once at the end."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar

from salesforce_appcues_clients.plugin_kit.run_summary import TargetRunSummary

from .ledger import ProfileKind


@dataclass
class RunSummary(TargetRunSummary):
    """Profiles by kind ("user" or "group"); records skipped by why; memberships; the work
    bulk imports took. Updated through the methods below, which take the lock."""

    service: ClassVar[str] = "appcues"

    created: Counter[str] = field(default_factory=Counter)  # by kind: new to the ledger
    updated: Counter[str] = field(default_factory=Counter)  # by kind: changed since confirmed
    unchanged: Counter[str] = field(default_factory=Counter)  # by kind: no call spent
    memberships_added: int = 0
    memberships_unchanged: int = 0
    deleted: int = 0  # records flagged deleted at the source: never sent
    duplicates: int = 0  # records of a profile seen again in the batch: the last one wins
    unrouted: int = 0  # records of a stream in neither user_streams nor group_streams
    import_jobs: int = 0
    import_readbacks: int = 0
    import_rows_resent: int = 0  # imported rows without a verdict, sent again by PATCH

    # --- per stream: read, then written or skipped -----------------------------------
    def read(self, stream: str, count: int = 1) -> None:
        if count:
            with self.lock:
                self.records_read[stream] += count

    def written(self, kind: ProfileKind, stream: str, *, new: bool) -> None:
        with self.lock:
            (self.created if new else self.updated)[kind] += 1
            self.records_written[stream] += 1

    def skipped_unchanged(self, kind: ProfileKind, stream: str, count: int) -> None:
        if count:
            with self.lock:
                self.unchanged[kind] += count
                self.records_skipped[stream] += count

    def skipped_deleted(self, stream: str) -> None:
        with self.lock:
            self.deleted += 1
            self.records_skipped[stream] += 1

    def skipped_duplicate(self, stream: str) -> None:
        with self.lock:
            self.duplicates += 1
            self.records_skipped[stream] += 1

    def skipped_unrouted(self, stream: str) -> None:
        with self.lock:
            self.unrouted += 1
            self.records_skipped[stream] += 1

    # --- memberships and imports (not records of a stream) ---------------------------
    def membership_added(self, count: int) -> None:
        with self.lock:
            self.memberships_added += count

    def membership_unchanged(self, count: int) -> None:
        with self.lock:
            self.memberships_unchanged += count

    def import_job(self) -> None:
        with self.lock:
            self.import_jobs += 1

    def import_readback(self) -> None:
        with self.lock:
            self.import_readbacks += 1

    def import_rows_resent_by_patch(self, count: int) -> None:
        with self.lock:
            self.import_rows_resent += count

    def details(self) -> dict[str, Any]:
        """What was written, skipped, dead-lettered and spent: the target's `summary()`."""
        with self.lock:
            return {
                "users_created": self.created["user"],
                "users_updated": self.updated["user"],
                "users_unchanged_skipped": self.unchanged["user"],
                "groups_created": self.created["group"],
                "groups_updated": self.updated["group"],
                "groups_unchanged_skipped": self.unchanged["group"],
                "memberships_added": self.memberships_added,
                "memberships_unchanged_skipped": self.memberships_unchanged,
                "deleted_records_skipped": self.deleted,
                "duplicate_records_merged": self.duplicates,
                "unrouted_records_ignored": self.unrouted,
                "dead_lettered": sum(self.dead_lettered.values()),
                "dead_lettered_by_reason": dict(sorted(self.dead_lettered.items())),
                "import_jobs": self.import_jobs,
                "import_readbacks": self.import_readbacks,
                "import_rows_resent": self.import_rows_resent,
                "api_calls": self.api_calls,
            }
