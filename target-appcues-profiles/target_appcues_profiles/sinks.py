"""Sinks: singer-sdk's side of a stream. A profile stream's batches go to its pipeline
(pipeline.py); a stream routed nowhere is counted and ignored."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from singer_sdk.sinks import BatchSink, RecordSink

from salesforce_appcues_clients.plugin_kit.singer_input import without_date_formats
from salesforce_appcues_clients.termination import STOP

from .ledger import ProfileKind
from .pipeline import ProfilePipeline

if TYPE_CHECKING:
    from singer_sdk import Target

    from .runtime import Runtime


class ProfileSink(BatchSink):
    """Writes a batch of one stream's records as Appcues user or group profiles."""

    kind: ClassVar[ProfileKind] = "user"
    # A record that does not fit its schema is still mapped (coercion makes any value valid
    # for Appcues); one bad record must not stop the run.
    fail_on_record_validation_exception = False

    def __init__(
        self,
        target: Target,
        stream_name: str,
        schema: dict,
        key_properties: Sequence[str] | None,
    ) -> None:
        super().__init__(target, stream_name, schema, key_properties)
        self.runtime: Runtime = target.runtime  # type: ignore[attr-defined]
        # The pipeline parses dates, not the SDK, so a bad date dead-letters one record
        # instead of failing the run. Dead letters keep the schema as announced, dates
        # included: what a replay re-announces.
        self.pipeline = ProfilePipeline(
            self.runtime,
            self.kind,
            stream_name,
            schema=self.schema,
            announced_schema=schema,
            key_properties=self.key_properties,
            logger=self.logger,
        )
        self.schema = without_date_formats(self.schema)

    @property
    def max_size(self) -> int:
        """Records per batch: the `batch_size_rows` setting, else 10,000."""
        return self.batch_size_rows or self.MAX_SIZE_DEFAULT

    def process_batch(self, context: dict) -> None:
        STOP.checkpoint()  # stopped: a batch not started is left for the next run
        try:
            self.pipeline.load(context.get("records", []))
        except Exception:
            # The run stops here (no STATE); say what it did before the traceback.
            self.runtime.log_summary(self.logger, failed=True)
            raise
        finally:
            self.runtime.dead_letters.flush()  # durable before the batch counts as done

    def _singer_validate_message(self, record: dict) -> None:
        """The SDK raises here for a record without its key properties, ending the run; the
        pipeline dead-letters that record instead."""


class UserProfileSink(ProfileSink):
    kind: ClassVar[ProfileKind] = "user"


class GroupProfileSink(ProfileSink):
    kind: ClassVar[ProfileKind] = "group"


class UnroutedStreamSink(RecordSink):
    """A stream named in neither user_streams nor group_streams: counted, never sent.

    Its records are neither validated nor date-parsed: a record nobody sends must not be
    able to fail the run.
    """

    fail_on_record_validation_exception = False

    def get_validator(self) -> None:
        return None

    def __init__(
        self,
        target: Target,
        stream_name: str,
        schema: dict,
        key_properties: Sequence[str] | None,
    ) -> None:
        super().__init__(target, stream_name, schema, key_properties)
        self.schema = without_date_formats(self.schema)
        self.runtime: Runtime = target.runtime  # type: ignore[attr-defined]
        self.logger.warning(
            "Stream '%s' is in neither user_streams nor group_streams; its records are ignored",
            stream_name,
        )

    def process_record(self, record: dict, context: dict) -> None:
        self.runtime.summary.skipped_unrouted(self.stream_name)
        self.runtime.summary.read(self.stream_name)
