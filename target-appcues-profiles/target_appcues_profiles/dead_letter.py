"""The dead-letter file: one JSON line per record that could not be delivered, with why."""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from salesforce_appcues_clients.local_files import local_file_errors


@dataclass(frozen=True)
class DeadLetter:
    """One undeliverable record.

    `record_key`: the stream's key properties (or Salesforce `Id`) so the record can be
    found at the source; `profile_id`: the Appcues id when there was one; `reason`: a
    stable code (missing_id, blank_id, non_text_id, invalid_date, rejected,
    import_row_error, malformed_line, record_without_schema, ...); `status`/`detail`: what
    Appcues answered, if it answered; `line_number`/`line_text`: for an input line that was
    no usable Singer message, where it was and what it said (cut to a few hundred characters).
    """

    stream: str | None
    record_key: dict[str, Any]
    reason: str
    message: str
    profile_id: str | None = None
    field: str | None = None
    status: int | None = None
    detail: str | None = None
    line_number: int | None = None
    line_text: str | None = None


class DeadLetterFile:
    """Appends JSON lines; thread-safe; counts entries by reason for the run summary."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.by_reason: Counter[str] = Counter()

    def write(self, letter: DeadLetter) -> None:
        with local_file_errors(self.path, "dead_letter_path", "write the dead-letter file"):
            self._append(letter)

    def _append(self, letter: DeadLetter) -> None:
        line = {"time": datetime.now(UTC).isoformat(), **asdict(letter)}
        text = json.dumps(line, ensure_ascii=False, default=str, sort_keys=False)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(text + "\n")
            self.by_reason[letter.reason] += 1


def read_dead_letters(path: str | Path) -> list[dict[str, Any]]:
    """All entries of a dead-letter file (for tests and replay tools)."""
    target = Path(path)
    if not target.exists():
        return []
    with target.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
