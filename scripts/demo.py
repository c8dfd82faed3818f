"""`make demo`: the two-way sync, run by Meltano against the local sandbox, with a summary.

1. Starts the sandbox (Salesforce and Appcues emulators seeded with linked demo data).
2. `meltano install`, then both jobs: appcues-to-salesforce, salesforce-to-appcues.
3. Changes some Salesforce records and emits new Appcues events through the APIs.
4. Runs both jobs again and checks that exactly those changes moved, nothing duplicated.

The sandbox stops on exit, Ctrl-C or failure. Everything a run writes (Meltano's state,
ledgers, dead letters, logs) goes to .sandbox/demo/, which each demo starts afresh.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from meltano_sandbox import (
    SANDBOX_LAG_SECONDS,
    MeltanoError,
    RunSummary,
    SandboxProject,
    appcues_client,
    parse_run,
    salesforce_client,
)
from plugin_about import ROOT

from salesforce_appcues_sandbox.server import SandboxProcess

RUN_DIR = ROOT / ".sandbox" / "demo"
# The demo's own `.meltano` (plugin venvs), kept between demos: a `meltano install`
# elsewhere in the project (e.g. `make test`) then cannot disturb a running demo.
MELTANO_DIR = ROOT / ".sandbox" / "meltano"
# The tap reads up to "now - lag": 1 and 5 minutes by default against real clouds (commit
# and analytics delays), SANDBOX_LAG_SECONDS in the `sandbox` environment, whose emulators
# have neither. The demo lets that much time pass after changing data.
CHANGED_CONTACTS = 20
CHANGED_ACCOUNTS = 2
UNKNOWN_USER = "demo-user-not-in-salesforce"

# Log lines worth showing while a job runs (the full log goes to .sandbox/demo/logs/).
_PROGRESS_MARKERS = (
    "Beginning sync of",
    "changed records in",
    "backfilling",
    "reading [",
    "Exactly-once strategy",
    "API calls this run",
    "Run summary",
    "Incremental state has been updated",
    "ERROR",
    "error",
)


class Console:
    """Progress lines stamped with the time since the demo started."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def step(self, message: str) -> None:
        elapsed = int(time.monotonic() - self.start)
        print(f"[{elapsed // 60:02d}:{elapsed % 60:02d}] {message}", flush=True)

    def detail(self, message: str) -> None:
        print(f"        {message}", flush=True)

    def heading(self, title: str) -> None:
        print(f"\n=== {title} " + "=" * max(0, 74 - len(title)), flush=True)


@dataclass
class JobRun:
    job: str
    seconds: float
    summary: RunSummary
    calls: dict[str, int]  # API calls counted by each sandbox during the job
    dead_letters: list[dict[str, Any]]  # written by target-salesforce-events during the job


@dataclass
class Round:
    runs: dict[str, JobRun] = field(default_factory=dict)


