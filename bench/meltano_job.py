"""One `meltano run <job>` of this repository's project in its `sandbox` environment, measured:
wall time, and the peak RSS of Meltano and of each plugin process it starts.

Meltano forks and execs the plugins from its own virtual environments (`.meltano/`, from
`meltano install`), so their resources cannot come from `wait4` as in harness.py. The process
tree is sampled instead (psutil), and each process's own high-water mark is read from
/proc/<pid>/status (VmHWM: the peak resident set of the process since its exec, so a peak
between two samples is not missed; only the growth in its last sampling interval is).
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from harness import REPO, VENV_BIN

MELTANO = VENV_BIN / "meltano"
SAMPLE_SECONDS = 0.1
# "Incremental state has been updated at ...": Meltano logs it each time it stores a STATE
# message the target emitted (meltano/core/plugin/singer/target.py, BookmarkWriter).
_STATE_STORED = "Incremental state has been updated"


@dataclass
class MeltanoRun:
    returncode: int
    wall_seconds: float
    log_path: Path
    # plugin name -> peak RSS (MB) of its process(es); "meltano" is Meltano's own
    peak_rss_mb: dict[str, float] = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def states_stored(self) -> int:
        return self.log().count(_STATE_STORED)

    def check(self) -> MeltanoRun:
        if self.returncode != 0:
            tail = "\n".join(self.log().splitlines()[-25:])
            raise RuntimeError(f"meltano exited with {self.returncode}:\n{tail}")
        return self


def ensure_installed(plugins: Mapping[str, str], env: Mapping[str, str]) -> None:
    """`meltano install` of these plugins ({name: kind}) unless their executables exist
    (set-up, outside any measurement)."""
    missing = [
        name
        for name, kind in plugins.items()
        if not (REPO / ".meltano" / kind / name / "venv" / "bin").is_dir()
    ]
    if missing:
        subprocess.run(
            [str(MELTANO), "--environment=sandbox", "install", *missing],
            cwd=REPO,
            env=dict(env),
            check=True,
            capture_output=True,
            timeout=900,
        )


def run(
    job: str,
    *,
    env: Mapping[str, str],
    log_path: Path,
    plugins: tuple[str, ...],
    timeout: float = 7200,
) -> MeltanoRun:
    """`meltano --environment=sandbox run <job>` from the repository, output to `log_path`;
    `plugins` are the executables whose processes are measured apart."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    peaks: dict[int, tuple[str, float]] = {}
    with log_path.open("wb") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [str(MELTANO), "--environment=sandbox", "run", job],
            cwd=REPO,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        done = threading.Event()
        sampler = threading.Thread(target=_sample, args=(proc.pid, plugins, peaks, done))
        sampler.start()
        try:
            returncode = proc.wait(timeout=timeout)
        finally:
            if proc.poll() is None:
                proc.kill()  # only on timeout or an interrupted bench
                proc.wait()
            done.set()
            sampler.join()
        wall = round(time.perf_counter() - started, 3)
    by_plugin: dict[str, float] = {}
    for name, mb in peaks.values():
        by_plugin[name] = max(by_plugin.get(name, 0.0), mb)
    return MeltanoRun(returncode, wall, log_path, {k: round(v, 1) for k, v in by_plugin.items()})


def _sample(
    root: int, plugins: tuple[str, ...], peaks: dict[int, tuple[str, float]], done: threading.Event
) -> None:
    """Until `done`: every SAMPLE_SECONDS, the high-water mark of Meltano and each process
    under it (the last reading of a process is its peak up to then)."""
    try:
        meltano = psutil.Process(root)
    except psutil.NoSuchProcess:
        return
    names: dict[int, str] = {root: "meltano"}
    while not done.is_set():
        try:
            children = meltano.children(recursive=True)
        except psutil.NoSuchProcess:
            return
        for child in children:
            if child.pid not in names:
                names[child.pid] = _plugin_of(child, plugins)
        for pid, name in list(names.items()):
            mb = _high_water_mb(pid)
            if mb is not None and mb >= peaks.get(pid, (name, 0.0))[1]:
                peaks[pid] = (name, mb)
        done.wait(SAMPLE_SECONDS)


def _plugin_of(process: psutil.Process, plugins: tuple[str, ...]) -> str:
    try:
        cmdline = " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return "other"
    for plugin in plugins:
        if f"/{plugin}" in cmdline:
            return plugin
    return "other"


_VMHWM = re.compile(r"^VmHWM:\s+(\d+) kB", re.MULTILINE)


def _high_water_mb(pid: int) -> float | None:
    try:
        match = _VMHWM.search(Path(f"/proc/{pid}/status").read_text())
    except OSError:
        return None
    return int(match.group(1)) / 1024 if match else None


def state(job_state_id: str, env: Mapping[str, str]) -> dict[str, Any]:
    """`meltano state get <id>`: the state Meltano stored for the job ({} when none)."""
    done = subprocess.run(
        [str(MELTANO), "--environment=sandbox", "state", "get", job_state_id],
        cwd=REPO,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0 or not done.stdout.strip():
        return {}
    found: dict[str, Any] = json.loads(done.stdout)
    return found
