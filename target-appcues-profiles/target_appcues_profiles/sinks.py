"""Sinks that write records to Appcues profiles."""

from __future__ import annotations

from typing import Any

from singer_sdk.sinks import BatchSink


class ProfileSink(BatchSink):
    """Writes a batch of records as Appcues profiles."""

    def process_batch(self, context: dict[str, Any]) -> None:
        raise NotImplementedError("profile loading lands with the target-appcues-profiles issue")
