"""A representative part of the fault matrix through `meltano run` itself: one scenario per
job and the SIGKILL of the target, with this project's meltano.yml in its `sandbox`
environment (state in Meltano's system database, plugins from `meltano install`).

The rest of the matrix (test_fault_matrix.py) runs the same tap | target pipeline without
Meltano's start-up cost; docs/reliability.md says why that is the same thing.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "scripts") not in sys.path:
    sys.path.insert(0, str(ROOT / "scripts"))

from meltano_sandbox import SandboxProject  # noqa: E402

pytestmark = pytest.mark.slow

H = SimpleNamespace()
# The plugins at debug level; retry delays stay at their defaults: a `kind: decimal` setting
# set from a variable crashes Meltano 4.4.1 ("Object of type Decimal is not JSON
# serializable" writing the plugin's config), see docs/reliability.md.
FAST = {
    "SANDBOX_SALESFORCE_MAX_RETRIES": "5",
    "SANDBOX_APPCUES_MAX_RETRIES": "4",
    "MELTANO_CLI_LOG_LEVEL": "debug",
}
SF_QUERY = r"/services/data/v[\d.]+/query"
SF_WRITE = r"/services/data/v[\d.]+/composite(?:/sobjects|/?$)"  # collections or Composite


@pytest.fixture(autouse=True)
def _bind(harness):
    H.__dict__.update({k: getattr(harness, k) for k in dir(harness) if not k.startswith("__")})


@pytest.fixture(scope="module")
def installed(world, harness, tmp_path_factory):
    """`meltano install` once, unless the plugins' virtual environments are there and
    current (the e2e suite installs the same editable packages)."""
    if harness.plugins_need_install():
        SandboxProject(world.connection, tmp_path_factory.mktemp("install")).meltano("install")
    return True


def project_for(world, run_dir: Path) -> SandboxProject:
    return SandboxProject(world.connection, run_dir)


def meltano_run(
    project: SandboxProject,
    job: str,
    log: Path,
    kill_loader_when=None,
    signal_tree_when=None,
    env: dict[str, str] | None = None,
):
    """`meltano run <job>`; with `kill_loader_when` (loader name, condition), SIGKILL that
    loader once the condition holds (the write the latency rule holds has arrived); with
    `signal_tree_when` (signal, condition), send the signal to Meltano and every process it
    started, as Ctrl-C does to a terminal's foreground process group (or systemd's stop to
    a service's control group)."""
    box: dict = {}

    def run() -> None:
        box["result"] = project.meltano(
            "run",
            job,
            log_path=log,
            check=False,
            extra_env={**FAST, **H.debug_env, **(env or {})},
            timeout=300,
        )

    worker = threading.Thread(target=run)
    worker.start()
    killed = False
    while worker.is_alive():
        if kill_loader_when and not killed and kill_loader_when[1]():
            pid = H.meltano_loader_pid(kill_loader_when[0])
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
                killed = True
        if signal_tree_when and not killed and signal_tree_when[1]():
            for pid in _meltano_tree():
                try:
                    os.kill(pid, signal_tree_when[0])
                except ProcessLookupError:
                    continue
                killed = True
        time.sleep(0.02)
    worker.join()
    result = box["result"]
    # Meltano's output, its system database (state, run records) and the loaders' files.
    files = [project.run_dir / "meltano.db", *project.run_dir.rglob("*.jsonl")]
    stored = "".join(p.read_bytes().decode("latin-1") for p in files if p.is_file())
    H.remember(f"meltano run {job} ({log.parent.name})", result.output + stored)
    return result, killed


