"""Dead letters of this target, written in the shared format (salesforce_appcues_clients.
dead_letters, documented in docs/operations.md): one JSON line per record that could not be
delivered, with why, and the record itself so that `--replay-dead-letters` can send it again."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any

from salesforce_appcues_clients.plugin_kit.dead_letters import DeadLetterWriter, read_dead_letters

__all__ = ["DeadLetter", "DeadLetterFile", "read_dead_letters"]

TARGET = "target-appcues-profiles"


@dataclass(frozen=True)
class DeadLetter:
    """One undeliverable record.

    `record_key`: the stream's key properties (or Salesforce `Id`) so the record can be
    found at the source; `profile_id`: the Appcues id when there was one; `reason`: a
    stable code (missing_id, blank_id, non_text_id, invalid_date, invalid_text,
    missing_key_property, rejected, import_row_error, malformed_line, record_without_schema,
    ...); `status`/`detail`: what Appcues answered, if it answered; `line_number`/`line_text`:
    for an input line that was no usable Singer message, where it was and what it said (cut
    to a few hundred characters); `record`/`schema`/`key_properties`: what a replay sends.
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
    record: Mapping[str, Any] | None = dataclass_field(default=None, repr=False)
    schema: Mapping[str, Any] | None = dataclass_field(default=None, repr=False)
    key_properties: Sequence[str] = ()

    def entry(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "reason": self.reason,
            "message": self.message,
            "record_key": self.record_key,
            "field": self.field,
            "fields": [self.field] if self.field else [],
            "status": self.status,
            "detail": self.detail,
            "profile_id": self.profile_id,
            "line_number": self.line_number,
            "line_text": self.line_text,
            "key_properties": list(self.key_properties),
            "schema": self.schema,
            "record": self.record,
        }


class DeadLetterFile:
    """Appends entries durably (fsync'd on flush, before the batch counts as done);
    thread-safe; counts entries by reason."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._writer = DeadLetterWriter(self.path, TARGET)

    @property
    def by_reason(self) -> Counter[str]:
        return self._writer.by_reason

    def add(self, letter: DeadLetter) -> None:
        """Buffered until `flush` (one fsync per batch, not per record)."""
        self._writer.add(letter.entry())

    def flush(self) -> None:
        self._writer.flush()

    def write(self, letter: DeadLetter) -> None:
        self._writer.write(letter.entry())
