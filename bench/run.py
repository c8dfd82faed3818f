"""`make bench`: every benchmark of issue 10 on one sandbox, written to bench/results/.

Starts the sandbox as a child process (so its CPU is measured apart from the plugins'),
runs the six measurements in order, holds the figures against the goals (bench/goals.py),
profiles the runs behind a missed wall-clock goal with pyinstrument, records the machine,
and writes latest.json and latest.md.

    python bench/run.py            # the standard set (< 15 minutes on 2 cores)
    python bench/run.py --full     # + the 1,000,000-record tap series and PATCH at 100,000
    python bench/run.py --quick --output-dir DIR   # a tiny run (the smoke test's)
    python bench/run.py --only backfill[,memory]   # re-measure some steps (below)

`--only STEP[,STEP]` runs only those steps (the names of `Step times`) and merges their
figures into the output directory's latest.json of the same set, keeping the other steps'
figures; every step's figures carry when and on which commit they were measured (`measured`),
the goals are held against the merged figures and latest.md is written again from them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import appcues_writes
import backfill
import extraction
import goals
import idle_runs
import memory
import profiles
import report
import salesforce_writes
import sandbox_serving
import singer_io_tap
import webhook_latency
from harness import REPO, Sandbox, child_env, plugin

from salesforce_appcues_sandbox.server import SandboxProcess

SIZES: dict[str, dict[str, Any]] = {
    "standard": {
        "contacts": 100_000,
        "changes": 1_000,
        "events": 10_000,
        "users": 1_000,
        "profile_sizes": (10_000, 100_000),
        "patch_sizes": (10_000,),
        "tap_sizes": (10_000, 100_000),
        "target_sizes": (10_000, 100_000),
        "serving_contacts": 100_000,
        "idle_scale": 1.0,
        "webhook_rates": (10, 100),
        "webhook_seconds": 60,
        "backfill_sizes": (100_000,),
    },
    "quick": {
        "contacts": 200,
        "changes": 20,
        "events": 200,
        "users": 50,
        "profile_sizes": (100, 200),
        "patch_sizes": (100,),
        "tap_sizes": (100, 200),
        "target_sizes": (100, 200),
        "serving_contacts": 200,
        "idle_scale": 0.05,
        "webhook_rates": (10,),
        "webhook_seconds": 3,
        "backfill_sizes": (300,),
    },
}
SIZES["full"] = SIZES["standard"] | {
    "patch_sizes": (10_000, 100_000),
    "backfill_sizes": (100_000, 1_000_000),
}

# The measurement steps, in the order they run (their figures' keys in latest.json).
STEPS = (
    "extraction",
    "salesforce_writes",
    "appcues_writes",
    "idle_runs",
    "memory",
    "backfill",
    "sandbox_serving",
    "webhook_latency",
)

PACKAGES = (
    "tap-salesforce-appcues",
    "target-appcues-profiles",
    "target-salesforce-events",
    "salesforce-appcues-clients",
    "salesforce-appcues-sandbox",
    "singer-sdk",
    "simple-salesforce",
    "requests",
    "starlette",
    "uvicorn",
    "pyinstrument",
)


def machine() -> dict[str, Any]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    versions["tap-salesforce (singer-io, own venv)"] = singer_io_tap.version()
    return {
        "cpu_model": model,
        "cpu_cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "packages": versions,
    }


def git_commit() -> dict[str, Any]:
    """The checkout's commit, and whether tracked files differ from it."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=30
            )
        except OSError:
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD"), "uncommitted_changes": bool(status)}


