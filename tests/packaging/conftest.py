"""Fixtures of the packaging tests: the plugins as a user gets them, outside this checkout.

A snapshot of the working tree becomes a git repository of its own (what `pip install
git+...` clones); each plugin is built from it (sdist, then the wheel from the sdist, as
`uv build` does) and installed into fresh virtualenvs from its artifact alone. Everything
is built and installed once per session, with uv and the pinned constraints: uv's cache
makes a rerun take seconds and needs no network once the pins are cached.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from salesforce_appcues_sandbox.server import Sandbox
from salesforce_appcues_sandbox.testing import seeded_sandbox

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from packaging_env import CONSTRAINTS, UV, fresh_venv, run, uv_install  # noqa: E402
from plugin_about import PLUGINS  # noqa: E402

# Linked data on both services (same seed): Appcues users and Salesforce records share ids.
SALESFORCE_SEED = {"seed": 17, "Account": 6, "Contact": 30, "Lead": 10}
APPCUES_EXTRA = {"unknown_users": 3, "events": 120}


@pytest.fixture(scope="session")
def source_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout's working tree (committed or not) as a git repository of its own."""
    listed = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT)
    repo = tmp_path_factory.mktemp("repo") / "salesforce-appcues-sync"
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / name)
    git = ["git", "-c", "user.name=packaging-test", "-c", "user.email=test@localhost"]
    run([*git, "init", "--quiet", "--initial-branch=main"], cwd=repo)
    run([*git, "add", "--all"], cwd=repo)
    run([*git, "commit", "--quiet", "--message=snapshot"], cwd=repo)
    return repo


@dataclass
class Artifacts:
    wheel: Path
    sdist: Path


@pytest.fixture(scope="session")
def artifacts(source_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Artifacts]:
    """Each plugin's sdist and wheel, the wheel built from the sdist (`uv build`)."""
    out = tmp_path_factory.mktemp("dist")
    built: dict[str, Artifacts] = {}
    for plugin in PLUGINS:
        folder = out / plugin
        run([*UV, "build", "--quiet", "--build-constraint", CONSTRAINTS, "--out-dir", folder,
             source_repo / plugin])  # fmt: skip
        (wheel,) = folder.glob("*.whl")
        (sdist,) = folder.glob("*.tar.gz")
        built[plugin] = Artifacts(wheel, sdist)
    return built


@pytest.fixture(scope="session")
def wheel_venvs(
    artifacts: dict[str, Artifacts], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """One fresh virtualenv per plugin, the plugin installed from its wheel alone."""
    venvs: dict[str, Path] = {}
    for plugin in PLUGINS:
        bin_dir = fresh_venv(tmp_path_factory.mktemp("venv") / plugin)
        uv_install(bin_dir, artifacts[plugin].wheel)
        venvs[plugin] = bin_dir
    return venvs


@pytest.fixture(scope="session")
def packaging_sandbox() -> Iterator[Sandbox]:
    with seeded_sandbox(SALESFORCE_SEED, **APPCUES_EXTRA) as running:
        yield running


@pytest.fixture(scope="session")
def meltano_sandbox() -> Iterator[Sandbox]:
    """The user project's own: its runs must find the events not yet written."""
    with seeded_sandbox(SALESFORCE_SEED, **APPCUES_EXTRA) as running:
        yield running
