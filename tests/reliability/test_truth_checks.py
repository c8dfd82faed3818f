"""The end-state checks themselves can fail: after a clean run, a profile changed behind the
target's back, an Event deleted and one copied are reported as lost and duplicated."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_checks_catch_a_wrong_profile_a_missing_and_a_duplicate_event(world, harness, tmp_path):
    world.reset(events=True)
    profiles = harness.profiles_pipeline(world, tmp_path / "profiles")
    events = harness.events_pipeline(world, tmp_path / "events")
    # Events first: they set NPS fields the profiles then carry to Appcues.
    assert events.run().ok
    # Those NPS updates stamp SystemModstamp with the org's whole second, and the profiles
    # tap reads only up to the org's clock (a Date header, whole seconds too) minus `lag`.
    # Started within a second or two of the last update, one profiles run leaves the latest
    # Contacts for the next run (the product is right: the lag is there for commits in
    # flight), and this single-run check saw them as lost. Move the clock past the lag.
    world.salesforce.call("POST", "clock", {"advance_seconds": 10})
    assert profiles.run().ok
    other = harness.appcues_only_users
    clean = harness.check_profiles(world, profiles.dead_letters(), other)
    assert not clean.lost and not clean.duplicates, str(clean)
    clean = harness.check_events(world, events.dead_letters(), "Appcues_Event_Id__c")
    assert not clean.lost and not clean.duplicates, str(clean)

    sf, ac = harness.verification_clients(world)
    try:
        (contact,) = sf.query(
            "SELECT Product_User_Id__c FROM Contact WHERE Product_User_Id__c != null LIMIT 1"
        )
        ac.patch_user_profile(contact["Product_User_Id__c"], {"Title": "changed behind it"})
        first, second = sf.query(
            "SELECT Id, WhoId, ActivityDateTime, Subject FROM Event ORDER BY Id LIMIT 2"
        )
        world.salesforce.call("DELETE", "faults")
        copy = {k: second[k] for k in ("WhoId", "ActivityDateTime", "Subject")}
        (result,) = sf.insert("Event", [{**copy, "DurationInMinutes": 0}])
        assert result.success, result.errors
        sf.simple.Event.delete(first["Id"])
    finally:
        sf.close()
        ac.close()

    found = harness.check_profiles(world, profiles.dead_letters(), other)
    assert len(found.lost) == 1 and contact["Product_User_Id__c"] in found.lost[0], str(found)
    found = harness.check_events(world, events.dead_letters(), "Appcues_Event_Id__c")
    assert len(found.lost) == 1 and first["WhoId"] in found.lost[0], str(found)
    assert len(found.duplicates) == 1 and second["WhoId"] in found.duplicates[0], str(found)
