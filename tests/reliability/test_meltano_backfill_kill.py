"""A first sync of history (issue 20) through `meltano run appcues-to-salesforce` itself, its
target SIGKILLed midway, then run again.

test_backfill_kills.py kills the same backfill at several points as a tap | target pipe; this
is the one kill point through Meltano (this project's meltano.yml, `sandbox` environment,
state in Meltano's system database): about 4,000 integration events over 200 days, read
through the analytics export, written in batches of 1,000 by Bulk 2.0 ingest jobs (Events,
and Latest NPS field updates). The target is killed while the third job's UploadComplete is
held (the jobs before it confirmed, the held one never confirmed to the target), so the next
`meltano run` starts from whatever bookmark Meltano stored (none when the tap's first STATE
had not come through yet: singer-sdk emits one per 10,000 records and at the end) and must
leave every eligible event exactly once in the org.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "scripts") not in sys.path:
    sys.path.insert(0, str(ROOT / "scripts"))

from meltano_sandbox import MeltanoResult, SandboxProject  # noqa: E402

pytestmark = pytest.mark.slow

H = SimpleNamespace()
JOB = "appcues-to-salesforce"
STATE_ID = "sandbox:tap-salesforce-appcues--events-to-target-salesforce-events"
HISTORY_DAYS = 200
GENERATED_EVENTS = 12_000  # about a third carry the integration's names
BATCH_ROWS = 1_000
HOLD_MS = 3000
INGEST_UPLOAD_COMPLETE = {"method": "PATCH", "path": r"/jobs/ingest/[^/]+$"}
KILL_AT_JOB = 3
# The settings of a backfill, as Meltano setting variables over the `sandbox` environment's.
SETTINGS = {
    "TARGET_SALESFORCE_EVENTS_API_TYPE": "BULK2",
    "TARGET_SALESFORCE_EVENTS_BATCH_SIZE_ROWS": str(BATCH_ROWS),
    "SANDBOX_SALESFORCE_MAX_RETRIES": "5",
    "SANDBOX_APPCUES_MAX_RETRIES": "4",
}


@pytest.fixture(autouse=True)
def _bind(harness):
    H.__dict__.update({k: getattr(harness, k) for k in dir(harness) if not k.startswith("__")})


def test_backfill_target_sigkilled_during_an_ingest_job_then_run_again(world, tmp_path):
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
    project = SandboxProject(world.connection, tmp_path / "run")
    settings = {
        **SETTINGS,
        "TAP_SALESFORCE_APPCUES__EVENTS_APPCUES_START_DATE": (
            start - timedelta(days=1)
        ).isoformat(),
    }
    if H.plugins_need_install():
        project.meltano("install", timeout=900)
    figures = H.figures.scenario(f"meltano run {JOB}: backfill, target SIGKILLed in an ingest job")

    world.salesforce.faults(
        {
            "action": "latency",
            "latency_ms": HOLD_MS,
            "times": KILL_AT_JOB,
            "match": INGEST_UPLOAD_COMPLETE,
        }
    )
    first, killed = run_killing_the_target(
        project,
        settings,
        tmp_path / "run-1.log",
        when=lambda: world.salesforce.fired() >= KILL_AT_JOB,
    )
    figures.faults += world.clear_faults() + int(killed)
    assert killed, "the third ingest job never reached UploadComplete"
    assert first.returncode != 0, "Meltano must report the killed loader"
    assert "through the analytics export" in first.output
    time.sleep(HOLD_MS / 1000 + 0.5)  # the held UploadComplete lands when its hold ends
    before = events_in_org(world)
    assert 0 < before < 3000, before  # killed midway: some Events in, not all
    # Meltano stored at most the confirmed batches' bookmark, never one past the held job.
    stored = project.state(STATE_ID).get("singer_state", {}).get("bookmarks", {})
    first_bookmark = stored.get("appcues_events", {}).get("replication_key_value")

    second, _ = run_killing_the_target(project, settings, tmp_path / "run-2.log")
    assert second.returncode == 0, second.output[-3000:]
    bookmark = project.state(STATE_ID)["singer_state"]["bookmarks"]["appcues_events"]
    assert bookmark["replication_key_value"]
    if first_bookmark:
        assert bookmark["replication_key_value"] > first_bookmark

    result = H.check_events(
        world,
        project.dead_letters("target-salesforce-events"),
        "Appcues_Event_Id__c",
        history_days=HISTORY_DAYS + 2,
        nps=False,  # as in test_backfill_kills.py: the Events are this test's subject
    )
    figures.runs += 2
    figures.record(result)
    assert result.checked > 3000, result.checked
    assert events_in_org(world) > before
    letters = project.dead_letters("target-salesforce-events")
    assert {d["reason"] for d in letters} <= {"unmatched_user"}


def run_killing_the_target(
    project: SandboxProject, settings: dict[str, str], log: Path, when: Any = None
) -> tuple[MeltanoResult, bool]:
    """`meltano run appcues-to-salesforce`; with `when`, SIGKILL the target Meltano started
    once `when()` holds."""
    box: dict[str, MeltanoResult] = {}

    def run() -> None:
        box["result"] = project.meltano(
            "run", JOB, log_path=log, check=False, extra_env=settings, timeout=280
        )

    worker = threading.Thread(target=run)
    worker.start()
    killed = False
    while worker.is_alive():
        if when is not None and not killed and when():
            pid = H.meltano_loader_pid("target-salesforce-events")
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
                killed = True
        time.sleep(0.02)
    worker.join()
    result = box["result"]
    H.remember(f"meltano run {JOB} ({log.name})", result.output)
    return result, killed


def events_in_org(world) -> int:
    sf, ac = H.verification_clients(world)
    try:
        return sum(1 for _ in sf.query("SELECT Id FROM Event"))
    finally:
        sf.close()
        ac.close()
