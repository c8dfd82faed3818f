"""Measurement 1: extraction, our tap (REST and Bulk 2.0) against singer-io's tap-salesforce.

Seeds N Contacts, then runs full syncs alternating ours-REST, theirs-REST, ours-Bulk 2.0 (per
round), changes 1,000 Contacts through the REST API, moves the sandbox clock past the taps'
lag and runs each tap incrementally from its own state. Each tap reads a catalog from one
`--discover` before the runs (not measured), as Meltano passes its cached catalog. Each run is
one child process:
records/s (records on stdout / the process's wall time), API calls (sandbox stats delta),
peak RSS and CPU (wait4), sandbox CPU. Only the Contact object is read by both taps.

    python bench/extraction.py [--contacts 100000] [--changes 1000] [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import singer_io_tap
from harness import (
    REPO,
    PipelineRun,
    Sandbox,
    child_env,
    per_second,
    plugin,
    run_pipeline,
    salesforce_settings,
    tap_calls,
    write_json,
)

OURS = ("ours_rest", "ours_bulk2")
ORDER = ("ours_rest", "theirs_rest", "ours_bulk2")  # alternating ours / theirs
CLOCK_STEP_SECONDS = 120  # past the tap's default 60 s lag, so every change is readable


def ours_tap_config(sandbox: Sandbox, workdir: Path, api_type: str, **extra: Any) -> Path:
    config = {
        **salesforce_settings(sandbox),
        "user_objects": ["Contact"],
        "account_object": "",
        "api_type": api_type,
        **extra,
    }
    return write_json(workdir / f"tap-{api_type.lower()}-config.json", config)


def discover_ours(sandbox: Sandbox, workdir: Path) -> Path:
    """Our tap's catalog from one `--discover` (not measured), as Meltano caches it."""
    config = ours_tap_config(sandbox, workdir, "AUTO")
    discovered = subprocess.run(
        [plugin("tap-salesforce-appcues"), "--config", str(config), "--discover"],
        env=child_env(sandbox),
        capture_output=True,
        check=True,
        timeout=600,
    )
    return write_json(workdir / "tap-catalog.json", json.loads(discovered.stdout))


def run_ours(
    sandbox: Sandbox,
    workdir: Path,
    api_type: str,
    state: dict[str, Any] | None,
    label: str,
    catalog: Path | None = None,
) -> tuple[PipelineRun, dict[str, Any]]:
    config = ours_tap_config(sandbox, workdir, api_type)
    argv = [plugin("tap-salesforce-appcues"), "--config", str(config)]
    if catalog is not None:
        argv += ["--catalog", str(catalog)]
    if state is not None:
        argv += ["--state", str(write_json(workdir / f"{label}-state.json", state))]
    with sandbox.measured() as calls:
        run = run_pipeline([(label, argv)], env=child_env(sandbox), workdir=workdir / label)
    run.last.check()
    return run, _figures(run, calls, tap_calls(run.last.log()))


def _figures(
    run: PipelineRun, calls: dict[str, Any], logged: dict[str, int] | None
) -> dict[str, Any]:
    proc = run.last
    return {
        "records": run.records,
        "wall_seconds": proc.wall_seconds,
        "records_per_second": per_second(run.records, proc.wall_seconds),
        "api_calls": calls["salesforce_calls"],
        "api_calls_by_path": calls["salesforce_calls_by_path"],
        "api_calls_logged_by_tap": logged["salesforce"] if logged else None,
        "peak_rss_mb": proc.peak_rss_mb,
        "cpu_seconds": proc.cpu_seconds,
        "sandbox_cpu_seconds": calls.get("sandbox_cpu_seconds"),
    }


def change_contacts(sandbox: Sandbox, count: int) -> int:
    """Update `count` Contacts through sObject Collections (outside any measured block)."""
    session, base = sandbox.salesforce_session()
    resp = session.get(
        f"{base}/query", params={"q": f"SELECT Id FROM Contact ORDER BY Id LIMIT {count}"}
    )
    resp.raise_for_status()
    ids = [r["Id"] for r in resp.json()["records"]]  # one page: count <= 2,000
    for start in range(0, len(ids), 200):
        chunk = ids[start : start + 200]
        body = {
            "allOrNone": True,
            "records": [
                {"attributes": {"type": "Contact"}, "id": i, "Title": f"Bench change {n}"}
                for n, i in enumerate(chunk, start)
            ],
        }
        resp = session.patch(f"{base}/composite/sobjects", json=body, timeout=600)
        resp.raise_for_status()
    session.close()
    return len(ids)


