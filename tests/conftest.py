"""Fixtures shared by the repository-level tests: third-party tools in their own pinned
virtualenvs (the fidelity clients, the orchestrator)."""

import hashlib
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]


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
    made once per checkout and per requirements content under .venv/pinned/."""
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:12]
    target = REPO / ".venv" / "pinned" / f"{name}-{digest}"
    if not (target / "bin" / "python").exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        _install(requirements, target)
    return target / "bin" / "python"


@pytest.fixture(scope="session")
def pinned_python():
    """`pinned_python(requirements_file, name)` -> a third-party tool's interpreter (test
    modules cannot import conftest under --import-mode=importlib)."""
    return _pinned_python
