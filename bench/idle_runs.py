"""Measurement 4: an idle scheduled run of each job, and its cost over a day of 288 runs.

Both jobs run as Meltano runs them (tap | target, the configs of meltano.yml's jobs, the
catalog from one `--discover` with the job's selection): a priming run on seeded data,
then the sandbox clock moves five minutes with nothing changed and the job runs again from
the state its target emitted. The idle run's API calls (sandbox stats, OAuth excluded) and
wall time are the figures; a day is 288 such runs, held against the 15,000 daily calls of
a Developer Edition org.

    python bench/idle_runs.py
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from harness import (
    REPO,
    Sandbox,
    appcues_settings,
    child_env,
    events_calls,
    plugin,
    profiles_summary,
    run_pipeline,
    salesforce_settings,
    tap_calls,
    write_json,
)

RUNS_PER_DAY = 288
DAILY_CALLS = 15_000  # a Developer Edition org's daily API requests
SEED = {"Contact": 2_000, "Lead": 500, "Account": 100}
EVENTS = 5_000

JOBS: dict[str, dict[str, Any]] = {
    "salesforce-to-appcues": {
        "tap": {  # tap-salesforce-appcues--profiles
            "user_objects": ["Contact", "Lead"],
            "relationship_fields": {"Contact": ["Account.Product_Account_Id__c"]},
        },
        "select": lambda stream: stream != "appcues_events",
        "target": "target-appcues-profiles",
        "target_config": {"user_group_field": "Account.Product_Account_Id__c"},
    },
    "appcues-to-salesforce": {
        "tap": {"user_objects": [], "account_object": ""},  # tap-salesforce-appcues--events
        "select": lambda stream: stream == "appcues_events",
        "target": "target-salesforce-events",
        "target_config": {},
    },
}


def seed(sandbox: Sandbox, scale: float = 1.0) -> dict[str, int]:
    counts = {name: max(1, int(n * scale)) for name, n in SEED.items()}
    events = max(1, int(EVENTS * scale))
    sandbox.seed_salesforce(**counts, seed=11)
    sandbox.ac.reset()
    end = datetime.now(UTC) - timedelta(hours=2)  # all events older than any lag or delay
    sandbox.ac.call(
        "POST",
        "seed",
        {
            **counts,
            "seed": 11,
            "events": events,
            "end": end.isoformat(),
            "start": (end - timedelta(days=20)).isoformat(),
        },
    )
    return counts | {"appcues_events": events}


def _catalog(sandbox: Sandbox, tap_config: Path, workdir: Path, select: Any) -> Path:
    found = subprocess.run(
        [plugin("tap-salesforce-appcues"), "--config", str(tap_config), "--discover"],
        env=child_env(sandbox),
        cwd=workdir,
        capture_output=True,
        check=True,
        timeout=600,
    )
    catalog = json.loads(found.stdout)
    for stream in catalog["streams"]:
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == []:
                entry["metadata"]["selected"] = bool(select(stream["tap_stream_id"]))
    return write_json(workdir / "catalog.json", catalog)


def run_job(sandbox: Sandbox, workdir: Path, job: str) -> dict[str, Any]:
    spec = JOBS[job]
    workdir = workdir / job
    workdir.mkdir(parents=True, exist_ok=True)
    tap_config = write_json(
        workdir / "tap-config.json",
        {
            **salesforce_settings(sandbox),
            **appcues_settings(sandbox, prefix="appcues_"),
            **spec["tap"],
        },
    )
    target_settings = (
        appcues_settings(sandbox)
        if spec["target"] == "target-appcues-profiles"
        else salesforce_settings(sandbox)
    )
    target_config = write_json(
        workdir / "target-config.json",
        {**target_settings, "state_dir": str(workdir / "target-state"), **spec["target_config"]},
    )
    catalog = _catalog(sandbox, tap_config, workdir, spec["select"])
    state: dict[str, Any] | None = None
    runs: dict[str, dict[str, Any]] = {}
    for phase in ("priming", "idle"):
        tap = [plugin("tap-salesforce-appcues"), "--config", str(tap_config)]
        tap += ["--catalog", str(catalog)]
        if state is not None:
            tap += ["--state", str(write_json(workdir / f"{phase}-state.json", state))]
        target = [plugin(spec["target"]), "--config", str(target_config)]
        with sandbox.measured() as calls:
            result = run_pipeline(
                [(f"{phase}-tap", tap), (f"{phase}-target", target)],
                env=child_env(sandbox),
                workdir=workdir / phase,
            )
        for proc in result.processes:
            proc.check()
        state = result.last_state or state
        records = _records_emitted(result.processes[0].log())
        runs[phase] = {
            "wall_seconds": result.wall_seconds,
            "salesforce_calls": calls["salesforce_calls"],
            "appcues_calls": calls["appcues_calls"],
            "api_calls": calls["salesforce_calls"] + calls["appcues_calls"],
            "salesforce_calls_by_path": calls["salesforce_calls_by_path"],
            "appcues_calls_by_path": calls["appcues_calls_by_path"],
            "tap_logged_calls": tap_calls(result.processes[0].log()),
            "target_logged_calls": _target_calls(spec["target"], result.processes[1].log()),
            "records_read_by_tap": records,
            "tap_peak_rss_mb": result.processes[0].peak_rss_mb,
            "target_peak_rss_mb": result.processes[1].peak_rss_mb,
        }
        if phase == "priming":
            sandbox.advance_clock(300)  # the next scheduled run, nothing changed
    idle = runs["idle"]
    streams = _selected(catalog)
    return {
        "streams": streams,
        "idle": idle,
        "priming": runs["priming"],
        "calls_per_stream": round(idle["api_calls"] / len(streams), 2),
        "per_day_salesforce_calls": idle["salesforce_calls"] * RUNS_PER_DAY,
        "per_day_share_of_15000": round(idle["salesforce_calls"] * RUNS_PER_DAY / DAILY_CALLS, 4),
        "per_day_appcues_calls": idle["appcues_calls"] * RUNS_PER_DAY,
        "per_day_wall_seconds": round(idle["wall_seconds"] * RUNS_PER_DAY),
    }


def _target_calls(target: str, log: str) -> int | None:
    if target == "target-appcues-profiles":
        summary = profiles_summary(log)
        return summary.get("api_calls") if summary else None
    return events_calls(log)


def _selected(catalog: Path) -> list[str]:
    return [
        stream["tap_stream_id"]
        for stream in json.loads(catalog.read_text())["streams"]
        for entry in stream["metadata"]
        if entry["breadcrumb"] == [] and entry["metadata"].get("selected")
    ]


def _records_emitted(log: str) -> dict[str, int]:
    """The SDK's record_count metrics per stream (the tap's stdout went to the target)."""
    counts: dict[str, int] = {}
    for line in log.splitlines():
        if '"metric":"record_count"' in line.replace(" ", ""):
            metric = json.loads(line.split("METRIC: ", 1)[1])
            stream = metric["tags"].get("stream", "?")
            counts[stream] = counts.get(stream, 0) + int(metric["value"])
    return counts


def run(sandbox: Sandbox, workdir: Path, scale: float = 1.0) -> dict[str, Any]:
    """`scale` shrinks the seeded data (the smoke test's tiny run)."""
    seeded = seed(sandbox, scale)
    sandbox.advance_clock(120)
    jobs = {job: run_job(sandbox, workdir, job) for job in JOBS}
    total_sf = sum(j["idle"]["salesforce_calls"] for j in jobs.values())
    return {
        "seed": seeded,
        "runs_per_day": RUNS_PER_DAY,
        "daily_calls_developer_edition": DAILY_CALLS,
        "jobs": jobs,
        "both_jobs_per_day_salesforce_calls": total_sf * RUNS_PER_DAY,
        "both_jobs_per_day_share_of_15000": round(total_sf * RUNS_PER_DAY / DAILY_CALLS, 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / ".work" / "idle-runs")
    args = parser.parse_args(argv)
    from salesforce_appcues_sandbox.server import SandboxProcess

    with SandboxProcess() as proc:
        sandbox = Sandbox(proc.connection, proc.process.pid if proc.process else None)
        result = run(sandbox, args.workdir)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
