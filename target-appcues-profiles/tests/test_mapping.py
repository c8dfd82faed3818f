"""Mapping, renaming, prefixing and id rules: record -> (profile id, Appcues attributes)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from target_appcues_profiles.mapping import (
    AttributeMapper,
    RecordError,
    ValueCoercer,
    attributes_digest,
    date_kinds_from_schema,
    is_deleted,
    profile_id,
    resolve_path,
)

CONTACT = {
    "attributes": {"type": "Contact", "url": "/services/data/v62.0/sobjects/Contact/003"},
    "Id": "003000000000001AAA",
    "IsDeleted": False,
    "Product_User_Id__c": "usr_c0000001",
    "FirstName": "Ada",
    "Email": "ada@example.com",
    "NumberOfEmployees": 12,
    "Score__c": Decimal("4.50"),
    "Opted_In__c": True,
    "Interests__c": "Flows;Checklists",
    "MailingAddress": {
        "street": "1 Main St",
        "city": "Lyon",
        "postalCode": "69001",
        "country": "France",
        "latitude": None,
    },
    "Account": {
        "attributes": {"type": "Account", "url": "/x"},
        "Product_Account_Id__c": "acct_000001",
        "Name": "Acme",
    },
    "SystemModstamp": "2026-01-02T03:04:05.000+0000",
    "_sdc_extracted_at": "2026-01-02T03:04:05Z",
}


def test_default_mapping_sends_every_non_system_field_under_its_own_name():
    mapper = AttributeMapper(excluded=frozenset({"Product_User_Id__c"}))
    attrs = mapper.map(CONTACT)
    assert attrs == {
        "FirstName": "Ada",
        "Email": "ada@example.com",
        "NumberOfEmployees": 12,
        "Score__c": 4.5,
        "Opted_In__c": True,
        "Interests__c": "Flows;Checklists",
        "MailingStreet": "1 Main St",
        "MailingCity": "Lyon",
        "MailingPostalCode": "69001",
        "MailingCountry": "France",
        "MailingLatitude": None,
        "Account.Product_Account_Id__c": "acct_000001",
        "Account.Name": "Acme",
    }


def test_excluded_relationship_path_is_left_out_of_default_attributes():
    mapper = AttributeMapper(excluded=frozenset({"Account.Product_Account_Id__c"}))
    attrs = mapper.map(CONTACT)
    assert "Account.Product_Account_Id__c" not in attrs
    assert attrs["Account.Name"] == "Acme"


def test_compound_fields_take_salesforce_component_names():
    record = {
        "Address": {"street": "2 Rue", "stateCode": "ARA"},
        "Office__c": {"latitude": 45.76, "longitude": 4.83},
        "Parent__r": {"Name": "HQ"},
    }
    assert AttributeMapper().map(record) == {
        "Street": "2 Rue",
        "StateCode": "ARA",
        "Office__Latitude__s": 45.76,
        "Office__Longitude__s": 4.83,
        "Parent__r.Name": "HQ",
    }


def test_explicit_fields_are_renamed_prefixed_and_nothing_else_is_sent():
    mapper = AttributeMapper(
        fields={
            "FirstName": "firstName",
            "Account.Name": "company",
            "MailingAddress": "home",
            "Missing__c": "missing",
        },
        prefix="sf_",
    )
    assert mapper.map(CONTACT) == {
        "sf_firstName": "Ada",
        "sf_company": "Acme",
        "sf_home.street": "1 Main St",
        "sf_home.city": "Lyon",
        "sf_home.postalCode": "69001",
        "sf_home.country": "France",
        "sf_home.latitude": None,
    }


def test_flat_relationship_property_resolves_like_the_nested_shape():
    flat = {"Account.Product_Account_Id__c": "acct_7", "Name": "x"}
    nested = {"Account": {"Product_Account_Id__c": "acct_7"}}
    assert resolve_path(flat, "Account.Product_Account_Id__c") == (True, "acct_7")
    assert resolve_path(nested, "Account.Product_Account_Id__c") == (True, "acct_7")
    assert resolve_path({"Account": None}, "Account.Product_Account_Id__c") == (False, None)
    mixed = {"Account": {"Owner.Name": "Bo"}}
    assert resolve_path(mixed, "Account.Owner.Name") == (True, "Bo")


def test_underscore_names_are_never_written():
    record = {"_private": 1, "ok": {"_hidden": 2, "shown": 3}, "": 4}
    assert AttributeMapper().map(record) == {"ok.shown": 3}
    # even when explicitly asked for, a name that would start with "_" is dropped
    assert AttributeMapper(fields={"ok": "_bad"}).map(record) == {}


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "missing_id"),
        ("", "blank_id"),
        ("   ", "blank_id"),
        (1.5, "non_text_id"),
        (True, "non_text_id"),
        ({"a": 1}, "non_text_id"),
        (["u1"], "non_text_id"),
    ],
)
def test_unusable_ids_raise_with_reason_and_field(value, reason):
    with pytest.raises(RecordError) as caught:
        profile_id({"Product_User_Id__c": value}, "Product_User_Id__c")
    assert caught.value.reason == reason
    assert caught.value.field_name == "Product_User_Id__c"
    assert "Product_User_Id__c" in str(caught.value)


def test_missing_id_field_and_integer_ids():
    with pytest.raises(RecordError, match="missing"):
        profile_id({}, "Product_User_Id__c")
    assert profile_id({"id": 42}, "id") == "42"
    assert profile_id({"id": "usr_1"}, "id") == "usr_1"


def test_dates_follow_the_schema_and_the_configured_format():
    schema = {
        "properties": {
            "Birthdate": {"type": ["string", "null"], "format": "date"},
            "LastLogin__c": {
                "anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]
            },
            "Account": {
                "type": "object",
                "properties": {"CreatedOn__c": {"type": "string", "format": "date-time"}},
            },
            "Code": {"type": "string"},
        }
    }
    kinds = date_kinds_from_schema(schema)
    assert kinds == {
        "Birthdate": "date",
        "LastLogin__c": "date-time",
        "Account.CreatedOn__c": "date-time",
    }
    record = {
        "Birthdate": "1990-05-17",
        "LastLogin__c": "2026-01-02T04:04:05.5+0100",
        "Account": {"CreatedOn__c": "2026-01-02T03:04:05Z"},
        "Code": "2026-01-02",
    }
    iso = AttributeMapper(date_kinds=kinds).map(record)
    assert iso == {
        "Birthdate": "1990-05-17",
        "LastLogin__c": "2026-01-02T03:04:05.500Z",
        "Account.CreatedOn__c": "2026-01-02T03:04:05.000Z",
        "Code": "2026-01-02",
    }
    epoch = AttributeMapper(date_kinds=kinds, coercer=ValueCoercer("epoch_ms")).map(record)
    assert epoch["LastLogin__c"] == 1767323045500
    assert epoch["Birthdate"] == int(datetime(1990, 5, 17, tzinfo=UTC).timestamp()) * 1000
    assert epoch["Code"] == "2026-01-02"  # not a date in the schema: left alone


def test_bad_date_is_a_record_error_naming_the_field():
    mapper = AttributeMapper(date_kinds={"Birthdate": "date"})
    with pytest.raises(RecordError) as caught:
        mapper.map({"Birthdate": "17/05/1990"})
    assert caught.value.reason == "invalid_date"
    assert caught.value.field_name == "Birthdate"
    assert mapper.map({"Birthdate": ""}) == {"Birthdate": None}


def test_scalar_coercions():
    c = ValueCoercer()
    naive = datetime(2026, 1, 2, 3, 4, 5, 123456)  # noqa: DTZ001 - naive values are read as UTC
    assert c.scalar(naive) == "2026-01-02T03:04:05.123Z"
    assert c.scalar(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05.000Z"
    assert c.scalar(date(2026, 1, 2)) == "2026-01-02"
    assert c.scalar(Decimal("NaN")) is None
    assert c.scalar(float("inf")) is None
    assert c.scalar(Decimal("1e400")) == "1E+400"
    assert c.scalar(2**60) == str(2**60)
    assert c.scalar(["a", "b", None, 3, True]) == "a;b;3;true"
    assert c.scalar([]) is None
    assert c.scalar([{"k": 1}]) == '{"k":1}'


def test_deleted_records():
    assert is_deleted({"IsDeleted": True})
    assert is_deleted({"IsDeleted": "true"})
    assert is_deleted({"_sdc_deleted_at": "2026-01-01T00:00:00Z"})
    assert not is_deleted({"IsDeleted": False, "_sdc_deleted_at": None})


def test_digest_depends_on_values_not_key_order():
    assert attributes_digest({"a": 1, "b": "x"}) == attributes_digest({"b": "x", "a": 1})
    assert attributes_digest({"a": 1}) != attributes_digest({"a": 2})
    assert attributes_digest({"a": 1}) != attributes_digest({"a": "1"})
