"""Dagster definitions of this Meltano project: one Dagster job per Meltano schedule, running
`meltano run --timeout <s> <job>` in the project directory, on the schedule's cron interval.

The jobs and schedules are read from `meltano schedule list --format=json` when Dagster loads
this file, so meltano.yml stays the one place that says what runs when. Dagster runs in its
own virtualenv (orchestration/requirements.txt); Meltano and the plugins run from the
project's. Settings, all optional:

- MELTANO_PROJECT_ROOT: the Meltano project (default: this repository).
- MELTANO_EXECUTABLE: the `meltano` to run (default: `meltano` on PATH).
- MELTANO_RUN_TIMEOUT: seconds before a run is stopped gracefully (default 240, below the
  5-minute interval, so the next start finds no run in progress).

The environment (MELTANO_ENVIRONMENT, MELTANO_DATABASE_URI, the connection variables) is
passed to Meltano as Dagster's process has it. Usage (docs/operations.md):

    MELTANO_PROJECT_ROOT=/srv/salesforce-appcues dagster dev -f orchestration/definitions.py
"""

import json
import os
import subprocess
from collections import deque
from pathlib import Path
from typing import Any

import dagster as dg

PROJECT_ROOT = Path(os.environ.get("MELTANO_PROJECT_ROOT") or Path(__file__).resolve().parents[1])
MELTANO = os.environ.get("MELTANO_EXECUTABLE") or "meltano"
RUN_TIMEOUT_SECONDS = int(os.environ.get("MELTANO_RUN_TIMEOUT") or 240)
# Runs of one Meltano job carry this tag; orchestration/dagster.yaml lets one run per value.
JOB_TAG = "meltano/job"
# How many closing lines of Meltano's output a failure carries (the reason is among them).
FAILURE_TAIL_LINES = 40


def meltano_schedules(project_root: Path = PROJECT_ROOT) -> list[dict[str, Any]]:
    """The project's job schedules, as `meltano schedule list --format=json` prints them."""
    listed = subprocess.run(
        [MELTANO, "schedule", "list", "--format=json"],
        cwd=project_root,
        capture_output=True,
        text=True,
        check=False,
    )
    if listed.returncode != 0:
        raise RuntimeError(
            f"`meltano schedule list` failed in {project_root} "
            f"(exit {listed.returncode}): {listed.stderr[-2000:]}"
        )
    schedules: list[dict[str, Any]] = json.loads(listed.stdout)["schedules"]["job"]
    return schedules


def run_meltano_job(context: dg.OpExecutionContext, job_name: str) -> None:
    """`meltano run --timeout <s> <job>`; its output goes to the run's logs, line by line."""
    command = [MELTANO, "run", f"--timeout={RUN_TIMEOUT_SECONDS}", job_name]
    context.log.info(f"Running `{' '.join(command[1:])}` in {PROJECT_ROOT}")
    tail: deque[str] = deque(maxlen=FAILURE_TAIL_LINES)
    with subprocess.Popen(
        command,
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line, end="", flush=True)  # Dagster keeps it as the step's stdout
            tail.append(line.rstrip("\n"))
        returncode = proc.wait()
    if returncode != 0:
        raise dg.Failure(
            description=f"`meltano run {job_name}` exited with {returncode}",
            metadata={
                "exit_code": returncode,
                "output_tail": dg.MetadataValue.text("\n".join(tail)),
            },
        )
    context.log.info(f"`meltano run {job_name}` succeeded")


def _job(job_name: str) -> dg.JobDefinition:
    op_name = job_name.replace("-", "_")

    @dg.op(name=f"meltano_run_{op_name}", description=f"meltano run {job_name}")
    def meltano_run(context: dg.OpExecutionContext) -> None:
        run_meltano_job(context, job_name)

    @dg.job(name=op_name, description=f"Meltano job `{job_name}`", tags={JOB_TAG: job_name})
    def meltano_job() -> None:
        meltano_run()

    return meltano_job


def build_definitions(schedules: list[dict[str, Any]]) -> dg.Definitions:
    """One job per scheduled Meltano job, one Dagster schedule per Meltano schedule."""
    jobs: dict[str, dg.JobDefinition] = {}
    schedule_defs = []
    for schedule in schedules:
        job_name = schedule["job"]["name"]
        job = jobs.setdefault(job_name, _job(job_name))
        schedule_defs.append(
            dg.ScheduleDefinition(
                name=schedule["name"].replace("-", "_"),
                job=job,
                cron_schedule=schedule["cron_interval"],
                execution_timezone="UTC",
                default_status=dg.DefaultScheduleStatus.RUNNING,
            )
        )
    return dg.Definitions(jobs=list(jobs.values()), schedules=schedule_defs)


defs = build_definitions(meltano_schedules())
