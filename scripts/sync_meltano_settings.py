"""Keeps every file derived from the plugins' `--about --format=json` in step with them.

    python scripts/sync_meltano_settings.py          # rewrite the stale files
    python scripts/sync_meltano_settings.py --check  # exit 1 and say what is stale

Generated whole: the plugin definitions under plugins/ (Meltano Hub format `.yml` and lock
file `.lock`, scripts/plugin_definitions.py), `.env.example` and docs/configuration.md
(scripts/gen_config_docs.py). In meltano.yml: each plugin's `variant` (its definition is the
lock file), and the connection settings of its base config and of the `sandbox` environment
(other keys there are kept).
"""

from __future__ import annotations

import argparse
import io
import itertools
import sys
from typing import Any

from plugin_about import (
    PLUGIN_TYPES,
    PLUGINS,
    ROOT,
    SDK_BUILTIN_SETTINGS,
    all_about,
    env_var,
    json_types,
    properties,
)
from plugin_definitions import VARIANT, hub_definition, hub_path, lock_path, lock_text
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

MELTANO_YML = ROOT / "meltano.yml"
ENV_EXAMPLE = ROOT / ".env.example"

# Capabilities Meltano must know about, or it silently skips state, catalogs or discovery.
REQUIRED_CAPABILITIES = {
    "tap-salesforce-appcues": {"state", "catalog", "discover", "about", "stream-maps"},
    "target-appcues-profiles": {"about", "stream-maps"},
    "target-salesforce-events": {"about", "stream-maps"},
}

# The OAuth flows of the Salesforce client (clients/settings.py): one set is enough.
SALESFORCE_FLOWS = (
    ("client_id", "refresh_token"),  # refresh token (client_secret when the app wants it)
    ("client_id", "username", "private_key"),  # JWT bearer, key inline
    ("client_id", "username", "private_key_file"),  # JWT bearer, key file
    ("client_id", "client_secret", "domain"),  # client credentials (My Domain)
)
APPCUES_CREDENTIALS = ("account_id", "api_key", "api_secret")

# Per-run files of a sandbox live in its run directory, never in the project. The refresh
# token store is one folder for every plugin: they share the sandbox's refresh token.
SANDBOX_FILES = {
    "state_dir": "${SANDBOX_DIR}/%(plugin)s",
    "token_store_dir": "${SANDBOX_DIR}/salesforce-tokens",
}


def _yaml() -> YAML:
    # Meltano's own round-trip settings, so `meltano config set` and this script agree.
    yaml = YAML()
    yaml.default_flow_style = False
    yaml.width = 4096
    return yaml


def setting_definition(name: str, prop: dict[str, Any]) -> dict[str, Any]:
    """A Meltano setting definition for one JSON-schema property."""
    types = json_types(prop)
    enum = prop.get("enum")
    definition: dict[str, Any] = {"name": name, "kind": "string"}
    if enum:
        definition["kind"] = "options"
    elif types == ["string"] and prop.get("format") in ("date-time", "date"):
        definition["kind"] = "date_iso8601"
    elif len(types) == 1:
        definition["kind"] = {
            "integer": "integer",
            # Not `decimal`: Meltano 4.4.1 casts a text value (every ${VARIABLE}) of a
            # decimal setting to a Decimal, then fails to write it to the plugin's config.
            "number": "string",
            "boolean": "boolean",
            "array": "array",
            "object": "object",
        }.get(types[0], "string")
    elif len(types) > 1:
        # e.g. ["array", "string"]: Meltano passes structured values through as parsed JSON.
        definition["kind"] = next((t for t in types if t in ("object", "array")), "string")
    if prop.get("title"):
        definition["label"] = prop["title"]
    if prop.get("description"):
        definition["description"] = " ".join(str(prop["description"]).split())
    if enum:
        definition["options"] = [{"label": str(v), "value": v} for v in enum if v is not None]
    if prop.get("secret"):
        definition["sensitive"] = True
    if prop.get("default") is not None:
        # The plugin's own default, so `meltano config <plugin> list` shows what runs.
        definition["value"] = prop["default"]
    return definition


def appcues_prefix(props: dict[str, Any]) -> str | None:
    for prefix in ("", "appcues_"):
        if f"{prefix}api_key" in props:
            return prefix
    return None


