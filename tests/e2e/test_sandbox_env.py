"""scripts/sandbox_env.py turns a sandbox connection file into what meltano.yml's sandbox
environment reads, and nothing of a prod `.env` can reach a sandbox run."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import plugin_about
import sandbox_env
from ruamel.yaml import YAML

from salesforce_appcues_sandbox.testing import meltano_environment

CONNECTION = {
    "ca_bundle": "/tmp/sandbox/ca.pem",
    "salesforce": {
        "login_url": "https://127.0.0.1:40001",
        "instance_url": "https://127.0.0.1:40001",
        "client_id": "3MVG9-client",
        "client_secret": "client-secret",
        "refresh_token": "5Aep-refresh",
        "username": "integration@sandbox.example.com",
        "control_url": "https://127.0.0.1:40001/_sandbox",
    },
    "appcues": {
        "base_url": "https://127.0.0.1:40002",
        "account_id": "93417",
        "api_key": "key-1",
        "api_secret": "secret-1",
        "control_url": "https://127.0.0.1:40002/_sandbox",
    },
}


def sandbox_environment_config():
    project = YAML(typ="safe").load((plugin_about.ROOT / "meltano.yml").read_text())
    sandbox = next(e for e in project["environments"] if e["name"] == "sandbox")
    plugins = sandbox["config"]["plugins"]
    return {p["name"]: p["config"] for kind in plugins.values() for p in kind}


def test_connection_becomes_the_settings_of_every_plugin(tmp_path):
    variables = sandbox_env.sandbox_variables(CONNECTION, tmp_path / "run")
    assert (tmp_path / "run").is_dir()
    resolved = {}
    for plugin, config in sandbox_environment_config().items():
        resolved[plugin] = {
            key: re.sub(r"\$\{(\w+)\}", lambda m: variables.get(m.group(1), ""), str(value))
            for key, value in config.items()
        }
    tap = resolved["tap-salesforce-appcues"]
    events = resolved["target-salesforce-events"]
    profiles = resolved["target-appcues-profiles"]
    for config in (tap, events):
        assert config["domain"] == CONNECTION["salesforce"]["login_url"]
        assert config["client_id"] == CONNECTION["salesforce"]["client_id"]
        assert config["refresh_token"] == CONNECTION["salesforce"]["refresh_token"]
        assert config["ca_bundle"] == CONNECTION["ca_bundle"]
        # A JWT key from a prod `.env` must not switch the sandbox to the JWT flow.
        assert config["private_key"] == ""
    assert tap["appcues_base_url"] == profiles["base_url"] == CONNECTION["appcues"]["base_url"]
    assert tap["appcues_api_secret"] == profiles["api_secret"] == "secret-1"
    assert profiles["state_dir"] == str(tmp_path / "run" / "target-appcues-profiles")
    assert variables["MELTANO_DATABASE_URI"].endswith(str(tmp_path / "run" / "meltano.db"))


def test_cli_prints_shell_exports(tmp_path):
    connection_file = tmp_path / "connection.json"
    connection_file.write_text(__import__("json").dumps(CONNECTION))
    out = subprocess.run(
        [
            sys.executable,
            str(plugin_about.ROOT / "scripts" / "sandbox_env.py"),
            str(connection_file),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    exported = dict(
        shlex.split(line.removeprefix("export "))[0].split("=", 1) for line in out.splitlines()
    )
    assert exported["SANDBOX_SALESFORCE_DOMAIN"] == "https://127.0.0.1:40001"
    assert exported["SANDBOX_DIR"] == str(tmp_path / "run")


def test_the_scripts_wait_as_long_as_the_sandbox_lag():
    from meltano_sandbox import SANDBOX_LAG_SECONDS

    tap = sandbox_environment_config()["tap-salesforce-appcues"]
    assert max(int(tap["lag"]), int(tap["appcues_lag"])) <= SANDBOX_LAG_SECONDS


def test_meltano_environment_drops_what_would_steer_meltano_away(tmp_path):
    """A prod shell's Meltano variables never reach a sandbox command."""
    prod = {
        "PATH": "/usr/bin",
        "MELTANO_ENVIRONMENT": "prod",
        "MELTANO_DATABASE_URI": "postgresql://prod/meltano",
        "MELTANO_STATE_BACKEND_URI": "s3://prod-state",
        "MELTANO_SYS_DIR_ROOT": "/srv/prod",
    }
    env = meltano_environment(CONNECTION, tmp_path / "run", tmp_path / "sys", base=prod)
    assert env["PATH"] == "/usr/bin"
    assert "MELTANO_ENVIRONMENT" not in env
    assert "MELTANO_STATE_BACKEND_URI" not in env
    assert env["MELTANO_DATABASE_URI"] == f"sqlite:///{tmp_path / 'run' / 'meltano.db'}"
    assert env["MELTANO_SYS_DIR_ROOT"] == str(tmp_path / "sys")
    assert env["SANDBOX_SALESFORCE_DOMAIN"] == CONNECTION["salesforce"]["login_url"]