class Demo:
    def __init__(self, project: SandboxProject, console: Console) -> None:
        self.project = project
        self.console = console
        self.salesforce = salesforce_client(project.connection)
        self.appcues = appcues_client(project.connection)

    # --- steps ----------------------------------------------------------------------------
    def describe_seed(self) -> None:
        sf = self.project.control["salesforce"].stats()["records"]
        ac = self.project.control["appcues"].stats()["stored"]
        self.console.detail(
            "Salesforce: "
            + ", ".join(f"{n:,} {obj}" for obj, n in sf.items() if obj != "User" and n)
        )
        self.console.detail(
            f"Appcues: {ac.get('users', 0):,} users, {ac.get('groups', 0):,} groups, "
            f"{ac.get('events', 0):,} events (NPS, flows, checklists, goals)"
        )

    def install(self) -> None:
        self.console.step("Installing the plugins: meltano install (a virtualenv per plugin)")
        started = time.monotonic()
        self.project.meltano("install", log_path=RUN_DIR / "logs" / "meltano-install.log")
        self.console.step(f"Plugins installed in {time.monotonic() - started:.0f} s")

    def run_round(self, number: int) -> Round:
        result = Round()
        for job in ("appcues-to-salesforce", "salesforce-to-appcues"):
            self.console.step(f"meltano run {job}")
            result.runs[job] = self.run_job(job, number)
        return result

    def run_job(self, job: str, number: int) -> JobRun:
        letters_before = len(self.project.dead_letters("target-salesforce-events"))
        before = {name: c.stats()["calls"] for name, c in self.project.control.items()}
        started = time.monotonic()

        def show(line: str) -> None:
            if any(marker in line for marker in _PROGRESS_MARKERS):
                self.console.detail(_short(line))

        result = self.project.meltano(
            "run", job, log_path=RUN_DIR / "logs" / f"round{number}-{job}.log", on_line=show
        )
        seconds = time.monotonic() - started
        after = {name: c.stats()["calls"] for name, c in self.project.control.items()}
        calls = {name: sum(after[name].values()) - sum(before[name].values()) for name in after}
        self.console.step(f"{job} finished in {seconds:.0f} s")
        letters = self.project.dead_letters("target-salesforce-events")[letters_before:]
        return JobRun(job, seconds, parse_run(result.output), calls, letters)

    def make_changes(self) -> dict[str, Any]:
        """Edit Salesforce records and emit Appcues events, through the real APIs."""
        contacts = list(
            self.salesforce.query(
                "SELECT Id, Product_User_Id__c, Title FROM Contact "
                f"WHERE Product_User_Id__c != null ORDER BY Id LIMIT {CHANGED_CONTACTS}"
            )
        )
        accounts = list(
            self.salesforce.query(
                "SELECT Id, Product_Account_Id__c, NumberOfEmployees FROM Account "
                f"WHERE Product_Account_Id__c != null ORDER BY Id LIMIT {CHANGED_ACCOUNTS}"
            )
        )
        stamp = time.strftime("%H:%M:%S")
        results = self.salesforce.update(
            "Contact",
            [{"Id": c["Id"], "Title": f"Demo title {i} ({stamp})"} for i, c in enumerate(contacts)],
        )
        results += self.salesforce.update(
            "Account",
            [
                {"Id": a["Id"], "NumberOfEmployees": int(a.get("NumberOfEmployees") or 0) + 7}
                for a in accounts
            ],
        )
        failed = [r for r in results if not r.success]
        if failed:
            raise RuntimeError(f"Salesforce refused the demo's edits: {failed[0].errors}")
        self.console.detail(
            f"Salesforce: updated Title on {len(contacts)} Contacts and NumberOfEmployees "
            f"on {len(accounts)} Accounts (sObject Collections, 2 calls)"
        )

        now = self.project.control["appcues"].now()  # the sandbox clock (shared by both)
        users = [str(c["Product_User_Id__c"]) for c in contacts]
        flow = {"name": "appcues:flow_completed", "attributes": {"flowName": "Demo tour"}}
        events: list[tuple[str, dict[str, Any]]] = [
            *(
                (user, {"name": "appcues:nps_score", "attributes": {"score": score}})
                for user, score in zip(users[:3], (10, 9, 4), strict=True)
            ),
            *((user, flow) for user in users[3:7]),
            (UNKNOWN_USER, flow),
        ]
        for user, event in events:
            self.appcues.track_event(
                user,
                {
                    **event,
                    "timestamp": now,
                    "context": {"url": "https://app.example.com/demo", "title": "Demo"},
                },
            )
        matched = len(events) - 1
        self.console.detail(
            f"Appcues: tracked {len(events)} events (3 NPS scores, 5 flows completed), "
            f"{matched} for users of those Contacts and 1 for a user Salesforce does not know"
        )
        self.console.detail(f"Letting the sandbox lag of {SANDBOX_LAG_SECONDS} s pass")
        time.sleep(SANDBOX_LAG_SECONDS + 1)
        return {
            "contacts": len(contacts),
            "accounts": len(accounts),
            "events_matched": matched,
            "events_unmatched": 1,
            "nps_users": 3,
        }

    def close(self) -> None:
        self.salesforce.close()
        self.appcues.close()


# --- the report ---------------------------------------------------------------------------
def report_round(console: Console, title: str, run: Round) -> None:
    console.heading(title)
    events = run.runs["appcues-to-salesforce"]
    s = events.summary
    print("Appcues -> Salesforce (job appcues-to-salesforce)")
    _row("Salesforce Events created", f"{sum(s.events_written.values()):,}")
    for name, count in sorted(s.events_written.items(), key=lambda kv: -kv[1]):
        _row(f"  {name}", f"{count:,}")
    if s.events_already_present:
        _row("Read again, already in Salesforce", f"{s.events_already_present:,} (not duplicated)")
    if s.nps_records_updated is not None:
        _row("Latest NPS fields set on", f"{s.nps_records_updated:,} Contacts/Leads")
    if s.unmatched is not None:
        _row("Events of unmatched users skipped", f"{s.unmatched:,}")
        for reason, (count, example) in _reasons(events.dead_letters).items():
            _row(f"  {reason}", f"{count:,}, e.g. {example}")
    _print_calls(events)

    profiles = run.runs["salesforce-to-appcues"]
    p = profiles.summary.profiles
    print("Salesforce -> Appcues (job salesforce-to-appcues)")
    if p:
        for kind in ("users", "groups"):
            _row(
                f"Appcues {kind[:-1]} profiles",
                f"{p.get(kind + '_created', 0):,} created, {p.get(kind + '_updated', 0):,} "
                f"updated, {p.get(kind + '_unchanged_skipped', 0):,} unchanged (not sent)",
            )
        if p.get("memberships_added"):
            _row("Users added to their group", f"{p['memberships_added']:,}")
        for reason, count in (p.get("dead_lettered_by_reason") or {}).items():
            _row(f"Records not sent: {reason}", f"{count:,} (in the dead-letter file)")
    _print_calls(profiles)


def _row(label: str, value: str) -> None:
    print(f"  {label:<36} {value}")


