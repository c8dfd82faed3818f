"""Dead letters of this target, written in the shared format (salesforce_appcues_clients.
plugin_kit.dead_letters, documented in docs/operations.md): one JSON line per record that
could not be delivered, with why, and the record itself so that `--replay-dead-letters` can
send it again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from salesforce_appcues_clients.plugin_kit import dead_letters
from salesforce_appcues_clients.plugin_kit.dead_letters import read_dead_letters

__all__ = ["DeadLetter", "DeadLetterFile", "read_dead_letters"]


@dataclass(frozen=True, kw_only=True)
class DeadLetter(dead_letters.DeadLetter):
    """One undeliverable record.

    `reason`: a stable code (missing_id, blank_id, non_text_id, invalid_date, invalid_text,
    missing_key_property, rejected, import_row_error, malformed_line, record_without_schema,
    ...); `record_key`: the stream's key properties (or Salesforce `Id`) so the record can be
    found at the source; `status`/`detail`: what Appcues answered, if it answered;
    `profile_id`: the Appcues id when there was one.
    """

    profile_id: str | None = None

    def own_fields(self) -> dict[str, Any]:
        return {"profile_id": self.profile_id}


class DeadLetterFile(dead_letters.DeadLetterFile[DeadLetter]):
    target: ClassVar[str] = "target-appcues-profiles"
