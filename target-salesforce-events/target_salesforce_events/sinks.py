"""EventSink: batches of Appcues event records, delivered by the run's EventPipeline."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from salesforce_appcues_clients.plugin_kit.pipeline_sink import PipelineSink

if TYPE_CHECKING:
    from singer_sdk import Target

    from .pipeline import EventPipeline


EVENT_PROPERTIES = ("name", "timestamp", "user_id")


class EventSink(PipelineSink):
    """Writes a batch of Appcues events as Salesforce Events and Latest NPS fields. A record
    that does not fit the stream's schema is not fatal: the pipeline decides whether it still
    makes an event, and dead-letters it with the reason if not (missing_key_property,
    invalid_timestamp, ...)."""

    MAX_SIZE_DEFAULT = 10_000

    def set_up(self, target: Target, announced_schema: dict) -> None:
        self._pipeline: EventPipeline = cast(Any, target).pipeline
        self._pipeline.register_stream(self.stream_name, announced_schema, self.key_properties)
        properties = announced_schema.get("properties") or {}
        missing = [p for p in EVENT_PROPERTIES if p not in properties]
        if missing:
            self.logger.warning(
                "Stream %r has no %s in its schema, so it does not look like Appcues events; "
                "its records will go to the dead-letter file. Select only event streams "
                "(e.g. appcues_events) for this target.",
                self.stream_name,
                "/".join(missing),
            )

    def load_batch(self, records: list[dict[str, Any]]) -> None:
        self._pipeline.load(records, self.stream_name)

    def batch_failed(self, records: list[dict[str, Any]]) -> None:
        self.logger.error(
            "Batch of %d records not confirmed; no STATE will be emitted for it. %s",
            len(records),
            self._pipeline.summary.describe(),
        )
