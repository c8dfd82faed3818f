"""Dead letters of this target, written in the shared format (salesforce_appcues_clients.
dead_letters, documented in docs/operations.md): one JSON line per event that was not
delivered, with the reason and the record, so that `--replay-dead-letters` can send it again."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from salesforce_appcues_clients.plugin_kit.dead_letters import DeadLetterWriter, read_dead_letters

__all__ = ["DeadLetter", "DeadLetterFile", "read_dead_letters"]

log = logging.getLogger(__name__)

TARGET = "target-salesforce-events"


@dataclass(frozen=True)
class DeadLetter:
    """Why one event was not delivered (or only partly: `part` says which write failed)."""

    reason: str  # our code: unmatched_user, missing_user_id, salesforce_rejected, ...
    message: str
    event_id: str | None = None
    user_id: str | None = None
    event_name: str | None = None
    part: str = "event"  # "event" (the Event record) or "nps" (the NPS field update)
    status: str | None = None  # Salesforce's statusCode when Salesforce refused it
    fields: Sequence[str] = ()
    stream: str | None = None
    record: Mapping[str, Any] | None = field(default=None, repr=False)
    # An input line that was no usable Singer message: where, and what it said (cut short).
    line_number: int | None = None
    line_text: str | None = None
    # What a replay re-announces for the record's stream.
    schema: Mapping[str, Any] | None = field(default=None, repr=False)
    key_properties: Sequence[str] = ()

    def entry(self) -> dict[str, Any]:
        fields = list(self.fields)
        return {
            "stream": self.stream,
            "reason": self.reason,
            "message": self.message,
            "record_key": {"id": self.event_id} if self.event_id is not None else {},
            "field": fields[0] if fields else None,
            "fields": fields,
            "status": self.status,
            "detail": None,
            "event_id": self.event_id,
            "user_id": self.user_id,
            "event_name": self.event_name,
            "part": self.part,
            "line_number": self.line_number,
            "line_text": self.line_text,
            "key_properties": list(self.key_properties),
            "schema": self.schema,
            "record": self.record,
        }


class DeadLetterFile:
    """Buffers the batch's letters, appends them durably (fsync'd) on flush; counts by reason."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer = DeadLetterWriter(path, TARGET)

    @property
    def counts(self) -> Counter[str]:
        return self._writer.by_reason

    def add(self, letter: DeadLetter) -> None:
        # One line per letter, so the run's log names every record that was not delivered.
        log.warning(
            "Dead-lettered event %s of user %s (%s): %s",
            letter.event_id or "-",
            letter.user_id or "-",
            letter.reason,
            letter.message,
        )
        key = letter.reason if letter.status is None else f"{letter.reason}:{letter.status}"
        self._writer.add(letter.entry(), count_as=key)

    def flush(self) -> None:
        """Write what was added, durably, before the batch counts as done."""
        self._writer.flush()

    @property
    def total(self) -> int:
        return self._writer.total
