"""Latest NPS fields by Bulk API 2.0 update: which objects get a job (only where it costs
fewer calls than the collections it replaces), the calls a mixed Lead/Contact job pair
costs, and a partial failure dead-lettering exactly the rows Salesforce refused."""

from __future__ import annotations

import pytest

from target_salesforce_events.nps_updates import objects_by_bulk
from target_salesforce_events.settings import (
    COLLECTIONS_PER_CALL,
    COMPOSITE_PER_CALL,
    EventSettings,
)

INGEST = "/services/data/vXX.X/jobs/ingest"
COLLECTIONS_UPDATE = "PATCH /services/data/vXX.X/composite/sobjects"
COMPOSITE_CALL = "POST /services/data/vXX.X/composite"


def settings(tmp_path, **config) -> EventSettings:
    return EventSettings.from_config({"state_dir": str(tmp_path), **config})


COMPOSITE, COLLECTIONS = COMPOSITE_PER_CALL, COLLECTIONS_PER_CALL  # records per REST call


@pytest.mark.parametrize(
    ("config", "counts", "per_call", "chosen"),
    [
        # in the pipeline the updates ride in Composite, 1,000 a call: past the default
        # threshold (2,000) a job (6 calls) is taken only where it saves more than 6 calls
        ({}, {"Contact": 2001, "Lead": 100}, COMPOSITE, set()),  # 3 calls against 6
        ({}, {"Contact": 1999, "Lead": 1999}, COMPOSITE, set()),
        ({}, {"Contact": 6001}, COMPOSITE, {"Contact"}),  # 7 calls against 6
        ({}, {"Contact": 6500, "Lead": 40}, COMPOSITE, set()),  # saves 7 - 1 = 6: a tie
        ({}, {"Contact": 7000, "Lead": 100}, COMPOSITE, {"Contact"}),  # saves 8 - 1
        ({"bulk_threshold": 0}, {"Contact": 6000}, COMPOSITE, set()),
        ({"bulk_threshold": 0}, {"Contact": 6500, "Lead": 6500}, COMPOSITE, {"Contact", "Lead"}),
        # plain collections (`NpsUpdates.update`), 200 a call
        ({}, {"Contact": 2001, "Lead": 100}, COLLECTIONS, {"Contact"}),
        ({}, {"Contact": 1999, "Lead": 1999}, COLLECTIONS, set()),
        ({"bulk_threshold": 0}, {"Contact": 150, "Lead": 40}, COLLECTIONS, set()),
        ({"bulk_threshold": 0}, {"Contact": 1200}, COLLECTIONS, set()),  # 6 either way
        ({"bulk_threshold": 0}, {"Contact": 1201}, COLLECTIONS, {"Contact"}),  # 7 against 6
        ({"bulk_threshold": 0}, {"Contact": 1500, "Lead": 40}, COLLECTIONS, {"Contact"}),
        ({"bulk_threshold": 0}, {"Contact": 1500, "Lead": 1300}, COLLECTIONS, {"Contact", "Lead"}),
        # forced either way, whatever the cost
        ({"api_type": "BULK2"}, {"Contact": 1, "Lead": 1}, COMPOSITE, {"Contact", "Lead"}),
        ({"api_type": "REST"}, {"Contact": 50_000}, COMPOSITE, set()),
    ],
)
def test_an_object_gets_a_job_only_where_it_costs_fewer_calls(
    tmp_path, config, counts, per_call, chosen
):
    assert objects_by_bulk(counts, settings(tmp_path, **config), per_call) == chosen


def spent_calls(org, before) -> dict[str, int]:
    after = org.control("GET", "stats")["calls"]
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


def text_score_of_one_character(raw):
    raw["objects"]["Contact"]["fields"]["Appcues_NPS_Score__c"] = {
        "type": "string",
        "length": 1,
        "label": "Appcues NPS Score",
    }


