"""The plugins' Meltano definitions: Hub-format files for users, lock files for this project.

One definition per plugin, built from its `--about --format=json` (settings, capabilities,
defaults), is written twice under plugins/<type>/:

- `<plugin>--<variant>.yml`: Meltano Hub's format, for `meltano add <type> <plugin>
  --from-ref <file or raw URL>` in anyone's project; its `pip_url` installs the plugin from
  this repository's git subdirectory (README, "Running against a real org").
- `<plugin>--<variant>.lock`: the same definition in Meltano's lock-file form (what `meltano
  add` writes for a Hub plugin), through which this project's meltano.yml names the plugin by
  `variant` instead of repeating its settings.
"""

from __future__ import annotations

import json
from typing import Any

from plugin_about import PLUGIN_TYPES, ROOT

# Where the plugins are published: their git repository (pip_url, docs, project.urls).
REPOSITORY = "https://github.com/salesforce-appcues/salesforce-appcues-sync"
# Hub variants are named after the maintaining organisation.
VARIANT = "salesforce-appcues"
PLUGINS_DIR = ROOT / "plugins"

# What the --about output does not say: the Hub's descriptive fields.
DESCRIPTIVE = {
    "tap-salesforce-appcues": {
        "label": "Salesforce and Appcues (tap)",
        "description": "Changed Salesforce Lead/Contact/account records and Appcues events",
        "domain_url": "https://www.salesforce.com",
    },
    "target-appcues-profiles": {
        "label": "Appcues profiles (target)",
        "description": "Salesforce records become Appcues user and group profiles",
        "domain_url": "https://www.appcues.com",
    },
    "target-salesforce-events": {
        "label": "Salesforce Events (target)",
        "description": "Appcues events become Salesforce Event records and Latest NPS fields",
        "domain_url": "https://www.salesforce.com",
    },
}


def pip_url(plugin: str) -> str:
    return f"git+{REPOSITORY}.git#subdirectory={plugin}"


def hub_definition(
    plugin: str,
    capabilities: list[str],
    settings: list[dict[str, Any]],
    groups: list[list[str]],
) -> dict[str, Any]:
    """The plugin's definition in Meltano Hub's format (one variant)."""
    return {
        "name": plugin,
        "namespace": plugin.replace("-", "_"),
        "variant": VARIANT,
        "label": DESCRIPTIVE[plugin]["label"],
        "description": DESCRIPTIVE[plugin]["description"],
        "repo": REPOSITORY,
        "docs": f"{REPOSITORY}/tree/main/{plugin}#readme",
        "domain_url": DESCRIPTIVE[plugin]["domain_url"],
        "pip_url": pip_url(plugin),
        "executable": plugin,
        "maintenance_status": "active",
        "keywords": ["meltano_sdk"],
        "capabilities": capabilities,
        "settings_group_validation": groups,
        "settings": settings,
    }


def hub_path(plugin: str) -> Any:
    return PLUGINS_DIR / PLUGIN_TYPES[plugin] / f"{plugin}--{VARIANT}.yml"


def lock_path(plugin: str) -> Any:
    return PLUGINS_DIR / PLUGIN_TYPES[plugin] / f"{plugin}--{VARIANT}.lock"


def lock_text(plugin: str, definition: dict[str, Any]) -> str:
    """The lock file Meltano itself would write for this definition (its own classes)."""
    from meltano.core.plugin.base import PluginDefinition, PluginType, StandalonePlugin

    parsed = PluginDefinition.parse({"plugin_type": PluginType(PLUGIN_TYPES[plugin]), **definition})
    variant = parsed.find_variant(VARIANT)
    locked = StandalonePlugin.from_variant(variant, parsed)
    return json.dumps(locked.canonical(), indent=2) + "\n"
