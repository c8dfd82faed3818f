"""A Meltano project that is not this repository adds the three plugins from their Hub-format
definitions (`meltano add --from-ref plugins/...yml`), installs them and runs both directions.

The definitions' `pip_url` names this repository on GitHub, out of reach here: the test's
copies point it at a git clone of this checkout (`git+file://...#subdirectory=<plugin>`) with
the pinned constraints; everything else is the shipped file. The project gets the sandbox's
connection the way this repository's does (SANDBOX_* variables, scripts/meltano_sandbox.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import plugin_about
import plugin_definitions
import pytest
from meltano_sandbox import MELTANO, SandboxProject, parse_run
from packaging_env import CONSTRAINTS, git_url, run
from ruamel.yaml import YAML

# Session fixtures build and install in their first test: more than the default 300 s on a
# busy 2-core runner.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

PLUGINS = plugin_about.PLUGINS
SF = ("client_id", "client_secret", "refresh_token", "domain", "ca_bundle")
APPCUES = ("account_id", "api_key", "api_secret", "base_url", "ca_bundle")
# The jobs and schedules of README's "In your own Meltano project".
JOBS = {
    "salesforce-to-appcues": "tap-salesforce-appcues--profiles target-appcues-profiles",
    "appcues-to-salesforce": "tap-salesforce-appcues--events target-salesforce-events",
}


def _sf(prefix: str = "") -> dict[str, str]:
    return {prefix + n: f"${{SANDBOX_SALESFORCE_{n.upper()}}}" for n in SF}


def _appcues(prefix: str = "") -> dict[str, str]:
    return {prefix + n: f"${{SANDBOX_APPCUES_{n.upper()}}}" for n in APPCUES}


def configure(meltano_yml: Path) -> None:
    """What a user writes after `meltano add`: connections, the two tap roles, a sandbox env.

    As in this repository's meltano.yml, two children of the tap split the work; here the
    Salesforce settings live on the `--profiles` child only, so the `--events` one runs on
    the Appcues settings alone (no Salesforce login).
    """
    yaml = YAML()
    doc = yaml.load(meltano_yml.read_text())
    doc["venv"] = {"backend": "uv"}
    doc["environments"].append({"name": "sandbox"})
    plugins: dict[str, dict[str, Any]] = {
        p["name"]: p for kind in ("extractors", "loaders") for p in doc["plugins"][kind]
    }
    plugins["tap-salesforce-appcues"]["config"] = {**_appcues("appcues_"), "appcues_lag": 5}
    doc["plugins"]["extractors"] += [
        {
            "name": "tap-salesforce-appcues--profiles",
            "inherit_from": "tap-salesforce-appcues",
            "config": {
                **_sf(),
                "user_objects": ["Contact", "Lead"],
                "account_object": "Account",
                "relationship_fields": {"Contact": ["Account.Product_Account_Id__c"]},
                "lag": 5,
            },
            "select": ["*.*", "!appcues_events.*"],
        },
        {
            "name": "tap-salesforce-appcues--events",
            "inherit_from": "tap-salesforce-appcues",
            "config": {"user_objects": [], "account_object": ""},
            "select": ["appcues_events.*"],
        },
    ]
    plugins["target-appcues-profiles"]["config"] = {
        **_appcues(),
        "user_group_field": "Account.Product_Account_Id__c",
        "state_dir": "${SANDBOX_DIR}/target-appcues-profiles",
    }
    plugins["target-salesforce-events"]["config"] = {
        **_sf(),
        "state_dir": "${SANDBOX_DIR}/target-salesforce-events",
    }
    with meltano_yml.open("w") as out:
        yaml.dump(doc, out)


@pytest.fixture(scope="module")
def user_project(source_repo, meltano_sandbox, tmp_path_factory) -> SandboxProject:
    home = tmp_path_factory.mktemp("user")
    run([MELTANO, "init", home / "project", "--no-usage-stats"], cwd=home)
    root = home / "project"
    project = SandboxProject(
        meltano_sandbox.connection, home / "run", project_dir=root, settle_seconds=6
    )
    yaml = YAML()
    for plugin in PLUGINS:
        shipped = plugin_definitions.hub_path(plugin)
        definition = yaml.load(shipped.read_text())
        assert definition["pip_url"] == plugin_definitions.pip_url(plugin)
        definition["pip_url"] = f"{git_url(source_repo, plugin)} -c {CONSTRAINTS}"
        copy = home / shipped.name
        with copy.open("w") as out:
            yaml.dump(definition, out)
        kind = plugin_about.PLUGIN_TYPES[plugin][:-1]
        project.meltano("add", kind, plugin, "--from-ref", str(copy), "--no-install")
    configure(root / "meltano.yml")
    for job, tasks in JOBS.items():
        project.meltano("job", "add", job, "--tasks", tasks)
        project.meltano(
            "schedule", "add", f"{job}-every-5-minutes", "--job", job, "--interval", "*/5 * * * *"
        )
    project.meltano("install", timeout=1200)
    return project


def test_added_plugins_are_installed_from_git_not_from_this_checkout(user_project):
    for plugin in PLUGINS:
        venv = user_project.project_dir / ".meltano" / plugin_about.PLUGIN_TYPES[plugin] / plugin
        bundled = list(
            venv.glob(f"venv/lib/python*/site-packages/{plugin.replace('-', '_')}/_vendor")
        )
        assert bundled, f"{plugin}: no bundled clients in {venv}"


def test_config_list_shows_the_real_defaults_and_groups(user_project):
    listed = user_project.meltano("config", "list", "tap-salesforce-appcues", "--all").output
    assert re.search(r"quota_percent_total .*current value: 80 \(default\)", listed), listed
    assert "Group 5: appcues_account_id, appcues_api_key, appcues_api_secret" in listed
    assert "Group 1: client_id, refresh_token" in listed


def test_both_jobs_run_in_the_user_project(user_project):
    schedules = user_project.meltano_json("schedule", "list", "--format=json")["schedules"]["job"]
    assert {s["job"]["name"] for s in schedules} == set(JOBS)
    assert {s["cron_interval"] for s in schedules} == {"*/5 * * * *"}
    events = parse_run(user_project.meltano("run", "appcues-to-salesforce").output)
    assert sum(events.events_written.values()) > 0
    assert events.unmatched and events.unmatched > 0, "the seed has users Salesforce lacks"
    profiles = parse_run(user_project.meltano("run", "salesforce-to-appcues").output)
    assert profiles.profiles["users_created"] > 0
    assert profiles.profiles["groups_created"] > 0
