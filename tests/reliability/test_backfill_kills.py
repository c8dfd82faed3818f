"""A first sync of history (issue 20), tap | target, killed with SIGKILL and run again.

About 4,000 integration events over 200 days: the tap reads each 90-day window longer than
`appcues_export_after_days` through the analytics export; the events target writes them in
Bulk API 2.0 ingest jobs of 300 rows (`api_type` BULK2). Each scenario kills one process at
a point chosen by what the sandbox has seen (a request held by a latency rule), never by
time; the next runs must leave every eligible event exactly once in the org.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

pytestmark = pytest.mark.slow

HISTORY_DAYS = 200
GENERATED_EVENTS = 12_000  # about a third carry the integration's names
BATCH_ROWS = 300
HOLD_MS = 3000
DOWNLOAD = {"method": "GET", "path": r"^/downloads/exports/"}
INGEST_CREATE = {"method": "POST", "path": r"/jobs/ingest/?$"}
INGEST_UPLOAD_COMPLETE = {"method": "PATCH", "path": r"/jobs/ingest/[^/]+$"}

H = SimpleNamespace()


@pytest.fixture(autouse=True)
def _bind(harness):
    H.__dict__.update({k: getattr(harness, k) for k in dir(harness) if not k.startswith("__")})


@dataclass
class KillPoint:
    name: str
    service: str  # whose request is held
    match: dict[str, str]
    nth: int  # the kill comes when the nth matching request is held
    process: str  # "tap" or "target"


KILL_POINTS = [
    # The first window was exported and emitted; the second window's download is held.
    KillPoint("tap killed during the second export download", "appcues", DOWNLOAD, 2, "tap"),
    # The second job's data is uploaded; its UploadComplete is held, then lands after the
    # kill: Salesforce inserts rows the target never saw confirmed.
    KillPoint(
        "target killed during a Bulk 2.0 ingest job",
        "salesforce",
        INGEST_UPLOAD_COMPLETE,
        2,
        "target",
    ),
    # Two batches confirmed, the third job not created yet.
    KillPoint("target killed between batches", "salesforce", INGEST_CREATE, 3, "target"),
]


def seed_history(world) -> datetime:
    """Salesforce seeded as usual; Appcues events over the HISTORY_DAYS before its clock."""
    world.reset(events=False)
    now = datetime.fromisoformat(world.appcues.now().replace("Z", "+00:00"))
    start = now - timedelta(days=HISTORY_DAYS)
    seeded = world.appcues.call(
        "POST",
        "seed",
        {
            **H.appcues_seed,
            "events": GENERATED_EVENTS,
            "start": start.isoformat(),
            "end": (now - timedelta(hours=1)).isoformat(),
        },
    )
    assert seeded["events"] >= GENERATED_EVENTS
    return start


def events_in_org(world) -> int:
    sf, ac = H.verification_clients(world)
    try:
        return sum(1 for _ in sf.query("SELECT Id FROM Event"))
    finally:
        sf.close()
        ac.close()


def held(world, point: KillPoint) -> Callable[[], bool]:
    control = world.appcues if point.service == "appcues" else world.salesforce
    return lambda: control.fired() >= point.nth


@pytest.mark.parametrize("point", KILL_POINTS, ids=lambda p: p.name)
def test_killed_backfill_resumes_without_loss_or_duplicates(world, tmp_path, point):
    figures = H.figures.scenario(f"backfill: {point.name}")
    start = seed_history(world)
    pipeline = H.events_pipeline(world, tmp_path, api_type="BULK2", batch_size_rows=BATCH_ROWS)
    pipeline.tap_config["appcues_start_date"] = (start - timedelta(days=1)).isoformat()
    control = world.appcues if point.service == "appcues" else world.salesforce
    control.faults(
        {"action": "latency", "latency_ms": HOLD_MS, "times": point.nth, "match": point.match}
    )
    kill: dict[str, Any] = {
        "kill_tap_when" if point.process == "tap" else "kill_target_when": held(world, point)
    }
    first = pipeline.run(**kill)
    figures.faults += world.clear_faults()
    assert first.killed, "the kill point was never reached"
    time.sleep(HOLD_MS / 1000 + 0.5)  # a held request lands when its hold ends
    assert not first.ok
    # The backfill really went through the export, and the kill came midway: some Events
    # are in the org (the next run sends them again), not all.
    assert "through the analytics export" in first.tap_log
    before = events_in_org(world)
    assert 0 < before < 3000, before

    last = first
    while not last.ok and pipeline.runs < 4:
        last = pipeline.run()
    assert last.ok, "\n".join(last.logs.splitlines()[-30:])
    assert "through the analytics export" in last.tap_log
    bookmark = (pipeline.state or {}).get("bookmarks", {}).get("appcues_events", {})
    assert bookmark.get("replication_key_value"), pipeline.state

    # Events and the Latest NPS fields (per field, latest by event time; docs/reliability.md).
    result = H.check_events(
        world, pipeline.dead_letters(), "Appcues_Event_Id__c", history_days=HISTORY_DAYS + 2
    )
    figures.runs += pipeline.runs
    figures.checked += result.checked
    figures.lost += len(result.lost)
    figures.duplicates += len(result.duplicates)
    figures.dead_lettered += result.dead_lettered
    assert not result.lost, str(result)
    assert not result.duplicates, str(result)
    assert result.checked > 3000, result.checked  # a few thousand events, most in exports
    assert events_in_org(world) > before
    assert {d["reason"] for d in pipeline.dead_letters()} <= {"unmatched_user"}
