"""orchestration/definitions.py on Dagster, with Meltano's state in a real PostgreSQL shared by
two workers (separate project copies, as two machines would be).

The module's runs build on each other as a schedule's would: worker A syncs first, worker B
resumes from A's bookmarks, A resumes from B's; an overlapping start of one job on the other
worker is refused; the end state has every profile and every Event exactly once.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from meltano_sandbox import SANDBOX_LAG_SECONDS, appcues_client, salesforce_client

from salesforce_appcues_clients.appcues_events import DEFAULT_EVENT_NAMES
from salesforce_appcues_sandbox.testing import SandboxControl

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

PROFILES_JOB, EVENTS_JOB = "salesforce-to-appcues", "appcues-to-salesforce"
STATE_IDS = {
    PROFILES_JOB: "sandbox:tap-salesforce-appcues--profiles-to-target-appcues-profiles",
    EVENTS_JOB: "sandbox:tap-salesforce-appcues--events-to-target-salesforce-events",
}
USER_ID, GROUP_ID = "Product_User_Id__c", "Product_Account_Id__c"
EVENT_ID_FIELD = "Appcues_Event_Id__c"
DEFINITIONS = Path(__file__).resolve().parents[2] / "orchestration" / "definitions.py"


def bookmarks(worker, job: str) -> dict[str, Any]:
    state = worker.state(STATE_IDS[job])
    return state.get("singer_state", {}).get("bookmarks", {}) if state else {}


def change_data(sandbox, contacts: int, events: int, title: str) -> None:
    """Edit `contacts` Contacts and track `events` Appcues events for their users."""
    connection = sandbox.connection
    sf, ac = salesforce_client(connection), appcues_client(connection)
    with SandboxControl.of(connection, "appcues", timeout=30) as control:
        now = control.now()  # the sandbox's clock, which the tap's window follows
    try:
        found = list(
            sf.query(
                f"SELECT Id, {USER_ID} FROM Contact WHERE {USER_ID} != null "
                f"ORDER BY Id LIMIT {max(contacts, events)}"
            )
        )
        results = sf.update("Contact", [{"Id": c["Id"], "Title": title} for c in found[:contacts]])
        assert all(r.success for r in results)
        for contact in found[:events]:
            ac.track_event(
                str(contact[USER_ID]),
                {
                    "name": "appcues:goal_reached",
                    "timestamp": now,
                    "attributes": {"goalName": title},
                },
            )
    finally:
        sf.close()
        ac.close()
    time.sleep(SANDBOX_LAG_SECONDS + 1)  # past the tap's lag, as the next scheduled run is


def run_both(worker) -> dict[str, Any]:
    """Both jobs on `worker` through Dagster; each starts from the shared bookmarks."""
    outcome = {}
    for job in (EVENTS_JOB, PROFILES_JOB):
        start = bookmarks(worker, job)
        run = worker.run_job(job)
        assert run.success, f"{worker.name} {job}: {run.result} {run.output[-3000:]}"
        summary = run.summary
        outcome[job] = {"start": start, "summary": summary, "lines": summary.summary_lines}
    return outcome


@pytest.fixture(scope="module")
def rounds(workers, orchestration_sandbox):
    a, b = workers
    first = run_both(a)
    left_by_a = {job: bookmarks(a, job) for job in STATE_IDS}
    change_data(orchestration_sandbox, contacts=2, events=2, title="worker b")
    second = run_both(b)
    left_by_b = {job: bookmarks(b, job) for job in STATE_IDS}
    change_data(orchestration_sandbox, contacts=1, events=1, title="worker a again")
    third = run_both(a)
    return {
        "rounds": [first, second, third],
        "left": [left_by_a, left_by_b],
    }


def test_definitions_have_both_five_minute_schedules(workers):
    described = workers[0].describe()
    meltano_yml = yaml.safe_load((workers[0].project / "meltano.yml").read_text())
    expected = {
        s["name"].replace("-", "_"): (s["interval"], s["job"].replace("-", "_"))
        for s in meltano_yml["schedules"]
    }
    assert expected == {
        "salesforce_to_appcues_every_5_minutes": ("*/5 * * * *", "salesforce_to_appcues"),
        "appcues_to_salesforce_every_5_minutes": ("*/5 * * * *", "appcues_to_salesforce"),
    }
    found = {s["name"]: (s["cron_schedule"], s["job_name"]) for s in described["schedules"]}
    assert found == expected
    assert all(s["default_status"] == "RUNNING" for s in described["schedules"])
    assert {name: job["tags"]["meltano/job"] for name, job in described["jobs"].items()} == {
        "salesforce_to_appcues": PROFILES_JOB,
        "appcues_to_salesforce": EVENTS_JOB,
    }
    # orchestration/dagster.yaml: one queued run at a time per Meltano job.
    assert described["instance"] == [
        {"key": "meltano/job", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
    ]
    # The documented command line sees the same (the code server loads the file anew).
    listing = workers[0].dagster("schedule", "list", "-f", str(DEFINITIONS))
    output, _ = listing.communicate(timeout=600)
    assert listing.returncode == 0, output[-3000:]
    for name in expected:
        assert f"Schedule: {name} [RUNNING]\nCron Schedule: */5 * * * *" in output, output


def test_state_lives_in_postgres(workers, postgres, rounds):
    rows = dict(postgres.query("SELECT state_id, count(*) FROM state GROUP BY state_id"))
    assert set(STATE_IDS.values()) <= set(rows)
    runs = postgres.query(
        "SELECT job_name, state, count(*) FROM runs GROUP BY job_name, state ORDER BY 1, 2"
    )
    # Three successful runs of each job, from two machines, all recorded in one database.
    assert {(job, state): n for job, state, n in runs if state == "SUCCESS"} == {
        (state_id, "SUCCESS"): 3 for state_id in STATE_IDS.values()
    }
    for worker in workers:
        assert not list((worker.project / ".meltano").glob("*.db")), "no local system database"
        listed = worker.meltano("state", "list").stdout.split()
        assert set(STATE_IDS.values()) <= set(listed), f"{worker.name} sees every bookmark"


def test_each_run_resumes_from_the_other_workers_bookmark(rounds):
    first, second, third = rounds["rounds"]
    left_by_a, left_by_b = rounds["left"]
    for job in STATE_IDS:
        assert first[job]["start"] == {}, f"{job}: the first run starts from nothing"
        assert second[job]["start"] == left_by_a[job], f"{job}: B starts where A stopped"
        assert third[job]["start"] == left_by_b[job], f"{job}: A starts where B stopped"
    # A's first run moved everything; each later run only what changed since the other's
    # bookmark (and the tap's lookback before it, which the targets recognise).
    full = first[PROFILES_JOB]["summary"].profiles
    assert full["users_created"] > 0
    assert sum(first[EVENTS_JOB]["summary"].events_written.values()) > 0
    for run, contacts, events in ((second, 2, 2), (third, 1, 1)):
        profiles, lines = run[PROFILES_JOB]["summary"].profiles, run[PROFILES_JOB]["lines"]
        # "created"/"updated" are relative to the worker's own ledger: B's has never seen
        # the profiles A wrote, so what it re-reads counts as new there.
        assert profiles["users_created"] + profiles["users_updated"] >= contacts, lines
        assert _received(profiles) < _received(full), f"not a full re-read: {lines}"
        written = run[EVENTS_JOB]["summary"].events_written
        assert written == {"appcues:goal_reached": events}, run[EVENTS_JOB]["lines"]


def _received(profiles: dict[str, Any]) -> int:
    return sum(
        profiles[f"users_{outcome}"] for outcome in ("created", "updated", "unchanged_skipped")
    )


def test_an_overlapping_run_of_one_job_is_refused(workers, postgres, orchestration_sandbox, rounds):
    a, b = workers
    salesforce = SandboxControl.of(orchestration_sandbox.connection, "salesforce", timeout=30)
    # A's run stalls 40 s on its first Salesforce query, so it is surely in progress.
    rule = {"match": {"path": "/query"}, "action": "latency", "latency_ms": 40000, "times": 1}
    salesforce.faults(rule)
    state_id = STATE_IDS[PROFILES_JOB]

    def running() -> int:
        rows = postgres.query(
            "SELECT count(*) FROM runs WHERE job_name = %s AND state = 'RUNNING'", state_id
        )
        return int(rows[0][0])

    # B's Dagster process has loaded the definitions and waits, so its start is quick.
    second, seen = b.ready_job(PROFILES_JOB)
    # A through the documented command line, B through the in-process driver.
    first = a.dagster("job", "execute", "-f", str(DEFINITIONS), "-j", "salesforce_to_appcues")
    try:
        deadline = time.monotonic() + 120
        while not running():
            assert first.poll() is None, "A's run ended before it was seen running"
            assert time.monotonic() < deadline, "A's run never showed up as RUNNING"
            time.sleep(0.5)
        refused = b.finish(second, seen=seen, go=True)
        assert running() == 1, "A's run was still in progress when B was refused"
        output, _ = first.communicate(timeout=600)
    finally:
        salesforce.clear_faults()
        salesforce.close()
        for proc in (first, second):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert not refused.success
    (failure,) = refused.result["failures"]
    assert failure["description"] == f"`meltano run {PROFILES_JOB}` exited with 1"
    assert f"Another '{state_id}' pipeline is already running" in failure["metadata"][
        "output_tail"
    ].replace("\n", " ")
    assert first.returncode == 0, output[-3000:]
    assert f"`meltano run {PROFILES_JOB}` succeeded" in output
    # The refused start recorded no run of its own; A's run ended well.
    assert running() == 0


def test_end_state_has_every_profile_and_every_event_once(workers, orchestration_sandbox, rounds):
    connection = orchestration_sandbox.connection
    sf, ac = salesforce_client(connection), appcues_client(connection)
    try:
        # The record an event of each user belongs on: Contact first (the target's
        # priority), a converted Lead's events on its Contact.
        users: dict[str, str] = {}
        titles: dict[str, Any] = {}
        for record in sf.query(
            f"SELECT Id, {USER_ID}, Title, IsConverted, ConvertedContactId FROM Lead "
            f"WHERE {USER_ID} != null"
        ):
            converted = record["IsConverted"] and record["ConvertedContactId"]
            users[str(record[USER_ID])] = converted or record["Id"]
            titles[str(record[USER_ID])] = record["Title"]
        for record in sf.query(f"SELECT Id, {USER_ID}, Title FROM Contact WHERE {USER_ID} != null"):
            users[str(record[USER_ID])] = record["Id"]
            titles[str(record[USER_ID])] = record["Title"]
        groups = [
            str(r[GROUP_ID])
            for r in sf.query(f"SELECT {GROUP_ID} FROM Account WHERE {GROUP_ID} != null")
        ]
        # Present, and with the Title of the last edit (made on either worker's watch).
        missing = []
        for user, title in titles.items():
            profile = ac.get_user_profile(user)
            if not profile or profile.get("Title") != title:
                missing.append(f"user {user}: {profile and profile.get('Title')!r} != {title!r}")
        missing += [f"group {g}" for g in groups if not ac.get_group_profile(g)]
        assert not missing, f"profiles lost: {missing[:10]}"

        expected: Counter[tuple[str, str]] = Counter()
        for event in _appcues_events(ac):
            if str(event["user_id"]) in users:
                expected[(users[str(event["user_id"])], _instant(event["timestamp"]))] += 1
        written: Counter[tuple[str, str]] = Counter()
        ids: Counter[str] = Counter()
        for row in sf.query(f"SELECT WhoId, ActivityDateTime, {EVENT_ID_FIELD} FROM Event"):
            written[(str(row["WhoId"]), _instant(str(row["ActivityDateTime"])))] += 1
            ids[str(row[EVENT_ID_FIELD])] += 1
    finally:
        sf.close()
        ac.close()
    assert sum(expected.values()) > 0
    lost = expected - written
    duplicated = written - expected
    assert not lost, f"Events lost: {list(lost.items())[:10]}"
    assert not duplicated, f"Events duplicated: {list(duplicated.items())[:10]}"
    assert [i for i, n in ids.items() if n > 1] == [], "an Appcues event id on two Events"


def _appcues_events(ac) -> list[dict[str, Any]]:
    """Every stored event of the names the events target writes (analytics, paged)."""
    rows: list[dict[str, Any]] = []
    now = datetime.now(UTC)  # the seed spans the 30 days before now
    while True:
        page = ac.analytics_query(
            {
                "columns": ["id", "name", "user_id", "timestamp"],
                "conditions": [["name", "in", list(DEFAULT_EVENT_NAMES)]],
                "start_time": (now - timedelta(days=80)).isoformat(),
                "end_time": (now + timedelta(days=5)).isoformat(),
                "offset": len(rows),
                "limit": 1000,
            }
        )
        rows += page.rows
        if len(page.rows) < 1000:
            return rows


def _instant(value: str) -> str:
    """The instant to Salesforce's precision: datetimes are stored in whole seconds."""
    value = value.replace("Z", "+00:00").replace("+0000", "+00:00")
    moment = datetime.fromisoformat(value).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")
