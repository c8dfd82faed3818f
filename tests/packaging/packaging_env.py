"""Helpers of the packaging tests: run a command, make a virtualenv, install with uv."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UV = [sys.executable, "-m", "uv"]
CONSTRAINTS = ROOT / "constraints.txt"


def run(cmd: list[str | Path], cwd: Path | None = None, timeout: float = 900) -> str:
    """Run a command; fail the test with its output when it fails."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    result = subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, (
        f"{' '.join(str(c) for c in cmd)} exited {result.returncode}:\n"
        f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result.stdout


def fresh_venv(path: Path, *, with_pip: bool = False) -> Path:
    """A new virtualenv (no package of this repository in it); returns its bin folder."""
    run([*UV, "venv", "--quiet", *(["--seed"] if with_pip else []), "--python", sys.executable,
         path])  # fmt: skip
    return path / "bin"


def uv_pip(command: str, bin_dir: Path, *args: str | Path) -> str:
    """`uv pip <command>` in the virtualenv of `bin_dir`."""
    return run([*UV, "pip", command, "--quiet", "--python", bin_dir / "python", *args])


def uv_install(bin_dir: Path, *requirements: str | Path) -> None:
    """Install with the pinned constraints (the versions this repository tests)."""
    uv_pip("install", bin_dir, "-c", CONSTRAINTS, *requirements)


def git_url(repo: Path, plugin: str) -> str:
    return f"git+{repo.as_uri()}#subdirectory={plugin}"
