"""The singer-sdk sinks of both targets: a stream's batches handed whole to the target's
pipeline, which (not singer-sdk) judges each record and dead-letters the bad ones.

`LenientInput` is what every sink of ours does with its input, batched or not: no record
fails the run for not fitting its schema, and no date is parsed by singer-sdk (an unreadable
one dead-letters its record instead of failing the run). `PipelineSink` adds the batch:
stopped runs start no batch, and the size is `batch_size_rows` or 10,000.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from singer_sdk.sinks import BatchSink

from ..termination import STOP
from .singer_input import without_date_formats

if TYPE_CHECKING:
    from singer_sdk import Target


class LenientInput:
    """Mixed in before a singer-sdk sink class; the target's own set-up goes in `set_up`."""

    # A record that does not fit its schema is still the pipeline's to judge: one bad
    # record must not stop the run.
    fail_on_record_validation_exception = False
    schema: dict

    def __init__(
        self,
        target: Target,
        stream_name: str,
        schema: dict,
        key_properties: Sequence[str] | None,
    ) -> None:
        super().__init__(target, stream_name, schema, key_properties)  # type: ignore[call-arg]
        self.set_up(target, schema)
        self.schema = without_date_formats(self.schema)

    def set_up(self, target: Target, announced_schema: dict) -> None:
        """The sink's own set-up. `self.schema` still has its date formats;
        `announced_schema` is the stream's SCHEMA as received (what a dead letter keeps, so
        that a replay re-announces it)."""


class PipelineSink(LenientInput, BatchSink):
    """Hands each batch of records to `load_batch`; says what the run did when it fails."""

    def _singer_validate_message(self, record: dict) -> None:
        """The SDK raises here for a record without its key properties, ending the run; the
        pipeline dead-letters that record instead."""

    @property
    def max_size(self) -> int:
        """Records per batch: the `batch_size_rows` setting, else 10,000 (fewer rows per
        batch mean earlier writes and more requests)."""
        return self.batch_size_rows or self.MAX_SIZE_DEFAULT

    def process_batch(self, context: dict[str, Any]) -> None:
        STOP.checkpoint()  # stopped: a batch not started is left for the next run
        records = context.get("records", [])
        try:
            self.load_batch(records)
        except Exception:
            # The run stops here (no STATE): say what it did before the traceback.
            self.batch_failed(records)
            raise
        finally:
            self.batch_ended()

    def load_batch(self, records: list[dict[str, Any]]) -> None:
        """Delivers the batch; raises when any of it is not confirmed (so no STATE follows)."""
        raise NotImplementedError

    def batch_failed(self, records: list[dict[str, Any]]) -> None:
        """Logs what the run did before the batch that failed."""
        raise NotImplementedError

    def batch_ended(self) -> None:
        """After every batch, delivered or not (e.g. the dead letters made durable)."""
