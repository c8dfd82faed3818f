"""Measurement 7 (issue 20): a first sync of history through target-salesforce-events,
sObject Collections (`api_type` REST) against Bulk API 2.0 ingest (`api_type` AUTO), then
the whole pipeline from the Appcues export.

The same N events (the mix of measurement 2) go into a fresh state folder each time, with
`batch_size_rows` 100,000 for both modes (a backfill's setting: fewer, larger batches), so
the only difference is the write API. Figures per mode: Salesforce API calls (the sandbox's
count), wall time, events/s, peak RSS of the target process.

The pipeline: N events seeded in the Appcues sandbox over the year before its clock, read by
`tap-salesforce-appcues` (`appcues_events` only, `appcues_start_date` a year back: each
90-day window goes through the analytics export) piped into `target-salesforce-events`
(AUTO): peak RSS of each process, wall time, Salesforce and Appcues calls, the Events that
landed, and the bookmarks the target committed.

The same pipeline as this repository's Meltano job, `meltano run appcues-to-salesforce` in the
`sandbox` environment (meltano.yml; the job's tap is `tap-salesforce-appcues--events`), at the
largest size of a bench set only: Events landed, wall time (Meltano's start-up included),
Salesforce and Appcues calls, peak RSS of the tap's and the target's processes (sampled from
Meltano's process tree, bench/meltano_job.py), the bookmark Meltano stored at the end and
how many STATE messages it stored on the way.

    python bench/backfill.py [--events 100000] [--users 1000] [--modes REST,AUTO] [--no-pipeline]
                             [--meltano]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import meltano_job
from harness import (
    REPO,
    Sandbox,
    appcues_settings,
    child_env,
    per_second,
    per_thousand,
    plugin,
    run_pipeline,
    salesforce_settings,
    summary_line,
    write_json,
    write_singer,
)
from salesforce_writes import EVENT_SCHEMA, SEED, events, run_events_target, seed, user_pool

from salesforce_appcues_sandbox.appcues import generator
from salesforce_appcues_sandbox.testing import meltano_environment

BATCH_ROWS = 100_000
MODES = {"REST": "collections", "AUTO": "bulk2"}


def run(
    sandbox: Sandbox,
    workdir: Path,
    count: int = 100_000,
    users: int = 1_000,
    modes: tuple[str, ...] = ("REST", "AUTO"),
    reseed: bool = True,
    with_pipeline: bool = True,
    with_meltano: bool = False,
) -> dict[str, Any]:
    if reseed:
        seed(sandbox, users)
    workdir.mkdir(parents=True, exist_ok=True)
    pool = user_pool(users)
    out: dict[str, Any] = {"events": count, "users": len(pool), "batch_size_rows": BATCH_ROWS}
    for api_type in modes:
        tag = f"backfill-{api_type}-{count}-{datetime.now(UTC).timestamp()}"
        data = workdir / f"events-{api_type}-{count}.jsonl"
        write_singer(data, "appcues_events", EVENT_SCHEMA, "id", events(count, pool, tag))
        proc, calls = run_events_target(
            sandbox,
            workdir,
            f"target-salesforce-events-{api_type}-{count}",
            {
                "state_dir": str(workdir / f"state-{api_type}-{count}"),
                "api_type": api_type,
                "batch_size_rows": BATCH_ROWS,
            },
            data,
        )
        data.unlink()  # a million events are about 400 MB of JSON
        total = calls["salesforce_calls"]
        by_path: dict[str, int] = calls["salesforce_calls_by_path"]
        out[MODES[api_type]] = {
            "api_type": api_type,
            "wall_seconds": proc.wall_seconds,
            "events_per_second": per_second(count, proc.wall_seconds),
            "api_calls": total,
            "api_calls_per_1000_events": per_thousand(total, count),
            "ingest_calls": sum(n for p, n in by_path.items() if "/jobs/ingest" in p),
            "api_calls_by_path": by_path,
            "peak_rss_mb": proc.peak_rss_mb,
            "cpu_seconds": proc.cpu_seconds,
            "summary": summary_line(proc.log()),
        }
    if with_pipeline:
        out["pipeline"] = pipeline(sandbox, workdir / "pipeline", count, users)
    if with_meltano:
        out["meltano"] = meltano(sandbox, workdir / "meltano", count, users)
    return out


HISTORY_DAYS = 365
# Every name the sandbox's generator emits: each seeded event is one record of the tap.
GENERATED_NAMES = sorted(
    {
        "appcues:page_view",
        "appcues:session_started",
        "appcues:flow_started",
        "appcues:flow_completed",
        "appcues:flow_skipped",
        "appcues:nps_score",
        "appcues:nps_feedback",
        "appcues:nps_score_and_feedback",
        "appcues:checklist_item_completed",
        "appcues:checklist_completed",
        "appcues:goal_reached",
        *generator.CLICK_TO_TRACK,
    }
)


def seed_history(
    sandbox: Sandbox, count: int, users: int
) -> tuple[datetime, datetime, dict[str, Any]]:
    """`count` Appcues events over the year before the sandbox clock, for 2 x `users`
    Contacts and as many Leads: the clock, the history's start and the seed's answer."""
    now = datetime.fromisoformat(sandbox.ac.call("GET", "clock")["now"].replace("Z", "+00:00"))
    start = now - timedelta(days=HISTORY_DAYS)
    sandbox.ac.call("POST", "reset")
    seeded = sandbox.ac.call(
        "POST",
        "seed",
        {
            "seed": SEED,
            "Contact": users * 2,
            "Lead": users * 2,
            "events": count,
            "start": start.isoformat(),
            "end": (now - timedelta(hours=1)).isoformat(),
        },
    )
    return now, start, seeded


def pipeline(sandbox: Sandbox, workdir: Path, count: int, users: int) -> dict[str, Any]:
    """tap (appcues_events through the export) | target-salesforce-events (AUTO)."""
    workdir.mkdir(parents=True, exist_ok=True)
    now, start, seeded = seed_history(sandbox, count, users)
    tap_config = write_json(
        workdir / "tap.json",
        {
            **salesforce_settings(sandbox),
            **appcues_settings(sandbox, "appcues_"),
            "user_objects": ["Contact", "Lead"],
            "appcues_event_names": GENERATED_NAMES,
            "appcues_start_date": (start - timedelta(days=1)).isoformat(),
        },
    )
    catalog = workdir / "catalog.json"
    with catalog.open("wb") as out:  # discovery is set-up, outside the measured run
        subprocess.run(
            [plugin("tap-salesforce-appcues"), "--config", str(tap_config), "--discover"],
            stdout=out,
            stderr=subprocess.DEVNULL,
            env=child_env(sandbox),
            cwd=workdir,
            check=True,
            timeout=600,
        )
    streams = json.loads(catalog.read_text())
    for stream in streams["streams"]:
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == []:
                entry["metadata"]["selected"] = stream["tap_stream_id"] == "appcues_events"
    catalog.write_text(json.dumps(streams))
    target_config = write_json(
        workdir / "target.json",
        {
            **salesforce_settings(sandbox),
            "state_dir": str(workdir / f"state-{count}-{now.timestamp()}"),
            "api_type": "AUTO",
            "batch_size_rows": BATCH_ROWS,
            "event_names": GENERATED_NAMES,
        },
    )
    before = _events_in_salesforce(sandbox)
    tap_argv = [plugin("tap-salesforce-appcues"), "--config", str(tap_config)]
    tap_argv += ["--catalog", str(catalog)]
    target_argv = [plugin("target-salesforce-events"), "--config", str(target_config)]
    with sandbox.measured() as calls:
        result = run_pipeline(
            [(f"tap-export-{count}", tap_argv), (f"target-events-{count}", target_argv)],
            env=child_env(sandbox),
            workdir=workdir,
        )
    tap, target = (p.check() for p in result.processes)
    written = _events_in_salesforce(sandbox) - before
    bookmark = (result.last_state or {}).get("bookmarks", {}).get("appcues_events", {})
    tap_log = tap.log()
    return {
        "events_seeded": int(seeded["events"]),
        "events_written": written,
        "history_days": HISTORY_DAYS,
        "exports": tap_log.count("through the analytics export"),
        "wall_seconds": result.wall_seconds,
        "events_per_second": per_second(written, result.wall_seconds),
        "tap_peak_rss_mb": tap.peak_rss_mb,
        "target_peak_rss_mb": target.peak_rss_mb,
        "tap_cpu_seconds": tap.cpu_seconds,
        "target_cpu_seconds": target.cpu_seconds,
        "salesforce_calls": calls["salesforce_calls"],
        "salesforce_calls_by_path": calls["salesforce_calls_by_path"],
        "appcues_calls": calls["appcues_calls"],
        "appcues_calls_by_path": calls["appcues_calls_by_path"],
        "states_committed": result.states,
        "last_bookmark": bookmark.get("replication_key_value"),
        "summary": summary_line(target.log()),
    }


MELTANO_JOB = "appcues-to-salesforce"  # meltano.yml's job: the --events tap into the target
MELTANO_TAP = "tap-salesforce-appcues--events"
MELTANO_TARGET = "target-salesforce-events"
MELTANO_STATE_ID = f"sandbox:{MELTANO_TAP}-to-{MELTANO_TARGET}"


def _setting_variable(plugin_name: str, setting: str) -> str:
    """The environment variable Meltano reads a plugin's setting from (its highest-
    precedence source): `tap-salesforce-appcues--events` -> TAP_SALESFORCE_APPCUES__EVENTS_."""
    return re.sub(r"[^A-Za-z0-9]", "_", f"{plugin_name}_{setting}").upper()


def meltano(sandbox: Sandbox, workdir: Path, count: int, users: int) -> dict[str, Any]:
    """`meltano run appcues-to-salesforce`: the pipeline's events from a fresh org, with the
    same settings as `pipeline` (given as Meltano's setting variables over the `sandbox`
    environment's), in a fresh run folder (Meltano's system database and the target's state
    folder): nothing is known before the run, as in a first sync."""
    workdir.mkdir(parents=True, exist_ok=True)
    seed(sandbox, users)  # a fresh org: the pipeline above wrote these same events
    now, start, seeded = seed_history(sandbox, count, users)
    run_dir = workdir / f"run-{count}-{now.timestamp()}"
    settings = {
        (MELTANO_TAP, "appcues_event_names"): json.dumps(GENERATED_NAMES),
        (MELTANO_TAP, "appcues_start_date"): (start - timedelta(days=1)).isoformat(),
        (MELTANO_TARGET, "api_type"): "AUTO",
        (MELTANO_TARGET, "batch_size_rows"): str(BATCH_ROWS),
        (MELTANO_TARGET, "event_names"): json.dumps(GENERATED_NAMES),
    }
    env = meltano_environment(sandbox.connection, run_dir, base=child_env(sandbox))
    env.update({_setting_variable(p, k): v for (p, k), v in settings.items()})
    meltano_job.ensure_installed({MELTANO_TAP: "extractors", MELTANO_TARGET: "loaders"}, env)
    before = _events_in_salesforce(sandbox)
    with sandbox.measured() as calls:
        result = meltano_job.run(
            MELTANO_JOB,
            env=env,
            log_path=workdir / f"meltano-run-{count}.log",
            plugins=(MELTANO_TAP, MELTANO_TARGET),
        )
    result.check()
    written = _events_in_salesforce(sandbox) - before
    stored = meltano_job.state(MELTANO_STATE_ID, env)
    bookmark = stored.get("singer_state", {}).get("bookmarks", {}).get("appcues_events", {})
    log = result.log()
    return {
        "job": MELTANO_JOB,
        "events_seeded": int(seeded["events"]),
        "events_written": written,
        "history_days": HISTORY_DAYS,
        "exports": log.count("through the analytics export"),
        "wall_seconds": result.wall_seconds,
        "events_per_second": per_second(written, result.wall_seconds),
        "tap_peak_rss_mb": result.peak_rss_mb.get(MELTANO_TAP),
        "target_peak_rss_mb": result.peak_rss_mb.get(MELTANO_TARGET),
        "meltano_peak_rss_mb": result.peak_rss_mb.get("meltano"),
        "salesforce_calls": calls["salesforce_calls"],
        "salesforce_calls_by_path": calls["salesforce_calls_by_path"],
        "appcues_calls": calls["appcues_calls"],
        "appcues_calls_by_path": calls["appcues_calls_by_path"],
        "states_committed": result.states_stored(),
        "state_id": MELTANO_STATE_ID,
        "last_bookmark": bookmark.get("replication_key_value"),
        "summary": _meltano_summary(log),
    }


_SUMMARY = re.compile(rf"{MELTANO_TARGET}\s+Run summary: (.*?)(?:\s+cmd_type=|$)", re.MULTILINE)


def _meltano_summary(log: str) -> str | None:
    """The target's run summary as Meltano relays it."""
    found = _SUMMARY.findall(log)
    return found[-1].strip() if found else None


def _events_in_salesforce(sandbox: Sandbox) -> int:
    """Events in the org (a direct query, outside any measured block)."""
    session, base = sandbox.salesforce_session()
    try:
        response = session.get(f"{base}/query", params={"q": "SELECT COUNT() FROM Event"})
        response.raise_for_status()
        return int(response.json()["totalSize"])
    finally:
        session.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--modes", default="REST,AUTO")
    parser.add_argument("--no-pipeline", action="store_true", help="skip tap | target")
    parser.add_argument("--meltano", action="store_true", help="add `meltano run` of the job")
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / ".work" / "backfill")
    args = parser.parse_args(argv)
    from salesforce_appcues_sandbox.server import SandboxProcess

    with SandboxProcess() as proc:
        sandbox = Sandbox(proc.connection, proc.process.pid if proc.process else None)
        result = run(
            sandbox,
            args.workdir.resolve(),
            args.events,
            args.users,
            tuple(m for m in args.modes.split(",") if m),
            with_pipeline=not args.no_pipeline,
            with_meltano=args.meltano,
        )
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
