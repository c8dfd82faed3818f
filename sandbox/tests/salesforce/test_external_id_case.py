"""External ID values match the way Salesforce matches them (issue 15): ignoring case (the
default), or exactly for a unique field created case-sensitive. Upserts, SOQL `=`/`IN` and the
unique check agree; describe says which through `caseSensitive`."""

from __future__ import annotations

import pytest
import yaml

from salesforce_appcues_sandbox.salesforce.schema_file import (
    DEFAULT_SCHEMA_FILE,
    SchemaFileError,
    load_schema,
)
from salesforce_appcues_sandbox.server import Sandbox

UPSERT = "composite/sobjects/Event/Appcues_Event_Id__c"


def _event(event_id: str, subject: str) -> dict:
    return {
        "attributes": {"type": "Event"},
        "Appcues_Event_Id__c": event_id,
        "Subject": subject,
        "ActivityDateTime": "2024-01-01T00:00:00Z",
        "DurationInMinutes": 0,
    }


@pytest.fixture(scope="module")
def case_sensitive(tmp_path_factory):
    schema = yaml.safe_load(DEFAULT_SCHEMA_FILE.read_text())
    schema["objects"]["Event"]["fields"]["Appcues_Event_Id__c"]["case_sensitive"] = True
    path = tmp_path_factory.mktemp("schema") / "schema.yaml"
    path.write_text(yaml.safe_dump(schema))
    with Sandbox(options={"salesforce": {"schema_file": str(path)}}) as running:
        yield running


def _upsert_both_cases(org) -> list[dict]:
    results = []
    for event_id, subject in (("P9-CROSS", "first"), ("p9-cross", "second")):
        response = org.http.patch(
            org.url(UPSERT), json={"allOrNone": False, "records": [_event(event_id, subject)]}
        )
        assert response.status_code == 200, response.text
        results += response.json()
    return results


def _describe(org) -> dict:
    fields = org.http.get(org.url("sobjects/Event/describe")).json()["fields"]
    return next(f for f in fields if f["name"] == "Appcues_Event_Id__c")


def test_default_external_id_ignores_case(org):
    assert _describe(org)["caseSensitive"] is False
    first, second = _upsert_both_cases(org)
    assert first["created"] is True and second["created"] is False  # the same Event
    rows = org.query("SELECT Subject, Appcues_Event_Id__c FROM Event")["records"]
    assert [(r["Subject"], r["Appcues_Event_Id__c"]) for r in rows] == [("second", "P9-CROSS")]
    found = org.query("SELECT Id FROM Event WHERE Appcues_Event_Id__c IN ('p9-CROSS')")
    assert found["totalSize"] == 1
    # the unique check ignores case too
    clash = org.http.post(org.url("sobjects/Event/"), json=_event("p9-Cross", "x"))
    assert clash.status_code == 400 and clash.json()[0]["errorCode"] == "DUPLICATE_VALUE"
    # and two case variants in one upsert request are one value
    both = org.http.patch(
        org.url(UPSERT),
        json={"allOrNone": False, "records": [_event("a-B", "1"), _event("A-b", "2")]},
    ).json()
    assert [e["errors"][0]["statusCode"] for e in both] == ["DUPLICATE_EXTERNAL_ID"] * 2


def test_case_sensitive_unique_external_id_matches_exactly(case_sensitive, org_factory):
    org = org_factory(
        case_sensitive.connection["salesforce"], case_sensitive.connection["ca_bundle"]
    )
    assert _describe(org)["caseSensitive"] is True
    first, second = _upsert_both_cases(org)
    assert first["created"] is True and second["created"] is True  # two Events
    rows = org.query("SELECT Appcues_Event_Id__c FROM Event WHERE Appcues_Event_Id__c = 'p9-cross'")
    assert [r["Appcues_Event_Id__c"] for r in rows["records"]] == ["p9-cross"]
    listed = org.query(
        "SELECT Appcues_Event_Id__c FROM Event WHERE Appcues_Event_Id__c IN ('P9-CROSS', 'x')"
    )
    assert [r["Appcues_Event_Id__c"] for r in listed["records"]] == ["P9-CROSS"]
    assert (
        org.query("SELECT Id FROM Event WHERE Appcues_Event_Id__c = 'P9-cross'")["totalSize"] == 0
    )
    both = org.http.patch(
        org.url(UPSERT),
        json={"allOrNone": False, "records": [_event("a-B", "1"), _event("A-b", "2")]},
    ).json()
    assert [e["created"] for e in both] == [True, True]


def test_case_sensitive_needs_unique(tmp_path):
    schema = yaml.safe_load(DEFAULT_SCHEMA_FILE.read_text())
    schema["objects"]["Contact"]["fields"]["Product_User_Id__c"]["case_sensitive"] = True
    path = tmp_path / "schema.yaml"
    path.write_text(yaml.safe_dump(schema))
    with pytest.raises(SchemaFileError, match="case_sensitive needs unique"):
        load_schema(path)


@pytest.mark.parametrize("exact", [False, True])
def test_non_unique_external_id_upsert_case_switch(exact, org_factory):
    """Product_User_Id__c is an External ID, not unique. Whether Salesforce matches its values
    ignoring case in upserts is read two ways from its docs: the option picks one."""
    options = {"upsert_nonunique_external_id_exact": exact}
    with Sandbox(options={"salesforce": options}) as running:
        org = org_factory(running.connection["salesforce"], running.connection["ca_bundle"])
        created = []
        for value in ("Usr-AbC", "usr-abc"):
            response = org.http.patch(
                org.url(f"sobjects/Contact/Product_User_Id__c/{value}"), json={"LastName": value}
            )
            assert response.status_code in (200, 201, 204), response.text
            created.append(response.status_code == 201)
        assert created == ([True, True] if exact else [True, False])
        # SOQL still ignores case on this (not unique case-sensitive) field
        found = org.query("SELECT Id FROM Contact WHERE Product_User_Id__c = 'USR-ABC'")
        assert found["totalSize"] == (2 if exact else 1)
