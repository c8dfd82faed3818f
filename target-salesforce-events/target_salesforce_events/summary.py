"""The run summary logged at the end of a run: the shared counters (plugin_kit's
`TargetRunSummary`) and this target's own."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar

from salesforce_appcues_clients.plugin_kit.run_summary import TargetRunSummary


@dataclass
class RunSummary(TargetRunSummary):
    """Loads run one batch at a time (max_parallelism 1): counters are updated directly."""

    service: ClassVar[str] = "salesforce"

    events_written: Counter[str] = field(default_factory=Counter)  # new Events by event name
    events_already_present: Counter[str] = field(default_factory=Counter)  # replays
    confirmed_earlier: int = 0  # known from the ledger as done: no call spent on them
    events_not_selected: Counter[str] = field(default_factory=Counter)  # filtered by settings
    duplicates_in_input: int = 0
    subjects_or_descriptions_cut: int = 0
    nps_records_updated: int = 0
    nps_fields_updated: Counter[str] = field(default_factory=Counter)  # by field name
    nps_answers_superseded: int = 0  # older than an answer already written
    skipped_unmatched: int = 0

    def _written(self) -> int:
        """Salesforce records written: Events created and records given NPS answers."""
        return sum(self.events_written.values()) + self.nps_records_updated

    def _skipped(self) -> int:
        """Input records that needed no write: Events already present (by the ledger or
        Salesforce), duplicates in the input, events not selected, superseded NPS answers."""
        return (
            sum(self.events_already_present.values())
            + self.duplicates_in_input
            + sum(self.events_not_selected.values())
            + self.nps_answers_superseded
        )

    def count_batch(self, stream: str, size: int) -> tuple[int, int]:
        """Call before a batch of `stream`; returns the marks `end_batch` takes."""
        self.records_read[stream] += size
        return self._written(), self._skipped()

    def end_batch(self, stream: str, marks: tuple[int, int]) -> None:
        """Assign what the batch (one at a time: max_parallelism 1) wrote and skipped."""
        self.records_written[stream] += self._written() - marks[0]
        self.records_skipped[stream] += self._skipped() - marks[1]

    def details(self) -> dict[str, Any]:
        return self.as_dict()

    def as_dict(self) -> dict[str, Any]:
        return {
            "events_written": dict(sorted(self.events_written.items())),
            "events_already_present": dict(sorted(self.events_already_present.items())),
            "confirmed_earlier": self.confirmed_earlier,
            "events_not_selected": dict(sorted(self.events_not_selected.items())),
            "duplicates_in_input": self.duplicates_in_input,
            "subjects_or_descriptions_cut": self.subjects_or_descriptions_cut,
            "nps_records_updated": self.nps_records_updated,
            "nps_fields_updated": dict(sorted(self.nps_fields_updated.items())),
            "nps_answers_superseded": self.nps_answers_superseded,
            "skipped_unmatched": self.skipped_unmatched,
            "dead_lettered": dict(sorted(self.dead_lettered.items())),
            "api_calls": self.api_calls,
        }

    def describe(self) -> str:
        written = ", ".join(f"{n} {k}" for k, n in sorted(self.events_written.items())) or "none"
        dead = ", ".join(f"{n} {k}" for k, n in sorted(self.dead_lettered.items())) or "none"
        return (
            f"Run summary: Events written: {written} "
            f"(already present: {sum(self.events_already_present.values())}); "
            f"confirmed in earlier runs (no call): {self.confirmed_earlier}; "
            f"NPS fields updated on {self.nps_records_updated} records "
            f"({sum(self.nps_fields_updated.values())} fields, "
            f"{self.nps_answers_superseded} older answers skipped); "
            f"skipped as unmatched: {self.skipped_unmatched}; dead-lettered: {dead}; "
            f"API calls made: {self.api_calls}"
        )
