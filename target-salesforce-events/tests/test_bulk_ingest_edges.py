"""Bulk API 2.0 ingest edges nobody planned for, against the sandbox: cells CSV finds hard
(line breaks of every kind, quotes, commas, non-ASCII), result rows that echo the uploaded
cells in Salesforce's own spelling, a session expiring during the upload or the results
download, a job that never finishes."""

from __future__ import annotations

import uuid

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
