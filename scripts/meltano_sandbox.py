"""This Meltano project run against a sandbox: meltano commands, control API, run summaries.

Shared by scripts/demo.py and tests/e2e. Meltano runs in the `sandbox` environment with the
variables of scripts/sandbox_env.py, so it reads the sandbox's connection and keeps its
state, run records, ledgers and dead letters in one run directory.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from plugin_about import ROOT

from salesforce_appcues_clients.appcues import AppcuesClient
from salesforce_appcues_clients.salesforce import SalesforceClient
from salesforce_appcues_sandbox.testing import (
    SandboxControl,
    appcues_config,
    meltano_environment,
    salesforce_config,
)

MELTANO = Path(sys.executable).parent / "meltano"
# The tap's lag in the `sandbox` environment (meltano.yml): it reads up to now - 5 s.
SANDBOX_LAG_SECONDS = 5
JOBS = ("appcues-to-salesforce", "salesforce-to-appcues")


class MeltanoError(RuntimeError):
    """A meltano command failed; the message names it and where its log is."""

    def __init__(self, message: str, tail: list[str] | None = None) -> None:
        super().__init__(message)
        self.tail = tail or []  # the last meaningful output lines


@dataclass
class MeltanoResult:
    args: list[str]
    returncode: int
    output: str
    log_path: Path | None = None


class SandboxProject:
    """The project in the `sandbox` environment, bound to one running sandbox.

    `sys_dir` moves Meltano's `.meltano` (plugin venvs and their per-run config files):
    `meltano install` empties a plugin's run folder, so two installs or runs of one project
    at once (a demo during `make test`) must not share it.
    """

    def __init__(
        self,
        connection: dict[str, Any],
        run_dir: Path,
        sys_dir: Path | None = None,
        settle_seconds: float = SANDBOX_LAG_SECONDS + 1,
        project_dir: Path = ROOT,
    ) -> None:
        self.connection = connection
        self.project_dir = project_dir  # this repository's project, or a user's (tests)
        # A `meltano run` starts at least this long after the previous one ended, so the
        # tap's "now - lag" window already covers what that run wrote (as on a schedule).
        self.settle_seconds = settle_seconds
        self._last_run_end = 0.0
        self.run_dir = run_dir.resolve()
        self.env = meltano_environment(connection, self.run_dir, sys_dir)
        self.control = {
            name: SandboxControl.of(connection, name, timeout=30)
            for name in ("salesforce", "appcues")
        }

    # --- meltano --------------------------------------------------------------------------
    def command(self, *args: str) -> list[str]:
        return [str(MELTANO), "--environment=sandbox", *args]

    def meltano(
        self,
        *args: str,
        log_path: Path | None = None,
        on_line: Callable[[str], None] | None = None,
        check: bool = True,
        timeout: float = 600,
        extra_env: dict[str, str] | None = None,
    ) -> MeltanoResult:
        """Run one meltano command from the project root, its output to `log_path` too."""
        cmd = self.command(*args)
        is_run = bool({"run", "schedule"} & set(args[:1]))
        if is_run:
            time.sleep(max(0.0, self._last_run_end + self.settle_seconds - time.monotonic()))
        lines: list[str] = []
        with (
            _log_file(log_path) as log,
            subprocess.Popen(
                cmd,
                cwd=self.project_dir,
                env={**self.env, **(extra_env or {})},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                bufsize=1,
            ) as proc,
        ):
            try:
                assert proc.stdout is not None
                for line in proc.stdout:
                    lines.append(line)
                    if log is not None:
                        log.write(line)
                    if on_line is not None:
                        on_line(line.rstrip("\n"))
                returncode = proc.wait(timeout=timeout)
            finally:
                if proc.poll() is None:  # interrupted: let Meltano stop its plugins
                    proc.terminate()
                    try:
                        proc.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
        if is_run:
            self._last_run_end = time.monotonic()
        result = MeltanoResult(cmd[1:], returncode, "".join(lines), log_path)
        if check and returncode != 0:
            tail = [line.rstrip("\n") for line in lines if "METRIC" not in line][-25:]
            where = f"; log: {log_path}" if log_path else ""
            raise MeltanoError(f"`meltano {' '.join(args)}` exited with {returncode}{where}", tail)
        return result

    def meltano_json(self, *args: str, timeout: float = 120) -> Any:
        """Run a meltano command that prints JSON on stdout (its logs go to stderr)."""
        proc = subprocess.run(
            self.command(*args),
            cwd=self.project_dir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            raise MeltanoError(
                f"`meltano {' '.join(args)}` exited with {proc.returncode}: {proc.stderr[-2000:]}"
            )
        return json.loads(proc.stdout)

    def state(self, state_id: str) -> dict[str, Any]:
        """`meltano state get <id>` (state IDs are `sandbox:<tap>-to-<target>`)."""
        state: dict[str, Any] = self.meltano_json("state", "get", state_id)
        return state

    # --- files the targets write ---------------------------------------------------------
    def dead_letters(self, plugin: str) -> list[dict[str, Any]]:
        path = self.run_dir / plugin / "dead-letters.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def salesforce_client(connection: dict[str, Any]) -> SalesforceClient:
    """A client of the sandbox's Salesforce API, as the integration user."""
    return SalesforceClient.from_config(salesforce_config(connection))