def group_validation(plugin: str, about_json: dict[str, Any]) -> list[list[str]]:
    """Alternative sets of settings, one of which must be complete.

    One group per way the plugin can run: each Salesforce auth flow, and the Appcues
    credentials, each with the plugin's required settings. The families are alternatives,
    not a product: the tap runs with Salesforce settings alone (its Salesforce streams) or
    with Appcues settings alone (`appcues_events`).
    """
    props = properties(about_json)
    families: list[list[tuple[str, ...]]] = []
    if "client_id" in props:
        families.append(list(SALESFORCE_FLOWS))
    prefix = appcues_prefix(props)
    if prefix is not None:
        families.append([tuple(prefix + n for n in APPCUES_CREDENTIALS)])
    required = tuple(about_json.get("settings", {}).get("required", []) or [])
    groups: list[list[str]] = []
    for option in itertools.chain.from_iterable(families):
        group = sorted({*option, *required})
        missing = [name for name in group if name not in props]
        if missing:
            raise SystemExit(f"{plugin}: auth setting(s) {missing} not in its --about output")
        groups.append(group)
    if not groups and required:
        groups.append(sorted(required))
    return groups


def capabilities(plugin: str, about_json: dict[str, Any]) -> list[str]:
    found = list(about_json.get("capabilities", []))
    missing = REQUIRED_CAPABILITIES[plugin] - set(found)
    if missing:
        raise SystemExit(f"{plugin}: --about lacks capabilities {sorted(missing)}")
    return found


def connection_config(
    plugin: str, about_json: dict[str, Any], variable_prefix: str
) -> dict[str, str]:
    """The plugin's shared Salesforce/Appcues settings, each read from a neutral variable.

    `variable_prefix` "" gives SALESFORCE_<SETTING> / APPCUES_<SETTING> (the base config, so
    one `.env` serves every plugin), "SANDBOX_" the sandbox environment's variables. In the
    sandbox environment every shared setting is mapped, so a prod value from `.env` can never
    mix into a sandbox run (an unset variable there leaves the setting unset).
    """
    props = properties(about_json)
    config: dict[str, str] = {}
    # The Salesforce family shares names with the unprefixed Appcues one (request_timeout...).
    if "client_id" in props:
        for name in _shared_salesforce_names():
            if name in props:
                config[name] = f"${{{variable_prefix}SALESFORCE_{name.upper()}}}"
    prefix = appcues_prefix(props)
    if prefix is not None:
        for name in _shared_appcues_names():
            if prefix + name in props:
                config[prefix + name] = f"${{{variable_prefix}APPCUES_{name.upper()}}}"
    return config


def sandbox_config(plugin: str, about_json: dict[str, Any]) -> dict[str, str]:
    config = connection_config(plugin, about_json, "SANDBOX_")
    props = properties(about_json)
    for name, template in SANDBOX_FILES.items():
        if name in props:
            config[name] = template % {"plugin": plugin}
    return config


def _shared_salesforce_names() -> list[str]:
    from salesforce_appcues_clients.settings import salesforce_properties

    return list(salesforce_properties())


def _shared_appcues_names() -> list[str]:
    from salesforce_appcues_clients.settings import appcues_properties

    return list(appcues_properties())


def _find(seq: CommentedSeq, name: str) -> CommentedMap | None:
    return next((item for item in seq if item.get("name") == name), None)


def _merge_config(entry: CommentedMap, wanted: dict[str, str], about_json: dict[str, Any]) -> None:
    """Add the generated keys that are missing; keep values someone set (`meltano config set`).

    Keys naming no setting of the plugin are dropped: they would be passed to the plugin as
    unknown config and usually mean a setting was renamed.
    """
    config = entry.setdefault("config", CommentedMap())
    known = properties(about_json)
    for key in [k for k in config if k not in known]:
        _move_trailing_comment(config, key, None)
        del config[key]
    for key, value in wanted.items():
        if key not in config:
            last = next(reversed(config), None) if config else None
            config[key] = value
            if last is not None:
                _move_trailing_comment(config, last, key)


def _move_trailing_comment(mapping: CommentedMap, old: Any, new: Any) -> None:
    """Keep a comment that follows a mapping's last key (it introduces the next block)."""
    token = mapping.ca.items.pop(old, None)
    if token is not None and new is not None:
        mapping.ca.items[new] = token


# Keys of a plugin entry that its definition (the lock file) holds instead of meltano.yml.
DEFINITION_KEYS = (
    "namespace",
    "label",
    "description",
    "executable",
    "capabilities",
    "settings",
    "settings_group_validation",
)


def definition(plugin: str, about_json: dict[str, Any]) -> dict[str, Any]:
    """The plugin's Meltano Hub definition, from its --about output."""
    return hub_definition(
        plugin,
        capabilities(plugin, about_json),
        [setting_definition(name, prop) for name, prop in properties(about_json).items()],
        group_validation(plugin, about_json),
    )


def render_definitions(about: dict[str, dict[str, Any]]) -> dict[Any, str]:
    """plugins/<type>/<plugin>--<variant>.yml and .lock: path -> text."""
    files: dict[Any, str] = {}
    for plugin in PLUGINS:
        hub = definition(plugin, about[plugin])
        out = io.StringIO()
        kind = PLUGIN_TYPES[plugin][:-1]  # extractor, loader
        out.write(
            f"# Meltano plugin definition of {plugin} (Meltano Hub format). Add it to a\n"
            f"# project with: meltano add {kind} {plugin} --from-ref <this file>\n"
            "# Generated by scripts/sync_meltano_settings.py from the plugin's --about output.\n"
        )
        _yaml().dump(hub, out)
        files[hub_path(plugin)] = out.getvalue()
        files[lock_path(plugin)] = lock_text(plugin, hub)
    return files


