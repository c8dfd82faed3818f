"""The sandbox's connection file as the SANDBOX_* variables meltano.yml's `sandbox` env reads.

    eval "$(.venv/bin/python scripts/sandbox_env.py .sandbox/connection.json)"
    .venv/bin/meltano --environment=sandbox run salesforce-to-appcues

Every key of the connection file becomes SANDBOX_<SERVICE>_<KEY> (SANDBOX_CA_BUNDLE for the
top-level CA); keys whose setting has another name get an alias named after the setting
(`login_url` -> SANDBOX_SALESFORCE_DOMAIN, the CA -> SANDBOX_<SERVICE>_CA_BUNDLE). The run
directory holds everything one sandbox's runs write: the plugins' ledgers and dead letters
(SANDBOX_DIR) and Meltano's system database with its state and run records
(MELTANO_DATABASE_URI), so a new sandbox never meets the bookmarks of an old one.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

# Connection-file key -> the setting it feeds, where the names differ.
SETTING_ALIASES = {"salesforce": {"login_url": "domain"}, "appcues": {}}


def _variable(*parts: str) -> str:
    return "_".join("".join(c if c.isalnum() else "_" for c in p).upper() for p in parts)


def sandbox_variables(connection: dict[str, Any], run_dir: Path) -> dict[str, str]:
    """The variables for one sandbox connection; `run_dir` is created."""
    run_dir = run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    variables: dict[str, str] = {}
    ca_bundle = connection.get("ca_bundle")
    if ca_bundle:
        variables["SANDBOX_CA_BUNDLE"] = str(ca_bundle)
    for service, aliases in SETTING_ALIASES.items():
        section = connection.get(service) or {}
        for key, value in section.items():
            if value is None or isinstance(value, (dict, list)):
                continue
            variables[_variable("SANDBOX", service, key)] = str(value)
            if key in aliases:
                variables[_variable("SANDBOX", service, aliases[key])] = str(value)
        if ca_bundle:
            variables[_variable("SANDBOX", service, "ca_bundle")] = str(ca_bundle)
    variables["SANDBOX_DIR"] = str(run_dir)
    variables["MELTANO_DATABASE_URI"] = f"sqlite:///{run_dir / 'meltano.db'}"
    return variables


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print `export` lines for a sandbox.")
    parser.add_argument("connection_file", type=Path)
    parser.add_argument(
        "--run-dir",
        type=Path,
        help="where this sandbox's runs keep their files (default: next to the connection file)",
    )
    args = parser.parse_args(argv)
    connection = json.loads(args.connection_file.read_text())
    run_dir = args.run_dir or args.connection_file.resolve().parent / "run"
    for name, value in sandbox_variables(connection, run_dir).items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
