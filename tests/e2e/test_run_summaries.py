"""The plugins' run summaries as fields of Meltano's own JSON log (`meltano --log-format=json`).

Meltano 4.4 writes a singer-sdk logging config with the StructuredFormatter for plugins that
declare the `structured-logging` capability and parses their JSON stderr lines back into
fields (meltano/core/logging/parsers.py). These runs check that the summary record of each
plugin arrives as fields, with the numbers the sandboxes and the dead-letter files confirm.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import pytest
from meltano_sandbox import SANDBOX_LAG_SECONDS, appcues_client, salesforce_client

from salesforce_appcues_clients.plugin_kit.run_summary import SUMMARY_FIELDS

pytestmark = pytest.mark.slow

UNKNOWN_USER = "summary-user-not-in-salesforce"


def json_run(project: Any, job: str) -> list[dict[str, Any]]:
    """`meltano --log-format=json run <job>`: every log line, parsed (each one is JSON)."""
    time.sleep(SANDBOX_LAG_SECONDS + 1)  # as a scheduled run would start
    result = project.meltano("--log-format=json", "run", job)
    # Meltano writes nothing but JSON lines.
    return [json.loads(line) for line in result.output.splitlines() if line.strip()]


def summaries(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The summary record of each plugin, by the plugin's name in the job."""
    found: dict[str, dict[str, Any]] = {}
    for record in records:
        if "run_summary" in record:
            assert record["name"] not in found, f"two summaries from {record['name']}"
            found[record["name"]] = record
    return found


def metrics(records: list[dict[str, Any]], plugin: str) -> list[dict[str, Any]]:
    return [r["metric_info"] for r in records if r.get("name") == plugin and "metric_info" in r]


def test_events_job_summaries_are_fields_with_the_confirmed_numbers(project):
    sf = salesforce_client(project.connection)
    ac = appcues_client(project.connection)
    try:
        soql = "SELECT Product_User_Id__c FROM Contact WHERE Product_User_Id__c != null LIMIT 1"
        contact = next(iter(sf.query(soql)))
        now = project.control["appcues"].now()
        for user in (str(contact["Product_User_Id__c"]), UNKNOWN_USER):
            ac.track_event(
                user, {"name": "appcues:goal_reached", "timestamp": now, "attributes": {}}
            )
    finally:
        sf.close()
        ac.close()
    letters_before = len(project.dead_letters("target-salesforce-events"))
    events_before = int(project.control["salesforce"].stats()["records"].get("Event", 0))
    appcues_calls_before = project.control["appcues"].stats()["total_calls"]

    records = json_run(project, "appcues-to-salesforce")

    found = summaries(records)
    tap, target = found["tap-salesforce-appcues--events"], found["target-salesforce-events"]
    for summary in (tap, target):
        assert set(SUMMARY_FIELDS) <= set(summary), summary
        assert summary["run_summary"] == "complete"
        assert summary["level"] == "info"
        assert summary["duration_seconds"] > 0
    # The tap read the events the target received, and was the only Appcues caller.
    assert tap["records_read"]["appcues_events"] >= 2
    assert target["records_read"] == tap["records_read"]
    assert tap["api_calls"] == {
        "appcues": project.control["appcues"].stats()["total_calls"] - appcues_calls_before,
        "salesforce": 0,
    }
    # Events created: what Salesforce now holds more of.
    events_after = int(project.control["salesforce"].stats()["records"].get("Event", 0))
    details = target["details"]
    assert sum(details["events_written"].values()) == events_after - events_before
    assert target["records_written"].get("appcues_events", 0) == (
        events_after - events_before + details["nps_records_updated"]
    )
    # Dead letters by reason: exactly the lines this run added to the file.
    new_letters = project.dead_letters("target-salesforce-events")[letters_before:]
    assert target["dead_letters"] == dict(Counter(d["reason"] for d in new_letters))
    assert target["dead_letters"].get("unmatched_user", 0) >= 1
    assert target["api_calls"] == {"salesforce": details["api_calls"]}
    assert details["api_calls"] > 0
    # The same counts as singer-sdk METRIC counters.
    points = metrics(records, "target-salesforce-events")
    assert {
        p["tags"]["reason"]: p["value"]
        for p in points
        if p["tags"].get("outcome") == "dead_lettered"
    } == target["dead_letters"]
    assert {
        p["tags"]["service"]: p["value"] for p in points if p["metric"] == "http_request_count"
    } == target["api_calls"]


def test_profiles_job_summaries_are_fields_with_the_confirmed_numbers(project):
    sf = salesforce_client(project.connection)
    try:  # at least one changed profile, whatever ran before
        contact = next(iter(sf.query("SELECT Id FROM Contact ORDER BY Id LIMIT 1")))
        assert all(
            r.success for r in sf.update("Contact", [{"Id": contact["Id"], "Title": UNKNOWN_USER}])
        )
    finally:
        sf.close()
    stats_before = project.control["appcues"].stats()
    letters_before = len(project.dead_letters("target-appcues-profiles"))

    records = json_run(project, "salesforce-to-appcues")

    found = summaries(records)
    tap, target = found["tap-salesforce-appcues--profiles"], found["target-appcues-profiles"]
    for summary in (tap, target):
        assert set(SUMMARY_FIELDS) <= set(summary), summary
        assert summary["run_summary"] == "complete"
    # Every record the tap read reached the target, per stream.
    assert target["records_read"] == {k: v for k, v in tap["records_read"].items() if v}
    details = target["details"]
    written = sum(target["records_written"].values())
    assert written == (
        details["users_created"]
        + details["users_updated"]
        + details["groups_created"]
        + details["groups_updated"]
    )
    skipped = sum(target["records_skipped"].values())
    assert skipped == (
        details["users_unchanged_skipped"]
        + details["groups_unchanged_skipped"]
        + details["deleted_records_skipped"]
        + details["duplicate_records_merged"]
        + details["unrouted_records_ignored"]
    )
    # Profiles written: what Appcues counted as written during the run.
    stats_after = project.control["appcues"].stats()
    assert written >= 1
    assert written == sum(
        stats_after[k] - stats_before[k] for k in ("profiles_written", "groups_written")
    )
    new_letters = project.dead_letters("target-appcues-profiles")[letters_before:]
    assert target["dead_letters"] == dict(Counter(d["reason"] for d in new_letters))
    assert target["api_calls"] == {"appcues": details["api_calls"]}
    assert (
        target["api_calls"]["appcues"] == stats_after["total_calls"] - stats_before["total_calls"]
    )
    assert tap["api_calls"]["salesforce"] > 0
    points = metrics(records, "target-appcues-profiles")
    assert {
        p["tags"]["stream"]: p["value"] for p in points if p["tags"].get("outcome") == "written"
    } == target["records_written"]
