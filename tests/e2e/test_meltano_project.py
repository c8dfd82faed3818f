"""The project as Meltano sees it, without installing or running plugins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from plugin_about import ROOT

MELTANO = Path(sys.executable).parent / "meltano"


def meltano_json(*args, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MELTANO_")}
    env["MELTANO_DATABASE_URI"] = f"sqlite:///{tmp_path / 'meltano.db'}"
    out = subprocess.run(
        [str(MELTANO), "--environment=sandbox", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    return json.loads(out)


def test_schedule_list_shows_both_five_minute_schedules(tmp_path):
    listed = meltano_json("schedule", "list", "--format=json", tmp_path=tmp_path)["schedules"][
        "job"
    ]
    by_job = {s["job"]["name"]: s for s in listed}
    assert set(by_job) == {"salesforce-to-appcues", "appcues-to-salesforce"}
    for schedule in by_job.values():
        assert schedule["cron_interval"] == "*/5 * * * *"
    assert by_job["salesforce-to-appcues"]["job"]["tasks"] == [
        "tap-salesforce-appcues--profiles target-appcues-profiles"
    ]
    assert by_job["appcues-to-salesforce"]["job"]["tasks"] == [
        "tap-salesforce-appcues--events target-salesforce-events"
    ]
