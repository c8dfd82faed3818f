"""Shared test helpers: describe payloads shaped like Salesforce's, and sandbox tap configs."""

from __future__ import annotations

from typing import Any

import pytest


def field(name: str, sf_type: str = "string", nillable: bool = True, **extra: Any) -> dict:
    return {"name": name, "type": sf_type, "nillable": nillable, **extra}


def address_fields(prefix: str, compound: str) -> list[dict]:
    parts = [
        ("Street", "textarea"),
        ("City", "string"),
        ("State", "string"),
        ("PostalCode", "string"),
        ("Country", "string"),
        ("Latitude", "double"),
        ("Longitude", "double"),
        ("GeocodeAccuracy", "picklist"),
    ]
    return [field(compound, "address")] + [
        field(prefix + suffix, t, compoundFieldName=compound) for suffix, t in parts
    ]


@pytest.fixture
def contact_describe() -> dict:
    return {
        "name": "Contact",
        "fields": [
            field("Id", "id", nillable=False),
            field("IsDeleted", "boolean", nillable=False),
            field("AccountId", "reference", referenceTo=["Account"], relationshipName="Account"),
            field("LastName", "string", nillable=False),
            field("Email", "email"),
            field("Birthdate", "date"),
            field("NumberOfThings__c", "int"),
            field("Score__c", "double"),
            field("Revenue__c", "currency"),
            field("Opted_In__c", "boolean", nillable=False),
            field("Interests__c", "multipicklist"),
            field("Photo__c", "base64"),
            field("SystemModstamp", "datetime", nillable=False),
            *address_fields("Mailing", "MailingAddress"),
        ],
    }


@pytest.fixture
def account_describe() -> dict:
    return {
        "name": "Account",
        "fields": [
            field("Id", "id", nillable=False),
            field("Name", "string", nillable=False),
            field("Product_Account_Id__c", "string"),
            field("OwnerId", "reference", referenceTo=["User"], relationshipName="Owner"),
            field("SystemModstamp", "datetime", nillable=False),
        ],
    }
