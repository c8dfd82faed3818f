"""Sinks that write Appcues events to Salesforce."""

from __future__ import annotations

from typing import Any

from singer_sdk.sinks import BatchSink


class EventSink(BatchSink):
    """Writes a batch of Appcues events as Salesforce Events."""

    def process_batch(self, context: dict[str, Any]) -> None:
        raise NotImplementedError("event loading lands with the target-salesforce-events issue")
