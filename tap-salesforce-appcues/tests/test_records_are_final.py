"""Shaped records are final: singer-sdk's type conformance would not change one of them.

The streams turn that conformance off (`CheckpointedStream.TYPE_CONFORMANCE_LEVEL`); these
tests hold the shaper to what conformance used to guarantee, with the SDK's own conformance
function as the oracle, and check that a catalog whose schema differs turns it back on.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime

import jsonschema
from hypothesis import given, settings
from hypothesis import strategies as st
from singer_sdk.helpers._typing import conform_record_data_types  # the SDK's own, as oracle
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.singerlib import Catalog

from tap_salesforce_appcues.records import RecordShaper
from tap_salesforce_appcues.schema_mapping import ObjectInfo, object_schema, resolve_path
from tap_salesforce_appcues.tap import TapSalesforceAppcues

TEXT_TYPES = {"id", "reference", "string", "email", "multipicklist", "picklist", "textarea"}
PARENT = "Account.Product_Account_Id__c"
instants = st.datetimes(  # hypothesis takes naive bounds
    min_value=datetime(1000, 1, 1),  # noqa: DTZ001
    max_value=datetime(9999, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
)


def rest_value(sf_type: str, nillable: bool) -> st.SearchStrategy:
    """What a REST JSON body can hold for a field of `sf_type`."""
    if sf_type == "boolean":
        return st.booleans()
    if sf_type == "int":
        base: st.SearchStrategy = st.integers(-(10**15), 10**15)
    elif sf_type in ("double", "currency"):
        base = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-1000, 1000)
    elif sf_type == "date":
        base = st.dates().map(lambda d: d.isoformat())
    elif sf_type == "datetime":
        base = instants.map(lambda m: m.strftime("%Y-%m-%dT%H:%M:%S.") + "123+0000")
    else:
        base = st.text(min_size=0 if nillable else 1, max_size=12)
    return base if not nillable else st.none() | base


def as_csv(value) -> str:
    """The Bulk 2.0 CSV text of a REST value ("" is null)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.endswith("+0000"):
        return value[:-5] + "Z"
    return str(value)


def shaper_and_schema(contact_describe, account_describe):
    contact = ObjectInfo.from_describe(contact_describe)
    account = ObjectInfo.from_describe(account_describe)
    path, _ = resolve_path(contact, PARENT, {"Contact": contact, "Account": account})
    assert path is not None
    schema = object_schema(contact, [path])
    return RecordShaper(contact, list(schema["properties"]), [path]), schema


@st.composite
def rest_records(draw, describe):
    record: dict = {"attributes": {"type": "Contact", "url": "/x"}}
    for f in describe["fields"]:
        if f["type"] in ("address", "base64"):
            continue
        record[f["name"]] = draw(rest_value(f["type"], f["nillable"]))
    parent = draw(st.none() | st.text(max_size=8))
    account = {"attributes": {"type": "Account"}, "Product_Account_Id__c": parent}
    record["Account"] = draw(st.sampled_from([None, account]))
    return record


def conformed(record: dict, schema: dict) -> dict:
    return conform_record_data_types(
        stream_name="Contact",
        record=record,
        schema=schema,
        level=TypeConformanceLevel.RECURSIVE,
        logger=logging.getLogger("test"),
    )


def test_conformance_would_change_nothing(contact_describe, account_describe):
    shaper, schema = shaper_and_schema(contact_describe, account_describe)

    @settings(max_examples=150, deadline=None)
    @given(rest_records(contact_describe))
    def check(raw):
        rest = shaper.from_rest(raw)
        row = {k: as_csv(v) for k, v in raw.items() if k not in ("attributes", "Account")}
        row[PARENT] = as_csv((raw["Account"] or {}).get("Product_Account_Id__c"))
        bulk = shaper.from_bulk(row)
        assert rest == bulk
        again = conformed(rest, schema)
        assert again == rest
        assert list(again) == list(rest)  # same keys, same order
        assert {k: type(v) for k, v in again.items()} == {k: type(v) for k, v in rest.items()}
        assert again["Account"] == rest["Account"]
        jsonschema.validate(rest, schema)

    check()


