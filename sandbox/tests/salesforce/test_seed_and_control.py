"""The seed generator's determinism and linking, reset, and late commits via the control API."""

from salesforce_appcues_sandbox.common import identities


def _snapshot(org):
    contacts = org.query(
        "SELECT Id, Name, Email, Product_User_Id__c, Account.Product_Account_Id__c, SystemModstamp "
        "FROM Contact ORDER BY Id"
    )["records"]
    leads = org.query(
        "SELECT Id, Product_User_Id__c, IsConverted, ConvertedContactId, ConvertedAccountId "
        "FROM Lead ORDER BY Id"
    )["records"]
    return contacts, leads


def test_seed_is_deterministic_and_linked(org):
    counts = {"Account": 20, "Workspace__c": 5, "Contact": 300, "Lead": 200, "seed": 7}
    made = org.seed(**counts)
    assert made["seeded"] == {"Account": 20, "Workspace__c": 5, "Contact": 300, "Lead": 200}
    first = _snapshot(org)
    org.anon.post(f"{org.control}/reset").raise_for_status()
    org.login()
    org.seed(**counts)
    contacts, leads = _snapshot(org)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "SystemModstamp"} for r in rows]  # noqa: E731
    assert strip(contacts) == strip(first[0]) and leads == first[1]

    for i, contact in enumerate(contacts):
        expected = (
            identities.user_id("contact", i) if identities.has_user_id(7, "contact", i) else None
        )
        assert contact["Product_User_Id__c"] == expected
        assert contact["Account"]["Product_Account_Id__c"].startswith("acct_")
    assert any(c["Product_User_Id__c"] is None for c in contacts)  # a share never signed up
    for j, lead in enumerate(leads):
        expected = identities.user_id("lead", j) if identities.has_user_id(7, "lead", j) else None
        assert lead["Product_User_Id__c"] == expected
    converted = [lead for lead in leads if lead["IsConverted"]]
    assert converted and all(lead["ConvertedContactId"].startswith("003") for lead in converted)
    accounts = org.query("SELECT Product_Account_Id__c FROM Account ORDER BY Id")["records"]
    assert [a["Product_Account_Id__c"] for a in accounts] == [
        identities.account_id(k) for k in range(20)
    ]
    workspaces = org.query("SELECT Workspace_Id__c, Account__c FROM Workspace__c ORDER BY Id")[
        "records"
    ]
    assert [w["Workspace_Id__c"] for w in workspaces] == [
        identities.workspace_id(w) for w in range(5)
    ]
    assert all(w["Account__c"] for w in workspaces)
    # groups of records share one SystemModstamp
    stamps = [c["SystemModstamp"] for c in contacts]
    assert len(set(stamps)) < len(stamps)
    assert stamps == sorted(stamps)


def test_seed_refuses_a_non_empty_object(org):
    org.seed(Account=1)
    again = org.anon.post(f"{org.control}/seed", json={"Account": 1})
    assert again.status_code == 409


def test_late_commit_with_an_explicit_past_system_modstamp(org):
    org.anon.post(f"{org.control}/clock", json={"now": "2024-06-01T12:00:00Z", "freeze": True})
    on_time = org.create("Contact", LastName="Now")
    response = org.anon.post(
        f"{org.control}/records/Contact",
        json={"SystemModstamp": "2024-06-01T11:59:00Z", "records": [{"LastName": "Late"}]},
    )
    assert response.status_code == 200
    late = response.json()[0]["id"]
    assert org.get("Contact", late)["SystemModstamp"] == "2024-06-01T11:59:00.000+0000"
    assert org.get("Contact", on_time)["SystemModstamp"] == "2024-06-01T12:00:00.000+0000"
    rows = org.query("SELECT Id FROM Contact WHERE SystemModstamp >= 2024-06-01T12:00:00Z")
    assert [r["Id"] for r in rows["records"]] == [on_time]
    # an update through the control API can also be stamped in the past
    updated = org.anon.post(
        f"{org.control}/records/Contact",
        json={
            "SystemModstamp": "2024-06-01T11:58:00Z",
            "records": [{"Id": on_time, "FirstName": "X"}],
        },
    )
    assert updated.json()[0]["success"] is True
    assert org.get("Contact", on_time)["SystemModstamp"] == "2024-06-01T11:58:00.000+0000"


def test_reset_empties_the_org(org):
    org.seed(Account=3, Contact=5)
    org.anon.post(f"{org.control}/reset").raise_for_status()
    org.login()
    assert org.query("SELECT COUNT() FROM Contact")["totalSize"] == 0
    assert org.query("SELECT COUNT() FROM Account")["totalSize"] == 0
    assert org.query("SELECT COUNT() FROM User")["totalSize"] == 1  # the integration user


def test_lead_conversion_through_the_control_api(org):
    lead = org.create("Lead", LastName="Lee", Company="Conv Inc", Product_User_Id__c="usr_l9")
    converted = org.anon.post(f"{org.control}/leads/{lead}/convert", json={})
    assert converted.status_code == 200
    ids = converted.json()
    record = org.get("Lead", lead)
    assert record["IsConverted"] is True and record["Status"] == "Closed - Converted"
    assert record["ConvertedContactId"] == ids["contactId"]
    assert record["ConvertedAccountId"] == ids["accountId"]
    contact = org.get("Contact", ids["contactId"])
    assert contact["Product_User_Id__c"] == "usr_l9" and contact["AccountId"] == ids["accountId"]
    assert org.get("Account", ids["accountId"])["Name"] == "Conv Inc"
    again = org.anon.post(f"{org.control}/leads/{lead}/convert", json={})
    assert again.status_code == 400
    assert again.json()[0]["errorCode"] == "CANNOT_UPDATE_CONVERTED_LEAD"
    into_existing = org.create("Lead", LastName="Two", Company="C")
    result = org.anon.post(
        f"{org.control}/leads/{into_existing}/convert", json={"contact_id": ids["contactId"]}
    ).json()
    assert result["contactId"] == ids["contactId"] and result["accountId"] == ids["accountId"]
