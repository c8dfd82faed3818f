"""Bulk API 2.0 ingest for large batches, against the sandbox: exactly once under every
strategy, partial failures, Failed/Aborted jobs, a kill mid-job, session expiry while
polling, AUTO's threshold and the call count. Each guessed sandbox behaviour has a switch;
the core test runs under every switch value."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

TS = ["2026-03-01T09:00:00Z", "2026-03-01T09:05:00Z", "2026-03-01T09:10:00Z"]
INGEST_PATHS = "/services/data/vXX.X/jobs/ingest"
SWITCHES = {  # the sandbox's default first, then each other reading of a guess
    "ingest_error_format": ["bulk", "plain"],
    "ingest_processed_counts_failed": [True, False],
    "ingest_results_order": ["upload", "reversed"],
    "ingest_empty_results": ["header", "empty"],
    "ingest_results_echo": ["sent", "stored"],
}
SWITCH_CASES = [{}] + [{k: v} for k, values in SWITCHES.items() for v in values[1:]]


def plain_text_event_id(raw):
    raw["objects"]["Event"]["fields"]["Appcues_Event_Id__c"] = {
        "type": "string",
        "length": 128,
        "label": "Appcues Event Id",
    }


def no_event_id(raw):
    del raw["objects"]["Event"]["fields"]["Appcues_Event_Id__c"]


@pytest.fixture(scope="module")
def orgs(variant_org):
    ledger = variant_org(no_event_id)
    ledger.defaults = {"event_id_field": ""}
    return {"query_then_insert": variant_org(plain_text_event_id), "local_ledger": ledger}


def pick(strategy, org, orgs, tmp_path):
    chosen = org if strategy == "upsert_by_external_id" else orgs[strategy]
    chosen.state_dir = tmp_path / "state"
    chosen.tag = uuid.uuid4().hex[:8]  # the variant orgs serve several tests: fresh ids
    return chosen


@pytest.fixture
def ingest_control():
    """Sets sandbox ingest switches/faults on an org; restores the defaults afterwards."""
    touched = []

    def apply(org, **body):
        touched.append(org)
        return org.control("POST", "bulk", body)

    yield apply
    for org in touched:
        org.control(
            "POST",
            "bulk",
            {
                **{k: v[0] for k, v in SWITCHES.items()},
                "ingest_processing_seconds": 0,
                "fail_ingest_jobs": 0,
                "abort_ingest_jobs": 0,
                "ingest_fail_after_records": 0,
            },
        )
        org.control("DELETE", "faults")


def ingest_calls(org) -> int:
    return sum(v for k, v in org.control("GET", "stats")["calls"].items() if INGEST_PATHS in k)


def spent_calls(org, before) -> dict[str, int]:
    after = org.control("GET", "stats")["calls"]
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


def total_calls(org) -> int:
    return sum(org.control("GET", "stats")["calls"].values())


@pytest.mark.parametrize("switches", SWITCH_CASES, ids=lambda s: "-".join(map(str, s.values())))
@pytest.mark.parametrize("strategy", ["upsert_by_external_id", "query_then_insert", "local_ledger"])
def test_bulk_writes_each_event_once(strategy, switches, org, orgs, kit, tmp_path, ingest_control):
    org = pick(strategy, org, orgs, tmp_path)
    ingest_control(org, **switches)
    users = [org.user(f"bulk{i}") for i in range(3)]
    contacts = [org.create("Contact", Product_User_Id__c=u) for u in users]
    batch = [
        kit.event(users[i % 3], "appcues:goal_reached", TS[i % 3], f"{org.tag}-{i}", goalName=i)
        for i in range(6)
    ]
    huge = "e" * 300  # longer than the id field: Salesforce refuses that one row
    if strategy != "local_ledger":
        batch.append(kit.event(users[0], "appcues:goal_reached", TS[0], huge, goalName="H"))
    config = org.config(sync_nps_fields=False, api_type="BULK2")
    before = ingest_calls(org)
    first, states = kit.run_target(config, batch)
    assert ingest_calls(org) > before  # the Events went through an ingest job
    assert first.pipeline.strategy.strategy.value == strategy
    assert sum(first.pipeline.summary.events_written.values()) == 6
    assert states
    subjects = sorted(e["Subject"] for e in org.events_of_plain(*contacts))
    assert subjects == sorted(f"Appcues Goal Reached - {i}" for i in range(6))
    letters = kit.dead_letters(config)
    if strategy == "local_ledger":
        assert letters == []
    else:
        (letter,) = letters
        assert letter["event_id"] == huge
        assert (letter["reason"], letter["status"]) == ("salesforce_rejected", "STRING_TOO_LONG")
        assert letter["message"].startswith("STRING_TOO_LONG:")  # Salesforce's whole text

    # A replay with the confirmed cache forgotten asks the strategy again: nothing twice.
    forget_confirmed(Path(config["state_dir"]))
    again, _ = kit.run_target(config, batch)
    assert sum(again.pipeline.summary.events_already_present.values()) == 6
    assert len(org.events_of_plain(*contacts)) == 6


def forget_confirmed(state_dir: Path) -> None:
    import sqlite3

    db = sqlite3.connect(str(state_dir / "ledger.sqlite3"))
    with db:
        db.execute("DELETE FROM confirmed_events")
    db.close()


@pytest.mark.parametrize("fault", ["fail_ingest_jobs", "abort_ingest_jobs"])
@pytest.mark.parametrize("strategy", ["upsert_by_external_id", "query_then_insert", "local_ledger"])
def test_a_failed_or_aborted_job_confirms_nothing_it_did_not_write(
    strategy, fault, org, orgs, kit, tmp_path, ingest_control
):
    org = pick(strategy, org, orgs, tmp_path)
    user = org.user("failed")
    contact = org.create("Contact", Product_User_Id__c=user)
    batch = [
        kit.event(user, "appcues:goal_reached", f"2026-03-02T09:{i:02d}:00Z", f"{org.tag}-f{i}")
        for i in range(5)
    ]
    config = org.config(sync_nps_fields=False, api_type="BULK2")
    ingest_control(org, **{fault: 1, "ingest_fail_after_records": 2})
    with pytest.raises(Exception, match="not confirmed"):
        kit.run_target(config, batch)
    _, states = kit.run_target(config, batch)  # the next run: the job behaves
    assert states
    assert len(org.events_of_plain(contact)) == 5  # none lost, none twice


def _ledger_has_open_jobs(state_dir: Path) -> bool:
    import sqlite3

    path = state_dir / "ledger.sqlite3"
    if not path.exists():
        return False
    db = sqlite3.connect(str(path))
    try:
        return bool(db.execute("SELECT COUNT(*) FROM ingest_jobs").fetchone()[0])
    except sqlite3.OperationalError:
        return False
    finally:
        db.close()


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["kill", "term"])
@pytest.mark.parametrize("strategy", ["upsert_by_external_id", "query_then_insert", "local_ledger"])
def test_a_target_killed_mid_job_neither_duplicates_nor_loses(
    strategy, signum, org, orgs, kit, tmp_path, ingest_control
):
    """SIGKILL: the journal entry made before the upload survives. SIGTERM: the target stops
    at its next poll, leaving the job journaled, and exits 143 without a STATE."""
    org = pick(strategy, org, orgs, tmp_path)
    users = [org.user(f"kill{i}") for i in range(2)]
    contacts = [org.create("Contact", Product_User_Id__c=u) for u in users]
    batch = [
        kit.event(
            users[i % 2], "appcues:goal_reached", f"2026-03-03T09:{i:02d}:00Z", f"{org.tag}-k{i}"
        )
        for i in range(8)
    ]
    config = org.config(sync_nps_fields=False, api_type="BULK2")
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    ingest_control(org, ingest_processing_seconds=6)
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("target-salesforce-events")),
            "--config",
            str(config_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdin is not None
    process.stdin.write(kit.singer_lines(batch).encode())
    process.stdin.close()
    deadline = time.monotonic() + 60
    while not {"UploadComplete", "InProgress"} & set(org.control("GET", "stats")["ingest_jobs"]):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signum)
    assert process.wait(timeout=60) == (-signal.SIGKILL if signum == signal.SIGKILL else 143)
    assert process.stdout is not None
    with process.stdout:
        assert process.stdout.read() == b""  # no STATE
    assert _ledger_has_open_jobs(Path(config["state_dir"]))
    ingest_control(org, ingest_processing_seconds=0)  # the held job still waits its 6 s

    # The next run settles the open job before it sends anything, even when it writes by
    # collections now (after the SIGKILL the user switched to REST).
    followup = {**config, "api_type": "REST" if signum == signal.SIGKILL else "BULK2"}
    _, states = kit.run_target(followup, batch)
    assert states
    assert len(org.events_of_plain(*contacts)) == 8
    assert not _ledger_has_open_jobs(Path(config["state_dir"]))


def test_a_session_expiring_while_polling_is_renewed(org, kit, tmp_path, ingest_control):
    user = org.user("expiry")
    contact = org.create("Contact", Product_User_Id__c=user)
    batch = [
        kit.event(user, "appcues:goal_reached", f"2026-03-04T09:{i:02d}:00Z", f"{org.tag}-x{i}")
        for i in range(3)
    ]
    ingest_control(org, ingest_processing_seconds=1)
    org.control(
        "POST",
        "faults",
        {
            "rules": [
                {
                    "action": "expire_session",
                    "times": 1,
                    "match": {"path": r"/jobs/ingest/\w+$", "method": "GET"},
                }
            ]
        },
    )
    config = org.config(sync_nps_fields=False, api_type="BULK2")
    _, states = kit.run_target(config, batch)
    assert states
    assert sum(int(r["fired"]) for r in org.control("GET", "faults")["rules"]) == 1
    assert len(org.events_of_plain(contact)) == 3


def many_events(kit, user, prefix, n):
    return [
        kit.event(
            user,
            "appcues:goal_reached",
            f"2026-03-05T{9 + i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z",
            f"{prefix}{i}",
        )
        for i in range(n)
    ]


def test_auto_keeps_an_upsert_batch_past_the_threshold_in_composite(org, kit, tmp_path):
    """3,000 upserts under AUTO (default threshold 2,000): 3 Composite calls of 1,000, where
    a Bulk job would take about 6; no job is created and no plain collections call made."""
    user = org.user("auto")
    contact = org.create("Contact", Product_User_Id__c=user)
    config = org.config(sync_nps_fields=False, api_type="AUTO")
    before = org.control("GET", "stats")["calls"]
    _, states = kit.run_target(config, many_events(kit, user, f"{org.tag}-a", 3000))
    spent = spent_calls(org, before)
    assert states
    assert not any(INGEST_PATHS in k for k in spent)
    assert not any("composite/sobjects" in k for k in spent)
    assert spent["POST /services/data/vXX.X/composite"] == 3
    assert len(org.events_of_plain(contact)) == 3000


def test_auto_takes_a_job_for_inserts_only_where_it_costs_fewer_calls(orgs, kit, tmp_path):
    """Inserts cost one collections call per 200: 1,200 take 6 calls, as a job would (a tie
    stays on REST); 1,201 take 7 and go by one Bulk job. REST never takes a job."""
    org = pick("query_then_insert", None, orgs, tmp_path)
    user = org.user("auto")
    contact = org.create("Contact", Product_User_Id__c=user)
    config = org.config(sync_nps_fields=False, api_type="AUTO", bulk_threshold=0)
    before = org.control("GET", "stats")["calls"]
    kit.run_target(config, many_events(kit, user, f"{org.tag}-a", 1200))
    spent = spent_calls(org, before)
    assert not any(INGEST_PATHS in k for k in spent)
    assert spent["POST /services/data/vXX.X/composite/sobjects"] == 6
    before = org.control("GET", "stats")["calls"]
    kit.run_target(config, many_events(kit, user, f"{org.tag}-b", 1201))
    spent = spent_calls(org, before)
    assert spent[f"POST {INGEST_PATHS}"] == 1  # one job
    assert "POST /services/data/vXX.X/composite/sobjects" not in spent
    assert len(org.events_of_plain(contact)) == 2401
    rest = org.config(sync_nps_fields=False, api_type="REST", bulk_threshold=0)
    before = ingest_calls(org)
    kit.run_target(rest, many_events(kit, user, f"{org.tag}-c", 1201))
    assert ingest_calls(org) == before


def test_nps_fields_of_a_large_backfill_go_by_one_job_per_object(org, kit, tmp_path):
    contacts = {org.user(f"npsc{i}"): None for i in range(3)}
    leads = {org.user(f"npsl{i}"): None for i in range(2)}
    for u in contacts:
        contacts[u] = org.create("Contact", Product_User_Id__c=u)
    for u in leads:
        leads[u] = org.create("Lead", Product_User_Id__c=u)
    batch = []
    for n, user in enumerate([*contacts, *leads]):
        batch.append(kit.event(user, "appcues:nps_score", TS[0], f"{org.tag}-o{n}", score=3))
        batch.append(kit.event(user, "appcues:nps_score", TS[1], f"{org.tag}-n{n}", score=9))
    config = org.config(sync_events=False, api_type="BULK2")
    before = org.control("GET", "stats")["calls"]
    _, states = kit.run_target(config, batch)
    after = org.control("GET", "stats")["calls"]
    assert states
    created = after.get(f"POST {INGEST_PATHS}", 0) - before.get(f"POST {INGEST_PATHS}", 0)
    assert created == 2  # one update job for Contacts, one for Leads
    for sobject, ids in (("Contact", contacts), ("Lead", leads)):
        for record_id in ids.values():
            assert org.get(sobject, record_id, "Appcues_NPS_Score__c")["Appcues_NPS_Score__c"] == 9


def test_ten_thousand_events_cost_one_job(org, kit, tmp_path):
    """Deterministic part of the call count (the polls depend on the machine's speed; the
    bench reports totals): describe + one user lookup + create, upload, close and
    successfulResults, with failedResults skipped since every row succeeded."""
    users = [org.user(f"ten{i}") for i in range(5)]
    contacts = [org.create("Contact", Product_User_Id__c=u) for u in users]
    batch = [
        kit.event(
            users[i % 5],
            "appcues:goal_reached",
            f"2026-04-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z",
            f"{org.tag}-t{i}",
            goalName="G",
        )
        for i in range(10_000)
    ]
    config = org.config(sync_nps_fields=False)  # AUTO, the default threshold
    before = org.control("GET", "stats")["calls"]
    target, states = kit.run_target(config, batch)
    after = org.control("GET", "stats")["calls"]
    spent = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
    assert states
    assert sum(target.pipeline.summary.events_written.values()) == 10_000
    polls = spent.pop(f"GET {INGEST_PATHS}/{{id}}")
    spent.pop("POST /services/oauth2/token", None)  # not an API call
    assert polls >= 1
    assert spent == {
        "POST /services/data/vXX.X/composite/batch": 1,
        "GET /services/data/vXX.X/query/": 1,
        f"POST {INGEST_PATHS}": 1,
        f"PUT {INGEST_PATHS}/{{id}}/batches": 1,
        f"PATCH {INGEST_PATHS}/{{id}}": 1,
        f"GET {INGEST_PATHS}/{{id}}/successfulResults/": 1,
    }
    assert len(org.events_of_plain(*contacts)) == 10_000