def _print_calls(job: JobRun) -> None:
    _row(
        "API calls (counted by the sandbox)",
        f"Salesforce {job.calls['salesforce']:,}, Appcues {job.calls['appcues']:,} "
        f"(run took {job.seconds:.0f} s)",
    )


def _reasons(letters: list[dict[str, Any]]) -> dict[str, tuple[int, str]]:
    """Count per reason, with the most recent message as the example."""
    reasons: dict[str, tuple[int, str]] = {}
    for letter in letters:
        reason = str(letter.get("reason", "unknown"))
        count = reasons.get(reason, (0, ""))[0]
        reasons[reason] = (count + 1, str(letter.get("message", "")))
    return reasons


def verify(console: Console, changes: dict[str, Any], second: Round, counts: list[int]) -> bool:
    """Round 2 moved exactly the demo's changes; Salesforce holds no duplicate Event."""
    console.heading("Round 2 moved exactly the changes")
    events = second.runs["appcues-to-salesforce"].summary
    profiles = second.runs["salesforce-to-appcues"].summary.profiles
    written = sum(events.events_written.values())
    before, after = counts
    checks = [
        (
            f"Salesforce Events created: {written} (the {changes['events_matched']} new events "
            "of known users)",
            written == changes["events_matched"],
        ),
        (
            f"Events in Salesforce: {before:,} -> {after:,} (+{after - before}), none duplicated "
            f"though {events.events_already_present or 0} events were read again",
            after - before == changes["events_matched"],
        ),
        (
            f"The event of {UNKNOWN_USER} skipped as unmatched and dead-lettered "
            f"({events.unmatched} unmatched in all, the others re-read)",
            any(
                letter.get("user_id") == UNKNOWN_USER and letter.get("reason") == "unmatched_user"
                for letter in second.runs["appcues-to-salesforce"].dead_letters
            ),
        ),
        (
            f"Latest NPS set on {events.nps_records_updated} Contacts (3 NPS answers)",
            events.nps_records_updated == changes["nps_users"],
        ),
        (
            f"Appcues profiles updated: {profiles.get('users_updated')} (the "
            f"{changes['contacts']} Contacts edited), created: {profiles.get('users_created')}, "
            f"{profiles.get('users_unchanged_skipped', 0):,} re-read and skipped as unchanged",
            profiles.get("users_updated") == changes["contacts"]
            and profiles.get("users_created") == 0,
        ),
        (
            f"Appcues groups updated: {profiles.get('groups_updated')} (the "
            f"{changes['accounts']} Accounts edited), created: {profiles.get('groups_created')}",
            profiles.get("groups_updated") == changes["accounts"]
            and profiles.get("groups_created") == 0,
        ),
    ]
    ok = True
    for text, passed in checks:
        print(f"  {'OK  ' if passed else 'FAIL'} {text}")
        ok = ok and passed
    return ok


def _short(line: str, width: int = 130) -> str:
    # Drop Meltano's timestamp and level columns; keep plugin and message.
    parts = line.split("]", 1)
    text = parts[1].strip() if len(parts) == 2 and line[:4].isdigit() else line.strip()
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _event_count(project: SandboxProject) -> int:
    return int(project.control["salesforce"].stats()["records"].get("Event", 0))


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    console = Console()
    print("Salesforce <-> Appcues: the two-way sync on the local sandbox (make demo)")
    shutil.rmtree(RUN_DIR, ignore_errors=True)
    RUN_DIR.mkdir(parents=True)
    console.step("Starting the sandbox: Salesforce and Appcues emulators, seeded demo data")
    try:
        with SandboxProcess("--seed", "demo") as sandbox:
            project = SandboxProject(sandbox.connection, RUN_DIR / "run", MELTANO_DIR)
            demo = Demo(project, console)
            try:
                console.step("Sandbox ready")
                demo.describe_seed()
                demo.install()
                console.heading("Round 1: the first sync")
                first = demo.run_round(1)
                report_round(console, "Round 1 summary", first)
                events_before = _event_count(project)
                console.heading("Changing data through the Salesforce and Appcues APIs")
                changes = demo.make_changes()
                console.heading("Round 2: the next scheduled runs")
                second = demo.run_round(2)
                report_round(console, "Round 2 summary", second)
                ok = verify(console, changes, second, [events_before, _event_count(project)])
            finally:
                demo.close()
            console.step("Stopping the sandbox")
    except KeyboardInterrupt:
        print("\nInterrupted: sandbox stopped.", file=sys.stderr)
        return 130
    except MeltanoError as exc:
        print(f"\nFAILED: {exc}", file=sys.stderr)
        for line in exc.tail:
            print(f"  {_short(line, 200)}", file=sys.stderr)
        return 1
    print(
        f"\nLogs, Meltano state, ledgers and dead-letter files: {RUN_DIR.relative_to(ROOT)}/"
        "\nNext: README.md (running against a real org), docs/operations.md (scheduling)."
    )
    console.step("Demo finished" + ("" if ok else " WITH FAILED CHECKS"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
