"""Collections operations sent together by Composite, against the Salesforce sandbox."""

from __future__ import annotations

import json

import pytest

from salesforce_appcues_clients import soql
from salesforce_appcues_clients.errors import RetriesExhaustedError
from salesforce_appcues_clients.salesforce_composite import (
    CollectionOp,
    Composite,
    CompositeUncertainError,
)
from salesforce_appcues_clients.salesforce_transport import composite_is_idempotent, is_replay_safe

COMPOSITE = r"/services/data/v[\d.]+/composite$"
COMPOSITE_KEY = "POST /services/data/vXX.X/composite"


def _composites(sf_control):
    return sf_control.calls().get(COMPOSITE_KEY, 0)


def _count(sf, tag):
    return sf.query_count(f"SELECT COUNT() FROM Contact WHERE LastName = {soql.quote(tag)}")


def _upserts(tag, n, start=0):
    return [{"LastName": tag, "Product_User_Id__c": f"{tag}-{i}"} for i in range(start, start + n)]


def test_ops_go_in_one_call_with_each_ops_results(sf, sf_control, tag):
    existing = sf.insert("Contact", [{"LastName": tag}, {"LastName": tag}])
    before = _composites(sf_control)
    ops = [
        CollectionOp.upsert("Contact", "Product_User_Id__c", _upserts(tag, 3)),
        CollectionOp.update_mixed(
            [
                {"attributes": {"type": "Contact"}, "Id": existing[0].id, "FirstName": "A"},
                {"attributes": {"type": "Contact"}, "Id": existing[1].id, "LastName": ""},
            ]
        ),
        CollectionOp.insert("Contact", [{"LastName": tag, "FirstName": "new"}]),
    ]
    upserted, updated, inserted = sf.write_together(ops)
    assert _composites(sf_control) - before == 1
    assert [(r.index, r.success, r.created) for r in upserted] == [
        (0, True, True),
        (1, True, True),
        (2, True, True),
    ]
    # a partial failure inside one subrequest: that record only
    assert [(r.index, r.success) for r in updated] == [(0, True), (1, False)]
    assert updated[1].errors[0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert inserted[0].success and inserted[0].id.startswith("003")
    assert _count(sf, tag) == 2 + 3 + 1


def test_five_collections_a_call_by_chunking(sf, sf_control, tag):
    before = _composites(sf_control)
    records = _upserts(tag, 1201)  # 7 collections of 200 (the last holds 1)
    ops = [CollectionOp.upsert("Contact", "Product_User_Id__c", records)]
    assert Composite.calls_needed(ops) == 2
    (results,) = sf.write_together(ops)
    assert _composites(sf_control) - before == 2  # 5 + 2 collections; the sandbox refuses 6
    assert [r.index for r in results] == list(range(1201))
    assert all(r.success for r in results)
    assert _count(sf, tag) == 1201


def test_an_idempotent_composite_is_resent_after_a_5xx(sf, sf_control, tag):
    sf_control.faults(
        {
            "match": {"method": "POST", "path": COMPOSITE},
            "action": "error",
            "status": 500,
            "times": 1,
        }
    )
    results = sf.write_together(
        [
            CollectionOp.upsert("Contact", "Product_User_Id__c", _upserts(tag, 2)),
            CollectionOp.upsert("Contact", "Product_User_Id__c", _upserts(tag, 1, start=2)),
        ]
    )
    assert sf_control.fired_by_rule() == [1]
    assert [[r.success for r in op] for op in results] == [[True, True], [True]]
    assert _count(sf, tag) == 3


def test_a_composite_carrying_an_insert_is_not_resent_after_a_5xx(sf, sf_control, tag):
    sf_control.faults(
        {
            "match": {"method": "POST", "path": COMPOSITE},
            "action": "error",
            "status": 500,
            "times": 1,
        }
    )
    ops = [
        CollectionOp.upsert("Contact", "Product_User_Id__c", _upserts(tag, 1)),
        CollectionOp.insert("Contact", [{"LastName": tag}]),
    ]
    with pytest.raises(CompositeUncertainError, match="not retried") as raised:
        sf.write_together(ops)
    assert raised.value.uncertain == {0, 1}
    assert sf_control.fired_by_rule() == [1]
    assert _count(sf, tag) == 0


def test_a_composite_carrying_an_insert_is_resent_after_503(sf, sf_control, tag):
    sf_control.faults(
        {
            "match": {"method": "POST", "path": COMPOSITE},
            "action": "error",
            "status": 503,
            "times": 1,
        }
    )
    ops = [CollectionOp.insert("Contact", [{"LastName": tag}])] * 2
    inserted = sf.write_together(ops)
    assert sf_control.fired_by_rule() == [1]
    assert [op[0].success for op in inserted] == [True, True] and _count(sf, tag) == 2


def test_a_lasting_5xx_exhausts_the_retries(sf, sf_control, tag):
    sf_control.faults(
        {"match": {"method": "POST", "path": COMPOSITE}, "action": "error", "status": 500}
    )
    op = CollectionOp.upsert("Contact", "Product_User_Id__c", _upserts(tag, 1))
    with pytest.raises(RetriesExhaustedError):
        sf.write_together([op, op])
    assert _count(sf, tag) == 0


def test_a_lone_collection_goes_as_the_plain_collections_call(sf, sf_control, tag):
    before = dict(sf_control.calls())
    (results,) = sf.write_together([CollectionOp.insert("Contact", [{"LastName": tag}])])
    after = sf_control.calls()
    assert after.get(COMPOSITE_KEY, 0) == before.get(COMPOSITE_KEY, 0)
    key = "POST /services/data/vXX.X/composite/sobjects"
    assert after[key] - before.get(key, 0) == 1
    assert results[0].success and _count(sf, tag) == 1


def test_a_lone_insert_left_uncertain_names_its_operation(sf, sf_control, tag):
    sf_control.faults(
        {
            "match": {"method": "POST", "path": r"/composite/sobjects$"},
            "action": "reset",
            "times": 1,
        }
    )
    with pytest.raises(CompositeUncertainError) as raised:
        sf.write_together([CollectionOp.insert("Contact", [{"LastName": tag}])])
    assert raised.value.uncertain == {0} and raised.value.results == [[]]


def test_replay_safety_is_read_from_the_subrequests():
    path = "/services/data/v61.0/composite"
    patch_only = {"compositeRequest": [{"method": "PATCH", "url": "x", "referenceId": "a"}]}
    with_post = {"compositeRequest": [*patch_only["compositeRequest"], {"method": "POST"}]}
    assert is_replay_safe("POST", path, json.dumps(patch_only).encode())
    assert not is_replay_safe("POST", path, json.dumps(with_post).encode())
    assert not is_replay_safe("POST", path, b"not json")
    assert not composite_is_idempotent(None)
    assert not is_replay_safe("POST", "/services/data/v61.0/composite/sobjects", b"{}")


def test_ops_validate_names_and_ids():
    with pytest.raises(ValueError):
        CollectionOp.upsert("Contact", "bad field", [])
    with pytest.raises(ValueError, match="no Id"):
        CollectionOp.update_mixed([{"attributes": {"type": "Lead"}, "FirstName": "x"}])


def test_collections_are_packed_five_a_call_across_operations():
    from salesforce_appcues_clients.salesforce_composite import _calls

    upserts = CollectionOp.upsert("Event", "Ext__c", [{"Ext__c": str(i)} for i in range(450)])
    mixed = CollectionOp.update_mixed(
        [{"attributes": {"type": f"T{i % 11}__c"}, "Id": f"a0{i}"} for i in range(22)]
    )
    calls = list(_calls([upserts, mixed]))
    # 450 upserts: 3 collections; 22 updates of 11 types: 2 (at most 10 types a collection)
    assert [[(sub.op, len(sub.chunk)) for sub in call] for call in calls] == [
        [(0, 200), (0, 200), (0, 50), (1, 20), (1, 2)]
    ]
    assert Composite.calls_needed([upserts, mixed, upserts]) == 2
    # grouped by type, first-seen order, input positions kept
    assert [i for i, _, _ in calls[0][3].chunk][:3] == [0, 11, 1]
