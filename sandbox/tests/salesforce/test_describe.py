"""Discovery: resources, describeGlobal, describe field metadata."""


def test_resources_and_describe_global(org):
    resources = org.http.get(org.url("")).json()
    assert resources["sobjects"] == "/services/data/v61.0/sobjects"
    assert resources["queryAll"] == "/services/data/v61.0/queryAll"
    assert org.http.get(f"{org.conn['instance_url']}/services/data/v52.0/").status_code == 200
    glob = org.http.get(org.url("sobjects")).json()
    assert glob["encoding"] == "UTF-8" and glob["maxBatchSize"] == 200
    by_name = {o["name"]: o for o in glob["sobjects"]}
    assert {"Account", "Contact", "Lead", "Event", "User", "Workspace__c"} <= set(by_name)
    assert by_name["Contact"]["keyPrefix"] == "003" and by_name["Lead"]["keyPrefix"] == "00Q"
    assert by_name["Workspace__c"]["custom"] is True
    assert by_name["Contact"]["queryable"] is True
    assert (
        by_name["Account"]["urls"]["describe"] == "/services/data/v61.0/sobjects/Account/describe"
    )


def test_describe_field_metadata(org):
    describe = org.http.get(org.url("sobjects/contact/describe")).json()  # case-insensitive
    assert describe["name"] == "Contact"
    fields = {f["name"]: f for f in describe["fields"]}
    required = {
        "name",
        "label",
        "type",
        "soapType",
        "length",
        "precision",
        "scale",
        "nillable",
        "createable",
        "updateable",
        "filterable",
        "externalId",
        "idLookup",
        "unique",
        "calculated",
        "calculatedFormula",
        "custom",
        "referenceTo",
        "relationshipName",
        "picklistValues",
        "defaultedOnCreate",
    }
    assert all(required <= set(f) for f in fields.values())
    assert fields["Id"]["type"] == "id" and fields["Id"]["soapType"] == "tns:ID"
    assert (
        fields["SystemModstamp"]["type"] == "datetime"
        and not fields["SystemModstamp"]["createable"]
    )
    user_id = fields["Product_User_Id__c"]
    assert user_id["externalId"] and user_id["idLookup"] and user_id["custom"]
    assert user_id["type"] == "string" and user_id["length"] == 64
    formula = fields["Product_User_Id_Text__c"]
    assert (
        formula["calculated"] is True
        and formula["calculatedFormula"] == "TEXT(Product_User_Number__c)"
    )
    assert not formula["createable"] and not formula["updateable"]
    assert fields["Appcues_NPS_Score__c"]["type"] == "double"
    assert fields["Appcues_NPS_Feedback__c"]["type"] == "textarea"
    assert fields["AccountId"]["referenceTo"] == ["Account"]
    assert fields["AccountId"]["relationshipName"] == "Account"
    assert fields["MailingAddress"]["type"] == "address"
    assert fields["MailingAddress"]["soapType"] == "urn:address"
    assert fields["MailingCity"]["compoundFieldName"] == "MailingAddress"
    assert fields["LastName"]["nillable"] is False
    lead = {f["name"]: f for f in org.http.get(org.url("sobjects/Lead/describe")).json()["fields"]}
    assert {"IsConverted", "ConvertedContactId", "ConvertedAccountId"} <= set(lead)
    statuses = [p["value"] for p in lead["Status"]["picklistValues"]]
    assert "Closed - Converted" in statuses
    event = {
        f["name"]: f for f in org.http.get(org.url("sobjects/Event/describe")).json()["fields"]
    }
    assert event["Appcues_Event_Id__c"]["externalId"] and event["Appcues_Event_Id__c"]["unique"]
    assert event["WhoId"]["referenceTo"] == ["Contact", "Lead"]
    assert event["WhoId"]["polymorphicForeignKey"] is True
    account = org.http.get(org.url("sobjects/Account/describe")).json()
    children = {(c["childSObject"], c["field"]) for c in account["childRelationships"]}
    assert ("Contact", "AccountId") in children


def test_versions_the_org_does_not_list_answer_404_not_found(org):
    """Salesforce serves only the versions `GET /services/data/` lists; others are 404."""
    base = f"{org.conn['instance_url']}/services/data"
    listed = [v["version"] for v in org.anon.get(f"{base}/").json()]
    highest = max(listed, key=float)
    assert org.http.get(f"{base}/v{highest}/limits").status_code == 200
    beyond = f"{int(float(highest)) + 1}.0"
    for version in (beyond, "19.0", "61.5"):
        assert version not in listed
        response = org.http.get(f"{base}/v{version}/limits")
        assert response.status_code == 404, version
        assert response.json() == [
            {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}
        ]
    batch = org.http.post(
        org.url("composite/batch"),
        json={"batchRequests": [{"method": "GET", "url": f"v{beyond}/limits"}]},
    ).json()
    assert batch["results"][0]["statusCode"] == 404
    bulk1 = org.http.get(f"{org.conn['instance_url']}/services/async/{beyond}/job/750x")
    assert bulk1.status_code == 404
