"""The user matcher's cache against the sandbox: answers (found or not) are asked once, expire
after their age, are bounded in number; a write refused because a cached record was deleted
or converted is matched afresh and written to the record found now, in the same run."""

from __future__ import annotations

import pytest

from salesforce_appcues_sandbox.testing import SandboxControl
from target_salesforce_events.matching import (
    DEFAULT_MAX_AGE_SECONDS,
    MatchedRecord,
    NoMatch,
    UserMatcher,
)
from target_salesforce_events.pipeline import EventPipeline

USER_FIELD = "Product_User_Id__c"
OBJECTS = ["Contact", "Lead"]
STREAM = "appcues_events"
SCORE = "Appcues_NPS_Score__c"


class Clock:
    """An injected monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def queries(org):
    """queries() -> SOQL query calls the sandbox counted since the fixture was made."""
    with SandboxControl.of(org.sandbox.connection, "salesforce") as control:
        start = control.count_calls("/query")
        yield lambda: control.count_calls("/query") - start


@pytest.fixture
def jobs(org):
    """jobs() -> Bulk 2.0 ingest jobs created in the sandbox so far."""
    with SandboxControl.of(org.sandbox.connection, "salesforce") as control:
        yield lambda: control.count_calls("POST /services/data/vXX.X/jobs/ingest")


def matcher(org, clock: Clock | None = None, **kw) -> UserMatcher:
    describes = org.client.describe(OBJECTS)
    if clock is not None:
        kw["clock"] = clock
    return UserMatcher(org.client, OBJECTS, USER_FIELD, describes, **kw)


def test_a_user_found_nowhere_is_asked_once(org, queries):
    m = matcher(org)
    known, unknown = org.user("known"), org.user("nobody")
    contact = org.create("Contact", **{USER_FIELD: known})
    before = queries()
    found, failed = m.match([known, unknown])
    assert found[known] == MatchedRecord("Contact", contact, "Contact")
    assert failed[unknown].reason == "unmatched_user"
    assert queries() - before == 2  # Contact for both, then Lead for the one not found
    for _ in range(3):
        again_found, again_failed = m.match([unknown, known])
        assert again_found == found and again_failed == failed
    assert queries() - before == 2
    assert m.queries_made == 2 and m.cache_hits == 6


def test_answers_expire_so_changes_in_salesforce_are_seen(org, queries):
    clock = Clock()
    m = matcher(org, clock)
    newcomer, lead_user = org.user("newcomer"), org.user("lead-user")
    lead = org.create("Lead", **{USER_FIELD: lead_user})
    first_found, first_failed = m.match([newcomer, lead_user])
    assert first_found[lead_user].record_id == lead and newcomer in first_failed
    asked = queries()

    # Salesforce changes: the newcomer gets a Contact, the lead user a Contact (which outranks
    # the Lead). Within the age the cached answers stand, at no call.
    contact = org.create("Contact", **{USER_FIELD: newcomer})
    lead_contact = org.create("Contact", **{USER_FIELD: lead_user})
    clock.now += DEFAULT_MAX_AGE_SECONDS - 1
    found, failed = m.match([newcomer, lead_user])
    assert newcomer in failed and found[lead_user].record_id == lead
    assert queries() == asked

    clock.now += 2  # past the age: both are asked again, in one Contact query
    found, failed = m.match([newcomer, lead_user])
    assert not failed
    assert found[newcomer].record_id == contact and found[lead_user].record_id == lead_contact
    assert queries() == asked + 1


def test_a_target_run_keeps_its_answers_for_the_run(org, queries):
    clock = Clock()
    m = matcher(org, clock, max_age_seconds=None)
    user = org.user("steady")
    m.match([user])
    asked = queries()
    clock.now += 86_400
    m.match([user])
    assert queries() == asked


def test_the_cache_is_bounded_least_recently_used_first(org, queries):
    m = matcher(org, max_entries=2)
    a, b, c = (org.user(x) for x in "abc")
    for uid in (a, b):
        m.match([uid])
    m.match([a])  # a is now the most recently used, b the least
    m.match([c])  # full: b goes
    asked = queries()
    m.match([a, c])
    assert queries() == asked
    m.match([b])
    assert queries() == asked + 2  # b forgotten: Contact and Lead asked again


def test_rematch_names_what_changed(org, queries):
    m = matcher(org)
    moved_user, gone_user, same_user = (org.user(x) for x in ("moved", "gone", "same"))
    old_lead = org.create("Lead", **{USER_FIELD: moved_user})
    gone = org.create("Contact", **{USER_FIELD: gone_user})
    same = org.create("Contact", **{USER_FIELD: same_user})
    found, _ = m.match([moved_user, gone_user, same_user])
    contact = org.control("POST", f"leads/{old_lead}/convert", {})["contactId"]
    org.client.simple.Contact.delete(gone)
    asked = queries()
    moved, failed = m.rematch({u: found[u] for u in (moved_user, gone_user, same_user)})
    assert queries() - asked == 2  # one fresh lookup for the three (Contact, then Lead)
    # The conversion carried the user id over to the new Contact, which outranks the Lead.
    assert moved == {moved_user: MatchedRecord("Contact", contact, "Contact")}
    assert set(failed) == {gone_user}  # same_user: found on the same record, in neither
    assert found[same_user].record_id == same
    assert isinstance(failed[gone_user], NoMatch)
    assert f"Contact {gone}" in failed[gone_user].message
    assert failed[gone_user].reason == "unmatched_user"
    # The fresh answers are cached again.
    m.match([moved_user, gone_user, same_user])
    assert queries() - asked == 2


def test_a_run_with_repeated_unknown_users_asks_once_per_user(org, kit, queries):
    """Three users Salesforce does not know, each first seen in a later batch and then in
    every batch after it: one lookup per user (Contact and Lead), none for repeats."""
    known = org.user("known")
    contact = org.create("Contact", **{USER_FIELD: known})
    strangers = [org.user(f"stranger{i}") for i in range(3)]
    records = []
    for batch in range(6):
        stamp = f"2026-03-0{batch + 1}T10:00:00Z"
        records.append(kit.event(known, "appcues:flow_completed", stamp, flowName=f"F{batch}"))
        records.extend(
            kit.event(stranger, "appcues:flow_completed", stamp, flowName="F")
            for stranger in strangers[: batch + 1]
        )
    config = org.config(batch_size_rows=4)
    asked = queries()
    target, states = kit.run_target(config, records)
    # known + stranger0 (Contact, Lead), stranger1 (Contact, Lead), stranger2 (Contact, Lead)
    assert queries() - asked == 2 * len(strangers)
    summary = target.pipeline.summary
    assert sum(summary.events_written.values()) == 6
    assert summary.skipped_unmatched == len(records) - 6
    assert len(org.events_of(contact)) == 6
    letters = kit.dead_letters(config)
    assert len(letters) == len(records) - 6
    assert {d["reason"] for d in letters} == {"unmatched_user"}
    assert {d["user_id"] for d in letters} == set(strangers)
    assert states


def _loader(org, **overrides) -> EventPipeline:
    loader = EventPipeline(org.config(**overrides))
    loader.register_stream(STREAM, {"type": "object"}, ["id"])
    return loader


@pytest.mark.parametrize("api_type", ["REST", "BULK2"])
def test_a_lead_converted_after_it_was_cached_gets_its_events_on_the_contact(
    org, kit, queries, jobs, api_type
):
    """Batch 1 caches the Lead; it is converted; batch 2's Event and NPS writes to the Lead
    are refused (CANNOT_UPDATE_CONVERTED_LEAD; by Bulk 2.0 in its failed results): one
    fresh lookup, both written to the Contact in the same batch, nothing dead-lettered."""
    user = org.user("converts")
    lead = org.create("Lead", **{USER_FIELD: user})
    loader = _loader(org, api_type=api_type)
    try:
        first = kit.event(user, "appcues:flow_completed", "2026-03-01T10:00:00Z", f"{user}-1")
        loader.load([first], STREAM)
        converted = org.control("POST", f"leads/{lead}/convert", {})
        contact = converted["contactId"]
        asked, jobs_before = queries(), jobs()
        loader.load(
            [
                kit.event(user, "appcues:flow_completed", "2026-03-02T10:00:00Z", f"{user}-2"),
                kit.event(user, "appcues:nps_score", "2026-03-02T11:00:00Z", f"{user}-3", score=9),
            ],
            STREAM,
        )
        assert queries() - asked == 1  # the fresh lookup; the Contact is found first
        assert loader.summary.dead_lettered == {}
        # BULK2: an Event job and an NPS job, refused; the same two again to the Contact.
        assert jobs() - jobs_before == (4 if api_type == "BULK2" else 0)
        assert len(org.events_of(contact)) == 2
        assert len(org.events_of(lead)) == 1
        assert org.get("Contact", contact, SCORE)[SCORE] == 9.0
    finally:
        loader.close()


def test_a_deleted_record_falls_back_to_the_next_match_or_a_clear_dead_letter(org, kit, queries):
    """Two users cached on Contacts that are then deleted: one also has a Lead (written to in
    the same batch), the other has nothing left (dead-lettered as unmatched, naming the
    refused record, and replayable like any unmatched event)."""
    has_lead, has_nothing = org.user("has-lead"), org.user("has-nothing")
    first = org.create("Contact", **{USER_FIELD: has_lead})
    lead = org.create("Lead", **{USER_FIELD: has_lead})
    second = org.create("Contact", **{USER_FIELD: has_nothing})
    config = org.config()
    loader = _loader(org)
    try:
        loader.load(
            [
                kit.event(u, "appcues:flow_completed", "2026-03-01T10:00:00Z", f"first-{u}")
                for u in (has_lead, has_nothing)
            ],
            STREAM,
        )
        org.client.simple.Contact.delete(first)
        org.client.simple.Contact.delete(second)
        asked = queries()
        later = [
            kit.event(u, "appcues:flow_completed", "2026-03-02T10:00:00Z", event_id=f"later-{u}")
            for u in (has_lead, has_nothing)
        ]
        loader.load(later, STREAM)
        assert queries() - asked == 2  # one fresh lookup: Contact, then Lead
        assert loader.summary.skipped_unmatched == 1
        assert len(org.events_of(lead)) == 1
        (letter,) = kit.dead_letters(config)
        assert letter["reason"] == "unmatched_user"
        assert letter["user_id"] == has_nothing and letter["event_id"] == f"later-{has_nothing}"
        assert f"Contact {second}" in letter["message"]
        assert letter["record"]["id"] == f"later-{has_nothing}"  # what a replay sends again
        assert letter["schema"] and letter["key_properties"] == ["id"]
    finally:
        loader.close()