class Driver:
    def __init__(
        self,
        mode: str,
        workdir: Path,
        out_dir: Path,
        only: tuple[str, ...] = STEPS,
        previous: dict[str, Any] | None = None,
    ) -> None:
        self.mode = mode
        self.sizes = SIZES[mode]
        self.workdir = workdir
        self.out_dir = out_dir
        self.profile_dir = out_dir / "profiles"
        self.only = only
        self.previous = previous or {}  # the figures of steps not run now (--only)
        self.started = datetime.now(UTC).isoformat(timespec="seconds")
        self.commit = git_commit()
        self.results: dict[str, Any] = {}
        self.timings: dict[str, float] = {}
        self.measured: dict[str, dict[str, Any]] = {}
        self.profiles: dict[str, dict[str, Any]] = {}

    def step(self, name: str, fn: Any) -> Any:
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        at = datetime.now(UTC).isoformat(timespec="seconds")
        started = time.perf_counter()
        value = fn()
        self.timings[name] = round(time.perf_counter() - started, 1)
        self.results[name] = value
        self.measured[name] = {
            "at": at,
            "run_started": self.started,  # one `bench/run.py` invocation
            **self.commit,
            "only": list(self.only) if self.only != STEPS else None,
        }
        print(f"[bench] {name}: {self.timings[name]} s", file=sys.stderr, flush=True)
        return value

    def figures(self, name: str) -> Any:
        """A step's figures: this run's, else the merged latest.json's (--only)."""
        found = self.results.get(name, self.previous.get(name))
        if found is None:
            raise SystemExit(f"[bench] no {name} figures to build on: run that step too")
        return found

    def run(self, sandbox: Sandbox) -> None:
        s = self.sizes
        w = self.workdir
        if "extraction" in self.only:
            ex = self.step(
                "extraction",
                lambda: extraction.run(sandbox, w / "extraction", s["contacts"], s["changes"]),
            )
            self._profile_extraction(sandbox, ex)

        if "salesforce_writes" in self.only:
            self.step(
                "salesforce_writes",
                lambda: salesforce_writes.run(
                    sandbox, w / "salesforce-writes", s["events"], s["users"]
                ),
            )

        if "appcues_writes" in self.only:
            self.step(
                "appcues_writes",
                lambda: appcues_writes.run(
                    sandbox, w / "appcues-writes", s["profile_sizes"], s["patch_sizes"]
                ),
            )

        if "idle_runs" in self.only:
            self.step("idle_runs", lambda: idle_runs.run(sandbox, w / "idle-runs", s["idle_scale"]))

        if "memory" in self.only:
            self.step("memory", lambda: self._memory(sandbox))

        if "backfill" in self.only:
            largest = max(s["backfill_sizes"])
            self.step(
                "backfill",
                lambda: {
                    "batch_size_rows": backfill.BATCH_ROWS,
                    "sizes": {
                        str(n): backfill.run(
                            sandbox, w / f"backfill-{n}", n, s["users"], with_meltano=n == largest
                        )
                        for n in s["backfill_sizes"]
                    },
                },
            )

        if "sandbox_serving" in self.only:
            self.step(
                "sandbox_serving",
                lambda: sandbox_serving.run(sandbox.connection, s["serving_contacts"]),
            )

        if "webhook_latency" in self.only:
            self.step(
                "webhook_latency",
                lambda: webhook_latency.run(
                    sandbox, w / "webhook-latency", s["webhook_rates"], s["webhook_seconds"]
                ),
            )

    def _memory(self, sandbox: Sandbox) -> Any:
        """The memory series, reusing the peaks the earlier steps measured."""
        s = self.sizes
        ex, sw = self.figures("extraction"), self.figures("salesforce_writes")
        aw = self.figures("appcues_writes")
        known = {
            "tap_rest": {s["contacts"]: ex["full"]["ours_rest"]},
            "tap_bulk2": {s["contacts"]: ex["full"]["ours_bulk2"]},
            "target_salesforce_events": {s["events"]: sw},
            "target_appcues_profiles_import": {},
            "target_appcues_profiles_patch": {},
        }
        for run in aw["runs"].values():
            if run["measured"]:
                known[f"target_appcues_profiles_{run['mode']}"][run["profiles"]] = run
        return memory.run(
            sandbox,
            self.workdir / "memory",
            known,
            self.mode == "full",
            s["tap_sizes"],
            s["target_sizes"],
        )

    def _profile_extraction(self, sandbox: Sandbox, ex: dict[str, Any]) -> None:
        """Right after the extraction runs (same data): profile each of our runs whose
        speed goal was missed."""
        work = self.workdir / "extraction"
        for check in goals.extraction(ex):
            if check["speed_met"] or (self.mode == "quick" and self.profiles):
                continue  # the quick run profiles one, to keep the smoke test short
            name = check["key"].removeprefix("extraction_")
            phase, _, which = name.partition("_")
            api_type = "REST" if which == "ours_rest" else "BULK2"
            argv = [
                plugin("tap-salesforce-appcues"),
                "--config",
                str(work / f"tap-{api_type.lower()}-config.json"),
            ]
            state = work / f"incremental-{which}-state.json"
            if phase == "incremental" and state.exists():
                argv += ["--state", str(state)]
            path, _ = profiles.profile(
                name,
                argv,
                env=child_env(sandbox),
                workdir=work / f"profile-{name}",
                out_dir=self.profile_dir,
            )
            self.profiles[check["key"]] = {
                "path": str(path.relative_to(self.out_dir)),
                "excerpt": profiles.excerpt(path),
            }


