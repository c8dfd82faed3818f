"""sObject Collections (create, update, upsert, delete) and composite batch."""


def _event(**fields):
    base = {"attributes": {"type": "Event"}, "ActivityDateTime": "2024-05-01T09:00:00.000Z"}
    base["DurationInMinutes"] = 15
    return {**base, **fields}


def test_create_all_or_none_false_writes_the_valid_records(org):
    records = [
        {"attributes": {"type": "Contact"}, "LastName": "Ok1"},
        {"attributes": {"type": "Contact"}, "FirstName": "NoLastName"},
        {"attributes": {"type": "Account"}, "Name": "Ok2"},
    ]
    response = org.http.post(
        org.url("composite/sobjects"), json={"allOrNone": False, "records": records}
    )
    assert response.status_code == 200
    results = response.json()
    assert [r["success"] for r in results] == [True, False, True]
    assert results[0]["id"].startswith("003") and results[2]["id"].startswith("001")
    assert results[1] == {
        "success": False,
        "errors": [
            {
                "statusCode": "REQUIRED_FIELD_MISSING",
                "message": "Required fields are missing: [LastName]",
                "fields": ["LastName"],
            }
        ],
    }
    assert org.query("SELECT COUNT() FROM Contact")["totalSize"] == 1


def test_create_all_or_none_true_rolls_everything_back(org):
    records = [
        {"attributes": {"type": "Contact"}, "LastName": "Ok1"},
        {"attributes": {"type": "Contact"}, "LastName": "x" * 81},
    ]
    results = org.http.post(
        org.url("composite/sobjects"), json={"allOrNone": True, "records": records}
    ).json()
    assert results[0]["success"] is False
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert results[1]["errors"][0]["statusCode"] == "STRING_TOO_LONG"
    assert results[1]["errors"][0]["message"].startswith("Last Name: data value too large: ")
    assert results[1]["errors"][0]["message"].endswith("(max length=80)")
    assert org.query("SELECT COUNT() FROM Contact")["totalSize"] == 0


def test_update_and_delete_collections(org):
    a = org.create("Contact", LastName="A")
    b = org.create("Contact", LastName="B")
    deleted = org.create("Contact", LastName="Gone")
    org.http.delete(org.url(f"sobjects/Contact/{deleted}"))
    records = [
        {"attributes": {"type": "Contact"}, "id": a, "FirstName": "Ann"},
        {"attributes": {"type": "Contact"}, "id": deleted, "FirstName": "X"},
        {"attributes": {"type": "Contact"}, "id": b, "FirstName": "Bob"},
    ]
    results = org.http.patch(
        org.url("composite/sobjects"), json={"allOrNone": False, "records": records}
    ).json()
    assert [r["success"] for r in results] == [True, False, True]
    assert results[0]["id"] == a
    assert results[1]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"
    assert org.get("Contact", b)["FirstName"] == "Bob"

    removed = org.http.delete(
        org.url("composite/sobjects"), params={"ids": f"{a},{b}", "allOrNone": "false"}
    )
    assert [r["success"] for r in removed.json()] == [True, True]
    assert org.query("SELECT COUNT() FROM Contact")["totalSize"] == 0


def test_upsert_collection_reports_created_and_duplicates(org):
    org.create(
        "Event",
        Appcues_Event_Id__c="evt-1",
        ActivityDateTime="2024-01-01T00:00:00Z",
        DurationInMinutes=0,
    )
    records = [
        _event(Appcues_Event_Id__c="evt-1", Subject="seen before"),
        _event(Appcues_Event_Id__c="evt-2", Subject="new"),
        _event(Appcues_Event_Id__c="evt-3"),
        _event(Appcues_Event_Id__c="EVT-3"),
    ]
    response = org.http.patch(
        org.url("composite/sobjects/Event/Appcues_Event_Id__c"),
        json={"allOrNone": False, "records": records},
    )
    assert response.status_code == 200
    results = response.json()
    assert results[0]["success"] and results[0]["created"] is False
    assert results[1]["success"] and results[1]["created"] is True
    assert [r["success"] for r in results[2:]] == [False, False]
    assert results[2]["errors"][0]["statusCode"] == "DUPLICATE_EXTERNAL_ID"
    # replaying the same batch creates nothing new
    again = org.http.patch(
        org.url("composite/sobjects/Event/Appcues_Event_Id__c"),
        json={"allOrNone": False, "records": records[:2]},
    ).json()
    assert [r["created"] for r in again] == [False, False]
    assert org.query("SELECT COUNT() FROM Event")["totalSize"] == 2


def test_collection_limits_and_shape_errors(org, errors_of):
    too_many = [{"attributes": {"type": "Contact"}, "LastName": str(i)} for i in range(201)]
    response = org.http.post(org.url("composite/sobjects"), json={"records": too_many})
    assert response.status_code == 400
    assert errors_of(response) == ["EXCEEDED_ID_LIMIT"]
    no_type = org.http.post(org.url("composite/sobjects"), json={"records": [{"LastName": "x"}]})
    assert no_type.status_code == 400
    with_id = org.http.post(
        org.url("composite/sobjects"),
        json={"records": [{"attributes": {"type": "Contact"}, "Id": "0035g0000000001AAA"}]},
    ).json()
    assert with_id[0]["errors"][0]["statusCode"] == "INVALID_FIELD"


