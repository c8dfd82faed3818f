"""Fixtures and hooks of the reliability suite; the harness library is harness.py.

A pipeline run is the same thing `meltano run` does (see harness.py). The figures (faults
injected, runs, records lost, duplicates) are collected per scenario and printed at the end of
the session.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from salesforce_appcues_sandbox.server import Sandbox
from salesforce_appcues_sandbox.testing import SandboxControl


def _load_harness() -> Any:
    """harness.py by its path (--import-mode=importlib puts no test folder on sys.path)."""
    name = "reliability_harness"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("harness.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # before running it: its dataclasses look themselves up
        spec.loader.exec_module(module)
    return sys.modules[name]


harness_module = _load_harness()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    harness_module.write_figures(terminalreporter)


@pytest.fixture(scope="session")
def world() -> Iterator[Any]:
    """A sandbox of its own: the other suites reset and fault the shared one."""
    with Sandbox() as running:
        found = harness_module.World(
            running,
            SandboxControl.of(running.connection, "salesforce"),
            SandboxControl.of(running.connection, "appcues"),
        )
        harness_module.record_tokens(running, found.issued_tokens)
        yield found


@pytest.fixture(scope="session")
def harness() -> type[Any]:
    return harness_module.Harness


def pytest_sessionfinish() -> None:
    harness_module.cleanup()
