"""Events into the sandbox org: templates, selection, matching, limits, per-record errors."""

from __future__ import annotations

import contextlib
import io

import pytest

from target_salesforce_events.target import TargetSalesforceEvents
from target_salesforce_events.templates import CUT_MARK

TS = "2026-02-03T04:05:06Z"


def test_each_default_event_becomes_the_tabled_event(org, kit):
    user = org.user("table")
    contact = org.create("Contact", Product_User_Id__c=user)
    records = [
        kit.event(user, "appcues:nps_score", TS, "t1", score=7),
        kit.event(user, "appcues:nps_feedback", TS, "t2", feedback="Great"),
        kit.event(user, "appcues:flow_completed", TS, "t3", flowName="Tour"),
        kit.event(
            user,
            "appcues:checklist_item_completed",
            TS,
            "t4",
            itemIndex=0,
            checklistName="Setup",
            itemLabel="Connect",
        ),
        kit.event(user, "appcues:checklist_completed", TS, "t5", checklistName="Setup"),
        kit.event(user, "appcues:goal_reached", TS, "t6", goalName="Activated"),
        kit.event(user, "appcues:flow_started", TS, "t7", flowName="Tour"),  # not selected
    ]
    target, states = kit.run_target(org.config(), records)
    rows = {r["Appcues_Event_Id__c"]: r for r in org.events_of(contact)}
    assert {k: (v["Subject"], v["Description"]) for k, v in rows.items()} == {
        "t1": (
            "Appcues NPS Score Submitted - 7",
            "7 NPS score. Submission location: https://app.example.com/home (Home)",
        ),
        "t2": (
            "Appcues NPS Feedback Submitted",
            "Great Submission location: https://app.example.com/home (Home)",
        ),
        "t3": ("Appcues Flow Completed - Tour", 'User completed your Appcues flow titled "Tour".'),
        "t4": (
            "Appcues Checklist Item #1 Completed - Setup",
            'User has completed an item titled "Connect". This is part of the "Setup" checklist.',
        ),
        "t5": (
            "Appcues Checklist Fully Completed - Setup",
            'User has completed all items in the "Setup" checklist.',
        ),
        "t6": (
            "Appcues Goal Reached - Activated",
            'User has completed the goal titled "Activated"',
        ),
    }
    assert {r["ActivityDateTime"] for r in rows.values()} == {"2026-02-03T04:05:06.000+0000"}
    assert {r["DurationInMinutes"] for r in rows.values()} == {0}
    assert target.pipeline.summary.events_not_selected == {"appcues:flow_started": 1}
    assert states == [{"bookmarks": {"appcues_events": {"n": 7}}}]


@pytest.mark.parametrize("include", [False, True])
def test_custom_events_follow_the_setting(org, kit, include):
    user = org.user("custom")
    contact = org.create("Contact", Product_User_Id__c=user)
    records = [kit.event(user, "Clicked Upgrade", TS, f"c-{include}", plan="Team")]
    target, _ = kit.run_target(
        org.config(include_custom_events=include, duration_minutes=15), records
    )
    rows = org.events_of(contact)
    if include:
        assert [(r["Subject"], r["DurationInMinutes"]) for r in rows] == [
            ("Appcues Event - Clicked Upgrade", 15)
        ]
        assert "plan: Team" in rows[0]["Description"]
    else:
        assert rows == []
        assert target.pipeline.summary.events_not_selected == {"Clicked Upgrade": 1}
        assert target.pipeline.summary.api_calls == 0  # nothing to write: Salesforce not called


