"""The reliability suite's harness library: the two pipelines, the truth checks, the figures.

conftest.py holds the fixtures (`world`: a sandbox of its own; `harness`: this module's
functions for the test modules, which cannot import conftest under --import-mode=importlib)
and the pytest hooks that print the figures.

A pipeline run is the same thing `meltano run` does: the tap's stdout piped into the
target's stdin, the target's last STATE line kept as the next run's `--state` (Meltano stores
every STATE line the target emits, also when the run fails, and hands the last one back).
Every plugin runs at LOGLEVEL=DEBUG; everything it prints and every file it writes is kept
for the secret scan (test_secrets.py).

After a scenario, `check_profiles` / `check_events` compare the end state with the source of
truth through the sandboxes' APIs. The figures (faults injected, runs, records lost,
duplicates) are collected per scenario and printed at the end of the session.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from salesforce_appcues_clients.appcues import AppcuesClient
from salesforce_appcues_clients.appcues_events import DEFAULT_EVENT_NAMES
from salesforce_appcues_clients.salesforce import SalesforceClient
from salesforce_appcues_sandbox.server import Sandbox
from salesforce_appcues_sandbox.testing import SandboxControl, appcues_config, salesforce_config

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]

# Every plugin logs at DEBUG, except singer-sdk's per-record "Processed record: <context>"
# line of the sinks' stream loggers: it prints the whole batch for every record, so it grows
# with the square of the batch (2.4 GB for one batch of 2,000 profiles) and holds only
# record data, no configuration.
_SINK_LOGGERS = [
    f"{target}.{stream}"
    for target in ("target-appcues-profiles", "target-salesforce-events")
    for stream in ("Contact", "Lead", "Account", "appcues_events")
]
_LOG_CONFIG = Path(tempfile.gettempdir()) / f"reliability-log-config-{os.getpid()}.yaml"
_LOG_CONFIG.write_text(
    json.dumps(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "loggers": {name: {"level": "INFO"} for name in _SINK_LOGGERS},
        }
    )
)
DEBUG_ENV = {"LOGLEVEL": "DEBUG", "SINGER_SDK_LOG_CONFIG": str(_LOG_CONFIG)}

# Small linked data sets (same seed on both services, so product ids line up). Contacts and
# Leads are seeded in separate calls, so no lead is converted and every user id names one
# record.
SEED = 5
SF_SEED = {"seed": SEED, "Account": 10, "Contact": 250}
SF_LEAD_SEED = {"seed": SEED, "Lead": 50}
APPCUES_SEED = {
    "seed": SEED,
    "Account": 10,
    "Contact": 250,
    "Lead": 50,
    "unknown_users": 5,  # Appcues users no Salesforce record has
    "events": 700,
}
NPS_SCORE_EVENTS = ("appcues:nps_score", "appcues:nps_score_and_feedback")
NPS_FEEDBACK_EVENTS = ("appcues:nps_feedback", "appcues:nps_score_and_feedback")

# The attributes the profiles target is told to map; the checks compare exactly these.
PROFILE_FIELDS = {
    "Contact": ["FirstName", "LastName", "Email", "Title", "Phone", "Appcues_NPS_Feedback__c"],
    "Lead": ["FirstName", "LastName", "Email", "Title", "Company"],
    "Account": ["Name", "Industry", "NumberOfEmployees", "Description"],
}
USER_ID = "Product_User_Id__c"
GROUP_ID = "Product_Account_Id__c"

# Low retry settings keep fault scenarios short (the defaults wait seconds to minutes).
FAST_SALESFORCE = {
    "retry_base_delay": 0.05,
    "max_retries": 5,
    "retry_max_seconds": 10,
    "request_timeout": 30,
}
FAST_APPCUES = {"retry_base_delay": 0.05, "max_retries": 4, "request_timeout": 30}


# --- figures ---------------------------------------------------------------------------------
@dataclass
class ScenarioFigures:
    name: str
    faults: int = 0
    runs: int = 0
    lost: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    checked: int = 0  # source records / events compared with the destination

    def record(self, result: CheckResult, dead_lettered: int | None = None) -> None:
        """Count a check of the destination (`dead_lettered`: when the result's own count is
        not the one to report), then fail on anything lost or duplicated."""
        self.checked += result.checked
        self.lost += len(result.lost)
        self.duplicates += len(result.duplicates)
        self.dead_lettered += result.dead_lettered if dead_lettered is None else dead_lettered
        assert not result.lost, str(result)
        assert not result.duplicates, str(result)


@dataclass
class Figures:
    scenarios: list[ScenarioFigures] = field(default_factory=list)
    secret_scan: dict[str, int] = field(default_factory=dict)

    def scenario(self, name: str) -> ScenarioFigures:
        figures = ScenarioFigures(name)
        self.scenarios.append(figures)
        return figures

    def totals(self) -> dict[str, int]:
        return {
            "scenarios": len(self.scenarios),
            "faults injected": sum(s.faults for s in self.scenarios),
            "runs": sum(s.runs for s in self.scenarios),
            "records checked": sum(s.checked for s in self.scenarios),
            "records lost": sum(s.lost for s in self.scenarios),
            "duplicates": sum(s.duplicates for s in self.scenarios),
            "dead-lettered": sum(s.dead_lettered for s in self.scenarios),
        }


FIGURES = Figures()
# (what, text) of every plugin output and file of the session: the secret scan reads them.
OUTPUTS: list[tuple[str, str]] = []


# The plugins' executables in this repository's Meltano project (`meltano install`).
PLUGIN_EXECUTABLES = (
    ROOT / ".meltano/extractors/tap-salesforce-appcues/venv/bin/tap-salesforce-appcues",
    ROOT / ".meltano/loaders/target-appcues-profiles/venv/bin/target-appcues-profiles",
    ROOT / ".meltano/loaders/target-salesforce-events/venv/bin/target-salesforce-events",
)


def plugins_need_install() -> bool:
    """Whether `meltano install` must run first: a plugin's venv is missing, or was made for
    older package metadata (an editable install does not pick up a dependency added since,
    so its executable fails to import)."""
    for executable in PLUGIN_EXECUTABLES:
        if not executable.exists():
            return True
        probe = subprocess.run(
            [str(executable), "--version"], capture_output=True, timeout=120, check=False
        )
        if probe.returncode != 0:
            return True
    return False


def meltano_loader_pid(name: str) -> int | None:
    """The loader `meltano run` started for this test: a process running that loader's venv
    whose parent chain leads to this pytest process (never another session's)."""
    needle = str(ROOT / ".meltano" / "loaders" / name / "venv")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if needle in cmdline and descends_from_us(int(entry.name)):
            return int(entry.name)
    return None


def descends_from_us(pid: int) -> bool:
    """Whether `pid`'s parent chain (a few levels) leads to this pytest process."""
    for _ in range(6):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # the parent pid
        if pid == os.getpid():
            return True
        if pid <= 1:
            return False
    return False


def remember(what: str, text: str) -> None:
    OUTPUTS.append((what, text))


def write_figures(terminalreporter: Any) -> None:
    """The figures table at the end of the session (conftest's pytest_terminal_summary)."""
    if not FIGURES.scenarios and not FIGURES.secret_scan:
        return
    write = terminalreporter.write_line
    terminalreporter.section("reliability figures")
    write(f"{'scenario':58} faults runs checked lost dups dead")
    for s in FIGURES.scenarios:
        write(
            f"{s.name[:58]:58} {s.faults:6} {s.runs:4} {s.checked:7} {s.lost:4} "
            f"{s.duplicates:4} {s.dead_lettered:4}"
        )
    totals = FIGURES.totals()
    write(", ".join(f"{k}: {v}" for k, v in totals.items()))
    if FIGURES.secret_scan:
        write("secret scan: " + ", ".join(f"{k}: {v}" for k, v in FIGURES.secret_scan.items()))
    target = os.environ.get("RELIABILITY_FIGURES")
    if target:
        Path(target).write_text(
            json.dumps(
                {
                    "totals": totals,
                    "secret_scan": FIGURES.secret_scan,
                    "scenarios": [vars(s) for s in FIGURES.scenarios],
                },
                indent=1,
            )
        )


# --- the sandbox and its control API ---------------------------------------------------------
@dataclass
class World:
    """The reliability sandbox: connection, both control APIs, verification clients."""

    sandbox: Sandbox
    salesforce: SandboxControl
    appcues: SandboxControl
    issued_tokens: set[str] = field(default_factory=set)
    catalogs: dict[str, Any] = field(default_factory=dict)  # discovered once per session

    @property
    def connection(self) -> dict[str, Any]:
        return self.sandbox.connection

    @property
    def ca(self) -> str:
        return str(self.connection["ca_bundle"])

    def reset(self, *, events: bool, leads: int = SF_LEAD_SEED["Lead"]) -> None:
        """Both services emptied and seeded anew, clock a little past the seed."""
        for control in (self.salesforce, self.appcues):
            control.call("DELETE", "faults")
            control.call("POST", "reset")
        self.salesforce.call("POST", "clock", {"reset": True})
        self.salesforce.call("POST", "seed", SF_SEED)
        self.salesforce.call("POST", "seed", {**SF_LEAD_SEED, "Lead": leads})
        if events:
            self.appcues.call("POST", "seed", APPCUES_SEED)
        # Past the tap's lag, so a first run sees every seeded record and event.
        self.salesforce.call("POST", "clock", {"advance_seconds": 10})

    def clear_faults(self) -> int:
        return self.salesforce.clear_faults() + self.appcues.clear_faults()

    def salesforce_config(self, **overrides: Any) -> dict[str, Any]:
        return {**salesforce_config(self.connection), **FAST_SALESFORCE, **overrides}

    def appcues_config(self, prefix: str = "", **overrides: Any) -> dict[str, Any]:
        fast = {prefix + k: v for k, v in FAST_APPCUES.items()}
        return {**appcues_config(self.connection, prefix), **fast, **overrides}

    def secrets(self) -> dict[str, str]:
        """Every secret the plugins hold, and every access token the sandbox issued so far."""
        sf, ac = self.connection["salesforce"], self.connection["appcues"]
        found = {
            "salesforce client_secret": sf["client_secret"],
            "salesforce refresh_token": sf["refresh_token"],
            "appcues api_secret": ac["api_secret"],
        }
        if sf.get("password"):
            found["salesforce password"] = sf["password"]
        key_file = sf.get("jwt_private_key_file")
        if key_file:
            # The key body (not the PEM armour lines, which are public text).
            body = [line for line in Path(key_file).read_text().splitlines() if "-----" not in line]
            for number, line in enumerate(body):
                if len(line) >= 40:
                    found[f"private key line {number}"] = line
        for number, token in enumerate(sorted(self.issued_tokens)):
            found[f"access token {number}"] = token
        return found


def record_tokens(sandbox: Sandbox, issued: set[str]) -> None:
    """Keep every access token the Salesforce sandbox hands out (the secret scan looks for
    them; the sandbox forgets expired ones). Wraps the token endpoint's handler, unchanged."""
    oauth = sandbox.salesforce.oauth
    original = oauth.token

    def token(form: dict[str, str], basic_auth: Any) -> dict[str, Any]:
        body: dict[str, Any] = original(form, basic_auth)
        if body.get("access_token"):
            issued.add(str(body["access_token"]))
        return body

    oauth.token = token


# --- the pipelines ---------------------------------------------------------------------------
@dataclass
class RunResult:
    tap_rc: int | None
    target_rc: int | None
    tap_log: str
    target_log: str
    target_stdout: str
    killed: bool = False

    @property
    def ok(self) -> bool:
        return self.tap_rc == 0 and self.target_rc == 0

    @property
    def logs(self) -> str:
        return self.tap_log + self.target_log

    def states(self) -> list[dict[str, Any]]:
        found = []
        for line in self.target_stdout.splitlines():
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
        return [s for s in found if isinstance(s, dict) and s]


@dataclass
class Pipeline:
    """tap | target with Meltano's state hand-over, configs in `workdir`."""

    name: str
    world: World
    workdir: Path
    target: str
    tap_config: dict[str, Any]
    target_config: dict[str, Any]
    streams: tuple[str, ...]
    state: dict[str, Any] | None = None
    runs: int = 0
    results: list[RunResult] = field(default_factory=list)

    @property
    def state_dir(self) -> Path:
        return Path(self.target_config["state_dir"])

    def _write(self, name: str, payload: Any) -> Path:
        path = self.workdir / name
        path.write_text(json.dumps(payload))
        return path

    def catalog(self) -> Path:
        """The discovered catalog with this pipeline's streams selected (one discovery per
        session: every pipeline's tap reads the same org)."""
        if "discovered" not in self.world.catalogs:
            config = self._write("tap.json", self.tap_config)
            found = subprocess.run(
                [BIN / "tap-salesforce-appcues", "--config", config, "--discover"],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert found.returncode == 0, found.stderr[-3000:]
            self.world.catalogs["discovered"] = json.loads(found.stdout)
        path = self.workdir / f"catalog-{self.name}.json"
        if not path.exists():
            catalog = json.loads(json.dumps(self.world.catalogs["discovered"]))
            for stream in catalog["streams"]:
                for entry in stream["metadata"]:
                    if entry["breadcrumb"] == []:
                        entry["metadata"]["selected"] = stream["tap_stream_id"] in self.streams
            path.write_text(json.dumps(catalog))
        return path

    def run(
        self,
        *,
        tap_overrides: dict[str, Any] | None = None,
        target_overrides: dict[str, Any] | None = None,
        kill_target_when: Callable[[], bool] | None = None,
        kill_signal: int = signal.SIGKILL,
        kill_tap_when: Callable[[], bool] | None = None,
    ) -> RunResult:
        """One run; the target's last STATE becomes the pipeline's state (as Meltano keeps it).
        With `kill_target_when`, `kill_signal` goes to the target once it holds; with
        `kill_tap_when`, SIGKILL goes to the tap (the target then reads the end of its input)."""
        self.runs += 1
        number = self.runs
        catalog = self.catalog()
        tap_cfg = self._write(f"tap-{number}.json", {**self.tap_config, **(tap_overrides or {})})
        target_cfg = self._write(
            f"target-{number}.json", {**self.target_config, **(target_overrides or {})}
        )
        tap_cmd = [BIN / "tap-salesforce-appcues", "--config", tap_cfg, "--catalog", catalog]
        if self.state is not None:
            tap_cmd += ["--state", self._write(f"state-in-{number}.json", self.state)]
        tap_err = self.workdir / f"tap-{number}.log"
        target_err = self.workdir / f"target-{number}.log"
        target_out = self.workdir / f"target-{number}.out"
        env = {**os.environ, **DEBUG_ENV}
        killed = False
        with (
            tap_err.open("w") as tap_log,
            target_err.open("w") as target_log,
            target_out.open("w") as out,
        ):
            tap = subprocess.Popen(
                tap_cmd, stdout=subprocess.PIPE, stderr=tap_log, env=env, cwd=self.workdir
            )
            target = subprocess.Popen(
                [BIN / self.target, "--config", target_cfg],
                stdin=tap.stdout,
                stdout=out,
                stderr=target_log,
                env=env,
                cwd=self.workdir,
            )
            assert tap.stdout is not None
            tap.stdout.close()  # the target holds the pipe now
            deadline = time.monotonic() + 240
            while target.poll() is None and time.monotonic() < deadline:
                if kill_target_when is not None and not killed and kill_target_when():
                    target.send_signal(kill_signal)
                    killed = True
                if kill_tap_when is not None and not killed and kill_tap_when():
                    tap.kill()
                    killed = True
                time.sleep(0.02)
            if target.poll() is None:
                target.kill()
            target.wait()
            if (killed or target.returncode != 0) and tap.poll() is None:
                tap.terminate()  # Meltano stops the tap when the target ends first
            try:
                tap.wait(timeout=120)
            except subprocess.TimeoutExpired:
                tap.kill()
                tap.wait()
        result = RunResult(
            tap.returncode,
            target.returncode,
            tap_err.read_text(),
            target_err.read_text(),
            target_out.read_text(),
            killed,
        )
        remember(
            f"{self.name} run {number} ({self.workdir.name})", result.logs + result.target_stdout
        )
        remember(f"{self.name} run {number} files", self.files_text())
        states = result.states()
        if states:
            self.state = states[-1]
        self.results.append(result)
        return result

    # files the target keeps
    def dead_letters(self) -> list[dict[str, Any]]:
        letters = []
        for path in self.state_dir.glob("*.jsonl"):
            letters += [json.loads(line) for line in path.read_text().splitlines() if line]
        return letters

    def files_text(self) -> str:
        """Every file the target wrote (ledgers read as bytes), for the secret scan."""
        return "".join(
            path.read_bytes().decode("utf-8", "replace")
            for path in self.state_dir.rglob("*")
            if path.is_file()
        )


def profiles_pipeline(world: World, workdir: Path, **tap_overrides: Any) -> Pipeline:
    workdir.mkdir(parents=True, exist_ok=True)
    tap_config = {
        **world.salesforce_config(),
        **world.appcues_config("appcues_"),
        "user_objects": ["Contact", "Lead"],
        "account_object": "Account",
        "relationship_fields": {"Contact": ["Account.Product_Account_Id__c"]},
        "lag": 1,
        "appcues_lag": 1,
        # No lookback: a bookmark that ran ahead of the data would lose records for good.
        "lookback_window": 0,
        "appcues_lookback_window": 0,
        **tap_overrides,
    }
    target_config = {
        **world.appcues_config(),
        "user_streams": ["Contact", "Lead"],
        "group_streams": ["Account"],
        "user_group_field": "Account.Product_Account_Id__c",
        "attributes": PROFILE_FIELDS,
        "state_dir": str(workdir / "target-state"),
        "import_timeout": 60,
    }
    return Pipeline(
        "profiles",
        world,
        workdir,
        "target-appcues-profiles",
        tap_config,
        target_config,
        ("Contact", "Lead", "Account"),
    )


def events_pipeline(world: World, workdir: Path, **target_overrides: Any) -> Pipeline:
    workdir.mkdir(parents=True, exist_ok=True)
    tap_config = {
        **world.salesforce_config(),
        **world.appcues_config("appcues_"),
        "user_objects": ["Contact", "Lead"],
        "account_object": "Account",
        "lag": 1,
        "appcues_lag": 1,
        "lookback_window": 0,
        "appcues_lookback_window": 0,
    }
    target_config = {
        **world.salesforce_config(),
        "state_dir": str(workdir / "target-state"),
        **target_overrides,
    }
    return Pipeline(
        "events",
        world,
        workdir,
        "target-salesforce-events",
        tap_config,
        target_config,
        ("appcues_events",),
    )


# --- the source of truth ---------------------------------------------------------------------
def verification_clients(world: World) -> tuple[SalesforceClient, AppcuesClient]:
    """Clients for the checks: no quota guard, no client-side rate cap (the sandbox's is
    raised for the duration of a check)."""
    sf = SalesforceClient.from_config(
        world.salesforce_config(quota_percent_total=100, quota_percent_per_run=100)
    )
    ac = AppcuesClient.from_config(world.appcues_config(max_requests_per_second=100000))
    return sf, ac


@dataclass
class CheckResult:
    checked: int = 0
    lost: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    dead_lettered: int = 0

    def __str__(self) -> str:
        return (
            f"checked {self.checked}, lost {len(self.lost)} {self.lost[:5]}, "
            f"duplicates {len(self.duplicates)} {self.duplicates[:5]}"
        )


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def check_profiles(
    world: World, dead_letters: list[dict[str, Any]], other_users: int = 0
) -> CheckResult:
    """Every Salesforce Contact/Lead/Account with a product id has an Appcues profile equal
    to its mapped fields, unless it was dead-lettered; no profile exists without a record
    (beyond `other_users` that Appcues had of its own)."""
    result = CheckResult()
    letters = {str(d.get("profile_id")) for d in dead_letters if d.get("profile_id")}
    result.dead_lettered = len(dead_letters)
    sf, ac = verification_clients(world)
    world.appcues.call("POST", "settings", {"rate_limit_per_second": 100000})
    try:
        expected_users: dict[str, dict[str, Any]] = {}
        for sobject in ("Contact", "Lead"):
            fields = ", ".join([USER_ID, *PROFILE_FIELDS[sobject]])
            for record in sf.query(f"SELECT Id, {fields} FROM {sobject}"):
                if not _blank(record[USER_ID]):
                    expected_users[str(record[USER_ID])] = {
                        f: record[f] for f in PROFILE_FIELDS[sobject]
                    }
        expected_groups: dict[str, dict[str, Any]] = {}
        fields = ", ".join([GROUP_ID, *PROFILE_FIELDS["Account"]])
        for record in sf.query(f"SELECT Id, {fields} FROM Account"):
            if not _blank(record[GROUP_ID]):
                expected_groups[str(record[GROUP_ID])] = {
                    f: record[f] for f in PROFILE_FIELDS["Account"]
                }
        for kind, expected, get in (
            ("user", expected_users, ac.get_user_profile),
            ("group", expected_groups, ac.get_group_profile),
        ):
            for profile_id, values in expected.items():
                result.checked += 1
                if profile_id in letters:
                    continue
                profile = get(profile_id) or {}
                wrong = [f for f, v in values.items() if profile.get(f) != v]
                if not profile or wrong:
                    result.lost.append(f"{kind} {profile_id}: {wrong or 'missing'}")
        stored = world.appcues.call("GET", "stats")["stored"]
        extra_users = int(stored["users"]) - len(expected_users) - other_users
        extra_groups = int(stored.get("groups", 0)) - len(expected_groups)
        for kind, extra in (("user", extra_users), ("group", extra_groups)):
            if extra > 0:
                result.duplicates.append(f"{extra} {kind} profiles no Salesforce record explains")
    finally:
        world.appcues.call("POST", "settings", {"rate_limit_per_second": 60})
        sf.close()
        ac.close()
    return result


def appcues_events(ac: AppcuesClient, days: int = 80) -> list[dict[str, Any]]:
    """Every stored event of the integration's names from `days` ago on (analytics queries
    of at most 85 days, each paged by offset)."""
    rows: list[dict[str, Any]] = []
    now = datetime.now(UTC)  # the seed spans the 30 days before the sandbox clock (~ now)
    start, last = now - timedelta(days=days), now + timedelta(days=5)
    while start < last:
        end = min(last, start + timedelta(days=85))
        window: list[dict[str, Any]] = []
        while True:
            page = ac.analytics_query(
                {
                    "columns": ["id", "name", "user_id", "timestamp", "score", "feedback"],
                    "conditions": [["name", "in", list(DEFAULT_EVENT_NAMES)]],
                    "start_time": start.isoformat(),
                    "end_time": end.isoformat(),
                    "offset": len(window),
                    "limit": 1000,
                }
            )
            window += page.rows
            if len(page.rows) < 1000:
                break
        rows += window
        start = end
    return rows


def check_events(
    world: World,
    dead_letters: list[dict[str, Any]],
    event_id_field: str | None,
    history_days: int = 80,
    nps: bool = True,
) -> CheckResult:
    """Every eligible Appcues event (integration name, user found in Salesforce) is exactly
    one Salesforce Event on that user's record at its time; every Latest NPS field holds the
    newest answer. Events dead-lettered with a reason are accounted for, not lost.

    Events are matched by (WhoId, ActivityDateTime): the event id the tap derives is not an
    analytics column. With an event id field, no id may appear on two Events either."""
    result = CheckResult(dead_lettered=len(dead_letters))
    sf, ac = verification_clients(world)
    try:
        records: dict[str, dict[str, Any]] = {}
        for sobject in ("Lead", "Contact"):  # Contact last: it wins, as the target's priority
            for record in sf.query(
                f"SELECT Id, {USER_ID}, Appcues_NPS_Score__c, Appcues_NPS_Feedback__c "
                f"FROM {sobject} WHERE {USER_ID} != null"
            ):
                records[str(record[USER_ID])] = record
        events = appcues_events(ac, history_days)
        refused: Counter[tuple[str, str]] = Counter()
        for letter in dead_letters:
            source = letter.get("record") or {}
            record = records.get(str(source.get("user_id")))
            if letter.get("part", "event") == "event" and record and source.get("timestamp"):
                refused[(record["Id"], _instant(str(source["timestamp"])))] += 1
        expected: Counter[tuple[str, str]] = Counter()
        for event in events:
            record = records.get(str(event["user_id"]))
            if record is not None:
                result.checked += 1
                expected[(record["Id"], _instant(event["timestamp"]))] += 1
        expected -= refused
        id_column = f", {event_id_field}" if event_id_field else ""
        written: Counter[tuple[str, str]] = Counter()
        ids: Counter[str] = Counter()
        for row in sf.query(f"SELECT Id, WhoId, ActivityDateTime{id_column} FROM Event"):
            written[_who_when(row)] += 1
            if event_id_field and row[event_id_field]:
                ids[str(row[event_id_field])] += 1
        for key in expected.keys() | written.keys():
            if written[key] < expected[key]:
                result.lost.append(f"{expected[key] - written[key]} Event(s) at {key}")
            elif written[key] > expected[key]:
                result.duplicates.append(f"{written[key] - expected[key]} extra Event(s) at {key}")
        result.duplicates += [f"{n} Events carry id {i}" for i, n in ids.items() if n > 1]
        if nps:
            result.lost += _stale_nps(events, records)
    finally:
        sf.close()
        ac.close()
    return result


def _instant(value: str) -> str:
    """The instant to Salesforce's precision: datetimes are stored in whole seconds."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def _who_when(row: dict[str, Any]) -> tuple[str, str]:
    return (str(row["WhoId"]), _instant(str(row["ActivityDateTime"]).replace("+0000", "+00:00")))


def _stale_nps(events: list[dict[str, Any]], records: dict[str, dict[str, Any]]) -> list[str]:
    """Records whose Latest NPS score/feedback is not the newest answer's, per field: the
    score field holds the newest score, the feedback field the newest non-empty feedback
    (an empty or whitespace-only feedback is no answer: it leaves the field as it was)."""
    stale = []
    for column, names, sf_field in (
        ("score", NPS_SCORE_EVENTS, "Appcues_NPS_Score__c"),
        ("feedback", NPS_FEEDBACK_EVENTS, "Appcues_NPS_Feedback__c"),
    ):
        answers: dict[str, list[tuple[str, Any]]] = defaultdict(list)
        for event in events:
            value = event[column]
            if column == "feedback" and (value is None or not str(value).strip()):
                continue
            if event["name"] in names and str(event["user_id"]) in records:
                answers[str(event["user_id"])].append((_instant(event["timestamp"]), value))
        for user, found in answers.items():
            newest = max(moment for moment, _ in found)
            allowed = {_norm(value) for moment, value in found if moment == newest}
            have = _norm(records[user][sf_field])
            if have not in allowed:
                stale.append(f"{sf_field} of {user}: {have!r}, newest {sorted(map(str, allowed))}")
    return stale


def _norm(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if value == "":
        return None
    return value


@dataclass
class Fed:
    """One target run on given Singer lines."""

    returncode: int
    stdout: str
    stderr: str
    dead_letters: list[dict[str, Any]]
    files: str  # every file the target wrote, as text (secret scan)


def feed_target(
    target: str, config: dict[str, Any], lines: list[str | bytes], workdir: Path
) -> Fed:
    """Run `target` on `lines` (one Singer message each; bytes are sent as they are) at debug
    level."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / f"{target}.json"
    config_path.write_text(json.dumps(config))
    payload = b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines)
    ran = subprocess.run(
        [BIN / target, "--config", config_path],
        input=payload,
        capture_output=True,
        timeout=240,
        env={**os.environ, **DEBUG_ENV},
        cwd=workdir,
        check=False,
    )
    done = subprocess.CompletedProcess(
        ran.args,
        ran.returncode,
        ran.stdout.decode("utf-8", "replace"),
        ran.stderr.decode("utf-8", "replace"),
    )
    (workdir / f"{target}.log").write_text(done.stderr)
    state_dir = Path(config["state_dir"])
    letters = []
    for path in state_dir.glob("*.jsonl"):
        letters += [json.loads(line) for line in path.read_text().splitlines() if line]
    files = "".join(
        path.read_bytes().decode("utf-8", "replace")
        for path in state_dir.rglob("*")
        if path.is_file()
    )
    remember(f"{target} fed ({workdir.name})", done.stdout + done.stderr + files)
    return Fed(done.returncode, done.stdout, done.stderr, letters, files)


class Harness:
    appcues_only_users = APPCUES_SEED["unknown_users"]
    appcues_seed = APPCUES_SEED
    """What the test modules use (with --import-mode=importlib they cannot import conftest)."""

    figures = FIGURES
    bin = BIN
    user_id = USER_ID
    profiles_pipeline = staticmethod(profiles_pipeline)
    events_pipeline = staticmethod(events_pipeline)
    check_profiles = staticmethod(check_profiles)
    check_events = staticmethod(check_events)
    verification_clients = staticmethod(verification_clients)
    appcues_events = staticmethod(appcues_events)
    event_names = DEFAULT_EVENT_NAMES
    feed_target = staticmethod(feed_target)
    remember = staticmethod(remember)
    plugins_need_install = staticmethod(plugins_need_install)
    meltano_loader_pid = staticmethod(meltano_loader_pid)
    descends_from_us = staticmethod(descends_from_us)
    debug_env = DEBUG_ENV
    outputs = OUTPUTS


def cleanup() -> None:
    """Remove the session's log config (conftest's pytest_sessionfinish)."""
    _LOG_CONFIG.unlink(missing_ok=True)
