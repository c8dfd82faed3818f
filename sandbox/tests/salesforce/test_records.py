"""Single-record CRUD, upsert, ids and system fields."""

import re

from salesforce_appcues_sandbox.salesforce import ids


def test_create_get_update_delete(org):
    acc = org.create("Account", Name="Acme", BillingCity="Berlin", Product_Account_Id__c="acct_1")
    record = org.get("Account", acc)
    assert record["attributes"] == {
        "type": "Account",
        "url": f"/services/data/v61.0/sobjects/Account/{acc}",
    }
    assert record["Name"] == "Acme"
    assert record["BillingAddress"]["city"] == "Berlin"
    assert record["IsDeleted"] is False
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000\+0000", record["SystemModstamp"])

    updated = org.http.patch(org.url(f"sobjects/Account/{acc}"), json={"Name": "Acme 2"})
    assert updated.status_code == 204
    assert org.get("Account", acc)["Name"] == "Acme 2"

    only = org.http.get(org.url(f"sobjects/Account/{acc}"), params={"fields": "Name,Id"})
    assert set(only.json()) == {"attributes", "Id", "Name"}

    assert org.http.delete(org.url(f"sobjects/Account/{acc}")).status_code == 204
    gone = org.http.get(org.url(f"sobjects/Account/{acc}"))
    assert gone.status_code == 404
    assert gone.json()[0]["errorCode"] == "NOT_FOUND"
    again = org.http.patch(org.url(f"sobjects/Account/{acc}"), json={"Name": "x"})
    assert again.status_code == 400
    assert again.json()[0]["errorCode"] == "ENTITY_IS_DELETED"
    never = acc[:6] + "ZZZZZZZZZ"
    assert (
        org.http.patch(org.url(f"sobjects/Account/{never}"), json={"Name": "x"}).status_code == 404
    )
    assert org.http.delete(org.url(f"sobjects/Account/{never}")).status_code == 404
    # deleted rows stay visible to queryAll only
    soql = f"SELECT Id, IsDeleted FROM Account WHERE Id = '{acc}'"
    assert org.query(soql)["totalSize"] == 0
    all_rows = org.http.get(org.url("queryAll"), params={"q": soql}).json()
    assert all_rows["records"][0]["IsDeleted"] is True


def test_ids_are_18_chars_with_checksum_prefix_and_monotonic(org):
    first = org.create("Contact", LastName="A")
    second = org.create("Contact", LastName="B")
    lead = org.create("Lead", LastName="L", Company="C")
    event = org.create("Event", ActivityDateTime="2024-01-01T10:00:00Z", DurationInMinutes=30)
    for record_id, prefix in ((first, "003"), (lead, "00Q"), (event, "00U")):
        assert len(record_id) == 18 and record_id.startswith(prefix)
        assert ids.checksum(record_id[:15]) == record_id[15:]
    assert first < second
    # a 15-character id reaches the same record
    assert org.get("Contact", first[:15])["Id"] == first
    assert ids.checksum("001A0000006Vm9r") == "IAC"  # a known real Account id


def test_system_fields_have_one_second_precision_and_follow_the_clock(org):
    org.anon.post(f"{org.control}/clock", json={"now": "2024-03-01T12:00:00.750Z", "freeze": True})
    a = org.create("Contact", LastName="A")
    b = org.create("Contact", LastName="B")
    ra, rb = org.get("Contact", a), org.get("Contact", b)
    assert ra["SystemModstamp"] == rb["SystemModstamp"] == "2024-03-01T12:00:00.000+0000"
    assert ra["CreatedDate"] == ra["LastModifiedDate"] == ra["SystemModstamp"]
    org.anon.post(f"{org.control}/clock", json={"advance_seconds": 5})
    org.http.patch(org.url(f"sobjects/Contact/{a}"), json={"FirstName": "Z"})
    after = org.get("Contact", a)
    assert after["SystemModstamp"] == "2024-03-01T12:00:05.000+0000"
    assert after["CreatedDate"] == "2024-03-01T12:00:00.000+0000"
    assert after["Name"] == "Z A"  # derived, read-only