def run(
    sandbox: Sandbox, workdir: Path, contacts: int = 100_000, changes: int = 1_000, rounds: int = 1
) -> dict[str, Any]:
    sandbox.seed_salesforce(Contact=contacts, Account=max(1, contacts // 20), Lead=0, seed=11)
    sandbox.advance_clock(CLOCK_STEP_SECONDS)
    theirs = singer_io_tap.SingerIoTap(sandbox, workdir / "theirs", ("Contact",))
    discovered = subprocess.run(
        theirs.argv("--discover"),
        env=theirs.env,
        cwd=workdir / "theirs",
        capture_output=True,
        check=True,
        timeout=600,
    )
    theirs.write_catalog(json.loads(discovered.stdout))
    catalog = discover_ours(sandbox, workdir)

    full: dict[str, list[dict[str, Any]]] = {name: [] for name in ORDER}
    states: dict[str, dict[str, Any] | None] = {}
    for r in range(rounds):
        for name in ORDER:
            label = f"full-{name}-{r}"
            if name in OURS:
                api_type = "REST" if name == "ours_rest" else "BULK2"
                result, figures = run_ours(sandbox, workdir, api_type, None, label, catalog)
            else:
                result, figures = _run_theirs(sandbox, theirs, None, workdir, label)
            full[name].append(figures)
            states.setdefault(name, result.last_state)

    changed = change_contacts(sandbox, changes)
    sandbox.advance_clock(CLOCK_STEP_SECONDS)
    incremental: dict[str, dict[str, Any]] = {}
    for name in reversed(ORDER):  # the other way round, so no tap always goes first
        label = f"incremental-{name}"
        if name in OURS:
            api_type = "REST" if name == "ours_rest" else "BULK2"
            _, figures = run_ours(sandbox, workdir, api_type, states[name], label, catalog)
        else:
            _, figures = _run_theirs(sandbox, theirs, states[name], workdir, label)
        incremental[name] = figures

    full_median = {name: _median(runs) for name, runs in full.items()}
    return {
        "contacts": contacts,
        "changed": changed,
        "rounds": rounds,
        "order": list(ORDER),
        "objects": ["Contact"],
        "singer_io_tap_salesforce_version": singer_io_tap.version(),
        "full": full_median,
        "full_runs": full,
        "incremental": incremental,
        "ratios": {
            phase: _ratios(figures)
            for phase, figures in (("full", full_median), ("incremental", incremental))
        },
    }


def _run_theirs(
    sandbox: Sandbox,
    theirs: singer_io_tap.SingerIoTap,
    state: dict[str, Any] | None,
    workdir: Path,
    label: str,
) -> tuple[PipelineRun, dict[str, Any]]:
    with sandbox.measured() as calls:
        result = run_pipeline(
            [(label, theirs.sync_argv(state))], env=theirs.env, workdir=workdir / label
        )
    result.last.check()
    return result, _figures(result, calls, None)


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median records/s (all its figures belong to one real run)."""
    ranked = sorted(runs, key=lambda f: f["records_per_second"])
    return ranked[(len(ranked) - 1) // 2] | {
        "records_per_second_all_rounds": [f["records_per_second"] for f in runs],
        "records_per_second_mean": round(
            statistics.fmean(f["records_per_second"] for f in runs), 1
        ),
    }


def _ratios(figures: dict[str, dict[str, Any]]) -> dict[str, Any]:
    theirs = figures["theirs_rest"]
    out: dict[str, Any] = {}
    for name in OURS:
        ours = figures[name]
        out[name] = {
            "records_per_second": round(
                ours["records_per_second"] / theirs["records_per_second"], 2
            ),
            "api_calls": round(ours["api_calls"] / theirs["api_calls"], 2)
            if theirs["api_calls"]
            else None,
            "peak_rss": round(ours["peak_rss_mb"] / theirs["peak_rss_mb"], 2),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--changes", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / ".work" / "extraction")
    args = parser.parse_args(argv)
    from salesforce_appcues_sandbox.server import SandboxProcess

    with SandboxProcess() as proc:
        sandbox = Sandbox(proc.connection, proc.process.pid if proc.process else None)
        result = run(sandbox, args.workdir, args.contacts, args.changes, args.rounds)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
