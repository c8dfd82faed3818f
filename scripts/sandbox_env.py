"""The sandbox's connection file as the SANDBOX_* variables meltano.yml's `sandbox` env reads.

    eval "$(.venv/bin/python scripts/sandbox_env.py .sandbox/connection.json)"
    .venv/bin/meltano --environment=sandbox run salesforce-to-appcues

Every key of the connection file becomes SANDBOX_<SERVICE>_<KEY> (SANDBOX_CA_BUNDLE for the
top-level CA); keys whose setting has another name get an alias named after the setting
(`login_url` -> SANDBOX_SALESFORCE_DOMAIN, the CA -> SANDBOX_<SERVICE>_CA_BUNDLE). The run
directory holds everything one sandbox's runs write: the plugins' ledgers and dead letters
(SANDBOX_DIR) and Meltano's system database with its state and run records
(MELTANO_DATABASE_URI), so a new sandbox never meets the bookmarks of an old one. The
mapping itself is `salesforce_appcues_sandbox.testing.sandbox_variables` (tests and the
orchestration harness use it too).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from salesforce_appcues_sandbox.testing import sandbox_variables

__all__ = ["main", "sandbox_variables"]


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
