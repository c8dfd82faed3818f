"""Replays never duplicate an Event, under each idempotency strategy the org allows."""

from __future__ import annotations

import time

import pytest

from target_salesforce_events.idempotency import UnansweredInsertError

TS = ["2026-03-01T09:00:00Z", "2026-03-01T09:05:00Z", "2026-03-01T09:10:00Z"]


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
    ledger.defaults = {"event_id_field": ""}  # the ledger is chosen explicitly, never by a typo
    return {"query_then_insert": variant_org(plain_text_event_id), "local_ledger": ledger}


@pytest.fixture(params=["upsert_by_external_id", "query_then_insert", "local_ledger"])
def strategy_org(request, org, orgs, tmp_path):
    chosen = org if request.param == "upsert_by_external_id" else orgs[request.param]
    chosen.state_dir = tmp_path / "state"
    return request.param, chosen


def count_events(org, *who_ids):
    return len(org.events_of_plain(*who_ids))


def test_a_replayed_batch_writes_nothing_twice(strategy_org, kit):
    strategy, org = strategy_org
    a, b = org.user("a"), org.user("b")
    ca, cb = (
        org.create("Contact", Product_User_Id__c=a),
        org.create("Contact", Product_User_Id__c=b),
    )
    batch = [
        kit.event(a, "appcues:flow_completed", TS[0], f"{org.tag}-1", flowName="One"),
        kit.event(b, "appcues:flow_completed", TS[1], f"{org.tag}-2", flowName="Two"),
        kit.event(a, "appcues:goal_reached", TS[2], None, goalName="Derived id"),
    ]
    config = org.config(sync_nps_fields=False)
    first, _ = kit.run_target(config, batch)
    assert first.pipeline.strategy.strategy.value == strategy
    assert sum(first.pipeline.summary.events_written.values()) == 3
    assert count_events(org, ca, cb) == 3

    replay = [*batch, kit.event(b, "appcues:goal_reached", TS[2], f"{org.tag}-4", goalName="New")]
    second, states = kit.run_target(config, replay)
    assert count_events(org, ca, cb) == 4
    assert sum(second.pipeline.summary.events_already_present.values()) == 3
    assert sum(second.pipeline.summary.events_written.values()) == 1
    assert states

    # The same events twice within one input are written once too.
    third, _ = kit.run_target(config, [*replay, *replay])
    assert count_events(org, ca, cb) == 4
    assert third.pipeline.summary.duplicates_in_input == 4


@pytest.mark.parametrize("strategy", ["query_then_insert", "local_ledger"])
def test_an_uncertain_insert_is_checked_before_it_is_repeated(orgs, kit, tmp_path, strategy):
    org = orgs[strategy]
    org.state_dir = tmp_path / "state"
    user = org.user("uncertain")
    contact = org.create("Contact", Product_User_Id__c=user)
    batch = [
        kit.event(user, "appcues:goal_reached", TS[i], f"{org.tag}-u{i}", goalName=str(i))
        for i in range(3)
    ]
    org.control(
        "POST",
        "faults",
        {
            "rules": [
                {
                    "match": {"method": "POST", "path": "/composite/sobjects$"},
                    "action": "error",
                    "status": 500,
                    "times": 1,
                }
            ]
        },
    )
    injected_before = org.control("GET", "faults")["injected"]
    try:
        target, states = kit.run_target(org.config(sync_nps_fields=False), batch)
    finally:
        injected = org.control("GET", "faults")
        org.control("DELETE", "faults")
    assert injected["injected"] - injected_before == 1  # the insert really failed once
    assert count_events(org, contact) == 3
    assert sum(target.pipeline.summary.events_written.values()) == 3
    assert states
    replay, _ = kit.run_target(org.config(sync_nps_fields=False), batch)
    assert count_events(org, contact) == 3
    assert sum(replay.pipeline.summary.events_already_present.values()) == 3


@pytest.mark.parametrize("strategy", ["query_then_insert", "local_ledger"])
def test_an_insert_left_without_answer_is_checked_by_the_next_attempt(
    orgs, kit, tmp_path, strategy
):
    """A lone insert whose answer never came (a read timeout) may still be applied after it:
    a check made at once misses those Events and the insert sent again duplicates them. The
    batch is not confirmed; the next run checks which exist, then writes the rest.

    The sandbox reads a held insert whole and applies it when the hold ends, after the client
    gave up, as Salesforce applies a request it has."""
    org = orgs[strategy]
    org.state_dir = tmp_path / "state"
    user = org.user("no-answer")
    contact = org.create("Contact", Product_User_Id__c=user)
    count = 3
    batch = [
        kit.event(user, "appcues:goal_reached", TS[i], f"{org.tag}-n{i}", goalName=str(i))
        for i in range(count)
    ]
    config = org.config(sync_nps_fields=False, request_timeout=2)
    rule = {
        "match": {"method": "POST", "path": "/composite/sobjects$"},
        "action": "latency",
        "latency_ms": 3500,
        "times": 1,
    }
    org.control("POST", "faults", {"rules": [rule]})
    try:
        with pytest.raises(UnansweredInsertError, match="no answer"):
            kit.run_target(config, batch)
    finally:
        fired = org.control("GET", "faults")["rules"][0]["fired"]
        org.control("DELETE", "faults")
    assert fired == 1
    time.sleep(2)  # the held insert lands
    assert count_events(org, contact) == count, "Salesforce applied the unanswered insert"
    replay, states = kit.run_target(config, batch)
    assert count_events(org, contact) == count
    assert sum(replay.pipeline.summary.events_already_present.values()) == count
    assert sum(replay.pipeline.summary.events_written.values()) == 0
    assert states