def render_meltano_yml(text: str, about: dict[str, dict[str, Any]]) -> str:
    yaml = _yaml()
    doc = yaml.load(text)
    for plugin in PLUGINS:
        plugin_type = PLUGIN_TYPES[plugin]
        entry = _find(doc["plugins"][plugin_type], plugin)
        if entry is None:
            raise SystemExit(f"meltano.yml: no {plugin_type} entry named {plugin}")
        about_json = about[plugin]
        for key in DEFINITION_KEYS:
            entry.pop(key, None)
        if entry.get("variant") != VARIANT:
            entry.insert(1, "variant", VARIANT)
        _merge_config(entry, connection_config(plugin, about_json, ""), about_json)
    sandbox = _find(doc["environments"], "sandbox")
    if sandbox is None:
        raise SystemExit("meltano.yml: no environment named sandbox")
    plugins = sandbox.setdefault("config", CommentedMap()).setdefault("plugins", CommentedMap())
    for plugin in PLUGINS:
        seq = plugins.setdefault(PLUGIN_TYPES[plugin], CommentedSeq())
        entry = _find(seq, plugin)
        if entry is None:
            entry = CommentedMap(name=plugin)
            seq.append(entry)
        _merge_config(entry, sandbox_config(plugin, about[plugin]), about[plugin])
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()


def render_env_example(about: dict[str, dict[str, Any]]) -> str:
    """Every variable of the `prod` environment, commented out, with what it means."""
    lines = [
        "# Variables for `meltano --environment=prod ...` (a real org and Appcues account).",
        "# Copy to `.env` (git-ignored) and fill in; unset variables fall back to defaults.",
        "# Generated by scripts/sync_meltano_settings.py from the plugins' --about output.",
        "",
        "MELTANO_ENVIRONMENT=prod",
        "",
    ]
    shared_sf: dict[str, dict[str, Any]] = {}
    shared_ac: dict[str, dict[str, Any]] = {}
    own: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for plugin in PLUGINS:
        props = properties(about[plugin])
        shared = connection_config(plugin, about[plugin], "")
        for setting, reference in shared.items():
            var = reference.strip("${}")
            target = shared_sf if var.startswith("SALESFORCE_") else shared_ac
            target.setdefault(var, props[setting])
        own[plugin] = [
            (name, prop)
            for name, prop in props.items()
            if name not in shared and name not in SDK_BUILTIN_SETTINGS
        ]
    lines += _section(
        "Salesforce connection (tap-salesforce-appcues and target-salesforce-events). "
        "Set one OAuth flow: refresh token, JWT bearer (username + private key) or "
        "client credentials (My Domain); see docs/salesforce-setup.md.",
        shared_sf.items(),
    )
    lines += _section(
        "Appcues connection (tap-salesforce-appcues and target-appcues-profiles).",
        shared_ac.items(),
    )
    for plugin in PLUGINS:
        lines += _section(
            f"{plugin}: its own settings (Meltano's per-plugin variables; "
            "also `meltano --environment=prod config set " + plugin + " <setting> <value>`).",
            ((env_var(plugin, name), prop) for name, prop in own[plugin]),
        )
    return "\n".join(lines).rstrip() + "\n"


def _section(title: str, variables: Any) -> list[str]:
    lines = [f"# --- {title}"]
    for var, prop in variables:
        label = prop.get("title") or var
        description = " ".join(str(prop.get("description", "")).split())
        lines.append(f"# {label}: {description}" if description else f"# {label}")
        default = prop.get("default")
        shown = "" if default is None else _env_value(default)
        lines.append(f"# {var}={shown}")
    lines.append("")
    return lines


def _env_value(value: Any) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return "'" + json.dumps(value) + "'"
    return str(value)


def render_all(about: dict[str, dict[str, Any]]) -> dict[Any, str]:
    """Every generated file: path -> wanted text."""
    import gen_config_docs  # it imports this module

    return {
        MELTANO_YML: render_meltano_yml(MELTANO_YML.read_text(), about),
        ENV_EXAMPLE: render_env_example(about),
        gen_config_docs.DOC: gen_config_docs.render(about),
        **render_definitions(about),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if the files are stale")
    args = parser.parse_args(argv)
    wanted = render_all(all_about())
    stale = [path for path, text in wanted.items() if not path.exists() or path.read_text() != text]
    if args.check:
        for path in stale:
            name = path.relative_to(ROOT)
            print(f"{name} is stale: run `make meltano-settings`", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(wanted[path])
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
