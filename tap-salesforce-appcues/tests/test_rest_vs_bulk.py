"""REST and Bulk 2.0 give the same records for the same seeded data; AUTO picks by a COUNT()."""

from __future__ import annotations

import jsonschema

from tap_salesforce_appcues.tap import TapSalesforceAppcues

OBJECTS = {"user_objects": ["Contact", "Lead"], "account_object": "Account"}


def _seed(org, t0):
    org.call("POST", "seed", {"Account": 15, "Contact": 40, "Lead": 20, "seed": 11})


def _jobs(org) -> int:
    """Bulk 2.0 query jobs created so far."""
    return org.calls().get("POST /services/data/vXX.X/jobs/query", 0)


def test_rest_and_bulk_records_are_identical(org, config, run, t0):
    _seed(org, t0)
    rest = run(config(api_type="REST", **OBJECTS))
    jobs_before = _jobs(org)
    bulk = run(config(api_type="BULK2", **OBJECTS))
    assert _jobs(org) > jobs_before  # the Bulk run really used Bulk 2.0 jobs
    tap = TapSalesforceAppcues(config=config(**OBJECTS))
    for stream in ("Account", "Contact", "Lead"):
        by_id_rest = {r["Id"]: r for r in rest.records[stream]}
        by_id_bulk = {r["Id"]: r for r in bulk.records[stream]}
        assert by_id_rest, stream
        assert by_id_rest == by_id_bulk, stream
        for rid, record in by_id_rest.items():
            other = by_id_bulk[rid]
            assert {k: type(v) for k, v in record.items()} == {k: type(v) for k, v in other.items()}
        schema = tap.streams[stream].schema
        for record in by_id_rest.values():
            jsonschema.validate(record, schema)
    # Compound and parent fields are present and rebuilt the same way on both paths.
    contact = next(r for r in rest.records["Contact"] if r.get("MailingAddress"))
    assert set(contact["MailingAddress"]) >= {"street", "city", "postalCode", "country"}
    assert "Product_Account_Id__c" in contact["Account"]
    for stream in ("Account", "Contact", "Lead"):
        assert rest.bookmark(stream) == bulk.bookmark(stream)
    tap.close_clients()


def test_auto_uses_bulk_above_the_threshold_and_rest_below(org, config, run, t0):
    _seed(org, t0)
    jobs = _jobs(org)
    small = run(config(bulk_threshold=1000, **OBJECTS))
    assert _jobs(org) == jobs  # 75 records: REST
    large = run(config(bulk_threshold=10, **OBJECTS))
    assert _jobs(org) == jobs + 3  # every object above 10 records: one Bulk job each
    assert small.records == large.records


def test_bulk_refusal_falls_back_to_rest(org, config, run, t0):
    _seed(org, t0)
    org.faults(
        {
            "match": {"method": "POST", "path": "jobs/query"},
            "action": "error",
            "status": 400,
            "error_code": "INVALIDENTITY",
            "message": "Entity 'Contact' is not supported by the Bulk API.",
        }
    )
    refused = run(config(api_type="BULK2", **OBJECTS), streams=["Contact"])
    assert org.injected() == 1
    assert len(refused.records["Contact"]) == 40


def test_custom_account_object_and_deep_parent_paths(org, config, run, t0):
    org.call("POST", "seed", {"Account": 5, "Workspace__c": 8, "Contact": 10, "seed": 4})
    cfg = {
        "user_objects": ["Contact"],
        "account_object": "Workspace__c",
        "relationship_fields": {
            "Workspace__c": ["Account__r.Product_Account_Id__c"],
            "Contact": ["Account.Owner.Email", "Account.Name"],
        },
    }
    rest = run(config(api_type="REST", **cfg))
    bulk = run(config(api_type="BULK2", **cfg))
    for stream in ("Workspace__c", "Contact"):
        assert rest.records[stream]
        assert sorted(rest.records[stream], key=lambda r: r["Id"]) == sorted(
            bulk.records[stream], key=lambda r: r["Id"]
        )
    workspace = rest.records["Workspace__c"][0]
    assert set(workspace["Account__r"]) == {"Product_Account_Id__c"}
    with_parent = [r for r in rest.records["Contact"] if r["AccountId"]]
    assert with_parent
    for contact in with_parent:
        assert contact["Account"]["Name"]
        assert "@" in contact["Account"]["Owner"]["Email"]


def test_bulk_query_timeout_halves_the_window(org, config, run, t0):
    _seed(org, t0)
    org.faults(
        {
            "match": {"method": "POST", "path": "jobs/query"},
            "action": "error",
            "status": 400,
            "error_code": "QUERY_TIMEOUT",
            "times": 1,
        }
    )
    jobs = _jobs(org)
    result = run(config(api_type="BULK2", **OBJECTS), streams=["Contact"])
    assert org.injected() == 1
    assert len(set(result.ids("Contact"))) == 40
    assert _jobs(org) - jobs == 3  # the refused job, then one per half
