"""A run given a catalog builds its streams from it: no describe call, the same records."""

from __future__ import annotations

import logging

from hypothesis import given
from hypothesis import strategies as st

from tap_salesforce_appcues.records import RecordShaper
from tap_salesforce_appcues.schema_mapping import (
    ObjectInfo,
    catalog_object,
    component_field,
    component_key,
    object_schema,
    resolve_path,
)
from tap_salesforce_appcues.tap import TapSalesforceAppcues

DESCRIBE = "POST /services/data/vXX.X/composite/batch"
OBJECTS = {
    "user_objects": ["Contact", "Lead"],
    "account_object": "Account",
    "relationship_fields": {"Contact": ["Account.Owner.Email", "Account.Product_Account_Id__c"]},
}


def discovered(cfg: dict) -> dict:
    tap = TapSalesforceAppcues(config=cfg)
    catalog = tap.catalog_dict
    tap.close_clients()
    return catalog


def by_id(records: list[dict]) -> dict[str, dict]:
    return {r["Id"]: r for r in records}


# --- rebuilding from a schema ----------------------------------------------------------------
def test_a_catalog_schema_rebuilds_the_described_object(contact_describe, account_describe):
    contact = ObjectInfo.from_describe(contact_describe)
    account = ObjectInfo.from_describe(account_describe)
    paths = ["Account.Product_Account_Id__c"]
    parents = [resolve_path(contact, p, {"Account": account})[0] for p in paths]
    assert all(parents)
    schema = object_schema(contact, parents)  # type: ignore[arg-type]

    rebuilt = catalog_object("Contact", schema, paths)
    assert rebuilt is not None
    info, rebuilt_paths = rebuilt
    assert info.from_catalog
    assert object_schema(info, rebuilt_paths) == schema
    selected = list(schema["properties"])
    described = RecordShaper(contact, selected, parents)  # type: ignore[arg-type]
    from_catalog = RecordShaper(info, selected, rebuilt_paths)
    assert from_catalog.soql() == described.soql()
    row = dict.fromkeys(described.columns) | {
        "Id": "003000000000001AAA",
        "MailingCity": "Lyon",
        "Score__c": "1.5",
        "NumberOfThings__c": "7",
        "Opted_In__c": "true",
        "SystemModstamp": "2026-06-01T12:00:00.000+0000",
        "Account.Product_Account_Id__c": "acct-1",
    }
    assert from_catalog.from_bulk(row) == described.from_bulk(row)


def test_a_catalog_without_a_configured_parent_path_is_not_used(contact_describe):
    schema = object_schema(ObjectInfo.from_describe(contact_describe), [])
    assert catalog_object("Contact", schema, ["Account.Product_Account_Id__c"]) is None
    assert catalog_object("Contact", schema, ["Account"]) is None  # not a parent path
    assert catalog_object("Contact", schema, []) is not None


@given(
    prefix=st.sampled_from(["Billing", "Shipping", "Mailing", "Other", ""]),
    part=st.from_regex(r"[A-Z][A-Za-z]{0,15}", fullmatch=True),
)
def test_component_names_round_trip(prefix, part):
    compound = f"{prefix}Address"
    assert component_field(compound, component_key(compound, prefix + part)) == prefix + part
    geo = "Site_Location__c"
    name = f"Site_Location__{part}__s"
    assert component_field(geo, component_key(geo, name)) == name


# --- runs against the sandbox ----------------------------------------------------------------
def test_a_run_with_a_catalog_makes_no_describe_and_reads_the_same(org, config, run, t0):
    org.call("POST", "seed", {"Account": 10, "Contact": 30, "Lead": 15, "seed": 21})
    for api_type in ("REST", "BULK2"):
        cfg = config(api_type=api_type, **OBJECTS)
        catalog = discovered(cfg)
        before = org.calls().get(DESCRIBE, 0)
        records = run(cfg, catalog=catalog).records
        assert org.calls().get(DESCRIBE, 0) == before, api_type  # no describe this run
        assert {"Account", "Contact", "Lead"} <= set(records)

        # The same run through discovery (describes) gives the very same records.
        tap = TapSalesforceAppcues(config=cfg)
        fresh_catalog = tap.catalog_dict
        tap.close_clients()
        assert fresh_catalog == catalog
        again = run(cfg)  # no catalog: described, every stream selected
        for stream in ("Account", "Contact", "Lead"):
            assert by_id(records[stream]) == by_id(again.records[stream]), (api_type, stream)
        contact = next(r for r in records["Contact"] if r.get("MailingAddress"))
        assert set(contact["MailingAddress"]) >= {"street", "city", "postalCode"}
        with_parent = [r for r in records["Contact"] if r["AccountId"]]
        assert with_parent and all("@" in r["Account"]["Owner"]["Email"] for r in with_parent)


def test_a_catalog_older_than_the_settings_is_described(org, config, run, t0):
    org.call("POST", "seed", {"Account": 5, "Contact": 10, "seed": 3})
    old = discovered(config(user_objects=["Contact"], relationship_fields={}))
    cfg = config(user_objects=["Contact"])  # now with Account.Product_Account_Id__c
    before = org.calls().get(DESCRIBE, 0)
    records = run(cfg, catalog=old).records
    assert org.calls().get(DESCRIBE, 0) > before
    # The old catalog's selection still decides: its schema had no Account parent.
    assert all("Account" not in r for r in records["Contact"])
    assert records["Account"]


def test_a_field_gone_from_the_org_is_dropped_with_a_warning(org, config, run, t0, caplog):
    org.call("POST", "seed", {"Account": 5, "Contact": 10, "seed": 3})
    cfg = config(user_objects=["Contact"], api_type="REST")
    catalog = discovered(cfg)
    contact = next(s for s in catalog["streams"] if s["tap_stream_id"] == "Contact")
    # A custom field deleted in Salesforce after the catalog was discovered.
    contact["schema"]["properties"]["Retired_Field__c"] = {"type": ["string", "null"]}
    contact["metadata"].append(
        {
            "breadcrumb": ["properties", "Retired_Field__c"],
            "metadata": {"inclusion": "available", "selected": True},
        }
    )
    with caplog.at_level(logging.WARNING):
        records = run(cfg, catalog=catalog).records
    assert len(records["Contact"]) == 10
    assert all("Retired_Field__c" not in r and r["Email"] for r in records["Contact"])
    assert "reading without Retired_Field__c" in caplog.text
