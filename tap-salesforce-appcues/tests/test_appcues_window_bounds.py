"""Truncated analytics windows split safely whatever the API's window bounds mean.

Appcues does not document whether `end_time` is inclusive or compared in whole seconds; the
sandbox answers each way (settings `analytics_window_end`, `analytics_window_precision`).
Events sit every half second, on the split points (or, with a start off the whole second,
around them and in the second the start falls in): under every way the
tap delivers each event of its window exactly once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from salesforce_appcues_clients.appcues import AppcuesClient
from salesforce_appcues_clients.appcues_events import DEFAULT_EVENT_NAMES

S = timedelta(seconds=1)
SPAN = 1024 * S  # split into halves and quarters on whole seconds: events sit on them
LAG = 60


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture
def appcues(config):
    client = AppcuesClient.from_config(config(), prefix="appcues_")
    yield client
    client.close()


def analytics_queries(control) -> int:
    calls = control.call("GET", "stats")["calls"]
    return sum(n for key, n in calls.items() if key.startswith("POST") and "analytics/query" in key)


@pytest.mark.parametrize("offset", [0, 250], ids=["whole", "fraction"])
@pytest.mark.parametrize("precision", ["ms", "s"])
@pytest.mark.parametrize("end", ["exclusive", "inclusive"])
def test_split_windows_lose_and_double_nothing(
    appcues_control, appcues, config, run, t0, end, precision, offset
):
    settled = t0 - LAG * S  # the window's end: Appcues' clock minus appcues_lag
    start = settled - SPAN - offset * timedelta(milliseconds=1)  # split points move off
    name = DEFAULT_EVENT_NAMES[0]
    # Every half second from just before the window to just after it (2,048 inside).
    moments = [settled - SPAN - 2 * S + i * S / 2 for i in range(int(SPAN / S) * 2 + 8)]
    rows = [
        {"user_id": f"u{i % 7}", "name": name, "timestamp": iso(m), "attributes": {"n": i}}
        for i, m in enumerate(moments)
    ]
    job = appcues.wait_for_job(appcues.import_events(rows), timeout=60)
    assert job.finished
    inside = sorted(
        r["attributes"]["n"] for r, m in zip(rows, moments, strict=True) if start <= m < settled
    )
    assert len(inside) == 2048
    appcues_control.call(
        "POST",
        "settings",
        {"analytics_window_end": end, "analytics_window_precision": precision},
    )

    before = analytics_queries(appcues_control)
    result = run(config(appcues_start_date=iso(start), appcues_lag=LAG), streams=["appcues_events"])
    records = result.records["appcues_events"]
    assert analytics_queries(appcues_control) - before >= 3  # truncated, and split
    got = sorted(r["attributes"]["n"] for r in records)
    assert got == inside  # nothing lost, nothing twice, nothing outside the window
    assert len({r["id"] for r in records}) == len(records)
    assert result.bookmark("appcues_events") == iso(settled - S / 2)
