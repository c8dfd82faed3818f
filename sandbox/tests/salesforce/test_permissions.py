"""The integration user's profile from the schema file: describe reflects it, calls fail."""

import pytest
import yaml

from salesforce_appcues_sandbox.salesforce.schema_file import DEFAULT_SCHEMA_FILE
from salesforce_appcues_sandbox.server import Sandbox


@pytest.fixture(scope="module")
def restricted(tmp_path_factory):
    schema = yaml.safe_load(DEFAULT_SCHEMA_FILE.read_text())
    schema["profile"] = {
        "objects": {
            "User": {"create": False, "read": True, "edit": False, "delete": False},
            "Workspace__c": {"read": False},
            "Lead": {"create": True, "read": True, "edit": True, "delete": False},
        },
        "fields": {
            "Contact.Appcues_NPS_Score__c": {"read": True, "edit": False},
            "Contact.Title": {"read": False},
        },
    }
    path = tmp_path_factory.mktemp("schema") / "schema.yaml"
    path.write_text(yaml.safe_dump(schema))
    with Sandbox(options={"salesforce": {"schema_file": str(path)}}) as running:
        yield running


@pytest.fixture
def org(restricted, org_factory):
    return org_factory(restricted.connection["salesforce"], restricted.connection["ca_bundle"])


def test_describe_reflects_the_profile(org):
    names = {o["name"]: o for o in org.http.get(org.url("sobjects")).json()["sobjects"]}
    assert "Workspace__c" not in names
    assert names["User"]["createable"] is False and names["User"]["queryable"] is True
    assert names["Lead"]["deletable"] is False
    fields = {
        f["name"]: f for f in org.http.get(org.url("sobjects/Contact/describe")).json()["fields"]
    }
    assert "Title" not in fields
    assert fields["Appcues_NPS_Score__c"]["updateable"] is False
    assert fields["Appcues_NPS_Score__c"]["createable"] is False


def test_calls_outside_the_profile_fail(org, errors_of):
    assert org.http.get(org.url("sobjects/Workspace__c/describe")).status_code == 404
    hidden_query = org.http.get(org.url("query"), params={"q": "SELECT Id FROM Workspace__c"})
    assert errors_of(hidden_query) == ["INVALID_TYPE"]
    hidden_field = org.http.get(org.url("query"), params={"q": "SELECT Title FROM Contact"})
    assert errors_of(hidden_field) == ["INVALID_FIELD"]
    user = org.http.post(org.url("sobjects/User/"), json={"LastName": "x"})
    assert user.status_code == 400
    assert errors_of(user) == ["INSUFFICIENT_ACCESS_OR_READONLY"]
    cid = org.create("Contact", LastName="C")
    read_only = org.http.patch(org.url(f"sobjects/Contact/{cid}"), json={"Appcues_NPS_Score__c": 9})
    assert errors_of(read_only) == ["INVALID_FIELD_FOR_INSERT_UPDATE"]
    invisible = org.http.patch(org.url(f"sobjects/Contact/{cid}"), json={"Title": "CEO"})
    assert errors_of(invisible) == ["INVALID_FIELD"]
    lead = org.create("Lead", LastName="L", Company="C")
    no_delete = org.http.delete(org.url(f"sobjects/Lead/{lead}"))
    assert errors_of(no_delete) == ["INSUFFICIENT_ACCESS_OR_READONLY"]
