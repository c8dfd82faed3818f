"""meltano.yml's plugin settings, .env.example and docs/configuration.md follow the plugins.

They are generated from `--about --format=json`; a plugin whose settings changed without
`make meltano-settings` fails here, naming the stale file.
"""

from __future__ import annotations

import gen_config_docs
import plugin_about
import pytest
import sync_meltano_settings
from ruamel.yaml import YAML

KINDS = {"string", "integer", "decimal", "boolean", "date_iso8601", "array", "object", "options"}


@pytest.fixture(scope="module")
def about():
    return plugin_about.all_about()


def test_meltano_yml_is_current(about):
    path = sync_meltano_settings.MELTANO_YML
    text = path.read_text()
    assert sync_meltano_settings.render_meltano_yml(text, about) == text, (
        "meltano.yml is stale: run `make meltano-settings`"
    )


def test_env_example_is_current(about):
    path = sync_meltano_settings.ENV_EXAMPLE
    assert sync_meltano_settings.render_env_example(about) == path.read_text(), (
        ".env.example is stale: run `make meltano-settings`"
    )


def test_configuration_doc_is_current(about):
    assert gen_config_docs.render(about) == gen_config_docs.DOC.read_text(), (
        "docs/configuration.md is stale: run `make meltano-settings`"
    )


def test_every_setting_is_defined_with_secrets_marked(about):
    project = YAML(typ="safe").load(sync_meltano_settings.MELTANO_YML.read_text())
    for plugin in plugin_about.PLUGINS:
        entry = next(
            p for p in project["plugins"][plugin_about.PLUGIN_TYPES[plugin]] if p["name"] == plugin
        )
        defined = {s["name"]: s for s in entry["settings"]}
        props = plugin_about.properties(about[plugin])
        assert set(defined) == set(props), plugin
        for name, prop in props.items():
            assert defined[name].get("sensitive", False) == bool(prop.get("secret")), (plugin, name)
            assert defined[name]["kind"] in KINDS, (plugin, name)
        for key in entry.get("config", {}):
            assert key in props, f"{plugin}: config key {key} is no setting"
        assert {"state", "catalog", "discover", "about", "stream-maps"} <= set(
            project["plugins"]["extractors"][0]["capabilities"]
        )


def test_every_variable_of_env_example_is_read_by_meltano_yml(about):
    """.env.example offers no variable that nothing reads (and misses none meltano.yml reads)."""
    text = sync_meltano_settings.MELTANO_YML.read_text()
    offered = {
        line.lstrip("# ").split("=", 1)[0]
        for line in sync_meltano_settings.ENV_EXAMPLE.read_text().splitlines()
        if "=" in line and line.lstrip("# ").split("=", 1)[0].isupper()
    }
    shared = {v for v in offered if v.startswith(("SALESFORCE_", "APPCUES_"))}
    assert shared, "the shared connection variables are listed"
    for variable in shared:
        assert "${" + variable + "}" in text, variable
    for plugin in plugin_about.PLUGINS:
        for name in plugin_about.properties(about[plugin]):
            if name in plugin_about.SDK_BUILTIN_SETTINGS:
                continue
            own = plugin_about.env_var(plugin, name)
            via_shared = any(f"  {name}: ${{{v}}}" in text for v in shared)
            assert own in offered or via_shared, f"{own} is missing from .env.example"
