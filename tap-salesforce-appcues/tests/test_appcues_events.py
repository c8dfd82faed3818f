"""The appcues_events stream against the Appcues sandbox: names, truncation, analytics delay."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from salesforce_appcues_clients.appcues import AppcuesClient
from salesforce_appcues_clients.appcues_events import APPCUES_EVENT_PREFIX, DEFAULT_EVENT_NAMES

H = timedelta(hours=1)
S = timedelta(seconds=1)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture
def appcues(config):
    client = AppcuesClient.from_config(config(), prefix="appcues_")
    yield client
    client.close()


def stored_events(appcues, start: datetime, end: datetime) -> list[dict]:
    """Every event the store holds in [start, end), read through the uncapped export."""
    spec = {
        "columns": ["timestamp", "user_id", "name"],
        "start_time": iso(start),
        "end_time": iso(end),
        "timezone": "UTC",
    }
    return list(appcues.analytics_export(spec))


def analytics_queries(control) -> int:
    calls = control.call("GET", "stats")["calls"]
    return sum(n for key, n in calls.items() if key.startswith("POST") and "analytics/query" in key)


@pytest.fixture
def seeded(appcues_control, appcues, t0):
    start, end = t0 - 20 * H, t0 - H
    body = {"Contact": 60, "Lead": 20, "events": 5000, "seed": 5}
    appcues_control.call("POST", "seed", {**body, "start": iso(start), "end": iso(end)})
    return stored_events(appcues, start - H, t0)


def test_only_configured_names_and_truncated_windows_split(
    seeded, appcues_control, config, run, t0
):
    wanted = [e for e in seeded if e["name"] in DEFAULT_EVENT_NAMES]
    assert len(wanted) > 1000, "the seed must overflow one 1,000-row analytics answer"
    before = analytics_queries(appcues_control)
    result = run(
        config(appcues_start_date=iso(t0 - 24 * H), appcues_lag=60), streams=["appcues_events"]
    )
    records = result.records["appcues_events"]
    assert Counter(r["name"] for r in records) == Counter(e["name"] for e in wanted)
    assert len({r["id"] for r in records}) == len(records)
    # A day of events came back truncated at 1,000 rows and was split until it was not.
    assert analytics_queries(appcues_control) - before >= 3
    assert result.bookmark("appcues_events") == max(r["timestamp"] for r in records)
    sample = records[0]
    assert set(sample) == {
        "id",
        "name",
        "timestamp",
        "user_id",
        "group_id",
        "attributes",
        "context",
    }
    assert set(sample["context"]) == {"url", "title"}

    # Ids are deterministic: a re-read gives the same ids for the same events.
    again = run(
        config(appcues_start_date=iso(t0 - 24 * H), appcues_lag=60), streams=["appcues_events"]
    )
    assert {r["id"] for r in again.records["appcues_events"]} == {r["id"] for r in records}


def test_custom_events_when_enabled(seeded, config, run, t0):
    custom = [e for e in seeded if not e["name"].startswith(APPCUES_EVENT_PREFIX)]
    assert custom
    result = run(
        config(
            appcues_start_date=iso(t0 - 24 * H),
            appcues_event_names=["appcues:nps_score"],
            appcues_include_custom_events=True,
        ),
        streams=["appcues_events"],
    )
    names = Counter(r["name"] for r in result.records["appcues_events"])
    expected = Counter(e["name"] for e in seeded if e["name"] == "appcues:nps_score" or e in custom)
    assert names == expected
    assert "appcues:page_view" not in names


def exports(control) -> int:
    calls = control.call("GET", "stats")["calls"]
    return sum(n for key, n in calls.items() if key.startswith("POST") and key.endswith("exports"))


def test_backfill_goes_through_the_export(seeded, appcues_control, config, run, t0):
    queries, started = analytics_queries(appcues_control), exports(appcues_control)
    result = run(
        config(appcues_start_date=iso(t0 - 30 * 24 * H), appcues_export_after_days=7),
        streams=["appcues_events"],
    )
    wanted = [e for e in seeded if e["name"] in DEFAULT_EVENT_NAMES]
    assert len(result.records["appcues_events"]) == len(wanted)
    # One query came back truncated; the 30-day window then went to one export, not to
    # a cascade of 1,000-row halvings.
    assert analytics_queries(appcues_control) - queries == 1
    assert exports(appcues_control) - started == 1
    # The export and the 1,000-row queries give the same ids for the same events.
    by_queries = run(
        config(appcues_start_date=iso(t0 - 30 * 24 * H), appcues_export_after_days=90),
        streams=["appcues_events"],
    )
    assert exports(appcues_control) - started == 1
    assert {r["id"] for r in by_queries.records["appcues_events"]} == {
        r["id"] for r in result.records["appcues_events"]
    }


def test_a_quiet_backfill_costs_one_query(appcues_control, config, run, t0):
    queries, started = analytics_queries(appcues_control), exports(appcues_control)
    result = run(config(appcues_start_date=iso(t0 - 80 * 24 * H)), streams=["appcues_events"])
    assert result.records["appcues_events"] == []
    assert result.bookmark("appcues_events") is None  # nothing seen: no bookmark invented
    assert analytics_queries(appcues_control) - queries == 1
    assert exports(appcues_control) == started


def test_analytics_delay_is_covered_by_the_lookback(appcues_control, appcues, config, run, t0):
    # C happened 15 minutes ago and reached analytics long ago.
    appcues_control.set_clock(t0 - 900 * S)
    appcues.track_event("u-c", {"name": "appcues:flow_completed", "timestamp": iso(t0 - 900 * S)})
    appcues_control.set_clock(t0)
    # A happened 20 minutes ago but only arrives now (an offline device), and analytics
    # shows events five minutes after they arrive.
    appcues.track_event(
        "u-a",
        {"name": "appcues:nps_score", "timestamp": iso(t0 - 1200 * S), "attributes": {"score": 9}},
    )
    appcues_control.call("POST", "settings", {"analytics_delay_seconds": 300})

    cfg = {"appcues_start_date": iso(t0 - 2 * H), "appcues_lag": 60}
    first = run(config(**cfg), streams=["appcues_events"])
    assert [r["user_id"] for r in first.records["appcues_events"]] == ["u-c"]
    assert first.bookmark("appcues_events") == iso(t0 - 900 * S)

    appcues_control.advance_clock(400)  # A becomes visible in analytics
    second = run(
        config(appcues_lookback_window=3600, **cfg), first.state, streams=["appcues_events"]
    )
    users = [r["user_id"] for r in second.records["appcues_events"]]
    assert "u-a" in users
    score = next(r for r in second.records["appcues_events"] if r["user_id"] == "u-a")
    assert score["attributes"] == {"score": 9}
    # The bookmark did not move back, and without a lookback A would have been missed.
    assert second.bookmark("appcues_events") == iso(t0 - 900 * S)
    no_lookback = run(
        config(appcues_lookback_window=0, **cfg), first.state, streams=["appcues_events"]
    )
    assert "u-a" not in [r["user_id"] for r in no_lookback.records["appcues_events"]]


def test_events_settle_by_the_appcues_clock(appcues_control, appcues, config, run, t0):
    # Only Appcues is configured, so the fallback clock is this machine's (months after the
    # sandbox clock, frozen at t0); the Date header of Appcues' answers decides instead.
    appcues_control.call("POST", "settings", {"analytics_delay_seconds": 0})
    flow = "appcues:flow_completed"
    appcues.track_event("u-old", {"name": flow, "timestamp": iso(t0 - 900 * S)})
    appcues.track_event("u-new", {"name": flow, "timestamp": iso(t0 - 100 * S)})
    cfg = config(appcues_start_date=iso(t0 - 2 * H), appcues_lag=300)
    for key in ("client_id", "client_secret", "refresh_token"):
        cfg.pop(key)

    first = run(cfg, streams=["appcues_events"])
    # u-new is 100 s old by Appcues' clock, inside appcues_lag: left for the next run.
    assert [r["user_id"] for r in first.records["appcues_events"]] == ["u-old"]
    assert first.bookmark("appcues_events") == iso(t0 - 900 * S)
    assert first.calls == {"salesforce": 0, "appcues": 1}  # the clock cost no call

    appcues_control.advance_clock(300)
    second = run(cfg, first.state, streams=["appcues_events"])
    assert "u-new" in [r["user_id"] for r in second.records["appcues_events"]]
    assert second.bookmark("appcues_events") == iso(t0 - 100 * S)


@pytest.fixture
def export_order(appcues_control):
    """Set the sandbox's export row order for one test (docs/sandbox.md: a guess)."""

    def make(order: str) -> None:
        appcues_control.settings(analytics_export_order=order)

    yield make
    appcues_control.settings(analytics_export_order="spec")


