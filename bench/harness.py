"""What every benchmark script shares: the sandbox under test, plugin child processes measured
one by one (wall time, CPU, peak RSS from wait4), sandbox call counts and CPU, plugin configs.

The plugins run as their console scripts in .venv/bin, exactly as Meltano would start them;
the sandbox runs in its own process (SandboxProcess), so its CPU is counted apart.
"""

from __future__ import annotations

import json
import math
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import requests

from salesforce_appcues_sandbox.testing import (
    SandboxControl,
    appcues_config,
    ca_environment,
    salesforce_config,
    salesforce_login,
)

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = REPO / ".venv" / "bin"
OWN_RUSAGE = Path(__file__).resolve().with_name("own_rusage.py")
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PAGE_KB = resource.getpagesize() // 1024


# --- the sandbox ------------------------------------------------------------------------------
class Sandbox:
    """The running sandbox (a child process) as the benchmarks use it."""

    def __init__(self, connection: dict[str, Any], pid: int | None) -> None:
        self.connection = connection
        self.pid = pid
        self.ca_bundle = str(connection["ca_bundle"])
        # Control calls wait long: seeding 100,000s of records takes minutes.
        self.sf = SandboxControl.of(connection, "salesforce", timeout=1800)
        self.ac = SandboxControl.of(connection, "appcues", timeout=1800)

    # data
    def reset(self) -> None:
        self.sf.reset()
        self.ac.reset()
        self.sf.reset_clock()  # one clock for both services

    def seed_salesforce(self, **counts: int) -> dict[str, Any]:
        self.sf.reset()
        result: dict[str, Any] = self.sf.seed(counts)
        return result

    def advance_clock(self, seconds: float) -> None:
        self.sf.advance_clock(seconds)

    # measurement
    def cpu_seconds(self) -> float | None:
        """User + system CPU of the sandbox process so far (all its threads)."""
        if self.pid is None:
            return None
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / _CLK_TCK

    def snapshot(self) -> dict[str, Any]:
        sf = self.sf.stats()
        ac = self.ac.stats()
        return {
            "salesforce_by_path": _flat_calls(sf.get("calls", {})),
            "appcues_calls": int(ac["total_calls"]),
            "appcues_by_path": _flat_calls(ac.get("calls", {})),
            "appcues_429": int(ac.get("rate_limited", 0)),
            "cpu": self.cpu_seconds(),
        }

    @contextmanager
    def measured(self) -> Iterator[dict[str, Any]]:
        """Fills the yielded dict with the API calls, 429s and sandbox CPU of the block."""
        out: dict[str, Any] = {}
        before = self.snapshot()
        yield out
        after = self.snapshot()
        by_path = _diff(before["salesforce_by_path"], after["salesforce_by_path"])
        # OAuth calls do not count against Salesforce's daily API allocation
        out["salesforce_calls"] = sum(n for p, n in by_path.items() if "/oauth2/" not in p)
        out["salesforce_logins"] = sum(n for p, n in by_path.items() if "/oauth2/" in p)
        out["salesforce_calls_by_path"] = by_path
        out["appcues_calls"] = after["appcues_calls"] - before["appcues_calls"]
        out["appcues_calls_by_path"] = _diff(before["appcues_by_path"], after["appcues_by_path"])
        out["appcues_429"] = after["appcues_429"] - before["appcues_429"]
        if before["cpu"] is not None and after["cpu"] is not None:
            out["sandbox_cpu_seconds"] = round(after["cpu"] - before["cpu"], 2)

    # a direct REST session for setting up changes (counted by the sandbox, so made outside
    # any `measured` block)
    def salesforce_session(self) -> tuple[requests.Session, str]:
        session = requests.Session()
        session.trust_env = False
        session.verify = self.ca_bundle
        body = salesforce_login(self.connection, session)
        session.headers["Authorization"] = f"Bearer {body['access_token']}"
        return session, body["instance_url"] + "/services/data/v61.0"