def test_a_partial_failure_of_an_nps_job_dead_letters_exactly_its_rows(variant_org, kit, tmp_path):
    """Contact's score is text of one character here: a score of 10 does not fit, so
    Salesforce fails those rows of the Contact job; every other answer is applied, the
    batch's STATE follows, and only the refused answers stay unconfirmed."""
    org = variant_org(text_score_of_one_character)
    org.state_dir = tmp_path / "state"
    contacts = {org.user(f"c{i}"): "" for i in range(5)}
    leads = {org.user(f"l{i}"): "" for i in range(2)}
    for user in contacts:
        contacts[user] = org.create("Contact", Product_User_Id__c=user)
    for user in leads:
        leads[user] = org.create("Lead", Product_User_Id__c=user)
    score = {u: 10 if i >= 3 else 9 for i, u in enumerate(contacts)} | dict.fromkeys(leads, 10)
    batch = []
    for n, user in enumerate(score):
        # an older answer first: only the latest of each record is sent
        batch.append(kit.event(user, "appcues:nps_score", "2026-05-01T09:00:00Z", f"o{n}", score=1))
        batch.append(
            kit.event(user, "appcues:nps_score", "2026-05-02T09:00:00Z", f"n{n}", score=score[user])
        )
    config = org.config(sync_events=False, api_type="BULK2")
    before = org.control("GET", "stats")["calls"]
    target, states = kit.run_target(config, batch)
    spent = spent_calls(org, before)

    assert states  # the refused rows are dead letters: the rest of the batch is confirmed
    refused = [u for u in contacts if score[u] == 10]
    letters = kit.dead_letters(config)
    assert sorted(letter["event_id"] for letter in letters) == sorted(
        f"n{list(score).index(u)}" for u in refused
    )
    for letter in letters:
        assert (letter["reason"], letter["part"]) == ("salesforce_rejected", "nps")
        assert letter["status"] == "STRING_TOO_LONG"
    for user, record_id in contacts.items():
        value = org.get("Contact", record_id, "Appcues_NPS_Score__c")["Appcues_NPS_Score__c"]
        assert value == (None if score[user] == 10 else "9")
    for record_id in leads.values():
        assert org.get("Lead", record_id, "Appcues_NPS_Score__c")["Appcues_NPS_Score__c"] == 10
    assert target.pipeline.summary.nps_records_updated == 5

    # One job per object, and failedResults read only for the job with a failed row.
    assert spent.pop(f"GET {INGEST}/{{id}}") >= 2  # the polls: machine speed decides
    spent.pop("POST /services/oauth2/token", None)  # not an API call
    assert spent == {
        "POST /services/data/vXX.X/composite/batch": 1,  # the describes
        "GET /services/data/vXX.X/query/": 2,  # Contacts, then Leads for the rest
        f"POST {INGEST}": 2,
        f"PUT {INGEST}/{{id}}/batches": 2,
        f"PATCH {INGEST}/{{id}}": 2,
        f"GET {INGEST}/{{id}}/successfulResults/": 2,
        f"GET {INGEST}/{{id}}/failedResults/": 1,
    }

    # A replay: the applied answers were confirmed and cost nothing; the refused ones are
    # tried again (and refused again), in collections since there are only two now.
    before = org.control("GET", "stats")["calls"]
    again, states = kit.run_target(org.config(sync_events=False), batch)
    spent = spent_calls(org, before)
    assert states
    # not confirmed: the refused answers, and the older ones of those records (what
    # supersedes them did not hold)
    assert again.pipeline.summary.confirmed_earlier == len(batch) - 4
    assert spent.get(COLLECTIONS_UPDATE) == 1
    assert not any(INGEST in k for k in spent)
    assert len(kit.dead_letters(config)) == 4


