"""The HTTP clients know nothing of Singer: only `plugin_kit` imports singer-sdk or click."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "salesforce_appcues_clients"
SINGER_ONLY = ("singer_sdk", "click", "salesforce_appcues_clients.plugin_kit")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            names.add(base)
            joiner = "" if base.endswith(".") else "."
            names.update(base + joiner + alias.name for alias in node.names)
    return names


def _resolved(name: str) -> str:
    if name.startswith("."):
        return "salesforce_appcues_clients." + name.lstrip(".")
    return name


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_http_client_modules_do_not_import_the_plugin_kit(path: Path) -> None:
    bad = sorted(
        name
        for name in map(_resolved, _imports(path))
        if any(name == banned or name.startswith(banned + ".") for banned in SINGER_ONLY)
    )
    assert not bad, f"{path.name} imports {bad}; Singer-side code belongs in plugin_kit/"


def test_the_boundary_check_sees_a_plugin_kit_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from .plugin_kit.run_lock import RunLock\nimport singer_sdk\n", encoding="utf-8"
    )
    found = set(map(_resolved, _imports(module)))
    assert "salesforce_appcues_clients.plugin_kit.run_lock" in found
    assert "singer_sdk" in found
