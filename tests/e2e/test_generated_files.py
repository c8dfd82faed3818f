"""The plugin definitions (plugins/), meltano.yml's connection settings, .env.example and
docs/configuration.md follow the plugins.

They are generated from `--about --format=json`; a plugin whose settings changed without
`make meltano-settings` fails here, naming the stale file.
"""

from __future__ import annotations

import gen_config_docs
import plugin_about
import plugin_definitions
import pytest
import sync_meltano_settings
from ruamel.yaml import YAML

KINDS = {"string", "integer", "decimal", "boolean", "date_iso8601", "array", "object", "options"}


@pytest.fixture(scope="module")
def about():
    return plugin_about.all_about()


def test_every_generated_file_is_current(about):
    """One command (`make meltano-settings`) writes them all; none is stale or missing."""
    stale = [
        str(path.relative_to(plugin_about.ROOT))
        for path, text in sync_meltano_settings.render_all(about).items()
        if not path.exists() or path.read_text() != text
    ]
    assert not stale, f"stale: {stale}; run `make meltano-settings`"


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


def _definitions():
    yaml = YAML(typ="safe")
    return {
        plugin: yaml.load(plugin_definitions.hub_path(plugin).read_text())
        for plugin in plugin_about.PLUGINS
    }


def test_every_setting_is_defined_with_secrets_marked_and_defaults(about):
    project = YAML(typ="safe").load(sync_meltano_settings.MELTANO_YML.read_text())
    definitions = _definitions()
    for plugin in plugin_about.PLUGINS:
        definition = definitions[plugin]
        defined = {s["name"]: s for s in definition["settings"]}
        props = plugin_about.properties(about[plugin])
        assert set(defined) == set(props), plugin
        for name, prop in props.items():
            assert defined[name].get("sensitive", False) == bool(prop.get("secret")), (plugin, name)
            assert defined[name]["kind"] in KINDS, (plugin, name)
            # Meltano shows (and passes) the plugin's real default, e.g. quota_percent_total 80.
            assert defined[name].get("value") == prop.get("default"), (plugin, name)
        entry = next(
            p for p in project["plugins"][plugin_about.PLUGIN_TYPES[plugin]] if p["name"] == plugin
        )
        assert entry["variant"] == definition["variant"], plugin
        assert "settings" not in entry, f"{plugin}: meltano.yml repeats its definition"
        for key in entry.get("config", {}):
            assert key in props, f"{plugin}: config key {key} is no setting"
    assert {"state", "catalog", "discover", "about", "stream-maps"} <= set(
        definitions["tap-salesforce-appcues"]["capabilities"]
    )
    assert defined_value(definitions, "tap-salesforce-appcues", "quota_percent_total") == 80


def defined_value(definitions, plugin, name):
    return next(s for s in definitions[plugin]["settings"] if s["name"] == name).get("value")


def test_hub_definitions_install_from_the_git_subdirectory():
    for plugin, definition in _definitions().items():
        assert definition["pip_url"] == (
            f"git+{plugin_definitions.REPOSITORY}.git#subdirectory={plugin}"
        )
        assert (plugin_about.ROOT / plugin / "pyproject.toml").is_file()
        assert definition["executable"] == plugin
        assert definition["namespace"] == plugin.replace("-", "_")


def test_group_validation_lets_each_service_run_alone():
    """The tap runs on Salesforce settings alone or on Appcues settings alone."""
    groups = _definitions()["tap-salesforce-appcues"]["settings_group_validation"]
    appcues = {"appcues_account_id", "appcues_api_key", "appcues_api_secret"}
    assert appcues in [set(g) for g in groups]
    salesforce_only = [g for g in groups if not appcues & set(g)]
    assert ["client_id", "refresh_token"] in salesforce_only
    assert all(set(g) == appcues or not appcues & set(g) for g in groups), groups


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