def test_a_low_threshold_sends_a_small_mixed_batch_by_collections(org, kit):
    """`bulk_threshold` 0 under AUTO: two jobs would cost 10+ calls, one mixed collections
    call does."""
    users = [org.user(f"low{i}") for i in range(4)]
    kinds = ["Contact", "Contact", "Contact", "Lead"]
    ids = [org.create(kind, Product_User_Id__c=u) for kind, u in zip(kinds, users, strict=True)]
    batch = [
        kit.event(u, "appcues:nps_score", "2026-05-03T09:00:00Z", f"{org.tag}-{i}", score=7)
        for i, u in enumerate(users)
    ]
    before = org.control("GET", "stats")["calls"]
    _, states = kit.run_target(org.config(sync_events=False, bulk_threshold=0), batch)
    spent = spent_calls(org, before)
    assert states
    assert spent.get(COLLECTIONS_UPDATE) == 1
    assert not any(INGEST in k for k in spent)
    for sobject, record_id in zip(kinds, ids, strict=True):
        assert org.get(sobject, record_id, "Appcues_NPS_Score__c")["Appcues_NPS_Score__c"] == 7


def nps_backfill(org, kit, n_contacts, n_leads, prefix):
    """`n_contacts` Contacts and `n_leads` Leads, one NPS answer each, run under AUTO with
    `bulk_threshold` 0; returns the users, the calls spent and the target."""
    users = [org.user(f"{prefix}{i:05d}") for i in range(n_contacts + n_leads)]
    contacts, leads = users[:n_contacts], users[n_contacts:]
    results = org.client.insert(
        "Contact", [{"LastName": "Big", "Product_User_Id__c": u} for u in contacts]
    ) + org.client.insert(
        "Lead", [{"LastName": "Big", "Company": "B", "Product_User_Id__c": u} for u in leads]
    )
    assert all(r.success for r in results)
    batch = [
        kit.event(u, "appcues:nps_score", "2026-05-04T09:00:00Z", f"{org.tag}-{i}", score=i % 11)
        for i, u in enumerate(users)
    ]
    before = org.control("GET", "stats")["calls"]
    target, states = kit.run_target(org.config(sync_events=False, bulk_threshold=0), batch)
    assert states
    return users, spent_calls(org, before), target


def test_nps_updates_ride_in_composite_where_a_job_would_cost_more(org, kit):
    """AUTO with `bulk_threshold` 0: 1,400 Contacts and 40 Leads are 8 collections, 2
    Composite calls, fewer than a job's 6: no job."""
    _, spent, target = nps_backfill(org, kit, 1400, 40, "mid")
    assert not any(INGEST in k for k in spent)
    assert spent.get(COMPOSITE_CALL) == 2
    assert target.pipeline.summary.nps_records_updated == 1440


def test_a_large_object_goes_by_a_job_and_a_small_one_by_collections(org, kit):
    """AUTO with `bulk_threshold` 0: 7,000 Contacts add 7 Composite calls to the 40 Leads'
    one call, more than a job's 6, so they get one update job. (At 6,000 Contacts it is 6
    against 6: Composite, which answers at once.)"""
    users, spent, target = nps_backfill(org, kit, 7000, 40, "big")
    contacts, leads = users[:7000], users[7000:]
    assert spent.get(f"POST {INGEST}") == 1  # Contacts only
    assert spent.get(COLLECTIONS_UPDATE) == 1  # the Leads (one collection: a plain call)
    assert COMPOSITE_CALL not in spent
    assert target.pipeline.summary.nps_records_updated == 7040
    assert kit.dead_letters(org.config()) == []
    for sobject, ids in (("Contact", contacts[:5] + contacts[-5:]), ("Lead", leads)):
        rows = org.query(
            f"SELECT Product_User_Id__c, Appcues_NPS_Score__c FROM {sobject} "
            f"WHERE Product_User_Id__c IN ({', '.join(repr(u) for u in ids)})"
        )
        assert {r["Product_User_Id__c"]: r["Appcues_NPS_Score__c"] for r in rows} == {
            u: users.index(u) % 11 for u in ids
        }