def test_priority_order_and_unmatched_users(org, kit):
    both, lead_only, nobody = org.user("both"), org.user("lead"), org.user("nobody")
    contact = org.create("Contact", Product_User_Id__c=both)
    lead_of_both = org.create("Lead", Product_User_Id__c=both)
    lead = org.create("Lead", Product_User_Id__c=lead_only)
    before = [org.client.query_count(f"SELECT COUNT() FROM {o}") for o in ("Lead", "Contact")]
    records = [
        kit.event(both, "appcues:goal_reached", TS, "p1", goalName="G"),
        kit.event(lead_only, "appcues:goal_reached", TS, "p2", goalName="G"),
        kit.event(nobody, "appcues:goal_reached", TS, "p3", goalName="G"),
    ]
    config = org.config()
    target, states = kit.run_target(config, records)
    assert [r["Appcues_Event_Id__c"] for r in org.events_of(contact)] == ["p1"]
    assert [r["Appcues_Event_Id__c"] for r in org.events_of(lead)] == ["p2"]
    assert org.events_of(lead_of_both) == []
    # Never creates a Lead or Contact for the unmatched user.
    after = [org.client.query_count(f"SELECT COUNT() FROM {o}") for o in ("Lead", "Contact")]
    assert after == before
    assert target.pipeline.summary.skipped_unmatched == 1
    (letter,) = kit.dead_letters(config)
    assert (letter["event_id"], letter["user_id"], letter["reason"]) == (
        "p3",
        nobody,
        "unmatched_user",
    )
    assert states  # unmatched users do not hold the bookmark back

    # Reversed priority: the Lead wins.
    kit.run_target(
        org.config(user_objects=["Lead", "Contact"]),
        [kit.event(both, "appcues:goal_reached", TS, "p4", goalName="G")],
    )
    assert [r["Appcues_Event_Id__c"] for r in org.events_of(lead_of_both)] == ["p4"]


def test_hostile_user_ids_match_only_exactly(org, kit):
    hostile = "x' OR Name != '"
    victim = org.create("Contact", Product_User_Id__c=org.user("victim"))
    config = org.config()
    kit.run_target(
        config,
        [
            kit.event(hostile, "appcues:goal_reached", TS, "h1", goalName="G"),
            kit.event("\\' OR Id != null --", "appcues:goal_reached", TS, "h2"),
        ],
    )
    assert org.events_of(victim) == []
    assert sorted(d["reason"] for d in kit.dead_letters(config)) == ["unmatched_user"] * 2

    exact = org.create("Contact", Product_User_Id__c=hostile + org.tag)
    kit.run_target(
        config, [kit.event(hostile + org.tag, "appcues:goal_reached", TS, "h3", goalName="G")]
    )
    assert [r["Appcues_Event_Id__c"] for r in org.events_of(exact)] == ["h3"]
    # Salesforce compares text case-insensitively; the target does not.
    kit.run_target(
        config, [kit.event((hostile + org.tag).upper(), "appcues:goal_reached", TS, "h4")]
    )
    assert [r["Appcues_Event_Id__c"] for r in org.events_of(exact)] == ["h3"]


def test_long_text_is_cut_and_marked(org, kit):
    user = org.user("long")
    contact = org.create("Contact", Product_User_Id__c=user)
    records = [
        kit.event(user, "appcues:flow_completed", TS, "l1", flowName="F" * 400),
        kit.event(user, "appcues:nps_feedback", TS, "l2", feedback="word " * 8_000),
    ]
    target, _ = kit.run_target(org.config(sync_nps_fields=False), records)
    rows = {r["Appcues_Event_Id__c"]: r for r in org.events_of(contact)}
    assert len(rows["l1"]["Subject"]) == 255 and rows["l1"]["Subject"].endswith(CUT_MARK)
    assert len(rows["l2"]["Description"]) <= 32_000
    assert rows["l2"]["Description"].endswith(CUT_MARK)
    assert target.pipeline.summary.subjects_or_descriptions_cut == 2


def test_a_rejected_record_does_not_block_the_rest(org, kit):
    user = org.user("valid")
    contact = org.create("Contact", Product_User_Id__c=user)
    too_long_id = "x" * 300  # Appcues_Event_Id__c holds 128 characters
    records = [
        kit.event(user, "appcues:goal_reached", TS, "v1", goalName="A"),
        kit.event(user, "appcues:goal_reached", TS, too_long_id, goalName="B"),
        kit.event(None, "appcues:goal_reached", TS, "v3"),  # no user id at all
        kit.event("bad\ud800", "appcues:goal_reached", TS, "v5"),  # unpaired surrogate
        kit.event(user, "appcues:goal_reached", TS, "v4", goalName="C"),
    ]
    config = org.config()
    _, states = kit.run_target(config, records)
    assert sorted(r["Appcues_Event_Id__c"] for r in org.events_of(contact)) == ["v1", "v4"]
    letters = {d["event_id"]: d for d in kit.dead_letters(config)}
    assert letters[too_long_id]["reason"] == "salesforce_rejected"
    assert letters[too_long_id]["status"] == "STRING_TOO_LONG"
    assert letters[too_long_id]["message"]
    assert letters["v3"]["reason"] == "missing_user_id"
    assert letters["v5"]["reason"] == "invalid_user_id"
    assert states, "the batch is confirmed: its bad records are in the dead-letter file"


