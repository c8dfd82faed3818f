"""1,000 events cost ceil((ceil(N/200) Event collections + ceil(users/200) NPS collections) / 5)
Composite calls + the lookups."""

from __future__ import annotations

import math

from salesforce_appcues_clients import soql


def test_a_thousand_events_stay_within_the_call_budget(org, kit):
    users = [org.user(f"budget{i:03d}") for i in range(250)]
    # 210 Contacts and 40 Leads: written per object, NPS would cost 2 + 1 calls; mixed, 2.
    contacts, leads = users[:210], users[210:]
    results = org.client.insert(
        "Contact", [{"LastName": "Budget", "Product_User_Id__c": u} for u in contacts]
    ) + org.client.insert(
        "Lead", [{"LastName": "Budget", "Company": "B", "Product_User_Id__c": u} for u in leads]
    )
    assert all(r.success for r in results)
    names = ["appcues:flow_completed", "appcues:goal_reached", "appcues:checklist_completed"]
    records = [
        kit.event(
            users[i % 250],
            names[i % 3],
            f"2026-06-01T10:{i // 60 % 60:02d}:{i % 60:02d}Z",
            f"{org.tag}-{i}",
            flowName="F",
            goalName="G",
            checklistName="C",
        )
        for i in range(750)
    ] + [
        kit.event(u, "appcues:nps_score", "2026-06-02T10:00:00Z", f"{org.tag}-n{i}", score=i % 11)
        for i, u in enumerate(users)
    ]
    assert len(records) == 1000
    before = org.control("GET", "stats")["calls"]
    target, states = kit.run_target(org.config(), records)
    after = org.control("GET", "stats")["calls"]
    delta = {
        k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)
    }

    composites = delta.get("POST /services/data/vXX.X/composite")
    assert not any("composite/sobjects" in k for k in delta)  # every write went by Composite
    lookups = sum(v for k, v in delta.items() if "/query" in k)
    # Contacts first (all 250 ids asked), then Leads for the 40 still unmatched.
    expected_lookups = len(
        list(
            soql.in_chunks(
                "SELECT Id, Product_User_Id__c FROM Contact WHERE", "Product_User_Id__c", users
            )
        )
    ) + len(
        list(
            soql.in_chunks(
                "SELECT Id, Product_User_Id__c, IsConverted, ConvertedContactId FROM Lead WHERE",
                "Product_User_Id__c",
                sorted(leads),
            )
        )
    )
    collections = math.ceil(1000 / 200) + math.ceil(250 / 200)  # Contacts and Leads share
    assert composites == math.ceil(collections / 5) == 2  # 7 collections, 5 a call
    assert lookups == expected_lookups
    api_calls = sum(v for k, v in delta.items() if k.split(" ")[1].startswith("/services/data"))
    assert api_calls == composites + lookups + 1  # + one batched describe
    assert target.pipeline.summary.api_calls == api_calls
    assert sum(target.pipeline.summary.events_written.values()) == 1000
    assert target.pipeline.summary.nps_records_updated == 250
    assert states
    for sobject, ids in (("Contact", contacts), ("Lead", leads)):
        prefix = f"SELECT Product_User_Id__c, Appcues_NPS_Score__c FROM {sobject} WHERE"
        scores = {
            row["Product_User_Id__c"]: row["Appcues_NPS_Score__c"]
            for query in soql.in_chunks(prefix, "Product_User_Id__c", ids)
            for row in org.client.query(query)
        }
        assert scores == {u: users.index(u) % 11 for u in ids}, sobject