def test_a_collection_holds_at_most_ten_chunks_of_one_type(org, errors_of):
    def alternating(count: int) -> list[dict]:
        """Contact, Account, Contact, ...: every record starts a new chunk."""
        return [
            {"attributes": {"type": "Contact"}, "LastName": f"c{i}"}
            if i % 2 == 0
            else {"attributes": {"type": "Account"}, "Name": f"a{i}"}
            for i in range(count)
        ]

    refused = org.http.post(org.url("composite/sobjects"), json={"records": alternating(11)})
    assert refused.status_code == 400
    assert errors_of(refused) == ["INVALID_OPERATION"]
    assert "more than 10 chunks" in refused.json()[0]["message"]
    assert org.query("SELECT COUNT() FROM Contact")["totalSize"] == 0
    # The same 11 records grouped by type are two chunks; ten chunks are still fine.
    grouped = sorted(alternating(11), key=lambda r: r["attributes"]["type"])
    for records in (grouped, alternating(10)):
        accepted = org.http.post(org.url("composite/sobjects"), json={"records": records})
        assert accepted.status_code == 200
        assert all(r["success"] for r in accepted.json()), accepted.json()
    assert org.query("SELECT COUNT() FROM Contact")["totalSize"] == 11


def test_composite_batch_describes_and_halts_on_error(org):
    requests_ = [
        {"method": "GET", "url": "/services/data/v61.0/sobjects/Lead/describe"},
        {"method": "GET", "url": "v34.0/sobjects/Contact/describe"},
        {"method": "GET", "url": "/services/data/v61.0/sobjects/Nope/describe"},
        {"method": "GET", "url": "/services/data/v61.0/sobjects/Account/describe"},
    ]
    body = org.http.post(
        org.url("composite/batch"), json={"haltOnError": True, "batchRequests": requests_}
    ).json()
    assert body["hasErrors"] is True
    assert [r["statusCode"] for r in body["results"]] == [200, 200, 404, 412]
    assert body["results"][0]["result"]["name"] == "Lead"
    assert body["results"][3]["result"][0]["errorCode"] == "BATCH_PROCESSING_HALTED"
    no_halt = org.http.post(org.url("composite/batch"), json={"batchRequests": requests_}).json()
    assert [r["statusCode"] for r in no_halt["results"]] == [200, 200, 404, 200]
    create = org.http.post(
        org.url("composite/batch"),
        json={
            "batchRequests": [
                {
                    "method": "POST",
                    "url": "v61.0/sobjects/Account",
                    "richInput": {"Name": "Via batch"},
                }
            ]
        },
    ).json()
    assert create["results"][0]["statusCode"] == 201
    too_many = org.http.post(org.url("composite/batch"), json={"batchRequests": requests_ * 7})
    assert too_many.status_code == 400


def test_composite_request_references_and_all_or_none(org):
    requests_ = [
        {
            "method": "POST",
            "url": "/services/data/v61.0/sobjects/Account",
            "referenceId": "acc",
            "body": {"Name": "Parent"},
        },
        {
            "method": "POST",
            "url": "/services/data/v61.0/sobjects/Contact",
            "referenceId": "con",
            "body": {"LastName": "Child", "AccountId": "@{acc.id}"},
        },
        {
            "method": "GET",
            "url": "/services/data/v61.0/sobjects/Contact/@{con.id}?fields=AccountId",
            "referenceId": "read",
        },
    ]
    body = org.http.post(org.url("composite"), json={"compositeRequest": requests_}).json()
    codes = [r["httpStatusCode"] for r in body["compositeResponse"]]
    assert codes == [201, 201, 200]
    acc_id = body["compositeResponse"][0]["body"]["id"]
    assert body["compositeResponse"][0]["httpHeaders"]["Location"].endswith(acc_id)
    assert body["compositeResponse"][2]["body"]["AccountId"] == acc_id

    failing = [
        requests_[0],
        {**requests_[1], "body": {"FirstName": "NoLastName", "AccountId": "@{acc.id}"}},
    ]
    rolled = org.http.post(
        org.url("composite"), json={"allOrNone": True, "compositeRequest": failing}
    ).json()["compositeResponse"]
    assert rolled[0]["httpStatusCode"] == 400
    assert rolled[0]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert rolled[1]["body"][0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert org.query("SELECT COUNT() FROM Account")["totalSize"] == 1  # the first call only

    partial = org.http.post(
        org.url("composite"), json={"allOrNone": False, "compositeRequest": failing}
    ).json()["compositeResponse"]
    assert [r["httpStatusCode"] for r in partial] == [201, 400]
    assert org.query("SELECT COUNT() FROM Account")["totalSize"] == 2
