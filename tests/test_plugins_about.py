"""Each plugin installs as a console script and describes itself with `--about`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
PLUGINS = ["tap-salesforce-appcues", "target-appcues-profiles", "target-salesforce-events"]


@pytest.mark.parametrize("plugin", PLUGINS)
def test_about_json_lists_settings(plugin: str) -> None:
    out = subprocess.run(
        [str(BIN / plugin), "--about", "--format=json"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    about = json.loads(out)
    assert about["name"] == plugin
    assert about["sdk_version"].startswith("0.54.")
    assert about["settings"]["properties"], "the config schema has settings"
    for name, prop in about["settings"]["properties"].items():
        assert prop.get("description"), f"{plugin} setting {name} has no description"
