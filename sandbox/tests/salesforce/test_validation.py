"""Each validation error code, Event rules, converted leads and references."""

import pytest


def _error(response):
    assert response.status_code == 400, response.text
    body = response.json()
    assert isinstance(body, list) and len(body) == 1
    return body[0]


def test_required_field_missing(org):
    err = _error(org.http.post(org.url("sobjects/Lead/"), json={"LastName": "x"}))
    assert err == {
        "message": "Required fields are missing: [Company]",
        "errorCode": "REQUIRED_FIELD_MISSING",
        "fields": ["Company"],
    }
    lead = org.create("Lead", LastName="x", Company="c")
    assert org.get("Lead", lead)["Status"] == "Open - Not Contacted"  # picklist default
    cleared = _error(org.http.patch(org.url(f"sobjects/Lead/{lead}"), json={"Company": None}))
    assert cleared["errorCode"] == "REQUIRED_FIELD_MISSING"


def test_string_too_long_names_the_label_and_field(org):
    err = _error(
        org.http.post(org.url("sobjects/Account/"), json={"Name": "a", "BillingCity": "b" * 41})
    )
    assert err["errorCode"] == "STRING_TOO_LONG"
    assert err["message"] == f"Billing City: data value too large: {'b' * 41} (max length=40)"
    assert err["fields"] == ["BillingCity"]


def test_read_only_fields_are_refused(org):
    err = _error(
        org.http.post(
            org.url("sobjects/Lead/"), json={"LastName": "x", "Company": "c", "IsConverted": True}
        )
    )
    assert err["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert err["message"].startswith("Unable to create/update fields: IsConverted.")
    err = _error(
        org.http.post(
            org.url("sobjects/Contact/"),
            json={"LastName": "x", "CreatedDate": "2020-01-01T00:00:00Z"},
        )
    )
    assert err["fields"] == ["CreatedDate"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("Product_User_Number__c", "not a number"),
        ("NumberOfEmployees", 1.5),
        ("Description", {"a": 1}),
    ],
)
def test_invalid_type_on_field(org, field, value):
    obj = "Contact" if field.startswith("Product") else "Account"
    body = {"LastName": "x"} if obj == "Contact" else {"Name": "x"}
    err = _error(org.http.post(org.url(f"sobjects/{obj}/"), json={**body, field: value}))
    assert err["errorCode"] == "INVALID_TYPE_ON_FIELD_IN_RECORD"
    assert err["fields"] == [field]


