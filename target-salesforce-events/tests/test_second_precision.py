"""Salesforce keeps Event datetimes in whole seconds: millisecond timestamps still match."""

from __future__ import annotations

import pytest

# Appcues timestamps carry milliseconds; the org stores ActivityDateTime without them.
TS = ["2026-03-01T09:00:00.789Z", "2026-03-01T09:00:00.123Z", "2026-03-01T09:10:59.999Z"]


def no_event_id(raw):
    del raw["objects"]["Event"]["fields"]["Appcues_Event_Id__c"]


# How the org drops the fraction is a guess (truncation); the match must hold either way.
STORED = {
    "truncate": ["2026-03-01T09:00:00", "2026-03-01T09:00:00", "2026-03-01T09:10:59"],
    "round": ["2026-03-01T09:00:00", "2026-03-01T09:00:01", "2026-03-01T09:11:00"],
}


@pytest.fixture(scope="module", params=sorted(STORED))
def ledger_org(request, variant_org):
    org = variant_org(no_event_id, options={"datetime_fraction": request.param})
    return request.param, org


def test_an_uncertain_insert_of_millisecond_events_is_found_by_the_second(
    ledger_org, kit, tmp_path
):
    fraction, org = ledger_org
    org.state_dir = tmp_path / "state"
    user = org.user("ms")
    contact = org.create("Contact", Product_User_Id__c=user)
    batch = [
        kit.event(user, "appcues:goal_reached", ts, f"{org.tag}-ms{i}", goalName=str(i))
        for i, ts in enumerate(TS)
    ]
    # They are in Salesforce already (an earlier run's insert whose answer was lost), stored
    # in whole seconds; this run's insert fails uncertainly, so it looks before retrying.
    written = org.client.insert(
        "Event",
        [
            {
                "WhoId": contact,
                "Subject": f"Appcues Goal Reached - {i}",
                "ActivityDateTime": ts,
                "DurationInMinutes": 1,
            }
            for i, ts in enumerate(TS)
        ],
    )
    assert all(r.success for r in written)
    stored = sorted(e["ActivityDateTime"] for e in org.events_of_plain(contact))
    assert stored == [f"{t}.000+0000" for t in STORED[fraction]]
    rule = {"match": {"method": "POST", "path": "/composite/sobjects$"}}
    org.control(
        "POST", "faults", {"rules": [{**rule, "action": "error", "status": 500, "times": 1}]}
    )
    try:
        # No event-id field on this org: the local ledger is chosen explicitly.
        kit.run_target(org.config(sync_nps_fields=False, event_id_field=""), batch)
    finally:
        org.control("DELETE", "faults")
    assert len(org.events_of_plain(contact)) == 3  # found by the second: none inserted twice