def _meltano_tree() -> list[int]:
    """Meltano (started by this test) and the processes under it: tap, target, their
    helpers."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and H.descends_from_us(int(entry.name)):
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "meltano" in cmdline or "tap-" in cmdline or "target-" in cmdline:
                found.append(int(entry.name))
    return found


def _record(world, name, runs, killed, result):
    figures = H.figures.scenario(f"meltano run {name}")
    figures.runs += runs
    figures.faults += world.clear_faults() + int(killed)
    figures.record(result)
    assert result.checked > 0


def _letters(run_dir: Path, plugin: str) -> list[dict]:
    path = run_dir / plugin / "dead-letters.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_salesforce_to_appcues_survives_5xx_and_retry_after(world, installed, tmp_path):
    world.reset(events=False)
    project = project_for(world, tmp_path / "run")
    world.salesforce.faults(
        {"action": "error", "status": 500, "times": 2, "match": {"path": SF_QUERY}},
        {
            "action": "error",
            "status": 503,
            "retry_after": 1,
            "times": 1,
            "match": {"path": SF_QUERY},
        },
    )
    world.appcues.faults(
        {"action": "error", "status": 502, "times": 2, "match": {"path": "/import/"}},
        {
            "action": "error",
            "status": 429,
            "retry_after": 1,
            "times": 1,
            "match": {"path": "/profile$"},
        },
    )
    result, _ = meltano_run(project, "salesforce-to-appcues", tmp_path / "run-1.log")
    assert result.returncode == 0, result.output[-3000:]
    check = H.check_profiles(world, _letters(project.run_dir, "target-appcues-profiles"))
    _record(world, "salesforce-to-appcues: 5xx bursts, 429/503 Retry-After", 1, False, check)
    state = project.state("sandbox:tap-salesforce-appcues--profiles-to-target-appcues-profiles")
    assert {"Contact", "Lead", "Account"} <= set(state["singer_state"]["bookmarks"])


def test_appcues_to_salesforce_survives_session_expiry_and_resets(world, installed, tmp_path):
    world.reset(events=True)
    project = project_for(world, tmp_path / "run")
    world.salesforce.faults(
        {"action": "expire_session", "times": 1, "match": {"path": SF_WRITE}},
        {"action": "reset", "times": 1, "match": {"path": SF_QUERY}},
        {"action": "error", "status": 503, "times": 1, "match": {"path": SF_WRITE}},
    )
    result, _ = meltano_run(project, "appcues-to-salesforce", tmp_path / "run-1.log")
    assert result.returncode == 0, result.output[-3000:]
    check = H.check_events(
        world, _letters(project.run_dir, "target-salesforce-events"), "Appcues_Event_Id__c"
    )
    _record(world, "appcues-to-salesforce: session expiry, resets, 503", 1, False, check)


def test_appcues_to_salesforce_target_sigkilled_then_run_again(world, installed, tmp_path):
    world.reset(events=True)
    project = project_for(world, tmp_path / "run")
    state_id = "sandbox:tap-salesforce-appcues--events-to-target-salesforce-events"
    world.salesforce.faults(
        {"action": "latency", "latency_ms": 1500, "times": 1, "match": {"path": SF_WRITE}}
    )
    first, killed = meltano_run(
        project,
        "appcues-to-salesforce",
        tmp_path / "run-1.log",
        ("target-salesforce-events", lambda: world.salesforce.fired() > 0),
    )
    assert killed, "the upsert never reached the sandbox"
    assert first.returncode != 0, "Meltano must report the killed loader"
    world.clear_faults()
    assert not _bookmarks(project, state_id), "no bookmark from the killed run"
    second, _ = meltano_run(project, "appcues-to-salesforce", tmp_path / "run-2.log")
    assert second.returncode == 0, second.output[-3000:]
    check = H.check_events(
        world, _letters(project.run_dir, "target-salesforce-events"), "Appcues_Event_Id__c"
    )
    _record(world, "appcues-to-salesforce: loader SIGKILLed mid-batch", 2, killed, check)
    assert _bookmarks(project, state_id)["appcues_events"]


SF_INGEST_JOB = r"/services/data/v[\d.]+/jobs/ingest/\w+$"
BULK2 = {"TARGET_SALESFORCE_EVENTS_API_TYPE": "BULK2"}


def test_appcues_to_salesforce_bulk_ingest_job_fails_partway_then_run_again(
    world, installed, tmp_path
):
    """The events target's writes go through Bulk API 2.0 ingest (`api_type` BULK2): the
    session expires while a job is polled, and the first job ends Failed after writing 3
    rows (Salesforce keeps them, the rest unprocessed). The run fails with no bookmark past
    the failed job's batch; the next run delivers every event exactly once."""
    world.reset(events=True)
    project = project_for(world, tmp_path / "run")
    state_id = "sandbox:tap-salesforce-appcues--events-to-target-salesforce-events"
    world.salesforce.faults(
        {"action": "expire_session", "times": 1, "match": {"path": SF_INGEST_JOB, "method": "GET"}}
    )
    world.salesforce.call(
        "POST",
        "bulk",
        {
            "fail_ingest_jobs": 1,
            "ingest_fail_after_records": 3,
            "ingest_error_message": "InternalServerError : the ingest job failed",
        },
    )
    try:
        first, _ = meltano_run(project, "appcues-to-salesforce", tmp_path / "run-1.log", env=BULK2)
    finally:
        world.salesforce.call(
            "POST", "bulk", {"fail_ingest_jobs": 0, "ingest_fail_after_records": 0}
        )
    assert first.returncode != 0, "the failed job must fail the run"
    assert "ended Failed" in first.output, first.output[-3000:]
    assert world.salesforce.fired() == 1, "the session never expired while polling"
    failed = world.salesforce.stats()["counters"].get("ingest_jobs_failed", 0)
    assert failed >= 1
    second, _ = meltano_run(project, "appcues-to-salesforce", tmp_path / "run-2.log", env=BULK2)
    assert second.returncode == 0, second.output[-3000:]
    assert "Bulk ingest job" in second.output  # the writes did go through ingest jobs
    check = H.check_events(
        world, _letters(project.run_dir, "target-salesforce-events"), "Appcues_Event_Id__c"
    )
    name = (
        "appcues-to-salesforce (Bulk 2.0 ingest): session expiry while polling, a job Failed "
        "after 3 rows"
    )
    figures = H.figures.scenario(f"meltano run {name}")
    figures.runs += 2
    figures.faults += world.clear_faults() + 1  # + the Failed job, set by POST bulk
    figures.record(check)
    assert _bookmarks(project, state_id)["appcues_events"]


