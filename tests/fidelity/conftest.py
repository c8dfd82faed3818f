"""Shared helpers of the third-party fidelity tests: the sandbox's Salesforce side over HTTPS,
and the third-party clients' own pinned virtualenvs."""

import hashlib
import shutil
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from salesforce_appcues_sandbox.testing import SandboxControl, salesforce_login

REPO = Path(__file__).parents[2]


def _install(requirements: Path, target: Path) -> None:
    """The pinned environment; uv when available (fast), else venv + pip."""
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv:
        subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(tmp)], check=True)
        install = [uv, "pip", "install", "--quiet", "--python", str(tmp / "bin" / "python")]
    else:
        venv.create(tmp, with_pip=True)
        install = [str(tmp / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*install, "--no-deps", "-r", str(requirements)], check=True)
    tmp.rename(target)


def _pinned_python(requirements: Path, name: str) -> Path:
    """The interpreter of a virtualenv holding exactly `requirements` (installed --no-deps),
    made once per checkout and per requirements content under .venv/fidelity/."""
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:12]
    target = REPO / ".venv" / "fidelity" / f"{name}-{digest}"
    if not (target / "bin" / "python").exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        _install(requirements, target)
    return target / "bin" / "python"


@dataclass
class SalesforceOrg:
    """The sandbox's Salesforce org as a third-party client sees it."""

    connection: dict
    ca_bundle: str

    @property
    def info(self) -> dict:
        return self.connection["salesforce"]

    def session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # the machine's REQUESTS_CA_BUNDLE would override verify
        session.verify = self.ca_bundle
        return session

    def control(self, method: str, path: str, body: dict | None = None) -> dict:
        with SandboxControl.of(self.connection, "salesforce", timeout=300) as control:
            return control.call(method, path, body) or {}

    def reseed(self, **counts) -> dict:
        """An org holding exactly what the deterministic generator makes from `counts`."""
        self.control("POST", "reset")
        return self.control("POST", "seed", counts)

    def token(self) -> dict:
        """A refresh-token login, as the connectors do it."""
        with self.session() as session:
            return salesforce_login(self.connection, session)


@pytest.fixture(scope="module")
def org(sandbox):
    return SalesforceOrg(sandbox.connection, str(sandbox.connection["ca_bundle"]))


@pytest.fixture(scope="session")
def pinned_python():
    """`pinned_python(requirements_file, name)` -> a third-party client's interpreter (test
    modules cannot import conftest under --import-mode=importlib)."""
    return _pinned_python
