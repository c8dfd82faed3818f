"""The streams: one per configured Salesforce object, and `appcues_events`."""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from singer_sdk import Tap
from singer_sdk.helpers import types
from singer_sdk.singerlib import Metadata, MetadataMapping

from salesforce_appcues_clients.errors import QuotaExceededError, SalesforceError
from salesforce_appcues_clients.salesforce import BULK_PAGE_SIZE, QueryResult
from salesforce_appcues_clients.soql import SAFE_URL_LENGTH, quote

from .client import CheckpointedStream
from .events import (
    ANALYTICS_COLUMNS,
    EVENT_SCHEMA,
    event_record,
    is_wanted,
    name_conditions,
    sort_key,
    spec_time,
)
from .field_parts import join_parts
from .records import RecordShaper
from .run_context import RunContext
from .schema_mapping import ObjectInfo, ParentPath, object_schema
from .timefmt import parse_datetime
from .windows import Window, incremental_window

AUTO, REST, BULK2 = "AUTO", "REST", "BULK2"
MAX_TIMEOUT_SPLITS = 12
REST_PAGE_SIZE = 2000  # Salesforce's default query batch (a wide record may get fewer)
ORDER = "SystemModstamp ASC, Id ASC"


def window_filter(window: Window, field: str = "SystemModstamp") -> str:
    parts = []
    if window.start is not None:
        op = ">=" if window.start_inclusive else ">"
        parts.append(f"{field} {op} {quote(window.start)}")
    parts.append(f"{field} <= {quote(window.end)}")
    return " AND ".join(parts)


def _bulk_is_cheaper(size: int, parts: int) -> bool:
    """Calls left after the first part's first page: REST parts x pages vs a Bulk job
    (create, at least one status poll, result pages)."""
    if size == 0:
        return False  # the first part said it all: the others are never sent
    pages = math.ceil(size / REST_PAGE_SIZE)
    rest_calls = parts * pages - 1
    bulk_calls = 2 + max(1, math.ceil(size / BULK_PAGE_SIZE))
    return bulk_calls < rest_calls


def _is_query_timeout(exc: SalesforceError) -> bool:
    return exc.error_code == "QUERY_TIMEOUT" or "QUERY_TIMEOUT" in exc.message


