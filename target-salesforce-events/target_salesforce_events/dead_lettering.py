"""The run's dead letters as the steps write them: each carries the event's identity and
its stream's SCHEMA and key properties (what `--replay-dead-letters` re-announces); the run
summary's counts by reason follow every flush."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from salesforce_appcues_clients.plugin_kit.dead_letters import schema_for
from salesforce_appcues_clients.plugin_kit.singer_input import BadLine

from .dead_letter import DeadLetter, DeadLetterFile
from .events import AppcuesEvent
from .summary import RunSummary

log = logging.getLogger(__name__)


class DeadLettering:
    """Buffers a batch's letters in the dead-letter file; `flush` writes them durably."""

    def __init__(self, file: DeadLetterFile, summary: RunSummary) -> None:
        self.file = file
        self._summary = summary
        # stream -> (SCHEMA as announced, key properties): what a dead letter keeps for replay
        self._streams: dict[str, tuple[Mapping[str, Any], list[str]]] = {}

    def register_stream(
        self, stream: str, schema: Mapping[str, Any], key_properties: Iterable[str]
    ) -> None:
        self._streams[stream] = (schema, list(key_properties))

    def key_properties(self, stream: str) -> list[str]:
        return self._streams.get(stream, ({}, []))[1]

    def add(self, reason: str, message: str, event: AppcuesEvent | None = None, **kw: Any) -> None:
        """One letter; `kw` are `DeadLetter` fields (`stream`, `part`, `status`, ...)."""
        if event is not None:
            kw.setdefault("event_id", event.event_id)
            kw.setdefault("user_id", event.user_id)
            kw.setdefault("event_name", event.name)
            kw.setdefault("record", dict(event.record))
        known = self._streams.get(str(kw.get("stream")))
        if known is not None and isinstance(kw.get("record"), Mapping):
            kw.setdefault("schema", schema_for(known[0], kw["record"]))
            kw.setdefault("key_properties", known[1])
        self.file.add(DeadLetter(reason=reason, message=message, **kw))

    def rejected(self, errors: list[dict[str, Any]], event: AppcuesEvent, **kw: Any) -> None:
        """Salesforce refused a write: its first error's message, status code and fields."""
        error = errors[0] if errors else {"statusCode": "UNKNOWN_ERROR", "message": "no detail"}
        self.add(
            "salesforce_rejected",
            str(error.get("message", "")),
            event,
            status=str(error.get("statusCode")),
            fields=[str(f) for f in error.get("fields") or []],
            **kw,
        )

    def bad_line(self, bad: BadLine) -> None:
        """An input line that is no usable Singer message: logged and written at once."""
        log.error("Dead-lettered: %s", bad.message)
        raw_id = (bad.record or {}).get("id")
        self.add(
            bad.reason,
            bad.message,
            event_id=str(raw_id) if raw_id not in (None, "") else None,
            stream=bad.stream,
            record=bad.record,
            line_number=bad.number,
            line_text=bad.text,
        )
        self.flush()

    def flush(self) -> None:
        self.file.flush()
        self._summary.dead_lettered = self.file.counts.copy()

    @property
    def counts(self) -> Counter[str]:
        return self.file.counts

    @property
    def total(self) -> int:
        return self.file.total
