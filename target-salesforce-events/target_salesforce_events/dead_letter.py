"""Dead letters of this target, written in the shared format (salesforce_appcues_clients.
plugin_kit.dead_letters, documented in docs/operations.md): one JSON line per event that was
not delivered, with the reason and the record, so that `--replay-dead-letters` can send it
again."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar

from salesforce_appcues_clients.plugin_kit import dead_letters
from salesforce_appcues_clients.plugin_kit.dead_letters import read_dead_letters

__all__ = ["DeadLetter", "DeadLetterFile", "read_dead_letters"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class DeadLetter(dead_letters.DeadLetter):
    """Why one event was not delivered (or only partly: `part` says which write failed).

    `reason`: our code (unmatched_user, missing_user_id, salesforce_rejected, ...);
    `status`: Salesforce's statusCode when Salesforce refused it; `record_key` is the
    event id, when there is one.
    """

    event_id: str | None = None
    user_id: str | None = None
    event_name: str | None = None
    part: str = "event"  # "event" (the Event record) or "nps" (the NPS field update)

    def __post_init__(self) -> None:
        if self.event_id is not None and not self.record_key:
            object.__setattr__(self, "record_key", {"id": self.event_id})

    def own_fields(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "user_id": self.user_id,
            "event_name": self.event_name,
            "part": self.part,
        }

    def count_as(self) -> str:
        # Refusals are counted by Salesforce's statusCode too: they need different fixes.
        return self.reason if self.status is None else f"{self.reason}:{self.status}"


class DeadLetterFile(dead_letters.DeadLetterFile[DeadLetter]):
    target: ClassVar[str] = "target-salesforce-events"

    def add(self, letter: DeadLetter) -> None:
        # One line per letter, so the run's log names every record that was not delivered.
        log.warning(
            "Dead-lettered event %s of user %s (%s): %s",
            letter.event_id or "-",
            letter.user_id or "-",
            letter.reason,
            letter.message,
        )
        super().add(letter)
