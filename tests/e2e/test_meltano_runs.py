"""`meltano run` of both jobs against the sandbox: deltas, state, full refresh, other stacks.

The runs build on each other (as the 5-minute schedule does): module fixtures run the first
round, change data through the APIs and run the second round; the tests check what moved.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from datetime import UTC, datetime

import plugin_about
import pytest
from meltano_sandbox import SANDBOX_LAG_SECONDS, appcues_client, parse_run, salesforce_client

pytestmark = pytest.mark.slow

PROFILES_STATE = "sandbox:tap-salesforce-appcues--profiles-to-target-appcues-profiles"
EVENTS_STATE = "sandbox:tap-salesforce-appcues--events-to-target-salesforce-events"
UNKNOWN_USER = "e2e-user-not-in-salesforce"


def sf_records(project, sobject):
    return int(project.control["salesforce"].stats()["records"].get(sobject, 0))


def run(project, *args, **kwargs):
    return parse_run(project.meltano("run", *args, **kwargs).output)


@pytest.fixture(scope="module")
def first_round(project):
    events = run(project, "appcues-to-salesforce")
    profiles = run(project, "salesforce-to-appcues")
    return {"events": events, "profiles": profiles, "event_records": sf_records(project, "Event")}


@pytest.fixture(scope="module")
def changes(project, first_round):
    """Two Contacts and one Account edited, three Appcues events tracked (one unmatched)."""
    sf = salesforce_client(project.connection)
    ac = appcues_client(project.connection)
    try:
        contacts = list(
            sf.query(
                "SELECT Id, Product_User_Id__c FROM Contact "
                "WHERE Product_User_Id__c != null ORDER BY Id LIMIT 2"
            )
        )
        account = next(
            iter(sf.query("SELECT Id FROM Account WHERE Product_Account_Id__c != null LIMIT 1"))
        )
        results = sf.update("Contact", [{"Id": c["Id"], "Title": "E2E edit"} for c in contacts])
        results += sf.update("Account", [{"Id": account["Id"], "NumberOfEmployees": 4242}])
        assert all(r.success for r in results)
        now = project.control["appcues"].now()
        users = [str(c["Product_User_Id__c"]) for c in contacts]
        for user in [*users, UNKNOWN_USER]:
            ac.track_event(
                user,
                {
                    "name": "appcues:goal_reached",
                    "timestamp": now,
                    "attributes": {"goalName": "E2E"},
                },
            )
    finally:
        sf.close()
        ac.close()
    time.sleep(SANDBOX_LAG_SECONDS + 1)  # past the tap's lag, as the next scheduled run would be
    return {"contacts": 2, "accounts": 1, "matched_events": 2, "unmatched_events": 1}


@pytest.fixture(scope="module")
def second_round(project, changes):
    letters_before = len(project.dead_letters("target-salesforce-events"))
    events = run(project, "appcues-to-salesforce")
    letters = project.dead_letters("target-salesforce-events")[letters_before:]
    profiles = run(project, "salesforce-to-appcues")
    return {
        "events": events,
        "profiles": profiles,
        "event_records": sf_records(project, "Event"),
        "dead_letters": letters,
    }


def test_first_run_moves_everything_once(project, first_round):
    events, profiles = first_round["events"], first_round["profiles"]
    written = sum(events.events_written.values())
    assert written > 0
    assert first_round["event_records"] == written, "one Salesforce Event per Appcues event"
    assert events.unmatched and events.unmatched > 0, "the seed has users Salesforce lacks"
    letters = project.dead_letters("target-salesforce-events")
    assert {letter["reason"] for letter in letters} == {"unmatched_user"}
    assert all(letter["user_id"] in letter["message"] for letter in letters)
    assert profiles.profiles["users_created"] > 0
    assert profiles.profiles["groups_created"] > 0


def test_state_survives_between_runs(project, first_round):
    profiles_state = project.state(PROFILES_STATE)["singer_state"]["bookmarks"]
    assert {"Contact", "Lead", "Account"} <= set(profiles_state)
    events_state = project.state(EVENTS_STATE)["singer_state"]["bookmarks"]
    assert "appcues_events" in events_state


def test_second_run_moves_only_the_changes(project, first_round, changes, second_round):
    events, profiles = second_round["events"], second_round["profiles"].profiles
    assert events.events_written == {"appcues:goal_reached": changes["matched_events"]}
    # The events job's tap reads Appcues only: no Salesforce call, not even for the clock.
    assert events.tap_calls == {"salesforce": 0, "appcues": 1}
    assert second_round["event_records"] - first_round["event_records"] == 2
    # Re-read events of unknown users (the lookback) are skipped again; the new one too.
    unmatched = [d for d in second_round["dead_letters"] if d["user_id"] == UNKNOWN_USER]
    assert [d["reason"] for d in unmatched] == ["unmatched_user"]
    assert profiles["users_created"] == 0
    assert profiles["users_updated"] == changes["contacts"]
    assert profiles["groups_created"] == 0
    assert profiles["groups_updated"] == changes["accounts"]


def test_full_refresh_resends_without_duplicate_events(project, second_round):
    before = sf_records(project, "Event")
    events = run(project, "--full-refresh", "appcues-to-salesforce")
    assert sum(events.events_written.values()) == 0
    assert events.events_already_present == before, "every event was read and recognised"
    assert sf_records(project, "Event") == before


def test_profiles_tap_into_target_jsonl(project, second_round, tmp_path):
    run(
        project,
        "tap-salesforce-appcues--profiles",
        "target-jsonl",
        extra_env={"TARGET_JSONL_DESTINATION_PATH": str(tmp_path)},
    )
    for sobject in ("Contact", "Lead", "Account"):
        lines = (tmp_path / f"{sobject}.jsonl").read_text().splitlines()
        assert len(lines) == sf_records(project, sobject), sobject
        assert all(json.loads(line)["Id"] for line in lines)


def test_jsonl_file_of_events_into_target_salesforce_events(project, second_round, tmp_path):
    sf = salesforce_client(project.connection)
    try:
        users = [
            str(r["Product_User_Id__c"])
            for r in sf.query(
                "SELECT Product_User_Id__c FROM Contact "
                "WHERE Product_User_Id__c != null ORDER BY Id DESC LIMIT 2"
            )
        ]
    finally:
        sf.close()
    stamp = datetime.now(UTC).isoformat()
    rows = [
        {
            "id": str(uuid.uuid4()),
            "name": "appcues:flow_completed",
            "timestamp": stamp,
            "user_id": user,
            "attributes": {"flowName": "Imported from a file"},
        }
        for user in [*users, UNKNOWN_USER]
    ]
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    env = {"TAP_JSONL_PATH": str(tmp_path / "*.jsonl")}
    before = sf_records(project, "Event")

    events = run(project, "tap-jsonl", "target-salesforce-events", extra_env=env)
    assert events.events_written == {"appcues:flow_completed": 2}
    assert events.unmatched == 1
    assert sf_records(project, "Event") == before + 2

    again = run(project, "--full-refresh", "tap-jsonl", "target-salesforce-events", extra_env=env)
    assert sum(again.events_written.values()) == 0
    assert again.events_already_present == 2
    assert sf_records(project, "Event") == before + 2


def test_schedule_run_with_a_timeout_continues_from_the_bookmarks(project, second_round):
    """What the crontab line of docs/operations.md runs."""
    result = project.meltano(
        "schedule", "run", "appcues-to-salesforce-every-5-minutes", "--timeout", "240"
    )
    assert f"Running job with name '{EVENTS_STATE}'" in result.output
    events = parse_run(result.output)
    assert sum(events.events_written.values()) == 0, "nothing new since the last run"
    assert events.events_already_present is not None


def test_preflight_through_meltano_invoke(project):
    result = project.meltano("invoke", "target-salesforce-events", "--check", check=False)
    assert result.returncode == 0, result.output
    assert "Preflight: ready to run" in result.output
    assert "[FAIL]" not in result.output


def test_a_second_run_of_a_job_in_progress_is_refused(project, second_round):
    """One run at a time per job: Meltano refuses to start a job whose run is in progress."""
    # Hold the first run's first Salesforce query, so it is surely still running (an idle
    # run can otherwise end before the second one starts).
    salesforce = project.control["salesforce"]
    salesforce.faults(
        {
            "match": {"method": "GET", "path": "/queryAll"},
            "action": "latency",
            "latency_ms": 8000,
            "times": 1,
        }
    )
    first = subprocess.Popen(
        project.command("run", "salesforce-to-appcues"),
        cwd=plugin_about.ROOT,
        env=project.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert first.stdout is not None
        for line in first.stdout:  # the run is registered once Meltano names the job
            if "Running job with name" in line:
                break
        second = project.meltano("run", "salesforce-to-appcues", check=False)
        assert second.returncode == 1
        assert "already running" in second.output
    finally:
        rest, _ = first.communicate(timeout=240)
        salesforce.call("DELETE", "faults")
    assert first.returncode == 0, rest[-2000:]
