"""`target-appcues-profiles --check` against the sandbox: key, account, region, write
permission; ready and not ready, with the exit codes of the installed command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from target_appcues_profiles.target import TargetAppcuesProfiles

COMMAND = Path(sys.executable).parent / "target-appcues-profiles"


def check(config: dict[str, Any], tmp_path) -> tuple[int, str]:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    result = CliRunner().invoke(TargetAppcuesProfiles.cli, ["--config", str(path), "--check"])
    return result.exit_code, result.output


def test_a_ready_key_passes_without_writing(appcues, tmp_path):
    calls_before = appcues.stats()["total_calls"]
    code, out = check(appcues.config(tmp_path), tmp_path)
    assert code == 0, out
    assert "[OK  ] appcues credentials: the key is accepted for account" in out
    assert "[OK  ] appcues write permission: the key may write profiles" in out
    assert "Preflight: ready to run (API calls: 2 appcues)." in out
    assert appcues.stats()["total_calls"] - calls_before == 2
    assert appcues.user("salesforce-appcues-preflight-probe") is None  # nothing written
    assert appcues.config(tmp_path)["api_secret"] not in out
    assert not (tmp_path / "state").exists()  # a check opens no ledger


def test_a_read_only_key_is_told_to_get_a_publisher_key(appcues, tmp_path):
    appcues.control("POST", "settings", {"read_only_key": 1})
    try:
        code, out = check(appcues.config(tmp_path), tmp_path)
    finally:
        appcues.control("POST", "settings", {"read_only_key": 0})  # the sandbox is shared
    assert code == 1
    assert "[OK  ] appcues credentials" in out
    assert "[FAIL] appcues write permission: Appcues refused a write with this key (403" in out
    assert "Publisher" in out


def test_a_us_key_against_the_eu_api_says_so_in_words(appcues, tmp_path):
    # The sandbox plays the EU API; a key it does not know stands for a US account's key.
    code, out = check(appcues.config(tmp_path, api_key="us-key", region="eu"), tmp_path)
    assert code == 1
    assert "[FAIL] appcues credentials: Appcues refused the key (401 Unauthorized)" in out
    assert "the EU API" in out and "region eu" in out
    assert "a key of a US account is refused here" in out
    assert "set region to us" in out
    assert "write permission" not in out  # not asked once the key is refused


def test_a_refused_key_in_the_us_region_points_to_eu(appcues, tmp_path):
    code, out = check(appcues.config(tmp_path, api_secret="wrong", region="us"), tmp_path)
    assert code == 1
    assert "the US API" in out and "set region to eu" in out
    assert "wrong" not in out


def test_an_unknown_account_is_named(appcues, tmp_path):
    code, out = check(appcues.config(tmp_path, account_id="424242"), tmp_path)
    assert code == 1
    assert "[FAIL] appcues account: Appcues has no account 424242" in out


def test_missing_settings_are_named(appcues, tmp_path):
    config = appcues.config(tmp_path)
    del config["api_secret"]
    code, out = check(config, tmp_path)
    assert code == 1
    assert "[FAIL] settings: missing Appcues setting(s): api_secret" in out


def test_the_installed_command_exits_0_when_ready_and_1_when_not(appcues, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TARGET_APPCUES_PROFILES_")}
    for config, expected in (
        (appcues.config(tmp_path), 0),
        (appcues.config(tmp_path, api_key="x"), 1),
    ):
        path = tmp_path / "config.json"
        path.write_text(json.dumps(config))
        done = subprocess.run(
            [str(COMMAND), "--config", str(path), "--check"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert done.returncode == expected, done.stdout + done.stderr
        assert "Preflight:" in done.stdout