def only_steps(value: str) -> tuple[str, ...]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in STEPS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown step(s) {', '.join(unknown) or '(none)'}; steps: {', '.join(STEPS)}"
        )
    return tuple(name for name in STEPS if name in names)  # in their usual order


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--full", action="store_true", help="add the 1,000,000-record series")
    group.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--output-dir", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / ".work")
    parser.add_argument(
        "--only",
        type=only_steps,
        metavar="STEP[,STEP]",
        help="run only these steps and merge their figures into the output directory's "
        f"latest.json ({', '.join(STEPS)})",
    )
    args = parser.parse_args(argv)
    mode = "full" if args.full else "quick" if args.quick else "standard"
    args.workdir = args.workdir.resolve()  # children run in their own folders
    args.output_dir = args.output_dir.resolve()
    latest = args.output_dir / "latest.json"
    previous: dict[str, Any] = {}
    if args.only and latest.exists():
        previous = json.loads(latest.read_text())
        if previous["run"]["mode"] != mode:
            parser.error(
                f"{latest} holds the {previous['run']['mode']} set, not the {mode} one: "
                "merge into the output directory of the same set (--output-dir; the full "
                "set's is bench/results/full)"
            )
    only: tuple[str, ...] = args.only or STEPS

    shutil.rmtree(args.workdir, ignore_errors=True)  # configs and logs of the last run
    args.output_dir.mkdir(parents=True, exist_ok=True)
    if "extraction" in only:  # the profiles are of the extraction runs
        shutil.rmtree(args.output_dir / "profiles", ignore_errors=True)
    driver = Driver(mode, args.workdir, args.output_dir, only, previous)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    with SandboxProcess() as proc:
        sandbox = Sandbox(proc.connection, proc.process.pid if proc.process else None)
        driver.run(sandbox)
    this_run = {
        "mode": mode,
        "started": driver.started,
        "seconds": round(time.perf_counter() - t0, 1),
        "step_seconds": driver.timings,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "sizes": {k: list(v) if isinstance(v, tuple) else v for k, v in driver.sizes.items()},
    }
    results = (
        merged(previous, this_run, driver)
        if previous
        else {
            "run": this_run,
            "machine": machine(),
            **driver.results,
            "measured": driver.measured,
        }
    )
    results["goals"] = goals.evaluate(results)
    if "extraction" in only or "profiles" not in results:
        results["profiles"] = driver.profiles
    latest.write_text(json.dumps(results, indent=2) + "\n")
    (args.output_dir / "latest.md").write_text(report.render(results))
    met = sum(1 for g in results["goals"] if g["met"])
    print(
        f"[bench] {mode}{' --only ' + ','.join(args.only) if args.only else ''}: "
        f"{this_run['seconds']} s; goals met {met}/{len(results['goals'])}; wrote "
        f"{args.output_dir}/latest.json and latest.md",
        file=sys.stderr,
    )
    return 0


def merged(previous: dict[str, Any], this_run: dict[str, Any], driver: Driver) -> dict[str, Any]:
    """latest.json with the steps just run replaced: `run` stays the last whole run's (its
    step times updated, this partial run under `partial_runs`), `measured` stamps each step."""
    run = dict(previous["run"])
    run["step_seconds"] = {**run.get("step_seconds", {}), **driver.timings}
    run["partial_runs"] = [*run.get("partial_runs", []), {**this_run, "only": list(driver.only)}]
    run["partial_runs"][-1].pop("sizes", None)
    # Figures from before the stamps existed: measured by the whole run, commit unknown.
    stamps = {
        step: {"at": None, "run_started": run["started"], "commit": None}
        for step in STEPS
        if step in previous
    }
    stamps.update(previous.get("measured", {}))
    stamps.update(driver.measured)
    out: dict[str, Any] = {"run": run, "machine": machine()}
    for step in STEPS:
        if step in driver.results or step in previous:
            out[step] = driver.results.get(step, previous.get(step))
    out["measured"] = stamps
    out["profiles"] = previous.get("profiles", {})
    return out


if __name__ == "__main__":
    sys.exit(main())
