"""Latest NPS fields in the org: out-of-order answers within and across runs; converted Leads."""

from __future__ import annotations

import sqlite3

import pytest

from salesforce_appcues_clients.errors import SalesforceError

SCORE, FEEDBACK = "Appcues_NPS_Score__c", "Appcues_NPS_Feedback__c"


def nps(org, record_id, sobject="Contact", *extra):
    row = org.get(sobject, record_id, SCORE, FEEDBACK, *extra)
    return (row[SCORE], row[FEEDBACK], *(row[f] for f in extra))


def test_latest_wins_within_a_batch_and_across_runs(org, kit):
    user = org.user("nps")
    contact = org.create("Contact", Product_User_Id__c=user)
    lead_user = org.user("nps-lead")
    lead = org.create("Lead", Product_User_Id__c=lead_user)
    config = org.config()
    first_batch = [  # newest first: arrival order must not matter
        kit.event(user, "appcues:nps_score", "2026-04-02T10:00:00Z", f"{org.tag}-s2", score=9),
        kit.event(user, "appcues:nps_score", "2026-04-01T10:00:00Z", f"{org.tag}-s1", score=2),
        kit.event(
            user,
            "appcues:nps_feedback",
            "2026-04-01T10:00:05Z",
            f"{org.tag}-f1",
            feedback="Needs work",
        ),
        kit.event(
            lead_user,
            "appcues:nps_score_and_feedback",
            "2026-04-01T08:00:00Z",
            f"{org.tag}-b1",
            score="6",
            feedback="Fine",
        ),
    ]
    target, _ = kit.run_target(config, first_batch)
    assert nps(org, contact) == (9.0, "Needs work")
    assert nps(org, lead, "Lead") == (6.0, "Fine")
    assert target.pipeline.summary.nps_records_updated == 2

    late = [  # an older answer arriving in a later run never overwrites the newer one
        kit.event(user, "appcues:nps_score", "2026-04-01T12:00:00Z", f"{org.tag}-s0", score=0),
        kit.event(
            user,
            "appcues:nps_feedback",
            "2026-04-03T00:00:00Z",
            f"{org.tag}-f2",
            feedback="Much better",
        ),
    ]
    second, _ = kit.run_target(config, late)
    assert nps(org, contact) == (9.0, "Much better")
    assert second.pipeline.summary.nps_answers_superseded == 1

    _, _ = kit.run_target(
        config,
        [kit.event(user, "appcues:nps_score", "2026-04-05T00:00:00Z", f"{org.tag}-s3", score=10)],
    )
    assert nps(org, contact) == (10.0, "Much better")
    # Every NPS answer was also written as an Event.
    assert len(org.events_of(contact)) == 6


def test_invalid_score_is_dead_lettered_and_the_event_still_written(org, kit):
    user = org.user("bad-score")
    contact = org.create("Contact", Product_User_Id__c=user)
    config = org.config()
    kit.run_target(
        config,
        [
            kit.event(
                user, "appcues:nps_score", "2026-04-01T10:00:00Z", f"{org.tag}-x", score="eleven"
            )
        ],
    )
    assert nps(org, contact) == (None, None)
    (letter,) = kit.dead_letters(config)
    assert (letter["reason"], letter["part"]) == ("invalid_nps_score", "nps")
    assert len(org.events_of(contact)) == 1


def with_nps_date(raw):
    for obj in ("Contact", "Lead"):
        raw["objects"][obj]["fields"]["NPS_Date__c"] = {"type": "datetime", "label": "NPS Date"}


@pytest.fixture(scope="module")
def dated_org(variant_org):
    return variant_org(with_nps_date)


def test_date_field_decides_across_runs_without_the_ledger(dated_org, kit, tmp_path):
    org = dated_org
    user = org.user("dated")
    contact = org.create("Contact", Product_User_Id__c=user)
    run = 0

    def fresh_config():  # a new state folder each run: no ledger to lean on
        nonlocal run
        run += 1
        org.state_dir = tmp_path / f"state-{run}"
        return org.config(nps_date_field="NPS_Date__c", sync_events=False)

    kit.run_target(
        fresh_config(),
        [kit.event(user, "appcues:nps_score", "2026-05-02T10:00:00Z", "d2", score=8)],
    )
    assert nps(org, contact, "Contact", "NPS_Date__c") == (
        8.0,
        None,
        "2026-05-02T10:00:00.000+0000",
    )
    late, _ = kit.run_target(
        fresh_config(),
        [kit.event(user, "appcues:nps_score", "2026-05-01T10:00:00Z", "d1", score=1)],
    )
    assert nps(org, contact)[0] == 8.0
    assert late.pipeline.summary.nps_answers_superseded == 1
    with sqlite3.connect(tmp_path / f"state-{run}" / "ledger.sqlite3") as db:
        # A fresh ledger knows nothing of the record: the date on it decided (nothing written).
        assert db.execute("SELECT COUNT(*) FROM nps_latest").fetchone() == (0,)
    kit.run_target(
        fresh_config(),
        [
            kit.event(
                user,
                "appcues:nps_score_and_feedback",
                "2026-05-03T10:00:00Z",
                "d3",
                score=4,
                feedback="ok",
            )
        ],
    )
    assert nps(org, contact, "Contact", "NPS_Date__c") == (
        4.0,
        "ok",
        "2026-05-03T10:00:00.000+0000",
    )


