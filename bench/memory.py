"""Measurement 5: peak RSS of each plugin over growing inputs, to show it stays flat.

Series: the tap (REST and Bulk 2.0) over 10,000 / 100,000 (/ 1,000,000 with --full) Contacts,
target-salesforce-events over 10,000 / 100,000 events, target-appcues-profiles (import and
PATCH mode) over 10,000 / 100,000 profiles (PATCH at 100,000 is bound by the 50 requests/s
cap, about 35 minutes: the standard set measures its memory with both rate caps lifted, which
changes only the waits; --full runs it under the caps). Peak RSS is the child's own, from
wait4. Points already measured by the other scripts in the same run are passed in and not
measured again.

    python bench/memory.py [--full]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import appcues_writes
import extraction
import salesforce_writes
from harness import REPO, Sandbox

GOAL_RATIO = 1.5


def tap_point(sandbox: Sandbox, workdir: Path, contacts: int) -> dict[str, dict[str, Any]]:
    sandbox.seed_salesforce(Contact=contacts, Account=max(1, contacts // 20), Lead=0, seed=11)
    sandbox.advance_clock(extraction.CLOCK_STEP_SECONDS)
    out = {}
    catalog = extraction.discover_ours(sandbox, workdir)
    for series, api_type in (("tap_rest", "REST"), ("tap_bulk2", "BULK2")):
        _, figures = extraction.run_ours(
            sandbox, workdir, api_type, None, f"memory-{series}-{contacts}", catalog
        )
        out[series] = figures
    return out


def run(
    sandbox: Sandbox,
    workdir: Path,
    known: dict[str, dict[int, dict[str, Any]]],
    full: bool = False,
    tap_sizes: tuple[int, ...] = (10_000, 100_000),
    target_sizes: tuple[int, ...] = (10_000, 100_000),
) -> dict[str, Any]:
    """`known`: {series: {size: figures with peak_rss_mb}} from the other measurements."""
    points: dict[str, dict[int, dict[str, Any]]] = {k: dict(v) for k, v in known.items()}
    sizes = (*tap_sizes, 1_000_000) if full else tap_sizes
    for size in sizes:
        if all(size in points.get(s, {}) for s in ("tap_rest", "tap_bulk2")):
            continue
        for series, figures in tap_point(sandbox, workdir / "tap", size).items():
            points.setdefault(series, {})[size] = figures
    for size in target_sizes:
        if size not in points.get("target_salesforce_events", {}):
            figures = salesforce_writes.run(sandbox, workdir / "events", size)
            points.setdefault("target_salesforce_events", {})[size] = figures
    for mode in ("import", "patch"):
        series = f"target_appcues_profiles_{mode}"
        for size in target_sizes:
            if size in points.get(series, {}):
                continue
            # PATCH mode is rate-bound (~35 minutes at 100,000 under the caps): the standard
            # set measures its memory with the caps lifted; --full under the real caps.
            uncapped = mode == "patch" and not full
            figures = appcues_writes.run_mode(
                sandbox, workdir / "profiles", size, mode, uncapped=uncapped
            )
            points.setdefault(series, {})[size] = figures
    return {"goal_ratio": GOAL_RATIO, "series": {name: _series(p) for name, p in points.items()}}


def _series(points: dict[int, dict[str, Any]]) -> dict[str, Any]:
    measured = {
        size: p["peak_rss_mb"] for size, p in sorted(points.items()) if p.get("peak_rss_mb")
    }
    sizes = sorted(measured)
    ratio = round(measured[sizes[-1]] / measured[sizes[0]], 2) if len(sizes) > 1 else None
    return {
        "peak_rss_mb": {str(size): rss for size, rss in measured.items()},
        "rate_caps_lifted_at": [
            str(size) for size, p in sorted(points.items()) if p.get("rate_caps_lifted")
        ],
        "largest_over_smallest": ratio,
        "meets_goal": None if ratio is None else ratio <= GOAL_RATIO,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / ".work" / "memory")
    args = parser.parse_args(argv)
    from salesforce_appcues_sandbox.server import SandboxProcess

    with SandboxProcess() as proc:
        sandbox = Sandbox(proc.connection, proc.process.pid if proc.process else None)
        result = run(sandbox, args.workdir, {}, args.full)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
