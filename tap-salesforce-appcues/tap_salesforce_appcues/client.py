"""Stream bases: strict-advance bookmarks on top of singer-sdk's sorted-stream state.

singer-sdk moves a sorted stream's bookmark to every record's replication value. That would
let a STATE message (every 10,000 records, or on an aborted run) split a group of records
sharing one timestamp. `CheckpointedStream` intercepts the per-record state hook and moves
the bookmark only to the value of a complete group (see `windows.GroupCheckpoint`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from singer_sdk import Stream
from singer_sdk.helpers import types
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.singerlib import Catalog

from .timefmt import format_datetime, parse_datetime
from .windows import GroupCheckpoint


class StateError(ValueError):
    """The incoming state cannot be used; the message names the state and the stream."""


class FutureBookmarkError(StateError):
    """A bookmark lies after the source's clock: every run would read nothing and keep it."""


class CheckpointedStream(Stream):
    """An incremental stream whose records arrive in windows, sorted within each window."""

    # Resumable state (no progress markers); order is enforced by GroupCheckpoint instead
    # of the SDK's string comparison, which older state spellings would trip.
    is_sorted = True
    check_sorted = False

    # Records leave get_records final (records.py / events.py: only schema properties, JSON
    # types, no NaN), so conforming each one again would only copy it. `apply_catalog` turns
    # conformance back on when a catalog's schema differs from the stream's own.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    _checkpoint: GroupCheckpoint | None = None
    allow_future_bookmark = False  # the streams read the tap's setting
    _checkpoint_context: types.Context | None = None
    records_read = 0  # records this run emitted (for the run summary)

    def apply_catalog(self, catalog: Catalog) -> None:
        super().apply_catalog(catalog)
        own = self.schema.get("properties", {})
        given = self.effective_schema.get("properties", {})
        if any(given.get(name) != schema for name, schema in own.items()):
            # The SDK conforms records to the catalog's schema: let it, as it always did.
            self.TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.RECURSIVE

    def get_replication_key_signpost(self, context: types.Context | None = None) -> Any:
        # The window's upper bound (source clock minus lag) already caps the bookmark; a
        # signpost from the local clock would only add a second, less accurate cap.
        return None

    def bookmark(self, context: types.Context | None = None) -> datetime | None:
        """The bookmark from the incoming state, if it is for this replication key."""
        state = self.get_context_state(context)
        value = state.get("replication_key_value")
        if not value or state.get("replication_key") != self.replication_key:
            return None
        try:
            return parse_datetime(str(value))
        except ValueError:
            raise StateError(
                f"state of stream {self.name!r}: bookmark {value!r} is not an ISO 8601 "
                "instant such as 2024-01-01T00:00:00.000Z; fix or remove the stream's entry"
            ) from None

    def future_bookmark(self, bookmark: datetime | None, now: datetime, clock: str) -> bool:
        """Whether the bookmark lies after `clock` (then the run reads nothing). Refused
        unless `allow_future_bookmark` is set: a wrong state would otherwise stall silently."""
        if bookmark is None or bookmark <= now:
            return False
        message = (
            f"stream {self.name!r}: the state's bookmark {format_datetime(bookmark)} lies "
            f"after {clock} ({format_datetime(now)}), so every run would read nothing and "
            "keep it. Correct the state (e.g. `meltano state set` / `meltano state clear`)"
        )
        if not self.allow_future_bookmark:
            raise FutureBookmarkError(
                message + ", or set allow_future_bookmark to true to wait for the clock"
            )
        self.logger.warning(
            "%s; allow_future_bookmark is true: nothing read, bookmark kept", message
        )
        return True

    def begin_checkpoints(self, context: types.Context | None) -> GroupCheckpoint:
        self._checkpoint = GroupCheckpoint(self.bookmark(context))
        self._checkpoint_context = context
        return self._checkpoint

    def _increment_stream_state(
        self, latest_record: types.Record, *, context: types.Context | None = None
    ) -> None:
        """The SDK's per-record state hook (once per record written): advance only where a
        group is complete."""
        self.records_read += 1
        key = self.replication_key
        if self._checkpoint is None or not key or latest_record.get(key) is None:
            return
        committed = self._checkpoint.observe(parse_datetime(str(latest_record[key])))
        if committed is not None:
            self._commit(committed, context)

    def end_window(self) -> None:
        """Call after the last record of a window's query was yielded and processed."""
        if self._checkpoint is None:
            return
        committed = self._checkpoint.end_window()
        if committed is not None:
            self._commit(committed, self._checkpoint_context)

    def _commit(self, value: datetime, context: types.Context | None) -> None:
        assert self.replication_key
        super()._increment_stream_state(
            {self.replication_key: format_datetime(value)}, context=context
        )
