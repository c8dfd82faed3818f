"""The pipeline's steps one at a time: input, ledger filter and confirmation, Event records,
dead letters (no network), and the org plan against the sandbox org."""

from __future__ import annotations

import json
from types import MappingProxyType

import pytest

from salesforce_appcues_clients.salesforce import SalesforceClient
from target_salesforce_events.batch_input import parse_events, selected
from target_salesforce_events.confirmations import (
    RunLedger,
    not_confirmed_earlier,
    record_confirmed,
)
from target_salesforce_events.dead_letter import DeadLetterFile
from target_salesforce_events.dead_lettering import DeadLettering
from target_salesforce_events.event_writes import event_record
from target_salesforce_events.events import parse_event
from target_salesforce_events.idempotency import Strategy, StrategyChoice
from target_salesforce_events.matching import MatchedRecord
from target_salesforce_events.org_setup import (
    SetupError,
    nps_fields_of,
    plan_extra_object,
    plan_org,
)
from target_salesforce_events.settings import EVENT_PART, NPS_PART, EventSettings
from target_salesforce_events.summary import RunSummary
from target_salesforce_events.templates import EventTemplates

STREAM = "appcues_events"
EVENT_SCHEMA = {"type": "object", "properties": {"id": {"type": "string"}}}
NPS = "appcues:nps_score_and_feedback"
FLOW = "appcues:flow_completed"
CONTACT = MatchedRecord("Contact", "003000000000001AAA", "Contact")


def record(event_id: str, name: str = FLOW, **fields):
    return {
        "id": event_id,
        "name": name,
        "timestamp": "2026-03-01T10:00:00Z",
        "user_id": "u1",
        "attributes": {"score": 9},
        **fields,
    }


@pytest.fixture
def run(tmp_path):
    settings = EventSettings.from_config({"state_dir": str(tmp_path)})
    summary = RunSummary()
    letters = DeadLettering(DeadLetterFile(settings.dead_letter_path), summary)
    ledger = RunLedger(settings)
    yield settings, summary, letters, ledger
    ledger.close()


def written_letters(settings: EventSettings) -> list[dict]:
    lines = settings.dead_letter_path.read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_input_keeps_one_event_per_id_and_dead_letters_the_rest_for_replay(run):
    settings, summary, letters, _ = run
    letters.register_stream(STREAM, EVENT_SCHEMA, ["id"])
    no_key = record("x")
    del no_key["id"]
    records = [
        record("a"),
        record("a"),  # the same event again
        no_key,
        record("b", timestamp="not a time"),
        record("c", name="Clicked Upgrade"),  # custom: not selected by default
    ]
    events = parse_events(records, STREAM, letters, summary)
    assert [e.event_id for e in events] == ["a", "c"]
    assert summary.duplicates_in_input == 1
    letters.flush()
    assert summary.dead_lettered == {"missing_key_property": 1, "invalid_timestamp": 1}
    by_reason = {letter["reason"]: letter for letter in written_letters(settings)}
    assert by_reason["missing_key_property"]["field"] == "id"
    assert by_reason["invalid_timestamp"]["event_id"] == "b"
    for letter in by_reason.values():  # what --replay-dead-letters re-announces
        assert letter["key_properties"] == ["id"] and letter["schema"]["type"] == "object"

    assert [e.event_id for e in selected(events, settings, summary)] == ["a"]
    assert summary.events_not_selected == {"Clicked Upgrade": 1}


def test_an_event_is_confirmed_only_with_every_effect_and_then_costs_nothing(run):
    settings, summary, _, ledger = run
    assert not_confirmed_earlier([], ledger, settings, summary) == []
    assert not settings.ledger_path.exists(), "nothing to look up: the ledger is not opened"

    flow, nps, nps_done = (
        parse_event(record(i, n)) for i, n in [("f", FLOW), ("n", NPS), ("m", NPS)]
    )
    assert settings.effects(NPS) == {EVENT_PART, NPS_PART}
    done = {"f": {EVENT_PART}, "n": {EVENT_PART}, "m": {EVENT_PART, NPS_PART}}
    record_confirmed(ledger, [flow, nps, nps_done], done, settings)

    again = not_confirmed_earlier([flow, nps, nps_done], ledger, settings, summary)
    assert [e.event_id for e in again] == ["n"], "its NPS answer was not confirmed"
    assert summary.confirmed_earlier == 2
    assert summary.events_already_present == {FLOW: 1, NPS: 1}