def test_appcues_to_salesforce_loader_sigkilled_mid_ingest_job_then_run_again(
    world, installed, tmp_path
):
    """BULK2: the loader is SIGKILLed while its ingest job's `UploadComplete` is held; the
    held request then lands and the job writes rows the killed loader never saw confirmed.
    No bookmark; the next run settles the journaled job first and delivers each event once."""
    world.reset(events=True)
    project = project_for(world, tmp_path / "run")
    state_id = "sandbox:tap-salesforce-appcues--events-to-target-salesforce-events"
    world.salesforce.faults(
        {
            "action": "latency",
            "latency_ms": 1500,
            "times": 1,
            "match": {"path": SF_INGEST_JOB, "method": "PATCH"},
        }
    )
    first, killed = meltano_run(
        project,
        "appcues-to-salesforce",
        tmp_path / "run-1.log",
        ("target-salesforce-events", lambda: world.salesforce.fired() > 0),
        env=BULK2,
    )
    assert killed, "the UploadComplete never reached the sandbox"
    assert first.returncode != 0, "Meltano must report the killed loader"
    world.clear_faults()
    assert not _bookmarks(project, state_id), "no bookmark from the killed run"
    time.sleep(2)  # the held UploadComplete lands: the job runs without its loader
    second, _ = meltano_run(project, "appcues-to-salesforce", tmp_path / "run-2.log", env=BULK2)
    assert second.returncode == 0, second.output[-3000:]
    assert "left open by an earlier run" in second.output, second.output[-3000:]
    check = H.check_events(
        world, _letters(project.run_dir, "target-salesforce-events"), "Appcues_Event_Id__c"
    )
    _record(
        world, "appcues-to-salesforce (Bulk 2.0 ingest): loader SIGKILLed mid-job", 2, killed, check
    )
    assert _bookmarks(project, state_id)["appcues_events"]


def _bookmarks(project: SandboxProject, state_id: str) -> dict:
    """The job's bookmarks in Meltano's system database ({} when it has none)."""
    found = project.state(state_id) or {}
    return found.get("singer_state", {}).get("bookmarks", {})


# --- issue 15: a stopped run confirms only what was written ----------------------------------
@pytest.mark.parametrize(
    ("sig", "job"),
    [
        (signal.SIGINT, "salesforce-to-appcues"),
        (signal.SIGTERM, "salesforce-to-appcues"),
        (signal.SIGINT, "appcues-to-salesforce"),
        (signal.SIGTERM, "appcues-to-salesforce"),
    ],
    ids=["ctrl-c profiles", "sigterm profiles", "ctrl-c events", "sigterm events"],
)
def test_stopped_by_a_signal_then_run_again(world, installed, tmp_path, sig, job):
    """Ctrl-C (SIGINT to the process group) or SIGTERM while the loader's write is held:
    the loaders stop with 128 + the signal and no STATE beyond their confirmed writes, so
    the next run delivers everything exactly once (before issue 15, Meltano saved the
    loader's final STATE and 16 of 40 users were missing for good)."""
    profiles = job == "salesforce-to-appcues"
    world.reset(events=not profiles)
    project = project_for(world, tmp_path / "run")
    if profiles:
        world.appcues.faults(
            {"action": "latency", "latency_ms": 1500, "times": 100, "match": {"path": "/import/"}}
        )
        control, loader = world.appcues, "target-appcues-profiles"
    else:
        world.salesforce.faults(
            {"action": "latency", "latency_ms": 3000, "times": 100, "match": {"path": SF_WRITE}}
        )
        control, loader = world.salesforce, "target-salesforce-events"
    first, stopped = meltano_run(
        project, job, tmp_path / "run-1.log", signal_tree_when=(sig, lambda: control.fired() > 0)
    )
    assert stopped, "the held write never reached the sandbox"
    assert first.returncode != 0, "Meltano must report the stopped run"
    assert f"stopped by {sig.name}" in first.output, first.output[-3000:]
    world.clear_faults()
    time.sleep(3.5)  # the held write lands when its hold ends
    state_id = (
        "sandbox:tap-salesforce-appcues--profiles-to-target-appcues-profiles"
        if profiles
        else "sandbox:tap-salesforce-appcues--events-to-target-salesforce-events"
    )
    assert not _bookmarks(project, state_id), "no bookmark past unconfirmed writes"
    second, _ = meltano_run(project, job, tmp_path / "run-2.log")
    assert second.returncode == 0, second.output[-3000:]
    letters = _letters(project.run_dir, loader)
    check = (
        H.check_profiles(world, letters)
        if profiles
        else H.check_events(world, letters, "Appcues_Event_Id__c")
    )
    _record(world, f"{job}: {sig.name} during the held write, then run again", 2, True, check)