_LOCATOR = re.compile(r"\{id\}-\d+")


def _flat_calls(calls: Any) -> dict[str, int]:
    """Stats `calls` as {pattern: count}, whether nested by method or flat."""
    out: dict[str, int] = {}
    if isinstance(calls, dict):
        for key, value in calls.items():
            if isinstance(value, dict):
                for sub, count in _flat_calls(value).items():
                    out[f"{key} {sub}"] = count
            elif isinstance(value, int):
                name = _LOCATOR.sub("{locator}", str(key))  # one pattern for every page
                out[name] = out.get(name, 0) + value
    return out


def _diff(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    out = {k: v - before.get(k, 0) for k, v in after.items()}
    return {k: v for k, v in sorted(out.items()) if v}


# --- plugin configs ---------------------------------------------------------------------------
def salesforce_settings(sandbox: Sandbox) -> dict[str, Any]:
    return salesforce_config(sandbox.connection)


def appcues_settings(sandbox: Sandbox, prefix: str = "") -> dict[str, Any]:
    return appcues_config(sandbox.connection, prefix)


def write_json(path: Path, value: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value))
    path.chmod(0o600)  # configs hold the sandbox's credentials
    return path.resolve()  # children run in their own working folders


def child_env(sandbox: Sandbox) -> dict[str, str]:
    return ca_environment(sandbox.connection)


# --- child processes --------------------------------------------------------------------------
@dataclass
class ProcessRun:
    """One plugin process: its own resources, from wait4 (by bench/own_rusage.py)."""

    name: str
    returncode: int
    wall_seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def check(self) -> ProcessRun:
        if self.returncode != 0:
            tail = "\n".join(self.log().splitlines()[-25:])
            raise RuntimeError(f"{self.name} exited with {self.returncode}:\n{tail}")
        return self


@dataclass
class PipelineRun:
    processes: list[ProcessRun]
    wall_seconds: float
    records: int = 0  # RECORD messages on the last process's stdout
    last_state: dict[str, Any] | None = None
    records_by_stream: dict[str, int] = field(default_factory=dict)
    states: int = 0  # STATE messages (a target's bare state values) on that stdout

    @property
    def last(self) -> ProcessRun:
        return self.processes[-1]


_STREAM = re.compile(rb'"stream":\s*"([^"]+)"')


def run_pipeline(
    commands: Sequence[tuple[str, Sequence[str]]],
    *,
    env: dict[str, str],
    workdir: Path,
    stdin_path: Path | None = None,
    timeout: float = 3600,
) -> PipelineRun:
    """`cmd1 | cmd2 | ...`, each child measured apart; stdout of the last is scanned for
    RECORD and STATE messages (counted, never kept) by this process."""
    workdir.mkdir(parents=True, exist_ok=True)
    procs: list[tuple[str, subprocess.Popen[bytes], Path, float]] = []
    stdin: Any = stdin_path.open("rb") if stdin_path else subprocess.DEVNULL
    started = time.perf_counter()
    try:
        for i, (name, argv) in enumerate(commands):
            log_path = workdir / f"{name}.log"
            with log_path.open("wb") as log:
                proc = subprocess.Popen(
                    # -S: the launcher stays small, it is the floor of the plugin's peak RSS
                    [sys.executable, "-S", str(OWN_RUSAGE), str(_usage_path(log_path)), *argv],
                    stdin=stdin,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    env=env,
                    cwd=workdir,
                    start_new_session=True,  # killed as a group: the launcher and the plugin
                )
            if i > 0 and procs:
                procs[-1][1].stdout.close()  # type: ignore[union-attr]  # the next one reads it
            procs.append((name, proc, log_path, time.perf_counter()))
            stdin = proc.stdout

        def kill_all() -> None:
            for _, p, _, _ in procs:
                _kill_group(p)

        killer = threading.Timer(timeout, kill_all)
        killer.start()
        run = PipelineRun(processes=[], wall_seconds=0.0)
        last_out: IO[bytes] = procs[-1][1].stdout  # type: ignore[assignment]
        _scan(last_out, run)
        last_out.close()
        for name, proc, log_path, t0 in procs:
            _, status, own = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            report = _usage_path(log_path)
            usage = (  # no report: the launcher was killed (timeout), the run fails anyway
                json.loads(report.read_text())
                if report.exists()
                else {"maxrss_kib": own.ru_maxrss, "cpu_seconds": own.ru_utime + own.ru_stime}
            )
            run.processes.append(
                ProcessRun(
                    name=name,
                    returncode=proc.returncode,
                    wall_seconds=round(time.perf_counter() - t0, 3),
                    cpu_seconds=round(usage["cpu_seconds"], 2),
                    peak_rss_mb=round(usage["maxrss_kib"] / 1024, 1),  # KiB on Linux
                    log_path=log_path,
                )
            )
        killer.cancel()
        run.wall_seconds = round(time.perf_counter() - started, 3)
        return run
    finally:
        if stdin_path and hasattr(stdin, "close"):
            stdin.close()
        for _, proc, _, _ in procs:
            if proc.returncode is None:
                _kill_group(proc)
                proc.wait()


