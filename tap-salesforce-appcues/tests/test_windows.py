"""Window arithmetic and strict-advance checkpoints (pure logic, no I/O)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from tap_salesforce_appcues.windows import (
    GroupCheckpoint,
    UnsortedSourceError,
    Window,
    incremental_window,
)

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
S = timedelta(seconds=1)


def test_first_run_reads_from_start_date_inclusive_to_now_minus_lag():
    w = incremental_window(
        bookmark=None, start_date=T0, now=T0 + 100 * S, lookback=10 * S, lag=5 * S
    )
    assert w == Window(T0, T0 + 95 * S, start_inclusive=True)


def test_later_run_reads_from_bookmark_minus_lookback_exclusive():
    w = incremental_window(
        bookmark=T0 + 50 * S, start_date=T0, now=T0 + 100 * S, lookback=10 * S, lag=5 * S
    )
    assert w == Window(T0 + 40 * S, T0 + 95 * S, start_inclusive=False)


def test_start_date_after_lookback_start_wins():
    w = incremental_window(
        bookmark=T0 + 5 * S, start_date=T0, now=T0 + 100 * S, lookback=10 * S, lag=0 * S
    )
    assert w.start == T0 and w.start_inclusive


def test_window_ending_before_it_starts_is_empty():
    w = incremental_window(
        bookmark=T0 + 100 * S, start_date=None, now=T0 + 100 * S, lookback=0 * S, lag=5 * S
    )
    assert w.empty
    assert not Window(T0, T0, start_inclusive=True).empty
    assert Window(T0, T0, start_inclusive=False).empty


def test_split_halves_on_millisecond_boundaries_and_keeps_inclusivity():
    left, right = Window(T0, T0 + 3 * S, start_inclusive=True).split()
    assert left.start == T0 and left.start_inclusive
    assert left.end == right.start == T0 + timedelta(milliseconds=1500)
    assert not right.start_inclusive and right.end == T0 + 3 * S
    with pytest.raises(ValueError, match="too small"):
        Window(T0, T0 + timedelta(milliseconds=1)).split()


def test_chunks_cover_the_window_without_overlap():
    w = Window(T0, T0 + timedelta(days=200), start_inclusive=True)
    chunks = list(w.chunks(timedelta(days=90)))
    assert [c.end - c.start for c in chunks] == [
        timedelta(days=90),
        timedelta(days=90),
        timedelta(days=20),
    ]
    assert chunks[0].start_inclusive and not chunks[1].start_inclusive
    assert all(a.end == b.start for a, b in itertools.pairwise(chunks))


def test_group_commits_only_when_a_strictly_greater_value_arrives():
    cp = GroupCheckpoint(bookmark=None)
    cp.begin_window(sorted_source=True)
    assert cp.observe(T0) is None
    assert cp.observe(T0) is None  # same group: nothing complete yet
    assert cp.observe(T0 + S) == T0  # T0's group is complete
    assert cp.observe(T0 + S) is None
    assert cp.end_window() == T0 + S  # query ended: last group complete
    assert cp.bookmark == T0 + S


def test_a_large_equal_group_never_commits_midway():
    cp = GroupCheckpoint(bookmark=T0)
    cp.begin_window(sorted_source=True)
    commits = [cp.observe(T0 + S) for _ in range(2500)]
    assert commits == [None] * 2500
    assert cp.bookmark == T0  # an interruption now resumes from before the group
    cp.abandon_window()
    assert cp.end_window() is None and cp.bookmark == T0


def test_lookback_records_below_the_bookmark_never_move_it_back():
    cp = GroupCheckpoint(bookmark=T0 + 10 * S)
    cp.begin_window(sorted_source=True)
    assert cp.observe(T0) is None
    assert cp.observe(T0 + 5 * S) is None
    assert cp.observe(T0 + 10 * S) is None
    assert cp.end_window() is None
    assert cp.bookmark == T0 + 10 * S


def test_sorted_source_going_backwards_is_an_error():
    cp = GroupCheckpoint(bookmark=None)
    cp.begin_window(sorted_source=True)
    cp.observe(T0 + S)
    with pytest.raises(UnsortedSourceError):
        cp.observe(T0)


def test_unsorted_source_commits_its_maximum_only_at_the_end():
    cp = GroupCheckpoint(bookmark=None)
    cp.begin_window(sorted_source=False)
    assert cp.observe(T0 + 2 * S) is None
    assert cp.observe(T0) is None
    assert cp.observe(T0 + 3 * S) is None
    assert cp.observe(T0 + S) is None
    assert cp.end_window() == T0 + 3 * S


def test_empty_window_keeps_the_bookmark():
    cp = GroupCheckpoint(bookmark=T0)
    cp.begin_window(sorted_source=True)
    assert cp.end_window() is None
    assert cp.bookmark == T0


def test_a_held_value_keeps_the_bookmark_below_it_for_the_rest_of_the_run():
    cp = GroupCheckpoint(bookmark=None)
    cp.begin_window(sorted_source=True)
    assert cp.observe(T0) is None
    cp.hold(T0 + 2 * S)  # a record at +2 s was not emitted
    assert cp.observe(T0 + 1 * S) == T0  # groups before it still commit
    assert cp.observe(T0 + 2 * S) == T0 + 1 * S
    assert cp.observe(T0 + 3 * S) is None  # +2 s is incomplete: no further
    assert cp.end_window() is None
    cp.begin_window(sorted_source=True)  # a later window of the same run
    cp.observe(T0 + 9 * S)
    assert cp.end_window() is None
    assert cp.bookmark == T0 + 1 * S