@pytest.fixture(scope="module")
def seeded_org(variant_org):
    return variant_org(None, seed={"Account": 5, "Contact": 40, "Lead": 120, "seed": 7})


def test_a_converted_lead_resolves_to_its_contact(seeded_org, kit, tmp_path):
    org = seeded_org
    org.state_dir = tmp_path / "state"
    converted = org.query(
        "SELECT Id, Product_User_Id__c, ConvertedContactId FROM Lead "
        "WHERE IsConverted = true AND Product_User_Id__c != null"
    )
    assert converted, "the seed makes some converted leads with product user ids"
    taken = {
        r["Product_User_Id__c"]
        for r in org.query(
            "SELECT Product_User_Id__c FROM Contact WHERE Product_User_Id__c != null"
        )
    }
    lead = next(r for r in converted if r["Product_User_Id__c"] not in taken)
    user = lead["Product_User_Id__c"]
    config = org.config()
    _, states = kit.run_target(
        config,
        [
            kit.event(user, "appcues:goal_reached", "2026-04-01T10:00:00Z", "conv-1", goalName="G"),
            kit.event(user, "appcues:nps_score", "2026-04-01T10:00:00Z", "conv-2", score=5),
        ],
    )
    events = org.events_of(lead["ConvertedContactId"])
    assert sorted(e["Appcues_Event_Id__c"] for e in events) == ["conv-1", "conv-2"]
    assert org.events_of(lead["Id"]) == []
    assert org.get("Contact", lead["ConvertedContactId"], SCORE)[SCORE] == 5.0
    assert kit.dead_letters(config) == [] and states


DESCRIBES = "POST /services/data/vXX.X/composite/batch"


def describes_made(org, run):
    before = org.control("GET", "stats")["calls"].get(DESCRIBES, 0)
    result = run()
    return org.control("GET", "stats")["calls"].get(DESCRIBES, 0) - before, result


def converted_lead_user(org):
    taken = {
        r["Product_User_Id__c"]
        for r in org.query(
            "SELECT Product_User_Id__c FROM Contact WHERE Product_User_Id__c != null"
        )
    }
    return next(
        r
        for r in org.query(
            "SELECT Id, Product_User_Id__c, ConvertedContactId FROM Lead "
            "WHERE IsConverted = true AND Product_User_Id__c != null"
        )
        if r["Product_User_Id__c"] not in taken
    )


def test_leads_only_one_describe_batch_covers_the_converted_leads_contacts(
    seeded_org, kit, tmp_path
):
    org = seeded_org
    org.state_dir = tmp_path / "state"
    lead = converted_lead_user(org)
    user = lead["Product_User_Id__c"]
    config = org.config(user_objects=["Lead"])
    records = [kit.event(user, "appcues:nps_score", "2026-04-02T10:00:00Z", "conv-3", score=3)]
    describes, _ = describes_made(org, lambda: kit.run_target(config, records))
    assert describes == 1, "Lead, Event and Contact in one composite/batch"
    assert org.get("Contact", lead["ConvertedContactId"], SCORE)[SCORE] == 3.0


def contact_hidden(raw):
    raw["profile"]["objects"]["Contact"] = {
        "create": False,
        "read": False,
        "edit": False,
        "delete": False,
    }


def test_leads_only_with_contact_hidden_still_runs(variant_org, kit):
    org = variant_org(contact_hidden)
    with pytest.raises(SalesforceError) as hidden:
        org.client.describe(["Contact"])
    assert hidden.value.error_code == "NOT_FOUND"
    user = org.user("hidden")
    lead = org.create("Lead", Product_User_Id__c=user)
    config = org.config(user_objects=["Lead"])
    records = [kit.event(user, "appcues:nps_score", "2026-04-02T10:00:00Z", "hid-1", score=4)]
    describes, (target, states) = describes_made(org, lambda: kit.run_target(config, records))
    # Contact's describe is refused; the client kept Lead's and Event's from the same batch.
    assert describes == 1
    assert org.get("Lead", lead, SCORE)[SCORE] == 4.0
    assert sum(target.pipeline.summary.events_written.values()) == 1
    assert states