def test_bad_references(org):
    acc = org.create("Account", Name="A")
    lead = org.create("Lead", LastName="L", Company="C")
    wrong_type = _error(
        org.http.post(org.url("sobjects/Contact/"), json={"LastName": "x", "AccountId": lead})
    )
    assert wrong_type["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
    assert wrong_type["message"] == f"Account ID: id value of incorrect type: {lead}"
    missing = acc[:6] + "ZZZZZZZZZ"
    unknown = _error(
        org.http.post(org.url("sobjects/Contact/"), json={"LastName": "x", "AccountId": missing})
    )
    assert unknown["errorCode"] == "INVALID_CROSS_REFERENCE_KEY"
    malformed = _error(
        org.http.post(org.url("sobjects/Contact/"), json={"LastName": "x", "AccountId": "nope"})
    )
    assert malformed["errorCode"] == "MALFORMED_ID"
    org.http.delete(org.url(f"sobjects/Account/{acc}"))
    deleted = _error(
        org.http.post(org.url("sobjects/Contact/"), json={"LastName": "x", "AccountId": acc})
    )
    assert deleted["errorCode"] == "ENTITY_IS_DELETED"


def test_duplicate_value_on_unique_external_id(org):
    first = org.create("Account", Name="A", Product_Account_Id__c="acct_1")
    err = _error(
        org.http.post(
            org.url("sobjects/Account/"), json={"Name": "B", "Product_Account_Id__c": "ACCT_1"}
        )
    )
    assert err["errorCode"] == "DUPLICATE_VALUE"
    assert err["message"] == (
        f"duplicate value found: Product_Account_Id__c duplicates value on record with id: {first}"
    )
    # updating a record to its own value is not a clash
    same = org.http.patch(
        org.url(f"sobjects/Account/{first}"), json={"Product_Account_Id__c": "acct_1"}
    )
    assert same.status_code == 204


def test_converted_lead_cannot_be_updated_or_referenced(org):
    org.seed(Account=2, Contact=20, Lead=60)
    converted = org.query("SELECT Id FROM Lead WHERE IsConverted = true LIMIT 1")["records"][0][
        "Id"
    ]
    err = _error(
        org.http.patch(org.url(f"sobjects/Lead/{converted}"), json={"Appcues_NPS_Score__c": 9})
    )
    assert err == {
        "message": "cannot reference converted lead",
        "errorCode": "CANNOT_UPDATE_CONVERTED_LEAD",
        "fields": [],
    }
    event = {"WhoId": converted, "ActivityDateTime": "2024-01-01T00:00:00Z", "DurationInMinutes": 5}
    assert _error(org.http.post(org.url("sobjects/Event/"), json=event))["errorCode"] == (
        "CANNOT_UPDATE_CONVERTED_LEAD"
    )


class TestEventRules:
    def test_start_and_duration_or_end_are_required(self, org):
        no_start = _error(
            org.http.post(org.url("sobjects/Event/"), json={"Subject": "s", "DurationInMinutes": 5})
        )
        assert no_start["errorCode"] == "REQUIRED_FIELD_MISSING"
        assert no_start["fields"] == ["ActivityDateTime"]
        no_length = _error(
            org.http.post(
                org.url("sobjects/Event/"), json={"ActivityDateTime": "2024-01-01T00:00:00Z"}
            )
        )
        assert no_length["errorCode"] == "REQUIRED_FIELD_MISSING"
        with_end = org.create(
            "Event", ActivityDateTime="2024-01-01T10:00:00Z", EndDateTime="2024-01-01T10:45:00Z"
        )
        record = org.get("Event", with_end)
        assert record["DurationInMinutes"] == 45
        assert record["StartDateTime"] == "2024-01-01T10:00:00.000+0000"
        assert record["ActivityDate"] == "2024-01-01"
        with_duration = org.get(
            "Event",
            org.create("Event", ActivityDateTime="2024-01-01T10:00:00Z", DurationInMinutes=30),
        )
        assert with_duration["EndDateTime"] == "2024-01-01T10:30:00.000+0000"
        inconsistent = {
            "ActivityDateTime": "2024-01-01T10:00:00Z",
            "DurationInMinutes": 5,
            "EndDateTime": "2024-01-01T11:00:00Z",
        }
        assert (
            _error(org.http.post(org.url("sobjects/Event/"), json=inconsistent))["errorCode"]
            == "FIELD_INTEGRITY_EXCEPTION"
        )

    def test_all_day_event_needs_an_activity_date(self, org):
        missing = _error(org.http.post(org.url("sobjects/Event/"), json={"IsAllDayEvent": True}))
        assert missing["fields"] == ["ActivityDate"]
        day = org.get("Event", org.create("Event", IsAllDayEvent=True, ActivityDate="2024-02-03"))
        assert day["DurationInMinutes"] == 1440
        assert day["IsAllDayEvent"] is True

    def test_subject_and_description_lengths(self, org):
        base = {"ActivityDateTime": "2024-01-01T00:00:00Z", "DurationInMinutes": 1}
        long_subject = _error(
            org.http.post(org.url("sobjects/Event/"), json={**base, "Subject": "s" * 256})
        )
        assert long_subject["errorCode"] == "STRING_TOO_LONG"
        assert long_subject["fields"] == ["Subject"]
        long_description = _error(
            org.http.post(org.url("sobjects/Event/"), json={**base, "Description": "d" * 32001})
        )
        assert long_description["fields"] == ["Description"]
        assert org.create("Event", **base, Subject="s" * 255, Description="d" * 32000)

    def test_who_must_be_lead_or_contact_and_lead_excludes_what(self, org):
        acc = org.create("Account", Name="A")
        contact = org.create("Contact", LastName="C", AccountId=acc)
        lead = org.create("Lead", LastName="L", Company="C")
        base = {"ActivityDateTime": "2024-01-01T00:00:00Z", "DurationInMinutes": 1}
        who_account = _error(org.http.post(org.url("sobjects/Event/"), json={**base, "WhoId": acc}))
        assert who_account == {
            "message": f"Name ID: id value of incorrect type: {acc}",
            "errorCode": "FIELD_INTEGRITY_EXCEPTION",
            "fields": ["WhoId"],
        }
        lead_and_what = _error(
            org.http.post(org.url("sobjects/Event/"), json={**base, "WhoId": lead, "WhatId": acc})
        )
        assert lead_and_what["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
        assert lead_and_what["fields"] == ["WhatId"]
        event = org.get("Event", org.create("Event", **base, WhoId=contact))
        assert event["AccountId"] == acc  # derived from the contact
        assert org.create("Event", **base, WhoId=lead)


def test_email_and_number_range(org):
    bad_email = _error(
        org.http.post(org.url("sobjects/Contact/"), json={"LastName": "x", "Email": "not an email"})
    )
    assert bad_email == {
        "message": "Email: invalid email address: not an email",
        "errorCode": "INVALID_EMAIL_ADDRESS",
        "fields": ["Email"],
    }
    too_big = _error(
        org.http.post(
            org.url("sobjects/Contact/"), json={"LastName": "x", "Appcues_NPS_Score__c": 1000}
        )
    )
    assert too_big["errorCode"] == "NUMBER_OUTSIDE_VALID_RANGE"
    assert too_big["fields"] == ["Appcues_NPS_Score__c"]
    rounded = org.create("Contact", LastName="x", Appcues_NPS_Score__c=8.5, Email="a@b.co")
    assert org.get("Contact", rounded)["Appcues_NPS_Score__c"] == 9.0  # scale 0: half up
