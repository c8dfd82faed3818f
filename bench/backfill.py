"""Measurement 7 (issue 20): a first sync of history through target-salesforce-events,
sObject Collections (`api_type` REST) against Bulk API 2.0 ingest (`api_type` AUTO).

The same N events (the mix of measurement 2) go into a fresh state folder each time, with
`batch_size_rows` 100,000 for both modes (a backfill's setting: fewer, larger batches), so
the only difference is the write API. Figures per mode: Salesforce API calls (the sandbox's
count), wall time, events/s, peak RSS of the target process.

    python bench/backfill.py [--events 100000] [--users 1000] [--modes REST,AUTO]
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import (
    REPO,
    Sandbox,
    per_second,
    per_thousand,
    summary_line,
    write_singer,
)
from salesforce_writes import EVENT_SCHEMA, events, run_events_target, seed, user_pool

BATCH_ROWS = 100_000
MODES = {"REST": "collections", "AUTO": "bulk2"}


def run(
    sandbox: Sandbox,
    workdir: Path,
    count: int = 100_000,
    users: int = 1_000,
    modes: tuple[str, ...] = ("REST", "AUTO"),
    reseed: bool = True,
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
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--modes", default="REST,AUTO")
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / ".work" / "backfill")
    args = parser.parse_args(argv)
    from salesforce_appcues_sandbox.server import SandboxProcess

    with SandboxProcess() as proc:
        sandbox = Sandbox(proc.connection, proc.process.pid if proc.process else None)
        result = run(
            sandbox, args.workdir.resolve(), args.events, args.users, tuple(args.modes.split(","))
        )
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