@pytest.mark.parametrize("strategy", ["query_then_insert", "local_ledger"])
def test_an_insert_answered_by_a_gateway_timeout_is_checked_by_the_next_attempt(
    orgs, kit, tmp_path, strategy
):
    """A 504 from a gateway that stopped waiting while Salesforce applied the insert is no
    answer from Salesforce: sent again at once after a check, the insert could duplicate what
    Salesforce commits later. The batch is not confirmed; the next run writes each Event once."""
    org = orgs[strategy]
    org.state_dir = tmp_path / "state"
    user = org.user("gateway")
    contact = org.create("Contact", Product_User_Id__c=user)
    count = 3
    batch = [
        kit.event(user, "appcues:goal_reached", TS[i], f"{org.tag}-g{i}", goalName=str(i))
        for i in range(count)
    ]
    config = org.config(sync_nps_fields=False)
    rule = {
        "match": {"method": "POST", "path": "/composite/sobjects$"},
        "action": "error_after",
        "status": 504,
        "body": "<html><body><h1>504 Gateway Time-out</h1></body></html>",
        "times": 1,
    }
    org.control("POST", "faults", {"rules": [rule]})
    try:
        with pytest.raises(UnansweredInsertError, match="answered 504"):
            kit.run_target(config, batch)
    finally:
        fired = org.control("GET", "faults")["rules"][0]["fired"]
        org.control("DELETE", "faults")
    assert fired == 1
    assert count_events(org, contact) == count, "Salesforce applied the insert behind the 504"
    replay, states = kit.run_target(config, batch)
    assert count_events(org, contact) == count
    assert sum(replay.pipeline.summary.events_already_present.values()) == count
    assert sum(replay.pipeline.summary.events_written.values()) == 0
    assert states


def test_ledger_mode_survives_a_crash_between_insert_and_bookkeeping(orgs, kit, tmp_path):
    import sqlite3

    org = orgs["local_ledger"]
    org.state_dir = tmp_path / "state"
    user = org.user("crash")
    contact = org.create("Contact", Product_User_Id__c=user)
    batch = [
        kit.event(user, "appcues:goal_reached", TS[i], f"{org.tag}-c{i}", goalName=str(i))
        for i in range(3)
    ]
    config = org.config(sync_nps_fields=False)
    kit.run_target(config, batch)
    assert count_events(org, contact) == 3
    # As if the process died after Salesforce took the insert but before the ledger said so:
    # the ids are only marked as sent (and so never confirmed).
    with sqlite3.connect(org.state_dir / "ledger.sqlite3") as db:
        db.execute("INSERT INTO in_flight SELECT event_id, written_at FROM written_events")
        db.execute("DELETE FROM written_events")
        db.execute("DELETE FROM confirmed_events")
    replay, states = kit.run_target(config, batch)
    assert count_events(org, contact) == 3
    assert sum(replay.pipeline.summary.events_already_present.values()) == 3
    assert states
    with sqlite3.connect(org.state_dir / "ledger.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM in_flight").fetchone() == (0,)
        assert db.execute("SELECT COUNT(*) FROM written_events").fetchone() == (3,)


@pytest.mark.parametrize("strategy", ["upsert_by_external_id", "query_then_insert"])
def test_huge_ids_are_dead_lettered_not_fatal(strategy, org, orgs, kit, tmp_path):
    chosen = org if strategy == "upsert_by_external_id" else orgs[strategy]
    chosen.state_dir = tmp_path / "state"
    user = chosen.user("huge")
    contact = chosen.create("Contact", Product_User_Id__c=user)
    huge_user, huge_event = "u" * 20_000, "e" * 20_000  # far beyond one query URI
    batch = [
        kit.event(user, "appcues:goal_reached", TS[0], f"{chosen.tag}-ok", goalName="A"),
        kit.event(huge_user, "appcues:goal_reached", TS[0], f"{chosen.tag}-hu", goalName="B"),
        kit.event(user, "appcues:goal_reached", TS[1], huge_event, goalName="C"),
    ]
    config = chosen.config()
    _, states = kit.run_target(config, batch)
    assert [r["Subject"] for r in chosen.events_of_plain(contact)] == ["Appcues Goal Reached - A"]
    reasons = {(d["user_id"][:4], d["reason"], d["status"]) for d in kit.dead_letters(config)}
    assert reasons == {
        ("uuuu", "unmatched_user", None),
        (user[:4], "salesforce_rejected", "STRING_TOO_LONG"),
    }
    assert states


