"""describe -> JSON schema, and REST / Bulk results -> identical records."""

from __future__ import annotations

import jsonschema
import pytest

from tap_salesforce_appcues.records import RecordShapeError, RecordShaper
from tap_salesforce_appcues.schema_mapping import (
    ObjectInfo,
    SchemaMappingError,
    component_key,
    object_schema,
    parents_needed,
    resolve_path,
)


@pytest.fixture
def objects(contact_describe, account_describe):
    return {
        "Contact": ObjectInfo.from_describe(contact_describe),
        "Account": ObjectInfo.from_describe(account_describe),
    }


def test_types_are_mapped_faithfully_and_nullable_where_salesforce_allows(objects):
    props = object_schema(objects["Contact"], [])["properties"]
    assert props["Id"] == {"type": "string"}
    assert props["Email"] == {"type": ["string", "null"]}
    assert props["Birthdate"] == {"type": ["string", "null"], "format": "date"}
    assert props["SystemModstamp"] == {"type": "string", "format": "date-time"}
    assert props["NumberOfThings__c"] == {"type": ["integer", "null"]}
    assert props["Score__c"] == {"type": ["number", "null"]}
    assert props["Revenue__c"] == {"type": ["number", "null"]}
    assert props["Opted_In__c"] == {"type": "boolean"}
    assert props["Interests__c"] == {"type": ["string", "null"]}
    assert "Photo__c" not in props  # base64 bodies are left out
    address = props["MailingAddress"]
    assert address["type"] == ["object", "null"]
    assert address["properties"]["postalCode"] == {"type": ["string", "null"]}
    assert address["properties"]["latitude"] == {"type": ["number", "null"]}


def test_component_keys():
    assert component_key("BillingAddress", "BillingPostalCode") == "postalCode"
    assert component_key("Address", "GeocodeAccuracy") == "geocodeAccuracy"
    assert component_key("Location__c", "Location__Latitude__s") == "latitude"


def test_parent_paths_resolve_and_nest_in_the_schema(objects):
    contact = objects["Contact"]
    assert parents_needed(contact, ["Account.Product_Account_Id__c"]) == {"Account"}
    path, missing = resolve_path(contact, "account.product_account_id__c", objects)
    assert missing is None and path is not None
    assert path.soql == "Account.Product_Account_Id__c"  # spelled as the org spells it
    props = object_schema(contact, [path])["properties"]
    assert props["Account"] == {
        "type": "object",
        "properties": {"Product_Account_Id__c": {"type": ["string", "null"]}},
    }
    # A deeper path asks for the next object to describe.
    assert resolve_path(contact, "Account.Owner.Email", objects) == (None, "User")


@pytest.mark.parametrize(
    "path",
    ["Product_Account_Id__c", "Nope.Name", "Account.Missing__c", "Account..Name"],
)
def test_bad_parent_paths_name_object_and_path(objects, path):
    with pytest.raises(SchemaMappingError, match="relationship_fields: Contact"):
        resolve_path(objects["Contact"], path, objects)


REST_RECORD = {
    "attributes": {"type": "Contact", "url": "/services/data/v62.0/sobjects/Contact/003x"},
    "Id": "003000000000001AAA",
    "SystemModstamp": "2026-01-01T10:00:00.000+0000",
    "IsDeleted": False,
    "LastName": "Lovelace",
    "Email": None,
    "Birthdate": "1815-12-10",
    "NumberOfThings__c": 3,
    "Score__c": 7,
    "Revenue__c": 1234.5,
    "Opted_In__c": True,
    "Interests__c": "Math;Engines",
    "MailingStreet": "12 St James's Square",
    "MailingCity": "London",
    "MailingState": None,
    "MailingPostalCode": "SW1Y",
    "MailingCountry": "UK",
    "MailingLatitude": 51.5,
    "MailingLongitude": -0.13,
    "MailingGeocodeAccuracy": None,
    "Account": {
        "attributes": {"type": "Account", "url": "/x"},
        "Product_Account_Id__c": "acct-1",
    },
}
BULK_ROW = {
    "Id": "003000000000001AAA",
    "SystemModstamp": "2026-01-01T10:00:00.000Z",
    "IsDeleted": "false",
    "LastName": "Lovelace",
    "Email": "",
    "Birthdate": "1815-12-10",
    "NumberOfThings__c": "3",
    "Score__c": "7.0",
    "Revenue__c": "1234.5",
    "Opted_In__c": "true",
    "Interests__c": "Math;Engines",
    "MailingStreet": "12 St James's Square",
    "MailingCity": "London",
    "MailingState": "",
    "MailingPostalCode": "SW1Y",
    "MailingCountry": "UK",
    "MailingLatitude": "51.5",
    "MailingLongitude": "-0.13",
    "MailingGeocodeAccuracy": "",
    "Account.Product_Account_Id__c": "acct-1",
}


