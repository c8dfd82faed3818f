"""REST and Bulk 2.0 give the same records for the same seeded data; AUTO picks by totalSize."""

from __future__ import annotations

from datetime import timedelta

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


def _delta(org, before: dict[str, int]) -> dict[str, int]:
    after = org.calls()
    return {k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0)}


def _rest_queries(delta: dict[str, int]) -> int:
    return sum(
        n
        for k, n in delta.items()
        if k.startswith("GET ") and "/query" in k.lower() and "/jobs/" not in k
    )


def test_auto_sizes_every_incremental_window_at_no_extra_call(org, config, run, t0):
    """A regular run (state, five minutes later) still picks Bulk for a big window."""
    cfg = {"user_objects": ["Contact"], "account_object": "", "relationship_fields": {}}
    cfg["lookback_window"] = 0
    second = timedelta(seconds=1)
    org.write("Contact", [{"LastName": f"a{i}"} for i in range(5)], modstamp=t0 - 60 * second)
    first = run(config(bulk_threshold=20, **cfg), streams=["Contact"])
    assert len(first.records["Contact"]) == 5

    # 25 changes arrive before the next scheduled run: above the threshold of 20.
    org.advance_clock(300)
    org.write("Contact", [{"LastName": f"b{i}"} for i in range(25)], modstamp=t0 + 100 * second)
    before = org.calls()
    big = run(config(bulk_threshold=20, **cfg), first.state, streams=["Contact"])
    delta = _delta(org, before)
    assert len(big.records["Contact"]) == 25
    assert _rest_queries(delta) == 1, delta  # the sizing page only; none of it re-read
    assert _jobs(org) - before.get("POST /services/data/vXX.X/jobs/query", 0) == 1
    assert big.bookmark("Contact") == "2026-06-01T12:01:40.000Z"

    # Three changes by the run after: REST, and the sizing page is the read itself.
    org.advance_clock(300)
    org.write("Contact", [{"LastName": f"c{i}"} for i in range(3)], modstamp=t0 + 400 * second)
    before = org.calls()
    small = run(config(bulk_threshold=20, **cfg), big.state, streams=["Contact"])
    delta = _delta(org, before)
    assert sorted(r["LastName"] for r in small.records["Contact"]) == ["c0", "c1", "c2"]
    assert _rest_queries(delta) == 1, delta
    assert not any("jobs/query" in k for k in delta), delta
    # The discovery describe and the one query: the whole run.
    assert small.calls == {"salesforce": 2, "appcues": 0}


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
    assert org.fired() == 1
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
    assert org.fired() == 1
    assert len(set(result.ids("Contact"))) == 40
    assert _jobs(org) - jobs == 3  # the refused job, then one per half