def test_ledger_mode_keeps_its_written_ids_when_the_cache_is_pruned(orgs, kit, tmp_path):
    import sqlite3

    org = orgs["local_ledger"]
    org.state_dir = tmp_path / "state"
    user = org.user("pruned")
    contact = org.create("Contact", Product_User_Id__c=user)
    batch = [
        kit.event(user, "appcues:goal_reached", TS[i], f"{org.tag}-p{i}", goalName=str(i))
        for i in range(3)
    ]
    config = org.config(sync_nps_fields=False, ledger_retention_days=1)
    kit.run_target(config, batch)
    ledger = org.state_dir / "ledger.sqlite3"
    with sqlite3.connect(ledger) as db:  # as if written long ago
        db.execute("UPDATE confirmed_events SET confirmed_at = '2000-01-01T00:00:00.000000Z'")
        db.execute("UPDATE written_events SET written_at = '2000-01-01T00:00:00.000000Z'")

    before = org.control("GET", "stats")["calls"]
    replay, states = kit.run_target(config, batch)
    after = org.control("GET", "stats")["calls"]
    inserts = "POST /services/data/vXX.X/composite/sobjects"
    assert after.get(inserts, 0) == before.get(inserts, 0), "the written ids still decide"
    assert replay.pipeline.summary.confirmed_earlier == 0, "the cache forgot them"
    assert sum(replay.pipeline.summary.events_already_present.values()) == 3
    assert count_events(org, contact) == 3
    assert states
    with sqlite3.connect(ledger) as db:
        assert db.execute("SELECT COUNT(*) FROM written_events").fetchone() == (3,)
        assert db.execute("SELECT COUNT(*) FROM confirmed_events").fetchone() == (3,)


def test_ids_differing_only_by_case_are_two_events(strategy_org, kit):
    """Issue 15: `P9-CROSS` (run 1) and `p9-cross` (run 2, another user) are two events.
    Salesforce matches External ID and SOQL text values ignoring case, as the sandbox does."""
    strategy, org = strategy_org
    a, b = org.user("cross-a"), org.user("cross-b")
    ca = org.create("Contact", Product_User_Id__c=a)
    cb = org.create("Contact", Product_User_Id__c=b)
    upper, lower = f"P9-CROSS-{org.tag.upper()}", f"p9-cross-{org.tag}"
    config = org.config(sync_nps_fields=False)
    kit.run_target(config, [kit.event(a, "appcues:flow_completed", TS[0], upper, flowName="A")])
    second, states = kit.run_target(
        config, [kit.event(b, "appcues:flow_completed", TS[1], lower, flowName="B")]
    )
    assert second.pipeline.strategy.strategy.value == strategy
    assert sum(second.pipeline.summary.events_written.values()) == 1
    assert states and kit.dead_letters(config) == []
    rows = org.events_of_plain(ca, cb)
    assert sorted(r["WhoId"] for r in rows) == sorted([ca, cb])
    assert {r["Subject"] for r in rows} == {f"Appcues Flow Completed - {n}" for n in "AB"}
    # Replays of either run still write nothing twice.
    kit.run_target(config, [kit.event(b, "appcues:flow_completed", TS[1], lower, flowName="B")])
    kit.run_target(config, [kit.event(a, "appcues:flow_completed", TS[0], upper, flowName="A")])
    assert len(org.events_of_plain(ca, cb)) == 2


@pytest.mark.parametrize("strategy", ["query_then_insert", "local_ledger"])
def test_inserts_keep_their_own_calls_beside_a_composite(orgs, kit, tmp_path, strategy):
    """Event inserts are not put in a Composite call: one left uncertain by a timeout may
    be applied after the check that follows it. The NPS update goes alone (one collection:
    the plain call)."""
    org = orgs[strategy]
    org.state_dir = tmp_path / "state"
    user = org.user("one-call")
    contact = org.create("Contact", Product_User_Id__c=user)
    batch = [
        kit.event(user, "appcues:goal_reached", TS[0], f"{org.tag}-o0", goalName="A"),
        kit.event(user, "appcues:nps_score", TS[1], f"{org.tag}-o1", score=9),
    ]
    before = org.control("GET", "stats")["calls"]
    target, _ = kit.run_target(org.config(), batch)
    after = org.control("GET", "stats")["calls"]
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    assert "POST /services/data/vXX.X/composite" not in delta
    assert delta.get("POST /services/data/vXX.X/composite/sobjects") == 1
    assert delta.get("PATCH /services/data/vXX.X/composite/sobjects") == 1
    assert count_events(org, contact) == 2
    assert target.pipeline.summary.nps_records_updated == 1