def appcues_client(connection: dict[str, Any]) -> AppcuesClient:
    """A client of the sandbox's Appcues API."""
    return AppcuesClient.from_config(appcues_config(connection))


# --- the plugins' summary lines ------------------------------------------------------------
@dataclass
class RunSummary:
    """What one `meltano run <job>` reported, from the plugins' closing log lines."""

    tap_calls: dict[str, int] = field(default_factory=dict)
    profiles: dict[str, Any] = field(default_factory=dict)
    events_written: dict[str, int] = field(default_factory=dict)
    events_already_present: int | None = None
    nps_records_updated: int | None = None
    unmatched: int | None = None
    target_calls: int | None = None
    summary_lines: list[str] = field(default_factory=list)


_TAP_CALLS = re.compile(r"API calls this run: (.*)$")
_SUMMARY = re.compile(r"(target-[a-z-]+)\s+Run summary: (.*)$")
_WRITTEN = re.compile(r"Events written: (.*?)\s*\(already present: (\d+)\)")
_NPS = re.compile(r"NPS fields updated on (\d+) records")
_UNMATCHED = re.compile(r"skipped as unmatched: (\d+)")
_CALLS_MADE = re.compile(r"API calls made: (\d+)")


def parse_run(output: str) -> RunSummary:
    summary = RunSummary()
    for line in output.splitlines():
        if match := _TAP_CALLS.search(line):
            for part in match.group(1).split():
                name, _, count = part.partition("=")
                if count.isdigit():
                    summary.tap_calls[name] = summary.tap_calls.get(name, 0) + int(count)
        match = _SUMMARY.search(line)
        if match is None:
            continue
        plugin, text = match.groups()
        summary.summary_lines.append(f"{plugin}: {text}")
        if plugin == "target-appcues-profiles" and text.startswith("{"):
            summary.profiles = json.loads(text)
        elif plugin == "target-salesforce-events":
            if written := _WRITTEN.search(text):
                for item in written.group(1).split(","):
                    count, _, name = item.strip().partition(" ")
                    if count.isdigit():
                        summary.events_written[name] = int(count)
                summary.events_already_present = int(written.group(2))
            if nps := _NPS.search(text):
                summary.nps_records_updated = int(nps.group(1))
            if unmatched := _UNMATCHED.search(text):
                summary.unmatched = int(unmatched.group(1))
            if calls := _CALLS_MADE.search(text):
                summary.target_calls = int(calls.group(1))
    return summary


@contextmanager
def _log_file(path: Path | None) -> Iterator[IO[str] | None]:
    if path is None:
        yield None
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        yield handle
