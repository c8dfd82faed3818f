"""Re-read events cost nothing: the ledger remembers what Salesforce confirmed, set-up is lazy.

Calls are counted by the sandbox itself (its `stats`), so nothing of ours is trusted to count.
"""

from __future__ import annotations

import sqlite3

import pytest

from salesforce_appcues_clients.errors import RetriesExhaustedError
from target_salesforce_events.org_setup import SetupError

TS = ["2026-07-01T09:00:00Z", "2026-07-01T09:05:00Z", "2026-07-01T09:10:00Z"]
SCORE = "Appcues_NPS_Score__c"


class Calls:
    """The sandbox's call counts between `start()` and `made()`, by method and path."""

    def __init__(self, org) -> None:
        self.org = org
        self.before: dict[str, int] = {}

    def start(self) -> Calls:
        self.before = self.org.control("GET", "stats")["calls"]
        return self

    def made(self) -> dict[str, int]:
        after = self.org.control("GET", "stats")["calls"]
        return {k: n - self.before.get(k, 0) for k, n in after.items() if n != self.before.get(k)}


def confirmed_rows(config) -> dict[str, str]:
    with sqlite3.connect(f"{config['state_dir']}/ledger.sqlite3") as db:
        return dict(db.execute("SELECT event_id, parts FROM confirmed_events"))


def batch_for(org, kit, user: str, tag: str):
    return [
        kit.event(user, "appcues:flow_completed", TS[0], f"{org.tag}-{tag}1", flowName="F"),
        kit.event(user, "appcues:nps_score", TS[1], f"{org.tag}-{tag}2", score=8),
        kit.event(user, "appcues:flow_started", TS[2], f"{org.tag}-{tag}3"),  # not selected
    ]


def test_a_second_run_of_the_same_input_makes_no_salesforce_call(org, kit):
    user = org.user("idle")
    contact = org.create("Contact", Product_User_Id__c=user)
    config = org.config()
    batch = batch_for(org, kit, user, "i")
    first, _ = kit.run_target(config, batch)
    assert sum(first.pipeline.summary.events_written.values()) == 2
    assert confirmed_rows(config) == {f"{org.tag}-i1": "event", f"{org.tag}-i2": "event,nps"}

    calls = Calls(org).start()
    second, states = kit.run_target(config, batch)
    assert calls.made() == {}, "no login, no describe, no lookup, no write"
    summary = second.pipeline.summary
    assert summary.api_calls == 0
    assert summary.confirmed_earlier == 2
    assert summary.events_already_present == {"appcues:flow_completed": 1, "appcues:nps_score": 1}
    assert summary.events_written == {} and summary.nps_records_updated == 0
    assert "(already present: 2); confirmed in earlier runs (no call): 2;" in summary.describe()
    assert states, "the bookmark still moves on"
    assert len(org.events_of(contact)) == 2
    assert org.get("Contact", contact, SCORE)[SCORE] == 8.0


def test_input_without_events_to_write_makes_no_call_even_with_a_bad_setting(org, kit):
    config = org.config(user_objects=["Contcat"])
    calls = Calls(org).start()
    nothing, states = kit.run_target(config, [])
    filtered, _ = kit.run_target(
        config, [kit.event("someone", "appcues:flow_started", TS[0], f"{org.tag}-n1")]
    )
    assert calls.made() == {}
    assert nothing.pipeline.summary.api_calls == filtered.pipeline.summary.api_calls == 0
    assert states
    # The first batch that needs Salesforce sets up, and the error still names the setting.
    with pytest.raises(SetupError, match="user_objects"):
        kit.run_target(
            config, [kit.event("someone", "appcues:goal_reached", TS[0], f"{org.tag}-n2")]
        )


def test_a_lost_ledger_costs_calls_but_makes_no_duplicate(org, kit):
    user = org.user("lost")
    contact = org.create("Contact", Product_User_Id__c=user)
    config = org.config()
    batch = batch_for(org, kit, user, "l")
    kit.run_target(config, batch)
    (org.state_dir / "ledger.sqlite3").unlink()  # e.g. the job moved to a new machine

    calls = Calls(org).start()
    again, _ = kit.run_target(config, batch)
    made = calls.made()
    # the Event upsert and the NPS update went together in one Composite call
    assert made["POST /services/data/vXX.X/composite"] == 1
    assert again.pipeline.summary.confirmed_earlier == 0
    assert sum(again.pipeline.summary.events_already_present.values()) == 2  # said the upsert
    assert again.pipeline.summary.events_written == {}
    assert len(org.events_of(contact)) == 2
    assert set(confirmed_rows(config)) == {f"{org.tag}-l1", f"{org.tag}-l2"}, "learnt again"

    calls.start()
    kit.run_target(config, batch)
    assert calls.made() == {}


