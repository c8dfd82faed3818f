"""Joins one window read as several queries, each with a share of a wide object's fields.

Every part reads the same rows (same WHERE, ordered by SystemModstamp, Id) with `Id` and
`SystemModstamp` among its fields. A record is whole when every part returned it with the
same SystemModstamp. A record changed between the parts' reads moves past the window's
end (its new SystemModstamp is later than the window), so a part read later misses it or,
in principle, shows another stamp: such a record is not emitted, and `on_mismatch` gets
its (earliest) SystemModstamp so the caller can hold the bookmark below it. The next run
reads it whole.

Memory stays bounded: the first part drives, the others are read just far enough to find
each driver record (records sharing a SystemModstamp may come in any Id order).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

from .timefmt import parse_datetime

RawRecord = dict[str, Any]


def merge_into(whole: dict[str, Any], part: Mapping[str, Any]) -> None:
    """Add a part's fields to a record; parent relationships (nested objects) merge too."""
    for key, value in part.items():
        held = whole.get(key)
        if isinstance(held, dict) and isinstance(value, Mapping):
            merge_into(held, value)
        elif key not in whole:
            whole[key] = dict(value) if isinstance(value, Mapping) else value


def _key(raw: Mapping[str, Any]) -> tuple[str, datetime]:
    return str(raw["Id"]), parse_datetime(str(raw["SystemModstamp"]))


class _Follower:
    """A part other than the first: read ahead only as far as the driver needs."""

    def __init__(self, rows: Iterator[RawRecord]) -> None:
        self.rows = rows
        self.pending: dict[str, tuple[datetime, RawRecord]] = {}
        self.last: datetime | None = None
        self.done = False

    def find(self, record_id: str, stamp: datetime) -> tuple[datetime, RawRecord] | None:
        while record_id not in self.pending and not self.done:
            if self.last is not None and self.last > stamp:
                break  # sorted by SystemModstamp: the record is not in this part
            raw = next(self.rows, None)
            if raw is None:
                self.done = True
                break
            rid, at = _key(raw)
            self.pending[rid] = (at, raw)
            self.last = at
        return self.pending.pop(record_id, None)

    def drop_before(self, stamp: datetime | None) -> list[tuple[str, datetime]]:
        """Records this part returned that the driver never did (all of them if None)."""
        gone = [(rid, at) for rid, (at, _) in self.pending.items() if stamp is None or at < stamp]
        for rid, _ in gone:
            del self.pending[rid]
        return gone


def join_parts(
    parts: list[Iterator[RawRecord]],
    on_mismatch: Callable[[str, datetime], None],
) -> Iterator[RawRecord]:
    """Whole REST records of the window, in the first part's order."""
    driver, followers = parts[0], [_Follower(p) for p in parts[1:]]
    current: datetime | None = None
    for raw in driver:
        rid, stamp = _key(raw)
        if current is None or stamp > current:
            current = stamp
            for follower in followers:
                for other_id, at in follower.drop_before(stamp):
                    on_mismatch(other_id, at)
        whole: RawRecord = dict(raw)
        agreed = True
        for follower in followers:
            found = follower.find(rid, stamp)
            if found is None or found[0] != stamp:
                agreed = False
                earliest = stamp if found is None else min(stamp, found[0])
                on_mismatch(rid, earliest)
                continue
            merge_into(whole, found[1])
        if agreed:
            yield whole
    if current is None:
        return  # an empty window: the other parts are never sent (nothing can enter it)
    for follower in followers:
        for rid in list(follower.pending):
            at, _ = follower.pending.pop(rid)
            on_mismatch(rid, at)
        for raw in follower.rows:  # a part longer than the driver: records it alone saw
            on_mismatch(*_key(raw))
