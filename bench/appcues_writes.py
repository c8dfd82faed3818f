"""Measurement 3: profiles through target-appcues-profiles, PATCH mode against import mode.

Writes N Contact records (each a new Appcues user with six attributes) and pipes them into
the target with a fresh ledger: import mode is the default (`import_threshold` 100, jobs of
10,000 rows); PATCH mode sets `import_threshold` to its maximum (100,000,000, above any N
here), so every profile is one PATCH; a PATCH run that starts an import job is an error.
Default rate settings on both sides (client 50 requests/s, sandbox Appcues 60/s). API calls
and 429s come from the sandbox's stats.

    python bench/appcues_writes.py [--profiles 10000] [--modes patch,import]
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
    appcues_settings,
    child_env,
    per_second,
    per_thousand,
    plugin,
    profiles_summary,
    run_pipeline,
    write_json,
    write_singer,
)

CONTACT_SCHEMA = {
    "type": "object",
    "properties": {
        "Id": {"type": "string"},
        "IsDeleted": {"type": "boolean"},
        "SystemModstamp": {"type": "string", "format": "date-time"},
        "Product_User_Id__c": {"type": ["string", "null"]},
        "FirstName": {"type": ["string", "null"]},
        "LastName": {"type": ["string", "null"]},
        "Email": {"type": ["string", "null"]},
        "Title": {"type": ["string", "null"]},
        "LeadSource": {"type": ["string", "null"]},
        "Appcues_NPS_Score__c": {"type": ["number", "null"]},
    },
}
# The setting's schema maximum: no batch here reaches it, so PATCH mode never imports.
MODES = {"import": {}, "patch": {"import_threshold": 100_000_000}}
# Memory only: PATCH mode with both rate caps lifted, so 100,000 profiles fit the standard
# set. The code path is PATCH mode's own; only the waits for the caps are gone, so its time
# is not a PATCH-mode rate and is never reported as one.
UNCAPPED_RATE = 100_000


def contacts(count: int) -> Any:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    for i in range(count):
        yield {
            "Id": f"003BENCH{i:010d}",
            "IsDeleted": False,
            "SystemModstamp": stamp,
            "Product_User_Id__c": f"bench-user-{i}",
            "FirstName": "Ada",
            "LastName": f"Bench {i}",
            "Email": f"ada.bench.{i}@example.com",
            "Title": ("CEO", "Engineer", "Designer")[i % 3],
            "LeadSource": "Web",
            "Appcues_NPS_Score__c": i % 11,
        }


def input_file(workdir: Path, count: int) -> Path:
    path = workdir / f"contacts-{count}.jsonl"
    if not path.exists():
        workdir.mkdir(parents=True, exist_ok=True)
        write_singer(path, "Contact", CONTACT_SCHEMA, "Id", contacts(count))
    return path


def run_mode(
    sandbox: Sandbox, workdir: Path, count: int, mode: str, *, uncapped: bool = False
) -> dict[str, Any]:
    sandbox.ac.reset()  # an empty account: every profile is new
    data = input_file(workdir, count)
    label = f"target-appcues-profiles-{mode}-{count}" + ("-uncapped" if uncapped else "")
    settings = {**appcues_settings(sandbox), "state_dir": str(workdir / f"state-{label}")}
    if uncapped:
        settings["max_requests_per_second"] = UNCAPPED_RATE
        sandbox.ac.call("POST", "settings", {"rate_limit_per_second": UNCAPPED_RATE})
    config = write_json(workdir / f"{label}-config.json", {**settings, **MODES[mode]})
    argv = [plugin("target-appcues-profiles"), "--config", str(config)]
    try:
        with sandbox.measured() as calls:
            result = run_pipeline(
                [(label, argv)], env=child_env(sandbox), workdir=workdir, stdin_path=data
            )
    finally:
        if uncapped:
            sandbox.ac.call("POST", "settings", {"rate_limit_per_second": 60})
    proc = result.last.check()
    summary = profiles_summary(proc.log()) or {}
    if mode == "patch" and summary.get("import_jobs"):
        raise RuntimeError(f"{label}: PATCH mode started {summary['import_jobs']} import jobs")
    stored = sandbox.ac.stats()["stored"]["users"]
    return {
        "mode": mode,
        "profiles": count,
        "profiles_stored": stored,
        "measured": True,
        "rate_caps_lifted": uncapped,
        "wall_seconds": proc.wall_seconds,
        "profiles_per_second": per_second(count, proc.wall_seconds),
        "api_calls": calls["appcues_calls"],
        "api_calls_logged_by_target": summary.get("api_calls"),
        "api_calls_per_1000_profiles": per_thousand(calls["appcues_calls"], count),
        "api_calls_by_path": calls["appcues_calls_by_path"],
        "responses_429": calls["appcues_429"],
        "import_jobs": summary.get("import_jobs"),
        "dead_lettered": summary.get("dead_lettered"),
        "peak_rss_mb": proc.peak_rss_mb,
        "cpu_seconds": proc.cpu_seconds,
        "sandbox_cpu_seconds": calls.get("sandbox_cpu_seconds"),
    }


def extrapolated(measured: dict[str, Any], count: int) -> dict[str, Any]:
    """A larger PATCH run estimated from a measured one: PATCH mode is bound by the rate cap
    (one call per profile), so time and calls scale linearly. Marked as not measured."""
    factor = count / measured["profiles"]
    seconds = measured["wall_seconds"] * factor
    return {
        "mode": measured["mode"],
        "profiles": count,
        "measured": False,
        "extrapolated_from_profiles": measured["profiles"],
        "wall_seconds": round(seconds, 1),
        "profiles_per_second": measured["profiles_per_second"],
        "api_calls": round(measured["api_calls"] * factor),
        "api_calls_per_1000_profiles": measured["api_calls_per_1000_profiles"],
        "responses_429": None,
        "peak_rss_mb": None,
    }


def run(
    sandbox: Sandbox,
    workdir: Path,
    sizes: tuple[int, ...] = (10_000, 100_000),
    patch_sizes: tuple[int, ...] = (10_000,),
) -> dict[str, Any]:
    """Import mode at every size; PATCH mode measured at `patch_sizes`, extrapolated from
    the largest measured PATCH run elsewhere."""
    runs: dict[str, dict[str, Any]] = {}
    for count in sizes:
        if count in patch_sizes:
            runs[f"patch_{count}"] = run_mode(sandbox, workdir, count, "patch")
        runs[f"import_{count}"] = run_mode(sandbox, workdir, count, "import")
    base = max(patch_sizes)
    for count in sizes:
        if count not in patch_sizes:
            runs[f"patch_{count}"] = extrapolated(runs[f"patch_{base}"], count)
    largest = max(sizes)
    patch, imp = runs[f"patch_{largest}"], runs[f"import_{largest}"]
    return {
        "sizes": list(sizes),
        "patch_measured_sizes": list(patch_sizes),
        "runs": runs,
        "import_speedup_at_largest": round(patch["wall_seconds"] / imp["wall_seconds"], 1),
        "largest": largest,
        "responses_429_total": sum(r["responses_429"] or 0 for r in runs.values()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--patch-sizes", default="10000")
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / ".work" / "appcues-writes")
    args = parser.parse_args(argv)
    from salesforce_appcues_sandbox.server import SandboxProcess

    sizes = tuple(int(s) for s in args.sizes.split(","))
    patch_sizes = tuple(int(s) for s in args.patch_sizes.split(","))
    with SandboxProcess() as proc:
        sandbox = Sandbox(proc.connection, proc.process.pid if proc.process else None)
        result = run(sandbox, args.workdir, sizes, patch_sizes)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