def test_formula_field_is_computed_and_read_only(org, errors_of):
    cid = org.create("Contact", LastName="F", Product_User_Number__c=42)
    assert org.get("Contact", cid)["Product_User_Id_Text__c"] == "42"
    org.http.patch(org.url(f"sobjects/Contact/{cid}"), json={"Product_User_Number__c": 7})
    assert org.get("Contact", cid)["Product_User_Id_Text__c"] == "7"
    refused = org.http.patch(
        org.url(f"sobjects/Contact/{cid}"), json={"Product_User_Id_Text__c": "x"}
    )
    assert refused.status_code == 400
    assert refused.json()[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert refused.json()[0]["fields"] == ["Product_User_Id_Text__c"]


def test_upsert_by_external_id_201_200_204_and_300(org):
    path = org.url("sobjects/Contact/Product_User_Id__c/usr%2F1")
    created = org.http.patch(path, json={"LastName": "New"})
    assert created.status_code == 201
    assert created.json() == {
        "id": created.json()["id"],
        "success": True,
        "errors": [],
        "created": True,
    }
    assert org.get("Contact", created.json()["id"])["Product_User_Id__c"] == "usr/1"
    updated = org.http.patch(path, json={"LastName": "Again"})
    assert updated.status_code == 200
    assert updated.json()["created"] is False
    assert updated.json()["id"] == created.json()["id"]
    old_api = org.http.patch(
        org.url("sobjects/Contact/Product_User_Id__c/usr%2F1").replace("v61.0", "v45.0"),
        json={"LastName": "Old"},
    )
    assert old_api.status_code == 204
    # Product_User_Id__c is an external id but not unique: two records can share it
    org.create("Contact", LastName="Twin", Product_User_Id__c="usr/1")
    several = org.http.patch(path, json={"LastName": "Which"})
    assert several.status_code == 300
    assert len(several.json()) == 2
    assert all(u.startswith("/services/data/v61.0/sobjects/Contact/003") for u in several.json())
    by_value = org.http.get(org.url("sobjects/Account/Product_Account_Id__c/none"))
    assert by_value.status_code == 404
    not_external = org.http.patch(org.url("sobjects/Contact/LastName/x"), json={})
    assert not_external.status_code == 404


def test_get_by_external_id(org):
    acc = org.create("Account", Name="Ext", Product_Account_Id__c="acct_9")
    found = org.http.get(org.url("sobjects/Account/Product_Account_Id__c/ACCT_9"))
    assert found.status_code == 200
    assert found.json()["Id"] == acc  # matching ignores case, as Salesforce does


def test_unknown_object_and_field(org, errors_of):
    assert errors_of(org.http.post(org.url("sobjects/Nope__c/"), json={})) == ["NOT_FOUND"]
    bad = org.http.post(org.url("sobjects/Contact/"), json={"LastName": "x", "Foo__c": 1})
    assert bad.status_code == 400
    assert bad.json() == [
        {
            "message": "No such column 'Foo__c' on sobject of type Contact",
            "errorCode": "INVALID_FIELD",
        }
    ]
    assert org.http.put(org.url("sobjects/Contact/")).status_code == 405


def test_date_header_follows_the_sandbox_clock(org):
    org.anon.post(f"{org.control}/clock", json={"now": "2031-05-06T07:08:09Z", "freeze": True})
    response = org.http.get(org.url("limits"))
    assert response.headers["Date"] == "Tue, 06 May 2031 07:08:09 GMT"


def test_get_updated_and_deleted(org):
    org.anon.post(f"{org.control}/clock", json={"now": "2024-03-01T12:00:30Z", "freeze": True})
    kept = org.create("Contact", LastName="Kept")
    gone = org.create("Contact", LastName="Gone")
    org.anon.post(f"{org.control}/clock", json={"now": "2024-03-01T12:05:10Z", "freeze": True})
    org.http.delete(org.url(f"sobjects/Contact/{gone}"))
    org.anon.post(f"{org.control}/clock", json={"now": "2024-03-01T12:07:45Z", "freeze": True})
    window = {"start": "2024-03-01T12:00:00+00:00", "end": "2024-03-01T12:10:00+00:00"}
    updated = org.http.get(org.url("sobjects/Contact/updated/"), params=window).json()
    assert updated["ids"] == [kept]
    assert updated["latestDateCovered"] == "2024-03-01T12:07:00.000+0000"  # whole minutes, <= now
    deleted = org.http.get(org.url("sobjects/Contact/deleted/"), params=window).json()
    assert deleted["deletedRecords"] == [
        {"id": gone, "deletedDate": "2024-03-01T12:05:10.000+0000"}
    ]
    too_old = org.http.get(
        org.url("sobjects/Contact/updated/"),
        params={"start": "2024-01-01T00:00:00Z", "end": "2024-03-01T00:00:00Z"},
    )
    assert too_old.status_code == 400
    assert too_old.json()[0]["errorCode"] == "INVALID_REPLICATION_DATE"