def _shaper(objects):
    contact = objects["Contact"]
    path, _ = resolve_path(contact, "Account.Product_Account_Id__c", objects)
    selected = list(object_schema(contact, [path])["properties"])
    return RecordShaper(contact, selected, [path]), object_schema(contact, [path])


def test_soql_reads_compound_components_and_parent_paths(objects):
    shaper, _ = _shaper(objects)
    soql = shaper.soql("SystemModstamp > 2026-01-01T00:00:00Z", "SystemModstamp ASC, Id ASC")
    assert soql.startswith("SELECT Id, SystemModstamp, IsDeleted, AccountId, LastName")
    assert "MailingAddress" not in soql  # read through its components
    assert "MailingPostalCode" in soql and "Account.Product_Account_Id__c" in soql
    assert "Photo__c" not in soql
    assert soql.endswith(
        " FROM Contact WHERE SystemModstamp > 2026-01-01T00:00:00Z"
        " ORDER BY SystemModstamp ASC, Id ASC"
    )


def test_rest_and_bulk_give_identical_typed_records(objects):
    shaper, schema = _shaper(objects)
    rest = shaper.from_rest(REST_RECORD)
    bulk = shaper.from_bulk(BULK_ROW)
    assert rest == bulk
    assert [type(v) for v in rest.values()] == [type(v) for v in bulk.values()]
    assert rest["SystemModstamp"] == "2026-01-01T10:00:00.000Z"
    assert rest["Score__c"] == 7.0 and isinstance(rest["Score__c"], float)
    assert rest["NumberOfThings__c"] == 3
    assert rest["Opted_In__c"] is True and rest["IsDeleted"] is False
    assert rest["MailingAddress"]["city"] == "London"
    assert rest["MailingAddress"]["state"] is None
    assert rest["Account"] == {"Product_Account_Id__c": "acct-1"}
    jsonschema.validate(rest, schema)


def test_missing_parent_and_empty_address_are_the_same_on_both_paths(objects):
    shaper, schema = _shaper(objects)
    rest = dict(REST_RECORD, Account=None, AccountId=None)
    for key in list(rest):
        if key.startswith("Mailing"):
            rest[key] = None
    bulk = dict(BULK_ROW, **{"Account.Product_Account_Id__c": ""})
    for key in list(bulk):
        if key.startswith("Mailing"):
            bulk[key] = ""
    a, b = shaper.from_rest(rest), shaper.from_bulk(bulk)
    assert a == b
    assert a["Account"] == {"Product_Account_Id__c": None}
    assert a["MailingAddress"] is None
    jsonschema.validate(a, schema)


def test_a_bad_value_names_the_record_and_field(objects):
    shaper, _ = _shaper(objects)
    with pytest.raises(RecordShapeError, match=r"003000000000001AAA: field NumberOfThings__c"):
        shaper.from_bulk(dict(BULK_ROW, NumberOfThings__c="lots"))


def test_deselected_fields_are_not_queried(objects):
    contact = objects["Contact"]
    shaper = RecordShaper(contact, ["Email"], [])
    assert shaper.columns == ["Id", "SystemModstamp", "Email"]