class SalesforceObjectStream(CheckpointedStream):
    """Changed records of one Salesforce object, read by SystemModstamp windows."""

    primary_keys = ("Id",)
    replication_key = "SystemModstamp"

    def __init__(
        self,
        tap: Tap,
        run: RunContext,
        obj: ObjectInfo,
        parent_paths: Iterable[ParentPath] = (),
    ) -> None:
        self.obj = obj
        self.parent_paths = list(parent_paths)
        self.run = run
        self.allow_future_bookmark = run.settings.allow_future_bookmark
        super().__init__(tap, schema=object_schema(obj, self.parent_paths), name=obj.name)

    # --- what to read ------------------------------------------------------------------
    @property
    def metadata(self) -> MetadataMapping:
        """Standard metadata; IsDeleted is always read when deletes are delivered."""
        metadata = super().metadata
        breadcrumb = ("properties", "IsDeleted")
        if self.run.settings.include_deleted and breadcrumb in metadata:
            metadata[breadcrumb].inclusion = Metadata.InclusionType.AUTOMATIC
        return metadata

    def selected_properties(self) -> list[str]:
        mask = self.mask
        return [p for p in self.schema["properties"] if mask.get(("properties", p), False)]

    def shaper(self) -> RecordShaper:
        settings = self.run.settings
        extra = ["IsDeleted"] if settings.include_deleted and self.obj.field("IsDeleted") else []
        return RecordShaper(self.obj, self.selected_properties(), self.parent_paths, extra)

    # --- reading -------------------------------------------------------------------------
    def get_records(self, context: types.Context | None) -> Iterator[dict[str, Any]]:
        settings = self.run.settings
        sf = self.run.salesforce
        checkpoint = self.begin_checkpoints(context)
        now = sf.server_time()
        if self.future_bookmark(checkpoint.bookmark, now, "the org's clock"):
            return
        window = incremental_window(
            bookmark=checkpoint.bookmark,
            start_date=settings.start_date,
            now=now,
            lookback=timedelta(seconds=settings.lookback_window),
            lag=timedelta(seconds=settings.lag),
        )
        if window.empty:
            self.logger.info("%s: window %s is empty; bookmark kept", self.name, window)
            return
        emitted = 0
        try:
            for record in self._read_window(window, self.shaper(), settings.api_type, splits=0):
                emitted += 1
                yield record
        except SalesforceError as exc:
            if emitted or not self.obj.from_catalog or exc.error_code != "INVALID_FIELD":
                raise
            self._describe_after_stale_catalog(exc)
            checkpoint.begin_window(sorted_source=True)  # nothing of the failed read counts
            yield from self._read_window(window, self.shaper(), settings.api_type, splits=0)

    def _describe_after_stale_catalog(self, exc: SalesforceError) -> None:
        """The catalog names a field the org no longer has: describe, and read without it."""
        info, paths = self.run.describe_objects([self.obj.name])[self.obj.name]
        roots = {p.segments[0].lower() for p in paths}
        gone = [
            name
            for name in self.selected_properties()
            if info.field(name) is None and name.lower() not in roots
        ]
        self.obj, self.parent_paths = info, paths
        self.logger.warning(
            "%s: the catalog is older than the org (%s); described it again and reading "
            "without %s. Run discovery to refresh the catalog.",
            self.name,
            exc.message,
            ", ".join(gone) or "the missing fields",
        )

    def _size_up(self, window: Window, rows: QueryResult, parts: int = 1) -> str:
        """AUTO: REST, or BULK2 when the REST query's totalSize passes `bulk_threshold`.

        The REST query's first page carries the window's size, so this costs no call of its
        own: a small window goes on reading that same query. A wide object (its fields
        read in `parts` queries) also goes to Bulk when that costs fewer calls.
        """
        size = rows.total_size
        threshold = self.run.settings.bulk_threshold
        if parts > 1 and size <= threshold and _bulk_is_cheaper(size, parts):
            rows.close()
            self.logger.info(
                "%s: %d changed records in %s; %d REST queries per page would cost more "
                "calls than one Bulk job: reading with BULK2",
                self.name,
                size,
                window,
                parts,
            )
            return BULK2
        if size > threshold:
            rows.close()  # nothing of it was emitted; Bulk reads the whole window
            self.logger.info(
                "%s: %d changed records in %s, above bulk_threshold %d: reading with BULK2",
                self.name,
                size,
                window,
                threshold,
            )
            return BULK2
        if size == 0:
            self.logger.info("%s: no changes in %s", self.name, window)
        else:
            self.logger.info("%s: reading %d records of %s with REST", self.name, size, window)
        return REST

    def _read_window(
        self, window: Window, shaper: RecordShaper, api: str, *, splits: int
    ) -> Iterator[dict[str, Any]]:
        """Read one window with `api` (AUTO sizes it up first); QUERY_TIMEOUT splits it."""
        sf = self.run.salesforce
        include_deleted = self.run.settings.include_deleted
        checkpoint = self._checkpoint
        assert checkpoint is not None
        soql = shaper.soql(window_filter(window), ORDER)
        endpoint = sf.base_url + ("queryAll/" if include_deleted else "query/")
        parts = shaper.soql_parts(window_filter(window), ORDER, endpoint)
        chosen = api
        rows: QueryResult | None = None
        if api == AUTO:
            rows = sf.query(parts[0], include_deleted=include_deleted)
            try:
                chosen = self._size_up(window, rows, len(parts))
            except QuotaExceededError:
                raise
            except SalesforceError as exc:
                if not _is_query_timeout(exc):
                    raise
                yield from self._after_timeout(window, shaper, api, splits, exc)
                return
        elif api == REST:
            self.logger.info("%s: reading %s with REST", self.name, window)
        if chosen == BULK2:
            self.logger.info("%s: reading %s with BULK2", self.name, window)
        # Bulk result order is not relied on: its window commits only at the end.
        checkpoint.begin_window(sorted_source=chosen == REST)
        emitted = False
        try:
            if chosen == REST and len(parts) > 1:
                for raw in self._joined(parts, rows, include_deleted):
                    emitted = True
                    yield shaper.from_rest(raw)
            elif chosen == REST:
                if rows is None:
                    rows = sf.query(soql, include_deleted=include_deleted)
                for raw in rows:
                    emitted = True
                    yield shaper.from_rest(raw)
            else:
                for row in sf.bulk_query(soql, include_deleted=include_deleted):
                    emitted = True
                    yield shaper.from_bulk(row)
        except QuotaExceededError:
            raise
        except SalesforceError as exc:
            if _is_query_timeout(exc):
                checkpoint.abandon_window()
                yield from self._after_timeout(window, shaper, api, splits, exc)
                return
            if chosen == BULK2 and not emitted:
                self.logger.warning(
                    "%s: Bulk API 2.0 refused the query (%s); reading with REST instead",
                    self.name,
                    exc,
                )
                yield from self._read_window(window, shaper, REST, splits=splits)
                return
            raise
        self.end_window()

    def _joined(
        self, parts: list[str], first: QueryResult | None, include_deleted: bool
    ) -> Iterator[dict[str, Any]]:
        """A wide object's window: one query per share of the fields, joined by Id."""
        sf = self.run.salesforce
        if first is None:
            first = sf.query(parts[0], include_deleted=include_deleted)
        results = [first]
        results += [sf.query(p, include_deleted=include_deleted) for p in parts[1:]]
        checkpoint = self._checkpoint
        assert checkpoint is not None
        self.logger.info(
            "%s: %d fields selected; reading each window as %d queries joined by Id "
            "(a query URL must stay under %d bytes)",
            self.name,
            len(self.selected_properties()),
            len(parts),
            SAFE_URL_LENGTH,
        )

        def changed(record_id: str, stamp: datetime) -> None:
            checkpoint.hold(stamp)
            self.logger.warning(
                "%s: record %s changed while its fields were read in %d queries; not "
                "emitted now, the bookmark stays before %s so the next run reads it whole",
                self.name,
                record_id,
                len(parts),
                stamp.isoformat(),
            )

        try:
            yield from join_parts([iter(r) for r in results], changed)
        finally:
            for result in results:
                result.close()

    def _after_timeout(
        self, window: Window, shaper: RecordShaper, api: str, splits: int, exc: SalesforceError
    ) -> Iterator[dict[str, Any]]:
        """QUERY_TIMEOUT: read what is left of the window in two halves."""
        remaining = window
        done = self._checkpoint.bookmark if self._checkpoint else None
        if done is not None and window.start is not None and done > window.start:
            remaining = Window(done, window.end, start_inclusive=False)
        if splits >= MAX_TIMEOUT_SPLITS:
            raise exc
        try:
            halves = remaining.split()
        except ValueError:
            raise exc from None
        self.logger.warning(
            "%s: query timed out on %s; retrying as %s and %s", self.name, remaining, *halves
        )
        for half in halves:
            yield from self._read_window(half, shaper, api, splits=splits + 1)


