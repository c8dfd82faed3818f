"""Shared fixtures of the Meltano end-to-end tests: one sandbox and one installed project.

`meltano install` is slow, so a session installs once; every `meltano` command runs in the
`sandbox` environment with scripts/sandbox_env.py's variables (state and run records in a
temporary run directory). The scripts under scripts/ are imported by putting that folder on
sys.path.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from salesforce_appcues_sandbox.server import Sandbox
from salesforce_appcues_sandbox.testing import seeded_sandbox

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

from meltano_sandbox import SandboxProject  # noqa: E402

# A small linked data set (the demo's is 40 times larger; tests/orchestration uses it too):
# Appcues users and Salesforce Contacts/Leads share product ids.
SALESFORCE_SEED = {"seed": 11, "Account": 12, "Contact": 60, "Lead": 20}
APPCUES_EXTRA = {"unknown_users": 6, "events": 500}


@pytest.fixture(scope="session")
def e2e_sandbox() -> Iterator[Sandbox]:
    """A sandbox of its own (other tests reset and fault the shared `sandbox` fixture)."""
    with seeded_sandbox(SALESFORCE_SEED, **APPCUES_EXTRA) as running:
        yield running


@pytest.fixture(scope="session")
def project(e2e_sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> SandboxProject:
    """This Meltano project bound to the e2e sandbox, its plugins installed once.

    The session has its own `.meltano`, so a demo or another test session running at the
    same time never has its plugins' config files removed by this session's install.
    """
    bound = SandboxProject(
        e2e_sandbox.connection,
        tmp_path_factory.mktemp("meltano-run"),
        tmp_path_factory.mktemp("meltano-sys"),
    )
    bound.meltano("install")
    return bound