def test_an_unmatched_event_is_tried_again_when_read_again(org, kit):
    user = org.user("later")
    config = org.config()
    batch = batch_for(org, kit, user, "u")
    first, _ = kit.run_target(config, batch)
    assert first.pipeline.summary.skipped_unmatched == 2
    assert confirmed_rows(config) == {}
    contact = org.create("Contact", Product_User_Id__c=user)  # the user arrives in Salesforce

    second, _ = kit.run_target(config, batch)
    assert sum(second.pipeline.summary.events_written.values()) == 2
    assert len(org.events_of(contact)) == 2
    assert org.get("Contact", contact, SCORE)[SCORE] == 8.0


def test_an_event_salesforce_rejected_is_tried_again_and_its_nps_kept(org, kit):
    user = org.user("rejected")
    contact = org.create("Contact", Product_User_Id__c=user)
    # Event ids longer than Appcues_Event_Id__c holds (128): Salesforce refuses every Event
    # (STRING_TOO_LONG), not the NPS update. (A setting out of range can no longer cause a
    # refusal: the plugins refuse such settings at start.)
    long_id = f"{org.tag}-r-" + "x" * 180
    batch = [
        kit.event(user, "appcues:flow_completed", TS[0], long_id + "1", flowName="F"),
        kit.event(user, "appcues:nps_score", TS[1], long_id + "2", score=8),
        kit.event(user, "appcues:flow_started", TS[2], long_id + "3"),  # not selected
    ]
    bad = org.config()
    first, _ = kit.run_target(bad, batch)
    assert [(d["reason"], d["status"]) for d in kit.dead_letters(bad)] == [
        ("salesforce_rejected", "STRING_TOO_LONG")
    ] * 2
    assert first.pipeline.summary.nps_records_updated == 1
    assert org.events_of_plain(contact) == []
    assert confirmed_rows(bad) == {}, "a refused Event leaves its event unconfirmed"

    fixed = org.config(event_id_field="Location")  # 255 characters: query_then_insert
    calls = Calls(org).start()
    second, _ = kit.run_target(fixed, batch)
    assert sum(second.pipeline.summary.events_written.values()) == 2
    # The NPS answer was applied before: latest-wins skips it, no NPS write is spent.
    assert second.pipeline.summary.nps_answers_superseded == 1
    assert "PATCH /services/data/vXX.X/composite/sobjects" not in calls.made()
    assert org.get("Contact", contact, SCORE)[SCORE] == 8.0
    assert len(org.events_of_plain(contact)) == 2
    assert set(confirmed_rows(fixed)) == {long_id + "1", long_id + "2"}


def test_a_batch_whose_writes_failed_is_not_remembered(org, kit):
    user = org.user("crash")
    contact = org.create("Contact", Product_User_Id__c=user)
    config = org.config()
    batch = batch_for(org, kit, user, "c")
    # The Event upserts and the NPS update go in one Composite call, which finds Salesforce
    # unavailable past the retries (replayed: its subrequests are all PATCH).
    org.control(
        "POST",
        "faults",
        {
            "rules": [
                {
                    "match": {"method": "POST", "path": "/composite$"},
                    "action": "error",
                    "status": 500,
                    "times": 10,
                }
            ]
        },
    )
    try:
        with pytest.raises(RetriesExhaustedError):
            kit.run_target(config, batch)
    finally:
        org.control("DELETE", "faults")
    assert org.events_of(contact) == []
    assert confirmed_rows(config) == {}, "nothing is remembered before Salesforce confirmed it"

    again, _ = kit.run_target(config, batch)
    assert org.get("Contact", contact, SCORE)[SCORE] == 8.0
    assert again.pipeline.summary.nps_records_updated == 1
    assert sum(again.pipeline.summary.events_written.values()) == 2
    assert len(org.events_of(contact)) == 2
    assert set(confirmed_rows(config)) == {f"{org.tag}-c1", f"{org.tag}-c2"}


def test_older_nps_answer_read_late_loses_to_a_remembered_newer_one(org, kit):
    user = org.user("late")
    contact = org.create("Contact", Product_User_Id__c=user)
    config = org.config()
    newer = kit.event(user, "appcues:nps_score", TS[2], f"{org.tag}-new", score=9)
    kit.run_target(config, [newer])
    older = kit.event(user, "appcues:nps_score", TS[0], f"{org.tag}-old", score=1)
    second, _ = kit.run_target(config, [newer, older])  # the newer one is skipped as known
    assert second.pipeline.summary.confirmed_earlier == 1
    assert second.pipeline.summary.nps_answers_superseded == 1
    assert org.get("Contact", contact, SCORE)[SCORE] == 9.0
