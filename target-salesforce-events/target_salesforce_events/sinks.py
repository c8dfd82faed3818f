"""EventSink: batches of Appcues event records, delivered by the run's EventPipeline."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from singer_sdk.sinks import BatchSink

from salesforce_appcues_clients.plugin_kit.singer_input import without_date_formats
from salesforce_appcues_clients.termination import STOP

if TYPE_CHECKING:
    from collections.abc import Sequence

    from singer_sdk import Target

    from .pipeline import EventPipeline


EVENT_PROPERTIES = ("name", "timestamp", "user_id")


class EventSink(BatchSink):
    """Writes a batch of Appcues events as Salesforce Events and Latest NPS fields."""

    MAX_SIZE_DEFAULT = 10_000
    # A record that does not fit the stream's schema is not fatal: the pipeline decides whether
    # it still makes an event, and dead-letters it with the reason if not.
    fail_on_record_validation_exception = False

    def __init__(
        self,
        target: Target,
        stream_name: str,
        schema: dict,
        key_properties: Sequence[str] | None,
    ) -> None:
        super().__init__(target, stream_name, schema, key_properties)
        self._pipeline: EventPipeline = cast(Any, target).pipeline
        self._pipeline.register_stream(stream_name, schema, key_properties or [])
        # The pipeline parses timestamps (ISO 8601 or epoch), not the SDK: an unreadable one
        # dead-letters its record as invalid_timestamp instead of failing the run.
        self.schema = without_date_formats(self.schema)
        missing = [p for p in EVENT_PROPERTIES if p not in (schema.get("properties") or {})]
        if missing:
            self.logger.warning(
                "Stream %r has no %s in its schema, so it does not look like Appcues events; "
                "its records will go to the dead-letter file. Select only event streams "
                "(e.g. appcues_events) for this target.",
                stream_name,
                "/".join(missing),
            )

    def _singer_validate_message(self, record: dict) -> None:
        """The SDK raises here for a record without its key properties, ending the run; the
        pipeline dead-letters that record instead (missing_key_property)."""

    @property
    def max_size(self) -> int:
        """`batch_size_rows` when set: fewer rows per batch mean earlier writes, more lookups."""
        return self.batch_size_rows or self.MAX_SIZE_DEFAULT

    def process_batch(self, context: dict[str, Any]) -> None:
        STOP.checkpoint()  # stopped: a batch not started is left for the next run
        try:
            self._pipeline.load(context.get("records", []), self.stream_name)
        except Exception:
            self.logger.error(
                "Batch of %d records not confirmed; no STATE will be emitted for it. %s",
                len(context.get("records", [])),
                self._pipeline.summary.describe(),
            )
            raise
