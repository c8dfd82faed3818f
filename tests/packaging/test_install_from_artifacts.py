"""Each plugin installs on its own, from its wheel or from a git URL with `#subdirectory=`,
with no unpublished dependency, and runs both directions of the sync against the sandbox.

The dependency-confusion guard: every requirement of a plugin is a public package pinned in
constraints.txt; the shared clients travel inside the plugin's own package (hatch_build.py).
"""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
import tomllib
import zipfile
from email.message import Message
from email.parser import Parser
from pathlib import Path
from typing import Any

import plugin_about
import plugin_definitions
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging_env import CONSTRAINTS, ROOT, fresh_venv, git_url, run, uv_install, uv_pip

from salesforce_appcues_sandbox.testing import SandboxControl, appcues_config, salesforce_config

# Session fixtures build and install in their first test: more than the default 300 s on a
# busy 2-core runner.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

PLUGINS = plugin_about.PLUGINS
CLIENTS = "salesforce_appcues_clients"


def package(plugin: str) -> str:
    return plugin.replace("-", "_")


def wheel_files(wheel: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def wheel_metadata(files: dict[str, bytes]) -> Message:
    name = next(n for n in files if n.endswith(".dist-info/METADATA"))
    return Parser().parsestr(files[name].decode())


def pinned() -> set[str]:
    return {
        canonicalize_name(line.split("==")[0])
        for line in CONSTRAINTS.read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }


@pytest.mark.parametrize("plugin", PLUGINS)
def test_wheel_carries_clients_license_and_metadata(artifacts, plugin):
    files = wheel_files(artifacts[plugin].wheel)
    # The clients inside the plugin's own package: no file that another plugin also owns.
    assert f"{package(plugin)}/_vendor/{CLIENTS}/__init__.py" in files
    assert {name.split("/")[0] for name in files} == {
        package(plugin),
        f"{package(plugin)}-0.1.0.dist-info",
    }
    license_file = next(n for n in files if n.endswith(".dist-info/licenses/LICENSE"))
    assert files[license_file].decode() == (ROOT / "LICENSE").read_text()
    meta = wheel_metadata(files)
    assert meta["License-Expression"] == "Apache-2.0"
    assert {"meltano", "singer", "singer-io"} <= set(meta["Keywords"].split(","))
    urls = dict(url.split(", ", 1) for url in meta.get_all("Project-URL") or [])
    assert {"Homepage", "Source", "Issues", "Documentation"} <= set(urls)
    assert urls["Homepage"] == plugin_definitions.REPOSITORY, "one repository everywhere"
    classifiers = meta.get_all("Classifier") or []
    assert "Programming Language :: Python :: 3.11" in classifiers
    # The package's own README is the long description; its links work outside the repo.
    description = str(meta.get_payload())
    assert description.startswith(f"# {plugin}")
    assert not re.search(r"\]\((?!https?://|#)", description), "a relative link in the README"


@pytest.mark.parametrize("plugin", PLUGINS)
def test_every_requirement_is_a_pinned_public_package(artifacts, plugin):
    meta = wheel_metadata(wheel_files(artifacts[plugin].wheel))
    names = {canonicalize_name(Requirement(r).name) for r in meta.get_all("Requires-Dist") or []}
    assert "salesforce-appcues-clients" not in names
    assert names <= pinned(), f"not pinned in constraints.txt: {names - pinned()}"


@pytest.mark.parametrize("plugin", PLUGINS)
def test_plugin_declares_every_dependency_of_the_bundled_clients(plugin):
    """The clients ship inside each plugin, so their requirements must be the plugin's too."""

    def names(folder: str) -> set[str]:
        project = tomllib.loads((ROOT / folder / "pyproject.toml").read_text())["project"]
        return {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}

    missing = names("clients") - names(plugin)
    assert not missing, f"{plugin}/pyproject.toml lacks the clients' {sorted(missing)}"


@pytest.mark.parametrize("plugin", PLUGINS)
def test_sdist_carries_what_its_wheel_needs(artifacts, plugin):
    with tarfile.open(artifacts[plugin].sdist) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert f"{package(plugin)}/_vendor/{CLIENTS}/__init__.py" in names
    assert {"LICENSE", "README.md", "pyproject.toml", "hatch_build.py"} <= names


def test_build_hook_and_license_are_the_same_everywhere():
    assert len({(ROOT / plugin / "hatch_build.py").read_text() for plugin in PLUGINS}) == 1
    licenses = {(ROOT / d / "LICENSE").read_text() for d in (*PLUGINS, "clients", "sandbox")}
    assert licenses == {(ROOT / "LICENSE").read_text()}
    assert "Apache License" in (ROOT / "LICENSE").read_text()


@pytest.mark.parametrize("plugin", PLUGINS)
def test_installed_wheel_runs_on_its_own(wheel_venvs, plugin):
    bin_dir = wheel_venvs[plugin]
    venv = bin_dir.parent
    code = f"import {package(plugin)}, {CLIENTS}; print({CLIENTS}.__file__)"
    found = Path(run([bin_dir / "python", "-c", code]).strip())
    assert found.is_relative_to(venv / "lib"), f"clients imported from {found}"
    for pth in venv.glob("lib/python*/site-packages/*.pth"):
        assert str(ROOT) not in pth.read_text(), f"{pth.name} points into the checkout"
    about = json.loads(run([bin_dir / plugin, "--about", "--format=json"]))
    assert about["settings"] == plugin_about.about(plugin)["settings"]


def test_plugins_share_one_venv_without_conflict(artifacts, tmp_path):
    """Installed side by side, then one removed: the others still run (no shared file)."""
    bin_dir = fresh_venv(tmp_path / "shared")
    uv_install(bin_dir, *(artifacts[plugin].wheel for plugin in PLUGINS))
    uv_pip("uninstall", bin_dir, "target-appcues-profiles")
    for plugin in ("tap-salesforce-appcues", "target-salesforce-events"):
        assert json.loads(run([bin_dir / plugin, "--about", "--format=json"]))["name"] == plugin


@pytest.mark.parametrize("plugin", PLUGINS)
def test_installs_from_a_git_url_with_subdirectory(source_repo, tmp_path, plugin):
    """What `pip install "git+https://...#subdirectory=<plugin>"` does, from a local clone."""
    bin_dir = fresh_venv(tmp_path / "venv")
    uv_install(bin_dir, f"{plugin} @ {git_url(source_repo, plugin)}")
    about = json.loads(run([bin_dir / plugin, "--about", "--format=json"]))
    assert about["name"] == plugin
    assert not list(bin_dir.parent.glob("lib/python*/site-packages/salesforce_appcues_clients"))


@pytest.mark.parametrize("plugin", PLUGINS)
def test_pip_installs_from_a_git_url_without_any_index(source_repo, artifacts, tmp_path, plugin):
    """pip itself, with no package index at all: a dependency that is not installed already
    (such as an unpublished `salesforce-appcues-clients`) fails the install, as it did."""
    bin_dir = fresh_venv(tmp_path / "venv", with_pip=True)
    # The public dependencies and the build backend, from the pins; then the plugin removed.
    uv_install(bin_dir, artifacts[plugin].wheel, "hatchling")
    uv_pip("uninstall", bin_dir, plugin)
    run([bin_dir / "pip", "install", "--quiet", "--no-index", "--no-build-isolation",
         git_url(source_repo, plugin)])  # fmt: skip
    about = json.loads(run([bin_dir / plugin, "--about", "--format=json"]))
    assert about["name"] == plugin


# --- both directions with the installed plugins -------------------------------------------
def _write(path: Path, payload: dict[str, Any]) -> Path:
    path.write_text(json.dumps(payload))
    return path


def _pipe(tap: list[str | Path], target: list[str | Path], workdir: Path) -> tuple[str, str]:
    """tap | target, as Meltano runs them; returns both logs. Fails when either fails."""
    tap_log, target_log = workdir / "tap.log", workdir / "target.log"
    with tap_log.open("w") as tap_err, target_log.open("w") as target_err:
        producer = subprocess.Popen(
            [str(c) for c in tap], stdout=subprocess.PIPE, stderr=tap_err, cwd=workdir
        )
        consumer = subprocess.run(
            [str(c) for c in target],
            stdin=producer.stdout,
            stdout=subprocess.DEVNULL,
            stderr=target_err,
            cwd=workdir,
            timeout=600,
            check=False,
        )
        assert producer.stdout is not None
        producer.stdout.close()
        tap_rc = producer.wait(timeout=600)
    logs = tap_log.read_text(), target_log.read_text()
    assert tap_rc == 0, logs[0][-3000:]
    assert consumer.returncode == 0, logs[1][-3000:]
    return logs


def _stats(sandbox, service: str) -> dict[str, Any]:
    with SandboxControl.of(sandbox.connection, service, timeout=30) as control:
        return control.stats()


def test_installed_wheels_sync_appcues_events_to_salesforce(
    wheel_venvs, packaging_sandbox, tmp_path
):
    """The tap on Appcues settings alone (no Salesforce login) into the events target."""
    connection = packaging_sandbox.connection
    tap_cfg = {**appcues_config(connection, "appcues_"), "appcues_lag": 1}
    target_cfg = {**salesforce_config(connection), "state_dir": str(tmp_path / "state")}
    before = int(_stats(packaging_sandbox, "salesforce")["records"].get("Event", 0))
    tap_log, target_log = _pipe(
        [wheel_venvs["tap-salesforce-appcues"] / "tap-salesforce-appcues",
         "--config", _write(tmp_path / "tap.json", tap_cfg)],
        [wheel_venvs["target-salesforce-events"] / "target-salesforce-events",
         "--config", _write(tmp_path / "target.json", target_cfg)],
        tmp_path,
    )  # fmt: skip
    after = int(_stats(packaging_sandbox, "salesforce")["records"].get("Event", 0))
    assert after > before, target_log[-2000:]
    assert "No Salesforce credentials configured" in tap_log


def test_installed_wheels_sync_salesforce_records_to_appcues(
    wheel_venvs, packaging_sandbox, tmp_path
):
    """The tap on Salesforce settings alone (no appcues_events stream) into the profiles target."""
    connection = packaging_sandbox.connection
    tap_cfg = {
        **salesforce_config(connection),
        "user_objects": ["Contact", "Lead"],
        "account_object": "Account",
        "relationship_fields": {"Contact": ["Account.Product_Account_Id__c"]},
        "lag": 1,
    }
    target_cfg = {
        **appcues_config(connection),
        "user_group_field": "Account.Product_Account_Id__c",
        "state_dir": str(tmp_path / "state"),
    }
    before = _stats(packaging_sandbox, "appcues")
    _pipe(
        [wheel_venvs["tap-salesforce-appcues"] / "tap-salesforce-appcues",
         "--config", _write(tmp_path / "tap.json", tap_cfg)],
        [wheel_venvs["target-appcues-profiles"] / "target-appcues-profiles",
         "--config", _write(tmp_path / "target.json", target_cfg)],
        tmp_path,
    )  # fmt: skip
    after = _stats(packaging_sandbox, "appcues")
    assert after["profiles_written"] > before["profiles_written"]
    assert after["groups_written"] > before["groups_written"]
