"""Ships the shared clients inside this plugin's sdist and wheel, owned by this plugin alone.

`salesforce_appcues_clients` is not published on any package index: a plugin that depended
on it by name could not be installed from git or from its wheel, and a stranger who
registered the name would be installed instead (dependency confusion). So each plugin's
distribution carries a copy of the clients in `<plugin package>/_vendor/`, which the plugin
package's `__init__` appends to `sys.path` (docs/architecture.md, "Packaging"). Being inside
the plugin's own package, no file of it is shared with another plugin installed in the same
environment. The copy comes from:

- the sibling `clients/` folder when built from this repository (a clone, or `pip install
  git+...#subdirectory=<plugin>`), and is written into the sdist;
- the sdist itself when a wheel is built from the sdist (the package folder already holds it).

Editable installs (`make setup`) get nothing: there the clients are their own editable
package. This file is identical in every plugin folder (tests/packaging checks it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

CLIENTS = "salesforce_appcues_clients"


class SharedClientsHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name == "wheel" and version == "editable":
            return
        root = Path(self.root)
        package = self.metadata.name.replace("-", "_")
        bundled = f"{package}/_vendor/{CLIENTS}"
        if (root / bundled / "__init__.py").is_file():
            return  # built from the sdist: the package already carries the copy
        source = root.parent / "clients" / CLIENTS
        if not (source / "__init__.py").is_file():
            raise RuntimeError(f"{CLIENTS} not found in {root.parent}: build from a full clone")
        build_data["force_include"][str(source)] = bundled
