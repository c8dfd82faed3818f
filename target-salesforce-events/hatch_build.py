"""Ships the shared clients package inside this plugin's sdist and wheel.

`salesforce_appcues_clients` is not published on any package index: a plugin that depended
on it by name could not be installed from git or from its wheel, and a stranger who
registered the name would be installed instead (dependency confusion). So each plugin's
distribution carries the clients' modules (docs/architecture.md, "Packaging"):

- built from this repository (a clone, `pip install git+...#subdirectory=<plugin>`): taken
  from the sibling `clients/` folder;
- built from this plugin's sdist: taken from the copy the sdist carries at its root.

Editable installs (`make setup`) get nothing: there the clients are their own editable
package, so the development venv holds one copy of them, owned by one distribution.
This file is identical in every plugin folder (tests/packaging checks it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

PACKAGE = "salesforce_appcues_clients"


class SharedClientsHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name == "wheel" and version == "editable":
            return
        root = Path(self.root)
        for source in (root / PACKAGE, root.parent / "clients" / PACKAGE):
            if (source / "__init__.py").is_file():
                build_data["force_include"][str(source)] = PACKAGE
                return
        raise RuntimeError(f"{PACKAGE} not found next to {root}: build from a full clone")
