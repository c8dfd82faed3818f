"""Incremental windows and strict-advance checkpoints, shared by the Salesforce and Appcues streams.

Bookmark meaning: every record whose replication value is at or before the bookmark has been
emitted. So a bookmark only ever moves to the value of a *complete* group of records (all
records sharing one timestamp), and the next run reads `(bookmark - lookback, now - lag]`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# No Salesforce or Appcues record predates this; an open window is split from here.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _to_millis(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


@dataclass(frozen=True)
class Window:
    """An interval of replication values: `(start, end]`, or `[start, end]` on a first run."""

    start: datetime | None  # None: from the beginning of time
    end: datetime
    start_inclusive: bool = False

    @property
    def empty(self) -> bool:
        if self.start is None:
            return False
        return self.end < self.start or (self.end == self.start and not self.start_inclusive)

    @property
    def span(self) -> timedelta | None:
        return None if self.start is None else self.end - self.start

    def split(self) -> tuple[Window, Window]:
        """Two halves on a millisecond boundary; ValueError if it cannot be split further."""
        start = EPOCH if self.start is None else self.start
        inclusive = True if self.start is None else self.start_inclusive
        middle = _to_millis(start + (self.end - start) / 2)
        if middle <= start or middle >= self.end:
            raise ValueError(f"window {self} is too small to split")
        return Window(start, middle, inclusive), Window(middle, self.end, False)

    def chunks(self, max_span: timedelta) -> Iterator[Window]:
        """Consecutive sub-windows of at most `max_span` (the window itself if it fits)."""
        if self.start is None or self.end - self.start <= max_span:
            yield self
            return
        start, inclusive = self.start, self.start_inclusive
        while start < self.end:
            end = min(start + max_span, self.end)
            yield Window(start, end, inclusive)
            start, inclusive = end, False

    def __str__(self) -> str:
        left = "[" if self.start_inclusive else "("
        start = self.start.isoformat() if self.start else "-inf"
        return f"{left}{start}, {self.end.isoformat()}]"


def incremental_window(
    *,
    bookmark: datetime | None,
    start_date: datetime | None,
    now: datetime,
    lookback: timedelta,
    lag: timedelta,
) -> Window:
    """The window a run reads: from the bookmark minus the lookback up to `now - lag`.

    `now` must be the source's clock (the org's Date header), not the local clock.
    """
    end = _to_millis(now - lag)
    if bookmark is None:
        return Window(start_date, end, start_inclusive=True)
    start = bookmark - lookback
    if start_date is not None and start_date > start:
        return Window(start_date, end, start_inclusive=True)
    return Window(start, end, start_inclusive=False)


class UnsortedSourceError(Exception):
    """A source announced as sorted returned a smaller replication value than before."""


class GroupCheckpoint:
    """Decides when the bookmark may advance while sorted records stream past.

    A replication value becomes committable only once a strictly greater value is seen (its
    group is complete) or the window's query has ended. Unsorted sources (a Bulk result without
    a usable order) commit their maximum only when the window ends.
    """

    def __init__(self, bookmark: datetime | None) -> None:
        self.bookmark = bookmark
        self._pending: datetime | None = None
        self._sorted = True
        self._ceiling: datetime | None = None  # hold(): the bookmark stays below this

    def begin_window(self, *, sorted_source: bool) -> None:
        self._pending = None
        self._sorted = sorted_source

    def observe(self, value: datetime) -> datetime | None:
        """Feed one record's value; returns a new bookmark when a group completed."""
        pending = self._pending
        if pending is None or value > pending:
            self._pending = value
            return self._advance(pending) if self._sorted else None
        if value < pending and self._sorted:
            raise UnsortedSourceError(
                f"replication value {value.isoformat()} after {pending.isoformat()}"
            )
        return None

    def end_window(self) -> datetime | None:
        """The window's query ended: everything up to its last value is complete."""
        pending, self._pending = self._pending, None
        return self._advance(pending)

    def abandon_window(self) -> None:
        """The window's query failed midway: what is pending is not complete."""
        self._pending = None

    def hold(self, value: datetime) -> None:
        """A record at `value` was not emitted (it will be read again): for the rest of the
        run the bookmark stays strictly below `value`, so the next run reads it again."""
        if self._ceiling is None or value < self._ceiling:
            self._ceiling = value

    def _advance(self, value: datetime | None) -> datetime | None:
        if value is None or (self.bookmark is not None and value <= self.bookmark):
            return None
        if self._ceiling is not None and value >= self._ceiling:
            return None
        self.bookmark = value
        return value