def test_unavailable_salesforce_fails_the_run_without_state(org, kit):
    user = org.user("down")
    org.create("Contact", Product_User_Id__c=user)
    org.control(
        "POST",
        "faults",
        {
            "rules": [
                {
                    "match": {"method": "PATCH", "path": "/composite/sobjects/Event/"},
                    "action": "error",
                    "status": 503,
                    "times": 50,
                }
            ]
        },
    )
    try:
        target = TargetSalesforceEvents(config=org.config())
        out = io.StringIO()
        with contextlib.redirect_stdout(out), pytest.raises(Exception, match="503"):
            target.process_lines(
                io.StringIO(kit.singer_lines([kit.event(user, "appcues:goal_reached", TS, "d1")]))
            )
            target.process_endofpipe()
    finally:
        org.control("DELETE", "faults")
    assert out.getvalue() == ""  # no STATE for the unconfirmed batch


def test_transient_failures_are_retried_and_the_summary_is_logged(org, kit, caplog):
    user = org.user("flaky")
    contact = org.create("Contact", Product_User_Id__c=user)
    org.control(
        "POST",
        "faults",
        {
            "rules": [
                {
                    "match": {"method": "PATCH", "path": "/composite/sobjects/Event/"},
                    "action": "error",
                    "status": 503,
                    "times": 2,
                    "retry_after": 0,
                }
            ]
        },
    )
    injected_before = org.control("GET", "faults")["injected"]
    config = org.config()
    try:
        with caplog.at_level("INFO"):
            target, states = kit.run_target(
                config,
                [
                    kit.event(user, "appcues:goal_reached", TS, "t-1", goalName="G"),
                    kit.event("ghost", "appcues:goal_reached", TS, "t-2", goalName="G"),
                ],
            )
    finally:
        injected = org.control("GET", "faults")["injected"]
        org.control("DELETE", "faults")
    assert injected - injected_before == 2  # two 503s, survived by retrying
    assert [r["Appcues_Event_Id__c"] for r in org.events_of(contact)] == ["t-1"]
    assert states
    logged = caplog.text
    assert "Exactly-once strategy: upsert_by_external_id" in logged
    summary = next(line for line in logged.splitlines() if "Run summary:" in line)
    assert "Events written: 1 appcues:goal_reached" in summary
    assert "skipped as unmatched: 1" in summary
    assert "dead-lettered: 1 unmatched_user" in summary
    assert f"API calls made: {target.pipeline.summary.api_calls}" in summary
    secrets = [config["client_secret"], config["refresh_token"]]
    written = logged + org.state_dir.joinpath("dead-letters.jsonl").read_text()
    assert not any(secret in written for secret in secrets)


def test_a_stream_that_is_not_events_is_flagged_and_dead_lettered(org, kit, caplog):
    import io
    import json as _json

    from target_salesforce_events.target import TargetSalesforceEvents

    config = org.config()
    lines = [
        {
            "type": "SCHEMA",
            "stream": "Contact",
            "key_properties": ["Id"],
            "schema": {"type": "object", "properties": {"Id": {"type": "string"}}},
        },
        {"type": "RECORD", "stream": "Contact", "record": {"Id": "003x"}},
    ]
    target = TargetSalesforceEvents(config=config)
    with caplog.at_level("WARNING"):
        target.process_lines(io.StringIO("\n".join(_json.dumps(x) for x in lines) + "\n"))
        target.process_endofpipe()
    assert "Stream 'Contact' has no name/timestamp/user_id in its schema" in caplog.text
    assert [d["reason"] for d in kit.dead_letters(config)] == ["missing_name"]
    assert target.pipeline.summary.api_calls == 0


def test_no_user_id_text_can_break_the_lookup(org):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from target_salesforce_events.events import InvalidEventError, parse_event
    from target_salesforce_events.matching import UserMatcher

    describes = org.client.describe(["Contact", "Lead"])
    matcher = UserMatcher(org.client, ["Contact", "Lead"], "Product_User_Id__c", describes)
    known = org.user("known")
    contact = org.create("Contact", Product_User_Id__c=known)

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.text(min_size=1, max_size=300), min_size=1, max_size=5))
    def check(user_ids):
        usable = []
        for uid in user_ids:
            try:
                usable.append(parse_event({"name": "x", "timestamp": 1, "user_id": uid}).user_id)
            except InvalidEventError:
                continue
        found, missing = matcher.match([*usable, known])
        assert found[known].record_id == contact
        assert set(found) | set(missing) == {*usable, known}

    check()
