"""Sinks: singer-sdk's side of a stream. A profile stream's batches go to its pipeline
(pipeline.py); a stream routed nowhere is counted and ignored."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from singer_sdk.sinks import RecordSink

from salesforce_appcues_clients.plugin_kit.pipeline_sink import LenientInput, PipelineSink

from .ledger import ProfileKind
from .pipeline import ProfilePipeline

if TYPE_CHECKING:
    from singer_sdk import Target

    from .runtime import Runtime


class ProfileSink(PipelineSink):
    """Writes a batch of one stream's records as Appcues user or group profiles. A record
    that does not fit its schema is still mapped (coercion makes any value valid for
    Appcues)."""

    kind: ClassVar[ProfileKind] = "user"

    def set_up(self, target: Target, announced_schema: dict) -> None:
        self.runtime: Runtime = target.runtime  # type: ignore[attr-defined]
        # The pipeline parses dates, not the SDK, so a bad date dead-letters one record
        # instead of failing the run. Dead letters keep the schema as announced, dates
        # included: what a replay re-announces.
        self.pipeline = ProfilePipeline(
            self.runtime,
            self.kind,
            self.stream_name,
            schema=self.schema,
            announced_schema=announced_schema,
            key_properties=self.key_properties,
            logger=self.logger,
        )

    def load_batch(self, records: list[dict[str, Any]]) -> None:
        self.pipeline.load(records)

    def batch_failed(self, records: list[dict[str, Any]]) -> None:
        self.runtime.log_summary(self.logger, failed=True)

    def batch_ended(self) -> None:
        self.runtime.dead_letters.flush()  # durable before the batch counts as done


class UserProfileSink(ProfileSink):
    kind: ClassVar[ProfileKind] = "user"


class GroupProfileSink(ProfileSink):
    kind: ClassVar[ProfileKind] = "group"


class UnroutedStreamSink(LenientInput, RecordSink):
    """A stream named in neither user_streams nor group_streams: counted, never sent.

    Its records are neither validated nor date-parsed: a record nobody sends must not be
    able to fail the run.
    """

    def get_validator(self) -> None:
        return None

    def set_up(self, target: Target, announced_schema: dict) -> None:
        self.runtime: Runtime = target.runtime  # type: ignore[attr-defined]
        self.logger.warning(
            "Stream '%s' is in neither user_streams nor group_streams; its records are ignored",
            self.stream_name,
        )

    def process_record(self, record: dict, context: dict) -> None:
        self.runtime.summary.skipped_unrouted(self.stream_name)
        self.runtime.summary.read(self.stream_name)