def test_an_event_record_carries_the_event_key_only_where_a_field_receives_it(run):
    settings = run[0]
    templates = EventTemplates(settings.templates)
    event = parse_event(record("P9-Key"))
    upsert = StrategyChoice(Strategy.UPSERT, "Appcues_Event_Id__c", "")
    fields, cut = event_record(event, CONTACT, templates, settings, upsert)
    assert fields["Appcues_Event_Id__c"] == event.external_key
    assert fields["WhoId"] == CONTACT.record_id and not cut
    assert fields["ActivityDateTime"] == "2026-03-01T10:00:00.000Z"
    ledger_only = StrategyChoice(Strategy.LEDGER, None, "")
    fields, _ = event_record(event, CONTACT, templates, settings, ledger_only)
    assert "Appcues_Event_Id__c" not in fields

    long_subject = EventTemplates({FLOW: {"subject": "x" * 300}})
    _, cut = event_record(event, CONTACT, long_subject, settings, upsert)
    assert cut


def test_a_rejection_names_the_first_error_or_says_there_was_none(run):
    settings, summary, letters, _ = run
    event = parse_event(record("r"))
    errors = [
        {"statusCode": "FIELD_INTEGRITY_EXCEPTION", "message": "bad WhoId", "fields": ["WhoId"]},
        {"statusCode": "OTHER", "message": "second"},
    ]
    letters.rejected(errors, event, stream=STREAM)
    letters.rejected([], event, part=NPS_PART, stream=STREAM)
    letters.flush()
    first, empty = written_letters(settings)
    assert (first["status"], first["message"], first["fields"]) == (
        "FIELD_INTEGRITY_EXCEPTION",
        "bad WhoId",
        ["WhoId"],
    )
    assert (empty["status"], empty["message"], empty["part"]) == (
        "UNKNOWN_ERROR",
        "no detail",
        NPS_PART,
    )
    assert summary.dead_lettered == {
        "salesforce_rejected:FIELD_INTEGRITY_EXCEPTION": 1,
        "salesforce_rejected:UNKNOWN_ERROR": 1,
    }


def test_nps_fields_are_named_and_typed_as_the_org_describes_them(tmp_path):
    settings = EventSettings.from_config(
        {"state_dir": str(tmp_path), "nps_date_field": "appcues_nps_date__c"}
    )
    describe = {
        "fields": [
            {"name": "Appcues_NPS_Score__c", "type": "string"},
            {"name": "Appcues_NPS_Feedback__c", "type": "textarea", "length": 255},
            {"name": "Appcues_NPS_Date__c", "type": "date"},
        ]
    }
    fields = nps_fields_of(describe, settings)
    assert fields.date_field == "Appcues_NPS_Date__c" and fields.date_only
    assert fields.score_as_text and fields.feedback_max == 255
    bare = nps_fields_of({"fields": []}, EventSettings.from_config({"state_dir": str(tmp_path)}))
    assert (bare.score_field, bare.date_field, bare.feedback_max) == (
        "Appcues_NPS_Score__c",
        None,
        32_768,
    )


def test_the_org_plan_costs_one_describe_and_a_converted_contact_none_more(org):
    settings = EventSettings.from_config(org.config(user_objects=["Lead"]))
    client = SalesforceClient.from_config(org.config())
    try:
        client.limits()  # logged in: what follows counts only the plan's calls
        before = client.calls_made
        plan = plan_org(client, settings)
        assert client.calls_made == before + 1
        assert plan.strategy is not None and plan.strategy.strategy is Strategy.UPSERT
        assert set(plan.nps_fields) == {"Lead"}
        assert isinstance(plan.nps_fields, MappingProxyType)
        with pytest.raises(AttributeError):
            plan.strategy = None  # type: ignore[misc]
        # Contact's describe rode along in that call: its NPS fields cost nothing.
        contact = plan_extra_object(client, settings, "Contact")
        assert contact.score_field == "Appcues_NPS_Score__c"
        assert client.calls_made == before + 1
        wrong = EventSettings.from_config(org.config(user_objects=["Contact", "Prospect__c"]))
        with pytest.raises(SetupError, match="setting user_objects"):
            plan_org(client, wrong)
    finally:
        client.close()
