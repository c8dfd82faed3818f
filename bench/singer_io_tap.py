"""singer-io's tap-salesforce (PyPI) in its own virtualenv, pointed at the sandbox.

Reuses the fidelity test's pinned environment (tests/fidelity/tap-salesforce-requirements.txt,
made by the `pinned_python` fixture's own function in tests/conftest.py, so the same
.venv/pinned/ folder) and its login-host redirect wrapper, so the benchmark and the fidelity
test run the same tap.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

from harness import REPO, Sandbox, child_env, write_json

FIDELITY = REPO / "tests" / "fidelity"
REQUIREMENTS = FIDELITY / "tap-salesforce-requirements.txt"
WRAPPER = FIDELITY / "tap_salesforce_login_redirect.py"


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fidelity_module() -> ModuleType:
    return _load(FIDELITY / "test_singer_io_tap_salesforce.py", "fidelity_singer_io_tap")


def python() -> Path:
    """The tap's interpreter; installs its pinned environment on first use, through the same
    function (and under the same name) as the fidelity test's `pinned_python` fixture."""
    conftest = _load(REPO / "tests" / "conftest.py", "bench_tests_conftest")
    return Path(conftest._pinned_python(REQUIREMENTS, "tap-salesforce"))


def version() -> str:
    for line in REQUIREMENTS.read_text().splitlines():
        if line.startswith("tap-salesforce=="):
            return line.split("==", 1)[1]
    return "?"


class SingerIoTap:
    """Config, catalog (Contact selected, INCREMENTAL on SystemModstamp) and argv."""

    def __init__(self, sandbox: Sandbox, workdir: Path, objects: tuple[str, ...]) -> None:
        sf = sandbox.connection["salesforce"]
        self.workdir = workdir
        self.python = python()
        self.config = write_json(
            workdir / "singer-io-config.json",
            {
                "refresh_token": sf["refresh_token"],
                "client_id": sf["client_id"],
                "client_secret": sf["client_secret"],
                "start_date": "2000-01-01T00:00:00Z",
                "api_type": "REST",
                "select_fields_by_default": True,
            },
        )
        self.env = child_env(sandbox)
        self.env["SANDBOX_SALESFORCE_LOGIN_URL"] = sf["login_url"]
        self.objects = objects
        self.catalog: Path | None = None

    def argv(self, *args: str) -> list[str]:
        return [str(self.python), str(WRAPPER), "--config", str(self.config), *args]

    def write_catalog(self, discovered: dict[str, Any]) -> Path:
        streams = _fidelity_module().select_incremental(discovered, self.objects)
        self.catalog = write_json(self.workdir / "singer-io-catalog.json", {"streams": streams})
        return self.catalog

    def sync_argv(self, state: dict[str, Any] | None) -> list[str]:
        assert self.catalog is not None
        args = ["--properties", str(self.catalog)]
        if state is not None:
            path = self.workdir / "singer-io-state.json"
            path.write_text(json.dumps(state))
            args += ["--state", str(path)]
        return self.argv(*args)
