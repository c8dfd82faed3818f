"""Bulk API 2.0 ingest edges nobody planned for, against the sandbox: cells CSV finds hard
(line breaks of every kind, quotes, commas, non-ASCII), result rows that echo the uploaded
cells in Salesforce's own spelling, a session expiring during the upload or the results
download, a job that never finishes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from salesforce_appcues_clients import soql

HARD_TEXT = [
    "carriage\rreturn",
    "windows\r\nline",
    "unix\nline",
    'a "quoted" word',
    "comma, inside",
    "non-ASCII: ü é 日本",
    "\ufeffstarts with a BOM",
    "trailing backslash \\",
]


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


def events_with_description(org, *who_ids):
    rows = []
    prefix = "SELECT Id, Subject, Description FROM Event WHERE"
    for text in soql.in_chunks(prefix, "WhoId", list(who_ids)):
        rows.extend(org.query(text))
    return rows


def pick(strategy, org, orgs, tmp_path):
    chosen = org if strategy == "upsert_by_external_id" else orgs[strategy]
    chosen.state_dir = tmp_path / "state"
    chosen.tag = uuid.uuid4().hex[:8]
    return chosen


@pytest.mark.parametrize("strategy", ["upsert_by_external_id", "query_then_insert", "local_ledger"])
def test_hard_cells_round_trip_through_a_job(strategy, org, orgs, kit, tmp_path):
    """Every text goes up and comes back in the result files intact: the run confirms every
    Event in one pass, each stored once with the text collections store for it."""
    org = pick(strategy, org, orgs, tmp_path)
    stored = {}
    for api_type in ("REST", "BULK2"):
        user = org.user(f"cells{api_type}")
        contact = org.create("Contact", Product_User_Id__c=user)
        batch = [
            kit.event(
                user,
                "appcues:goal_reached",
                f"2026-03-06T09:{i:02d}:00Z",
                f"{org.tag}-{api_type}{i}",
                goalName=text,
            )
            for i, text in enumerate(HARD_TEXT)
        ]
        config = org.config(
            sync_nps_fields=False,
            api_type=api_type,
            # No quotes of the template's own around the text: the cell is the bare value.
            templates={"appcues:goal_reached": {"description": "{{ goalName }}"}},
        )
        config["state_dir"] = str(tmp_path / api_type)
        first, states = kit.run_target(config, batch)
        assert states
        assert sum(first.pipeline.summary.events_written.values()) == len(HARD_TEXT)
        assert kit.dead_letters(config) == []
        stored[api_type] = sorted(
            (e["Subject"], e["Description"]) for e in events_with_description(org, contact)
        )
    assert len(stored["BULK2"]) == len(HARD_TEXT)
    assert stored["BULK2"] == stored["REST"]


@pytest.fixture
def restore_ingest(org):
    yield
    org.control("POST", "bulk", {"ingest_processing_seconds": 0})
    org.control("DELETE", "faults")


def _jobs_created(org) -> int:
    return int(org.control("GET", "stats")["counters"].get("ingest_jobs_created", 0))


def _fired(org) -> int:
    return sum(int(r["fired"]) for r in org.control("GET", "faults")["rules"])


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", r"/jobs/ingest$"),
        ("PUT", r"/jobs/ingest/\w+/batches$"),
        ("PATCH", r"/jobs/ingest/\w+$"),
        ("GET", r"/jobs/ingest/\w+/successfulResults/?$"),
    ],
    ids=["create", "upload", "close", "results"],
)
def test_a_session_expiring_at_any_step_of_a_job_is_renewed(
    method, path, org, kit, tmp_path, restore_ingest
):
    """The 401 comes before Salesforce acts on the request: the renewed session's retry is
    the first time it is applied (the upload's body is sent again whole), one job, each
    Event once."""
    user = org.user("expiry")
    contact = org.create("Contact", Product_User_Id__c=user)
    batch = [
        kit.event(
            user,
            "appcues:goal_reached",
            f"2026-03-07T09:{i:02d}:00Z",
            f"{org.tag}-e{i}",
            goalName="x" * 2000 if i == 0 else i,
        )
        for i in range(4)
    ]
    rule = {"action": "expire_session", "times": 1, "match": {"path": path, "method": method}}
    org.control("POST", "faults", {"rules": [rule]})
    created = _jobs_created(org)
    config = org.config(sync_nps_fields=False, api_type="BULK2")
    _, states = kit.run_target(config, batch)
    assert states
    assert _fired(org) == 1
    assert _jobs_created(org) == created + 1  # one job: the retry resent nothing twice
    assert len(org.events_of(contact)) == 4
    assert kit.dead_letters(config) == []


def test_a_job_that_never_finishes_is_aborted_and_settled(org, kit, tmp_path, restore_ingest):
    """Stuck past `bulk_timeout`: the job is aborted, nothing is confirmed (no STATE), the
    journal holds no open job, and the next run writes each Event once."""
    user = org.user("stuck")
    contact = org.create("Contact", Product_User_Id__c=user)
    batch = [
        kit.event(user, "appcues:goal_reached", f"2026-03-08T09:{i:02d}:00Z", f"{org.tag}-s{i}")
        for i in range(3)
    ]
    org.control("POST", "bulk", {"ingest_processing_seconds": 60})
    config = org.config(sync_nps_fields=False, api_type="BULK2", bulk_timeout=1)
    with pytest.raises(Exception, match="ended Aborted"):
        kit.run_target(config, batch)
    assert org.control("GET", "stats")["ingest_jobs"].get("Aborted", 0) >= 1
    assert org.events_of(contact) == []
    assert not _open_jobs(config)
    org.control("POST", "bulk", {"ingest_processing_seconds": 0})
    _, states = kit.run_target(config, batch)
    assert states
    assert len(org.events_of(contact)) == 3


def _open_jobs(config) -> list:
    import sqlite3

    db = sqlite3.connect(str(Path(config["state_dir"]) / "ledger.sqlite3"))
    try:
        return db.execute("SELECT * FROM ingest_jobs").fetchall()
    finally:
        db.close()


@pytest.mark.parametrize("echo", ["sent", "stored"])
@pytest.mark.parametrize("strategy", ["upsert_by_external_id", "query_then_insert", "local_ledger"])
def test_results_echoed_in_salesforce_spelling_still_confirm(
    strategy, echo, org, orgs, kit, tmp_path
):
    """Event times carry milliseconds; Salesforce keeps whole seconds. Whether the results
    echo the cells as sent or as stored (`ingest_results_echo`), one run confirms every
    Event, each written once, and a replay finds them all."""
    org = pick(strategy, org, orgs, tmp_path)
    org.control("POST", "bulk", {"ingest_results_echo": echo})
    try:
        user = org.user("echo")
        contact = org.create("Contact", Product_User_Id__c=user)
        batch = [
            kit.event(
                user,
                "appcues:goal_reached",
                f"2026-03-09T09:{i:02d}:07.{123 + i}Z",
                f"{org.tag}-m{i}",
                goalName=i,
            )
            for i in range(5)
        ]
        config = org.config(sync_nps_fields=False, api_type="BULK2")
        first, states = kit.run_target(config, batch)
        assert states
        assert sum(first.pipeline.summary.events_written.values()) == 5
        assert len(org.events_of_plain(contact)) == 5
        assert not _open_jobs(config)
    finally:
        org.control("POST", "bulk", {"ingest_results_echo": "sent"})


def test_an_upload_timed_out_then_applied_is_never_doubled(org, kit, tmp_path, restore_ingest):
    """The PUT of the CSV is held past `request_timeout`, then Salesforce applies it. The
    client replays the PUT at once, so the replay is the upload the job gets and the late
    one is refused (one upload per job, and the job is closed by then): one job, each Event
    once, in one run. (A replay refused instead aborts the still-Open job and fails the
    batch (`BulkIngest.write`): nothing runs, the next run sends it again.)"""
    user = org.user("slowput")
    contact = org.create("Contact", Product_User_Id__c=user)
    batch = [
        kit.event(user, "appcues:goal_reached", f"2026-03-10T09:{i:02d}:00Z", f"{org.tag}-p{i}")
        for i in range(4)
    ]
    rule = {
        "action": "latency",
        "latency_ms": 2500,
        "times": 1,
        "match": {"path": r"/jobs/ingest/\w+/batches$", "method": "PUT"},
    }
    org.control("POST", "faults", {"rules": [rule]})
    created = _jobs_created(org)
    config = org.config(sync_nps_fields=False, api_type="BULK2", request_timeout=1)
    _, states = kit.run_target(config, batch)
    assert states
    assert _fired(org) == 1
    assert _jobs_created(org) == created + 1
    time.sleep(2)  # the held PUT lands now, refused: the job is no longer Open
    assert len(org.events_of(contact)) == 4
    assert not _open_jobs(config)


def test_a_ledger_target_killed_mid_job_under_the_stored_echo(orgs, kit, tmp_path):
    """local_ledger, results echoed as stored (millisecond times back in whole seconds), the
    target SIGKILLed while its job runs: the journal's row keys match no result row, so the
    next run's in-flight content check decides: each Event once."""
    org = pick("local_ledger", None, orgs, tmp_path)
    org.control("POST", "bulk", {"ingest_results_echo": "stored", "ingest_processing_seconds": 3})
    try:
        user = org.user("killecho")
        contact = org.create("Contact", Product_User_Id__c=user)
        batch = [
            kit.event(
                user,
                "appcues:goal_reached",
                f"2026-03-11T09:{i:02d}:01.{500 + i}Z",
                f"{org.tag}-k{i}",
            )
            for i in range(4)
        ]
        config = org.config(sync_nps_fields=False, api_type="BULK2")
        config_path = tmp_path / "config.json"
        config_path.write_text(json.dumps(config))
        process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("target-salesforce-events")),
                "--config",
                str(config_path),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert process.stdin is not None
        process.stdin.write(kit.singer_lines(batch).encode())
        process.stdin.close()
        deadline = time.monotonic() + 60
        while "UploadComplete" not in org.control("GET", "stats")["ingest_jobs"]:
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        process.kill()
        process.wait(timeout=30)
        assert _open_jobs(config)
        org.control("POST", "bulk", {"ingest_processing_seconds": 0})
        _, states = kit.run_target(config, batch)
        assert states
        assert len(org.events_of_plain(contact)) == 4
        assert not _open_jobs(config)
    finally:
        org.control("POST", "bulk", {"ingest_results_echo": "sent", "ingest_processing_seconds": 0})