@dataclass(frozen=True)
class _Piece:
    """Rows of one analytics read: a synchronous answer (a list) or an export (streamed)."""

    window: Window  # the rows this read stands for: [start, end)
    rows: Iterable[dict[str, Any]]
    exported: bool = False
    claimed: frozenset[str] = frozenset()  # names an earlier query of the window returns
    records: bool = False  # rows are records already, sorted (a split's halves)


def _once(records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Drops a record whose id was seen at the same timestamp just before (rows read twice
    are equal events: same timestamp, same id); keeps only the current timestamp's ids."""
    stamp: str | None = None
    seen: set[str] = set()
    for record in records:
        if record["timestamp"] != stamp:
            stamp, seen = record["timestamp"], set()
        elif record["id"] in seen:
            continue
        seen.add(record["id"])
        yield record


class AppcuesEventsStream(CheckpointedStream):
    """Appcues events of the configured names, read by timestamp windows from analytics."""

    name = "appcues_events"
    primary_keys = ("id",)
    replication_key = "timestamp"
    MAX_QUERY_SPAN = timedelta(days=90)
    MIN_SPLIT_SPAN = timedelta(seconds=1)
    # Whether analytics' end_time is inclusive, and whether it compares in milliseconds or
    # whole seconds, is undocumented: every query asks for one second more than its window
    # and keeps only rows inside it (by their own timestamps), once each (by event id).
    BOUNDARY_OVERLAP = timedelta(seconds=1)
    # The last 90 days, as one query with its overlap (not two when appcues_lag is 0).
    DEFAULT_HISTORY = MAX_QUERY_SPAN - BOUNDARY_OVERLAP

    def __init__(self, tap: Tap, run: RunContext) -> None:
        self.run = run
        self.allow_future_bookmark = run.settings.allow_future_bookmark
        super().__init__(tap, schema=EVENT_SCHEMA, name=self.name)

    def get_records(self, context: types.Context | None) -> Iterator[dict[str, Any]]:
        settings = self.run.settings
        checkpoint = self.begin_checkpoints(context)
        now = self.run.appcues_now()
        clock = (
            "Appcues' clock"
            if self.run.appcues.server_time() is not None
            else "the local clock (Appcues' is not known before its first answer)"
        )
        if self.future_bookmark(checkpoint.bookmark, now, clock):
            return
        start_date = settings.appcues_start_date
        if checkpoint.bookmark is None and start_date is None:
            start_date = now - self.DEFAULT_HISTORY
        window = incremental_window(
            bookmark=checkpoint.bookmark,
            start_date=start_date,
            now=now,
            lookback=timedelta(seconds=settings.appcues_lookback_window),
            lag=timedelta(seconds=settings.appcues_lag),
        )
        # The window is [start, end): the start is always inclusive here.
        if window.start is None or window.end <= window.start:
            self.logger.info("appcues_events: window %s is empty; bookmark kept", window)
            return
        window = Window(window.start, window.end, start_inclusive=True)
        for chunk in window.chunks(self.MAX_QUERY_SPAN - self.BOUNDARY_OVERLAP):
            settled = self._settled_until()
            if settled is not None and chunk.start is not None and chunk.start >= settled:
                break  # Appcues' own clock says the rest is still within appcues_lag
            pieces = self._query(chunk)
            assert self._checkpoint is not None
            # An export's row order is not documented: a window with one is an unsorted
            # source, whose bookmark moves only once the whole window was emitted.
            exported = any(piece.exported for piece in pieces)
            self._checkpoint.begin_window(sorted_source=not exported)
            if exported:
                yield from self._settled_only(self._streamed(pieces))
            else:
                yield from self._settled_only(self._merged(pieces))
            self.end_window()

    def _settled_until(self) -> datetime | None:
        """Appcues' clock minus appcues_lag, once an Appcues response has told the time.

        The window's end may come from another clock (no Appcues call has been made when a
        run starts); events past this edge are left for the next run, whose lookback
        re-reads them, so the Appcues clock decides at no extra call.
        """
        now = self.run.appcues.server_time()
        if now is None:
            return None
        return now - timedelta(seconds=self.run.settings.appcues_lag)

    def _records(self, piece: _Piece) -> Iterator[dict[str, Any]]:
        """The wanted records of a piece's own `[start, end)` (the one-second overlap and the
        neighbouring half's rows are dropped), in the piece's order."""
        if piece.records:
            rows: Iterable[dict[str, Any]] = piece.rows
        else:
            rows = (event_record(row) for row in piece.rows)
        start, end = piece.window.start, piece.window.end
        assert start is not None
        for record in rows:
            if record["name"] in piece.claimed or not self._wanted(record):
                continue
            if start <= parse_datetime(record["timestamp"]) < end:
                yield record

    def _sorted(self, piece: _Piece) -> Iterator[dict[str, Any]]:
        """A synchronous answer (at most 1,000 rows) sorted; a split's halves come sorted."""
        if piece.records:
            return self._records(piece)
        return iter(sorted(self._records(piece), key=sort_key))

    def _merged(self, pieces: list[_Piece]) -> Iterator[dict[str, Any]]:
        """A window read by synchronous queries, in (timestamp, id) order: each query's
        answer sorted, the name conditions' answers merged; one half of a split is read at
        a time, so memory holds about one answer, however busy the window."""
        return _once(heapq.merge(*(self._sorted(p) for p in pieces), key=sort_key))

    def _settled_only(self, records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Records before Appcues' clock minus appcues_lag; later ones are held back for the
        next run (the bookmark stays before them; its lookback re-reads them)."""
        checkpoint = self._checkpoint
        assert checkpoint is not None
        held = 0
        for record in records:
            settled = self._settled_until()
            at = parse_datetime(record["timestamp"])
            if settled is not None and at >= settled:
                checkpoint.hold(at)
                held += 1
                continue
            yield record
        if held:
            self.logger.info(
                "appcues_events: %d events at or after Appcues' clock minus appcues_lag held "
                "back for the next run",
                held,
            )

    def _wanted(self, record: dict[str, Any]) -> bool:
        settings = self.run.settings
        return is_wanted(record["name"], settings.event_names, settings.include_custom_events)

    def _specs(self, window: Window) -> Iterator[dict[str, Any]]:
        settings = self.run.settings
        assert window.start is not None
        for conditions in name_conditions(settings.event_names, settings.include_custom_events):
            yield {
                "columns": ANALYTICS_COLUMNS,
                "conditions": conditions,
                "order_by": [["timestamp", "asc"]],
                "start_time": spec_time(window.start),
                "end_time": spec_time(window.end + self.BOUNDARY_OVERLAP),
                "timezone": "UTC",
            }

    def _query(self, window: Window) -> list[_Piece]:
        """Rows of [start, end) (and the overlap) for every name condition, as pieces: the
        answers of synchronous queries (lists) and exports (read lazily, streamed)."""
        listed = frozenset(self.run.settings.event_names)
        pieces: list[_Piece] = []
        for index, spec in enumerate(self._specs(window)):
            # `name_conditions` puts the listed names first: a later query (custom events)
            # leaves a listed name to it, so a streamed row is never emitted twice.
            claimed = listed if index else frozenset()
            pieces += [replace(p, claimed=claimed) for p in self._rows(spec, window)]
        return pieces

    def _rows(self, spec: dict[str, Any], window: Window) -> list[_Piece]:
        """One synchronous query; a truncated answer is halved, or exported if long.

        A quiet window costs one call whatever its length; a backfill (a truncated window
        longer than `appcues_export_after_days`) goes through the async export instead of
        many 1,000-row halvings.
        """
        assert window.start is not None
        appcues = self.run.appcues
        result = appcues.analytics_query(spec)
        if not result.truncated:
            return [_Piece(window, result.rows)]
        # Appcues' clock is known now. Events past it minus the lag are held back anyway, so
        # only the settled part is split or exported (a window ending on a local clock that
        # runs ahead would otherwise look longer than it is).
        settled = self._settled_until()
        if settled is not None and window.start < settled < window.end:
            window = Window(window.start, settled, True)
            spec = {**spec, "end_time": spec_time(settled + self.BOUNDARY_OVERLAP)}
            if self._checkpoint is not None:
                # What lies past `settled` was not asked for: no bookmark may pass it.
                self._checkpoint.hold(settled)
        assert window.start is not None
        span = window.end - window.start
        export_after = timedelta(days=self.run.settings.appcues_export_after_days)
        if span > export_after or span <= self.MIN_SPLIT_SPAN:
            self.logger.info("appcues_events: reading %s through the analytics export", window)
            # A generator: the export starts when its rows are first read.
            return [_Piece(window, appcues.analytics_export(spec), exported=True)]
        return [_Piece(window, self._halves(spec, window), records=True)]

    def _halves(self, spec: dict[str, Any], window: Window) -> Iterator[dict[str, Any]]:
        """A truncated window as two halves, each read when the one before was emitted: the
        records of `[start, end)` in (timestamp, id) order."""
        assert window.start is not None
        span = window.end - window.start
        middle = window.start + span / 2
        middle = middle.replace(microsecond=middle.microsecond // 1000 * 1000)
        self.logger.info("appcues_events: %s truncated at 1,000 rows; splitting", window)
        for start, end in ((window.start, middle), (middle, window.end)):
            half = {
                **spec,
                "start_time": spec_time(start),
                "end_time": spec_time(end + self.BOUNDARY_OVERLAP),
            }
            for piece in self._rows(half, Window(start, end, True)):
                # A one-second export inside a split is small: sorted like an answer.
                yield from (
                    sorted(self._records(piece), key=sort_key)
                    if piece.exported
                    else self._sorted(piece)
                )

    def _streamed(self, pieces: list[_Piece]) -> Iterator[dict[str, Any]]:
        """A window read (in part) through exports, record by record, in constant memory.

        Export rows are asked for in timestamp order, but whether an export honours
        `order_by` is not documented: the window is read as an unsorted source (see
        get_records). Each piece keeps only rows of its own `[start, end)`, so the overlap
        and a split's halves are disjoint; a row read twice within a piece shares its
        timestamp (the id is the event's, or derived from it), so only the ids at the
        current timestamp are kept.
        """
        for piece in pieces:
            yield from _once(self._records(piece))
