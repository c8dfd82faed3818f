"""tap-salesforce-appcues' appcues_events stream into this target, both sandboxes linked."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from singer_sdk.testing import tap_to_target_sync_test

from salesforce_appcues_clients import soql
from salesforce_appcues_sandbox.testing import SandboxControl, appcues_config
from tap_salesforce_appcues.tap import TapSalesforceAppcues
from target_salesforce_events.target import TargetSalesforceEvents

COUNTS = {"Contact": 60, "Lead": 20}


def iso(moment):
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture(scope="module")
def linked(variant_org):
    """A private sandbox whose org and Appcues account are seeded with the same identities."""
    org = variant_org(None, seed={"Account": 5, **COUNTS, "seed": 5})
    now = datetime.now(tz=UTC)
    with SandboxControl.of(org.sandbox.connection, "appcues") as appcues:
        appcues.seed(
            {
                **COUNTS,
                "events": 400,
                "seed": 5,
                "start": iso(now - timedelta(hours=10)),
                "end": iso(now - timedelta(hours=1)),
            }
        )
    return org, now


def tap_config(org, now):
    return {
        **appcues_config(org.sandbox.connection, "appcues_"),
        "appcues_start_date": iso(now - timedelta(hours=12)),
        "appcues_lag": 60,
    }


def test_appcues_events_flow_into_salesforce_exactly_once(linked, kit, tmp_path):
    org, now = linked
    org.state_dir = tmp_path / "state"
    config = org.config()

    def run():
        tap = TapSalesforceAppcues(config=tap_config(org, now))
        target = TargetSalesforceEvents(config=config)
        tap_out, _, target_out, _ = tap_to_target_sync_test(tap, target)
        tap_out.seek(0)
        messages = [json.loads(line) for line in tap_out.read().splitlines() if line.strip()]
        records = [m["record"] for m in messages if m["type"] == "RECORD"]
        target_out.seek(0)
        return target, records, target_out.read()

    target, records, states = run()
    assert records, "the seeded account has events in the window"
    summary = target.pipeline.summary
    assert sum(summary.events_written.values()) == len(records)
    assert summary.events_written == Counter(r["name"] for r in records)
    assert summary.nps_records_updated > 0
    assert kit.dead_letters(config) == []
    assert '"bookmarks"' in states  # the tap's STATE went through the target

    def stored():
        rows = []
        for text in soql.in_chunks(
            "SELECT Appcues_Event_Id__c, Subject, WhoId FROM Event WHERE",
            "Appcues_Event_Id__c",
            [r["id"] for r in records],
        ):
            rows.extend(org.query(text))
        return rows

    first = stored()
    assert sorted(r["Appcues_Event_Id__c"] for r in first) == sorted(r["id"] for r in records)
    assert all(r["Subject"].startswith("Appcues ") and r["WhoId"] for r in first)

    again, replayed, _ = run()
    assert [r["id"] for r in replayed] == [r["id"] for r in records]  # same ids on a re-read
    assert sum(again.pipeline.summary.events_written.values()) == 0
    assert sum(again.pipeline.summary.events_already_present.values()) == len(records)
    assert len(stored()) == len(records)