def test_nan_and_infinity_are_null_as_conformance_wrote_them(contact_describe, account_describe):
    shaper, schema = shaper_and_schema(contact_describe, account_describe)
    base = {"Id": "003000000000001AAA", "SystemModstamp": "2026-01-01T10:00:00.000Z"}
    for text in ("NaN", "nan", "inf", "-Infinity"):
        record = shaper.from_bulk({**base, "Score__c": text, "MailingLatitude": text})
        assert record["Score__c"] is None
        assert record["MailingAddress"] is None  # no component left: no address
    raw = {**base, "Score__c": math.nan, "Revenue__c": -math.inf, "MailingLatitude": 1.5}
    record = shaper.from_rest(raw)
    assert record["Score__c"] is None and record["Revenue__c"] is None
    assert record["MailingAddress"]["latitude"] == 1.5
    assert conformed(record, schema) == record


def test_keys_are_found_whatever_their_case(contact_describe, account_describe):
    shaper, _ = shaper_and_schema(contact_describe, account_describe)
    raw = {
        "attributes": {"type": "Contact"},
        "Id": "003000000000001AAA",
        "SystemModstamp": "2026-01-01T10:00:00.000+0000",
        "LastName": "Lovelace",
        "MailingCity": "London",
        "Opted_In__c": True,
        "Account": {"attributes": {"type": "Account"}, "Product_Account_Id__c": "acct-1"},
    }
    expected = shaper.from_rest(raw)
    assert expected["LastName"] == "Lovelace" and expected["Account"]["Product_Account_Id__c"]
    lowered = {k.lower(): v for k, v in raw.items()}
    lowered["account"] = {"product_account_id__c": "acct-1"}
    assert shaper.from_rest(lowered) == expected
    bulk = {as_key.upper(): as_csv(v) for as_key, v in raw.items() if as_key != "Account"}
    bulk["ACCOUNT.PRODUCT_ACCOUNT_ID__C"] = "acct-1"
    assert shaper.from_bulk(bulk) == expected


# --- the streams' conformance setting ---------------------------------------------------------
def levels(cfg: dict, catalog: dict | None = None) -> dict[str, TypeConformanceLevel]:
    tap = TapSalesforceAppcues(
        config=cfg, catalog=Catalog.from_dict(catalog) if catalog is not None else None
    )
    try:
        return {name: s.TYPE_CONFORMANCE_LEVEL for name, s in tap.streams.items()}
    finally:
        tap.close_clients()


def test_conformance_is_back_on_only_for_a_catalog_schema_unlike_the_streams(org, config, t0):
    org.call("POST", "seed", {"Account": 2, "Contact": 3, "seed": 5})
    cfg = config(user_objects=["Contact"])
    tap = TapSalesforceAppcues(config=cfg)
    catalog = tap.catalog_dict
    tap.close_clients()
    assert set(levels(cfg).values()) == {TypeConformanceLevel.NONE}
    assert set(levels(cfg, catalog).values()) == {TypeConformanceLevel.NONE}

    # A catalog from before the Account parent was configured: the stream is described
    # and has the parent, the catalog's schema not; the SDK must still drop it.
    old = TapSalesforceAppcues(config=config(user_objects=["Contact"], relationship_fields={}))
    old_catalog = old.catalog_dict
    old.close_clients()
    found = levels(cfg, old_catalog)
    assert found["Contact"] == TypeConformanceLevel.RECURSIVE
    assert found["Account"] == TypeConformanceLevel.NONE
    assert found["appcues_events"] == TypeConformanceLevel.NONE

    # A hand-edited property schema (a description added) also hands back to the SDK.
    edited = Catalog.from_dict(catalog).to_dict()
    entry = next(s for s in edited["streams"] if s["tap_stream_id"] == "Account")
    entry["schema"]["properties"]["Name"]["description"] = "the account's name"
    assert levels(cfg, edited)["Account"] == TypeConformanceLevel.RECURSIVE
