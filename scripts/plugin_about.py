"""The three plugins' `--about --format=json` output: the single source of their settings.

Shared by `sync_meltano_settings.py` (meltano.yml, .env.example) and `gen_config_docs.py`
(docs/configuration.md), so both follow the plugins' config schemas and cannot drift.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = ("tap-salesforce-appcues", "target-appcues-profiles", "target-salesforce-events")
PLUGIN_TYPES = {
    "tap-salesforce-appcues": "extractors",
    "target-appcues-profiles": "loaders",
    "target-salesforce-events": "loaders",
}

# Settings every singer-sdk plugin gets from the SDK itself (documented once, not per plugin).
SDK_BUILTIN_SETTINGS = frozenset(
    {
        "stream_maps",
        "stream_map_config",
        "faker_config",
        "flattening_enabled",
        "flattening_max_depth",
        "flattening_max_key_length",
        "batch_config",
        "add_record_metadata",
        "load_method",
        "batch_size_rows",
        "validate_records",
    }
)


def about(plugin: str, bin_dir: Path | None = None) -> dict[str, Any]:
    """Run `<plugin> --about --format=json` from the project's venv and parse it."""
    executable = (bin_dir or Path(sys.executable).parent) / plugin
    result = subprocess.run(
        [str(executable), "--about", "--format=json"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def all_about(bin_dir: Path | None = None) -> dict[str, dict[str, Any]]:
    return {plugin: about(plugin, bin_dir) for plugin in PLUGINS}


def properties(about_json: dict[str, Any]) -> dict[str, dict[str, Any]]:
    props: dict[str, dict[str, Any]] = about_json.get("settings", {}).get("properties", {})
    return props


def json_types(prop: dict[str, Any]) -> list[str]:
    """The non-null JSON types a property allows (type lists and anyOf/oneOf alike)."""
    found: list[str] = []
    raw = prop.get("type")
    if isinstance(raw, str):
        found.append(raw)
    elif isinstance(raw, list):
        found.extend(t for t in raw if isinstance(t, str))
    for key in ("anyOf", "oneOf"):
        for option in prop.get(key, []) or []:
            if isinstance(option, dict):
                found.extend(json_types(option))
    unique: list[str] = []
    for t in found:
        if t != "null" and t not in unique:
            unique.append(t)
    return unique


def env_var(plugin: str, setting: str) -> str:
    """Meltano's environment variable for a plugin setting (non-alphanumerics become `_`)."""
    return "".join(c if c.isalnum() else "_" for c in f"{plugin}_{setting}").upper()
