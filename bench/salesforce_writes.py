"""Measurement 2: Appcues events through target-salesforce-events into Salesforce Events.

Seeds Contacts and Leads, writes N `appcues_events` records (integration event names, NPS
answers among them, about 2% from users Salesforce does not know) for a pool of users, and
pipes them into the target. API calls come from the sandbox's stats (OAuth excluded, as in
Salesforce's allocation), split into Event writes (collections, Composite or Bulk 2.0
ingest), NPS writes, lookups and describes; the collections floor is ceil(N/200) Event
writes + the lookups; a per-record target makes N calls.

    python bench/salesforce_writes.py [--events 10000] [--users 1000]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from harness import (
    REPO,
    ProcessRun,
    Sandbox,
    child_env,
    events_calls,
    per_second,
    per_thousand,
    plugin,
    run_pipeline,
    salesforce_settings,
    summary_line,
    write_json,
    write_singer,
)

from salesforce_appcues_sandbox.common import identities

SEED = 11
EVENT_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "timestamp": {"type": "string", "format": "date-time"},
        "user_id": {"type": "string"},
        "group_id": {"type": ["string", "null"]},
        "attributes": {"type": ["object", "null"]},
        "context": {"type": ["object", "null"]},
    },
}
# Roughly the mix of a product's integration events.
NAMES = (
    ("appcues:flow_completed", 30),
    ("appcues:checklist_item_completed", 25),
    ("appcues:goal_reached", 15),
    ("appcues:nps_score", 12),
    ("appcues:nps_feedback", 6),
    ("appcues:nps_score_and_feedback", 6),
    ("appcues:checklist_completed", 6),
)


def user_pool(users: int) -> list[str]:
    """Product user ids: 90% Contacts, 8% Leads, 2% unknown to Salesforce."""
    contacts = [
        identities.user_id("contact", i)
        for i in range(users * 2)
        if identities.has_user_id(SEED, "contact", i)
    ][: users * 90 // 100]
    leads = [
        identities.user_id("lead", i)
        for i in range(users * 2)
        if identities.has_user_id(SEED, "lead", i)
    ][: users * 8 // 100]
    unknown = [f"bench-unknown-{j}" for j in range(users - len(contacts) - len(leads))]
    return contacts + leads + unknown


def events(count: int, pool: list[str], run_tag: str) -> Any:
    rng = random.Random(f"{SEED}:{count}:{run_tag}")
    names = [name for name, weight in NAMES for _ in range(weight)]
    now = datetime.now(UTC).replace(microsecond=0)
    for n in range(count):
        name = rng.choice(names)
        attributes: dict[str, Any] = {"sessionId": f"s{n // 7}"}
        if "flow" in name:
            attributes |= {"flowId": f"flow-{n % 5}", "flowName": f"Onboarding tour {n % 5}"}
        elif "checklist" in name:
            attributes |= {"checklistId": "cl-1", "itemId": f"it-{n % 4}", "itemLabel": "Step"}
        elif "goal" in name:
            attributes |= {"goalId": "g-1", "goalName": "Activated"}
        if name in ("appcues:nps_score", "appcues:nps_score_and_feedback"):
            attributes["score"] = rng.randint(0, 10)
        if name in ("appcues:nps_feedback", "appcues:nps_score_and_feedback"):
            attributes["feedback"] = "Works well" if n % 2 else "Could be faster"
        stamp = now - timedelta(seconds=rng.randint(60, 7 * 86400))
        yield {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench:{run_tag}:{n}")),
            "name": name,
            "timestamp": stamp.isoformat().replace("+00:00", "Z"),
            "user_id": rng.choice(pool),
            "group_id": None,
            "attributes": attributes,
            "context": {"url": "https://app.example.com/home", "title": "Home"},
        }


def seed(sandbox: Sandbox, users: int) -> None:
    sandbox.seed_salesforce(
        Contact=users * 2, Lead=users * 2, Account=max(1, users // 10), seed=SEED
    )


def run_events_target(
    sandbox: Sandbox, workdir: Path, label: str, settings: dict[str, Any], data: Path
) -> tuple[ProcessRun, dict[str, Any]]:
    """target-salesforce-events on the Singer file `data` (the sandbox's connection plus
    `settings`), its Salesforce calls measured; fails if the target fails."""
    config = write_json(
        workdir / f"{label}-config.json", {**salesforce_settings(sandbox), **settings}
    )
    argv = [plugin("target-salesforce-events"), "--config", str(config)]
    with sandbox.measured() as calls:
        result = run_pipeline(
            [(label, argv)], env=child_env(sandbox), workdir=workdir, stdin_path=data
        )
    return result.last.check(), calls


def run(
    sandbox: Sandbox, workdir: Path, count: int = 10_000, users: int = 1_000, reseed: bool = True
) -> dict[str, Any]:
    if reseed:
        seed(sandbox, users)
    workdir.mkdir(parents=True, exist_ok=True)
    tag = f"{count}-{datetime.now(UTC).timestamp()}"
    pool = user_pool(users)
    data = workdir / f"events-{count}.jsonl"
    write_singer(data, "appcues_events", EVENT_SCHEMA, "id", events(count, pool, tag))
    proc, calls = run_events_target(
        sandbox,
        workdir,
        f"target-salesforce-events-{count}",
        {"state_dir": str(workdir / f"state-{count}")},
        data,
    )
    log = proc.log()
    by_path: dict[str, int] = calls["salesforce_calls_by_path"]
    event_writes = sum(n for p, n in by_path.items() if "composite/sobjects/Event" in p)
    other_writes = sum(
        n for p, n in by_path.items() if "composite/sobjects" in p and "/Event" not in p
    )
    composite = sum(n for p, n in by_path.items() if p.endswith("/composite"))
    ingest = sum(n for p, n in by_path.items() if "/jobs/ingest" in p)
    lookups = sum(n for p, n in by_path.items() if p.startswith("GET") and "/query" in p)
    total = calls["salesforce_calls"]
    floor = math.ceil(count / 200) + lookups
    return {
        "events": count,
        "users": len(pool),
        "wall_seconds": proc.wall_seconds,
        "events_per_second": per_second(count, proc.wall_seconds),
        "api_calls": total,
        "api_calls_logged_by_target": events_calls(log),
        "api_calls_per_1000_events": per_thousand(total, count),
        "event_writes": event_writes,
        "nps_and_other_writes": other_writes,
        "composite_writes": composite,
        "ingest_calls": ingest,
        "lookups": lookups,
        "other_calls": total - event_writes - other_writes - composite - ingest - lookups,
        "floor_calls": floor,
        "floor_per_1000_events": per_thousand(floor, count),
        "one_call_per_event": count,
        "fewer_than_one_per_event_factor": round(count / total, 1) if total else None,
        "api_calls_by_path": by_path,
        "peak_rss_mb": proc.peak_rss_mb,
        "cpu_seconds": proc.cpu_seconds,
        "sandbox_cpu_seconds": calls.get("sandbox_cpu_seconds"),
        "summary": summary_line(log),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument(
        "--workdir", type=Path, default=REPO / "bench" / ".work" / "salesforce-writes"
    )
    args = parser.parse_args(argv)
    from salesforce_appcues_sandbox.server import SandboxProcess

    with SandboxProcess() as proc:
        sandbox = Sandbox(proc.connection, proc.process.pid if proc.process else None)
        result = run(sandbox, args.workdir, args.events, args.users)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