@pytest.mark.parametrize("order", ["spec", "reverse"])
def test_an_exported_window_commits_its_bookmark_only_once_read_whole(
    seeded, config, run, t0, export_order, order
):
    """Whatever order the export file holds, a run stopped inside an exported window keeps
    the bookmark it started with, and the next run emits everything; a whole window commits
    its latest timestamp."""
    export_order(order)
    settings = config(appcues_start_date=iso(t0 - 30 * 24 * H), appcues_export_after_days=7)
    wanted = {e["timestamp"] for e in seeded if e["name"] in DEFAULT_EVENT_NAMES}

    stopped = run(settings, streams=["appcues_events"], abort_after=300)
    assert stopped.aborted
    assert len(stopped.records["appcues_events"]) >= 300
    assert stopped.bookmark("appcues_events") is None  # the window was not read whole

    resumed = run(settings, stopped.state, streams=["appcues_events"])
    records = resumed.records["appcues_events"]
    assert len({r["id"] for r in records}) == len(records)  # each event once
    assert len(records) == sum(1 for e in seeded if e["name"] in DEFAULT_EVENT_NAMES)
    assert resumed.bookmark("appcues_events") == max(r["timestamp"] for r in records)
    assert max(r["timestamp"] for r in records) == iso(
        datetime.fromisoformat(max(wanted).replace("Z", "+00:00"))
    )