def _usage_path(log_path: Path) -> Path:
    return log_path.with_suffix(".rusage.json")


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """The launcher and the plugin it forked (a session of their own)."""
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _scan(stream: IO[bytes], run: PipelineRun) -> None:
    state_line = b""
    by_stream: dict[bytes, int] = {}
    for line in stream:
        head = line[:60]
        if b'"RECORD"' in head:
            match = _STREAM.search(line, 0, 200)
            key = match.group(1) if match else b"?"
            by_stream[key] = by_stream.get(key, 0) + 1
        elif b'"STATE"' in head or b'"type"' not in head:
            state_line = line  # a tap's STATE message, or a target's bare state value
            run.states += bool(line.strip())
    run.records_by_stream = {k.decode(): v for k, v in by_stream.items()}
    run.records = sum(by_stream.values())
    if state_line.strip():
        message = json.loads(state_line)
        run.last_state = message["value"] if message.get("type") == "STATE" else message


def plugin(name: str) -> str:
    return str(VENV_BIN / name)


# --- plugin log lines -------------------------------------------------------------------------
_TAP_CALLS = re.compile(r"API calls this run: salesforce=(\d+) appcues=(\d+)")
_PROFILES_SUMMARY = re.compile(r"Run summary: (\{.*\})\s*$", re.MULTILINE)
_EVENTS_CALLS = re.compile(r"API calls made: (\d+)")


def tap_calls(log: str) -> dict[str, int] | None:
    found = _TAP_CALLS.findall(log)
    if not found:
        return None
    sf, ac = found[-1]
    return {"salesforce": int(sf), "appcues": int(ac)}


def profiles_summary(log: str) -> dict[str, Any] | None:
    found = _PROFILES_SUMMARY.findall(log)
    return json.loads(found[-1]) if found else None


def events_calls(log: str) -> int | None:
    found = _EVENTS_CALLS.findall(log)
    return int(found[-1]) if found else None


def summary_line(log: str, marker: str = "Run summary") -> str | None:
    lines = [line for line in log.splitlines() if marker in line]
    return lines[-1].split("|")[-1].strip() if lines else None


# --- singer messages --------------------------------------------------------------------------
def write_singer(
    path: Path, stream: str, schema: dict[str, Any], key: str, records: Iterable[dict[str, Any]]
) -> int:
    """A Singer input file: SCHEMA then RECORD lines; returns the record count."""
    n = 0
    with path.open("w") as out:
        out.write(
            json.dumps(
                {"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": [key]}
            )
            + "\n"
        )
        for record in records:
            out.write(json.dumps({"type": "RECORD", "stream": stream, "record": record}) + "\n")
            n += 1
    return n


def per_second(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else math.inf


def per_thousand(calls: int, count: int) -> float:
    return round(calls * 1000 / count, 2) if count else math.nan
