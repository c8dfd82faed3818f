"""Run by the orchestrator's own venv (not a test): loads orchestration/definitions.py the
way `dagster` loads a code location, then describes it or executes one job in process, and
prints the outcome as one `DRIVER-RESULT <json>` line.

    python dagster_driver.py describe <definitions.py>
    python dagster_driver.py execute <dagster job> <definitions.py>
    python dagster_driver.py execute-on-go <dagster job> <definitions.py>

`execute-on-go` loads first, prints `DRIVER-READY` and starts the run when a line arrives on
its standard input (so a test can start a run at a moment of its choosing).
"""

import importlib.util
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import dagster as dg

INSTANCE_CONFIG = Path(__file__).resolve().parents[2] / "orchestration" / "dagster.yaml"


def load(path: Path) -> dg.Definitions:
    spec = importlib.util.spec_from_file_location("meltano_project_definitions", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    defs: dg.Definitions = module.defs
    return defs


def describe(defs: dg.Definitions) -> dict[str, Any]:
    jobs = {
        job.name: {"tags": dict(job.tags), "ops": [node.name for node in job.nodes]}
        for job in defs.resolve_all_job_defs()
    }
    schedules = [
        {
            "name": schedule.name,
            "cron_schedule": schedule.cron_schedule,
            "job_name": schedule.job_name,
            "execution_timezone": schedule.execution_timezone,
            "default_status": schedule.default_status.value,
        }
        for schedule in defs.schedules or []
    ]
    return {"jobs": jobs, "schedules": schedules, "instance": instance_limits()}


def instance_limits() -> list[dict[str, Any]]:
    """The run-queue limits of an instance configured by orchestration/dagster.yaml."""
    with tempfile.TemporaryDirectory() as home:
        (Path(home) / "dagster.yaml").write_text(INSTANCE_CONFIG.read_text())
        with dg.DagsterInstance.from_config(home) as instance:
            limits: list[dict[str, Any]] = (
                instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
            )
            return [dict(limit) for limit in limits]


def execute(defs: dg.Definitions, job_name: str) -> dict[str, Any]:
    job = defs.resolve_job_def(job_name)
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
    failures = []
    for event in result.get_step_failure_events():
        data = event.step_failure_data
        user = data.user_failure_data
        failures.append(
            {
                "description": user.description if user else data.error.message,
                "metadata": {
                    k: str(getattr(v, "value", v))
                    for k, v in (user.metadata if user else {}).items()
                },
            }
        )
    return {"success": result.success, "tags": dict(job.tags), "failures": failures}


def main() -> int:
    command, *rest = sys.argv[1:]
    defs = load(Path(rest[-1]))
    if command == "execute-on-go":
        print("DRIVER-READY", flush=True)
        sys.stdin.readline()
    outcome = describe(defs) if command == "describe" else execute(defs, rest[0])
    print("DRIVER-RESULT " + json.dumps(outcome), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
