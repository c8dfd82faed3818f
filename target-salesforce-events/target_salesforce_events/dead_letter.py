"""The dead-letter file: one JSON line per event that was not delivered, with the reason."""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from salesforce_appcues_clients.local_files import local_file_errors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeadLetter:
    """Why one event was not delivered (or only partly: `part` says which write failed)."""

    reason: str  # our code: unmatched_user, missing_user_id, salesforce_error, ...
    message: str
    event_id: str | None = None
    user_id: str | None = None
    event_name: str | None = None
    part: str = "event"  # "event" (the Event record) or "nps" (the NPS field update)
    status_code: str | None = None  # Salesforce's statusCode when Salesforce refused it
    fields: Sequence[str] = ()
    stream: str | None = None
    record: Mapping[str, Any] | None = field(default=None, repr=False)
    # An input line that was no usable Singer message: where, and what it said (cut short).
    line_number: int | None = None
    line_text: str | None = None


class DeadLetterFile:
    """Appends JSON lines; counts by reason for the run summary."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.counts: Counter[str] = Counter()
        self._pending: list[DeadLetter] = []

    def add(self, letter: DeadLetter) -> None:
        # One line per letter, so the run's log names every record that was not delivered.
        log.warning(
            "Dead-lettered event %s of user %s (%s): %s",
            letter.event_id or "-",
            letter.user_id or "-",
            letter.reason,
            letter.message,
        )
        self._pending.append(letter)
        key = (
            letter.reason if letter.status_code is None else f"{letter.reason}:{letter.status_code}"
        )
        self.counts[key] += 1

    def flush(self) -> None:
        """Write what was added, durably, before the batch counts as done."""
        with local_file_errors(self.path, "dead_letter_path", "write the dead-letter file"):
            self._write_pending()

    def _write_pending(self) -> None:
        if not self._pending:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        at = datetime.now(tz=UTC).isoformat()
        with self.path.open("a", encoding="utf-8") as handle:
            for letter in self._pending:
                line = {"at": at, **asdict(letter)}
                line["fields"] = list(letter.fields)
                handle.write(json.dumps(line, default=_json_default) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self._pending.clear()

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
