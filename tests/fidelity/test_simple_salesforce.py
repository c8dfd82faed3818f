"""simple-salesforce 1.12.10, unmodified, against the sandbox: it must accept it as Salesforce."""

import csv
import io

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceOperationError

from salesforce_appcues_sandbox.common import identities

CONTACTS = 4500
ACCOUNTS = 60
LEADS = 120
SEED = 3


@pytest.fixture(scope="module")
def seeded(org):
    result = org.reseed(Contact=CONTACTS, Account=ACCOUNTS, Lead=LEADS, seed=SEED)
    return result


@pytest.fixture
def sf(org, seeded):
    token = org.token()
    session = org.session()
    client = Salesforce(
        instance_url=token["instance_url"], session_id=token["access_token"], session=session
    )
    yield client
    session.close()


def expected_product_id(email):
    """The generator's contract: contact i has email '...{i}@example.com' and product id
    user_id('contact', i) unless it is one of the share that never signed up."""
    i = int(email.split("@")[0].rsplit(".", 1)[1])
    return identities.user_id("contact", i) if identities.has_user_id(SEED, "contact", i) else None


def test_query_all_iter_across_pages(sf, seeded):
    assert seeded["seeded"]["Contact"] == CONTACTS
    seen = {}
    for record in sf.query_all_iter(
        "SELECT Id, LastName, Email, Product_User_Id__c, Account.Product_Account_Id__c, "
        "SystemModstamp FROM Contact ORDER BY SystemModstamp, Id"
    ):
        seen[record["Id"]] = record
    assert len(seen) == CONTACTS
    assert all(r["attributes"]["type"] == "Contact" for r in seen.values())
    assert all(r["Id"].startswith("003") and len(r["Id"]) == 18 for r in seen.values())
    stamps = [r["SystemModstamp"] for r in seen.values()]
    assert stamps == sorted(stamps)
    assert all(s.endswith(".000+0000") for s in stamps)
    linked = [r for r in seen.values() if r["Account"] is not None]
    assert linked, "the generator links contacts to accounts"
    assert all(r["Account"]["Product_Account_Id__c"] for r in linked)
    assert all(r["Account"]["attributes"]["type"] == "Account" for r in linked)
    for r in seen.values():
        assert r["Product_User_Id__c"] == expected_product_id(r["Email"]), r
    product_ids = [r["Product_User_Id__c"] for r in seen.values() if r["Product_User_Id__c"]]
    assert len(product_ids) == len(set(product_ids))
    assert 0 < len(product_ids) < CONTACTS  # a share of contacts never signed up

    count = sf.query("SELECT COUNT() FROM Contact")
    assert (count["totalSize"], count["done"], count["records"]) == (CONTACTS, True, [])
    first = sf.query("SELECT Id FROM Contact")
    assert first["totalSize"] == CONTACTS
    assert first["done"] is False
    assert len(first["records"]) == 2000
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")
    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert len(second["records"]) == 2000
    assert {r["Id"] for r in first["records"]}.isdisjoint(r["Id"] for r in second["records"])

    # include_deleted=True: simple-salesforce calls /queryAll and follows its locators
    all_rows = list(sf.query_all_iter("SELECT Id, IsDeleted FROM Contact", include_deleted=True))
    assert {r["Id"] for r in all_rows if not r["IsDeleted"]} == set(seen)
    assert len(all_rows) >= len(seen)
    accounts = list(sf.query_all_iter("SELECT Id, Product_Account_Id__c FROM Account"))
    leads = list(sf.query_all_iter("SELECT Id FROM Lead"))
    assert (len(accounts), len(leads)) == (ACCOUNTS, LEADS)
    linked_accounts = {r["Account"]["Product_Account_Id__c"] for r in linked}
    assert {a["Product_Account_Id__c"] for a in accounts} == {
        identities.account_id(k) for k in range(ACCOUNTS)
    }
    assert linked_accounts <= {a["Product_Account_Id__c"] for a in accounts}


def test_query_errors_reach_the_client_as_salesforce_sends_them(sf):
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query("SELECT Id, Nope__c FROM Contact")
    (error,) = caught.value.content
    assert error["errorCode"] == "INVALID_FIELD"
    assert "No such column 'Nope__c' on entity 'Contact'" in error["message"]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query("SELECT Id FROM Nope__c")
    assert caught.value.content[0]["errorCode"] == "INVALID_TYPE"
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query("SELECT Id FROM Contact WHERE SystemModstamp > '2024-01-01'")
    assert caught.value.content[0]["errorCode"] == "INVALID_FIELD"


def test_describe(sf):
    names = {o["name"] for o in sf.describe()["sobjects"]}
    assert {"Account", "Contact", "Lead", "Event", "User"} <= names
    contact = sf.Contact.describe()
    assert contact["name"] == "Contact"
    fields = {f["name"]: f for f in contact["fields"]}
    assert fields["Product_User_Id__c"]["externalId"] is True
    assert fields["Product_User_Id__c"]["custom"] is True
    assert fields["Product_User_Id_Text__c"]["calculated"] is True
    assert fields["AccountId"]["referenceTo"] == ["Account"]
    assert fields["AccountId"]["relationshipName"] == "Account"
    assert fields["MailingAddress"]["type"] == "address"
    assert fields["SystemModstamp"]["type"] == "datetime"


def test_create_update_upsert_delete(sf):
    created = sf.Contact.create(
        {"LastName": "Fidelity", "FirstName": "Simple", "Product_User_Id__c": "usr_fid_1"}
    )
    assert created["success"] is True
    cid = created["id"]
    record = sf.Contact.get(cid)
    assert (record["LastName"], record["FirstName"]) == ("Fidelity", "Simple")
    assert record["IsDeleted"] is False

    assert sf.Contact.update(cid, {"Appcues_NPS_Score__c": 9}) == 204
    assert sf.Contact.get(cid)["Appcues_NPS_Score__c"] == 9.0

    # upsert by external id: an update of the record above, then an insert
    sf.Contact.upsert("Product_User_Id__c/usr_fid_1", {"Title": "Tester"})
    assert sf.Contact.get(cid)["Title"] == "Tester"
    sf.Contact.upsert("Product_User_Id__c/usr_fid_2", {"LastName": "Second"})
    by_ext = sf.Contact.get_by_custom_id("Product_User_Id__c", "usr_fid_2")
    assert by_ext["LastName"] == "Second"

    assert sf.Contact.delete(cid) == 204
    live = sf.query(f"SELECT Id FROM Contact WHERE Id = '{cid}'")
    assert live["totalSize"] == 0
    gone = sf.query_all(
        f"SELECT Id, IsDeleted FROM Contact WHERE Id = '{cid}'", include_deleted=True
    )
    assert [r["IsDeleted"] for r in gone["records"]] == [True]
    sf.Contact.delete(by_ext["Id"])
    assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] == CONTACTS


def test_sobject_collections_through_restful(sf):
    results = sf.restful(
        "composite/sobjects",
        method="POST",
        json={
            "allOrNone": False,
            "records": [
                {"attributes": {"type": "Contact"}, "LastName": "Coll A"},
                {"attributes": {"type": "Contact"}, "FirstName": "no last name"},
                {"attributes": {"type": "Contact"}, "LastName": "Coll B"},
            ],
        },
    )
    assert [r["success"] for r in results] == [True, False, True]
    assert results[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert "LastName" in results[1]["errors"][0]["fields"]
    ids = [results[0]["id"], results[2]["id"]]
    updated = sf.restful(
        "composite/sobjects",
        method="PATCH",
        json={
            "allOrNone": True,
            "records": [
                {"attributes": {"type": "Contact"}, "id": i, "Title": "Collected"} for i in ids
            ],
        },
    )
    assert [r["success"] for r in updated] == [True, True]
    soql = "SELECT Id, Title FROM Contact WHERE Id IN ('" + "','".join(ids) + "') ORDER BY Id"
    assert [r["Title"] for r in sf.query(soql)["records"]] == ["Collected", "Collected"]
    deleted = sf.restful(
        "composite/sobjects", method="DELETE", params={"ids": ",".join(ids), "allOrNone": "true"}
    )
    assert [r["success"] for r in deleted] == [True, True]
    assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] == CONTACTS


def test_bulk2_query_download(sf, tmp_path):
    soql = "SELECT Id, LastName, Product_User_Id__c, Account.Name, SystemModstamp FROM Contact"
    results = sf.bulk2.Contact.download(soql, path=str(tmp_path), max_records=2000, wait=0.2)
    assert [r["number_of_records"] for r in results] == [2000, 2000, 500]
    rows = []
    for result in results:
        with open(result["file"], newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader)
            rows += list(reader)
    assert header == ["Id", "LastName", "Product_User_Id__c", "Account.Name", "SystemModstamp"]
    assert len(rows) == CONTACTS
    assert len({r[0] for r in rows}) == CONTACTS
    assert all(r[4].endswith(".000Z") for r in rows)
    rest = {
        r["Id"]: r
        for r in sf.query_all_iter("SELECT Id, LastName, Product_User_Id__c FROM Contact")
    }
    for row in rows:
        assert rest[row[0]]["LastName"] == row[1]
        assert (rest[row[0]]["Product_User_Id__c"] or "") == row[2]

    pages = list(sf.bulk2.Contact.query("SELECT Id FROM Contact", max_records=3000, wait=0.2))
    assert sum(len(list(csv.reader(io.StringIO(p)))) - 1 for p in pages) == CONTACTS


def test_bulk2_refuses_compound_fields_as_salesforce_does(sf, tmp_path):
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.bulk2.Contact.download(
            "SELECT Id, MailingAddress FROM Contact", path=str(tmp_path), wait=0.2
        )
    (error,) = caught.value.content
    assert error["message"] == "Selecting compound data not supported in Bulk Query"


# --- Bulk API 2.0 ingest through `sf.bulk2.<Object>` (Events and Lead NPS fields, the objects
# the events target loads; Contacts stay as seeded for the tests above) -------------------------


def _event(ext, **fields):
    return {
        "Appcues_Event_Id__c": ext,
        "Subject": f"Appcues {ext}",
        "ActivityDateTime": "2024-05-01T09:00:00.000Z",
        "DurationInMinutes": "0",
        **fields,
    }


def test_bulk2_insert_with_partial_failures(sf):
    records = [_event("bulk2-1"), _event("bulk2-2", ActivityDateTime=""), _event("bulk2-3")]
    (result,) = sf.bulk2.Event.insert(records=records, wait=0.2)
    assert (result["numberRecordsProcessed"], result["numberRecordsFailed"]) == (3, 1)
    assert result["numberRecordsTotal"] == 3
    outcome = sf.bulk2.Event.get_all_ingest_records(result["job_id"])
    ok, failed = outcome["successfulRecords"], outcome["failedRecords"]
    assert sorted(r["Appcues_Event_Id__c"] for r in ok) == ["bulk2-1", "bulk2-3"]
    assert all(r["sf__Created"] == "true" and r["sf__Id"].startswith("00U") for r in ok)
    assert [r["Appcues_Event_Id__c"] for r in failed] == ["bulk2-2"]
    assert failed[0]["sf__Error"].startswith(
        "REQUIRED_FIELD_MISSING:Required fields are missing: [ActivityDateTime]"
    )
    assert outcome["unprocessedRecords"] == []
    stored = sf.query("SELECT Id FROM Event WHERE Appcues_Event_Id__c LIKE 'bulk2-%'")
    assert {r["Id"] for r in stored["records"]} == {r["sf__Id"] for r in ok}


def test_bulk2_upsert_by_external_id(sf):
    sf.bulk2.Event.insert(records=[_event("bulk2-up-1")], wait=0.2)
    records = [
        _event("BULK2-UP-1", Subject="renamed"),  # matches ignoring case: an update
        _event("bulk2-up-2"),
        _event("bulk2-up-3"),
    ]
    results = sf.bulk2.Event.upsert(
        records=records, external_id_field="Appcues_Event_Id__c", batch_size=2, wait=0.2
    )
    assert len(results) == 2  # one job per two records
    assert sum(r["numberRecordsProcessed"] for r in results) == 3
    assert all(r["numberRecordsFailed"] == 0 for r in results)
    created = {}
    for result in results:
        text = sf.bulk2.Event.get_successful_records(result["job_id"])
        for row in csv.DictReader(io.StringIO(text)):
            created[row["Appcues_Event_Id__c"]] = row["sf__Created"]
    assert created == {"BULK2-UP-1": "false", "bulk2-up-2": "true", "bulk2-up-3": "true"}
    renamed = sf.query("SELECT Subject FROM Event WHERE Appcues_Event_Id__c = 'bulk2-up-1'")
    assert [r["Subject"] for r in renamed["records"]] == ["renamed"]


def test_bulk2_update_lead_nps_fields(sf, org):
    leads = sf.query("SELECT Id FROM Lead WHERE IsConverted = false ORDER BY Id LIMIT 3")
    first, second, converted = (r["Id"] for r in leads["records"])
    into = sf.query("SELECT Id FROM Contact ORDER BY Id LIMIT 1")["records"][0]["Id"]
    org.control("POST", f"leads/{converted}/convert", {"contact_id": into})  # no new Contact
    records = [
        {"Id": first, "Appcues_NPS_Score__c": "9", "Appcues_NPS_Feedback__c": "great"},
        {"Id": second, "Appcues_NPS_Score__c": "#N/A", "Appcues_NPS_Feedback__c": ""},
        {"Id": converted, "Appcues_NPS_Score__c": "3", "Appcues_NPS_Feedback__c": "meh"},
    ]
    (result,) = sf.bulk2.Lead.update(records=records, wait=0.2)
    assert (result["numberRecordsProcessed"], result["numberRecordsFailed"]) == (3, 1)
    failed = list(csv.DictReader(io.StringIO(sf.bulk2.Lead.get_failed_records(result["job_id"]))))
    assert [(r["sf__Id"], r["sf__Error"]) for r in failed] == [
        (converted, "CANNOT_UPDATE_CONVERTED_LEAD:cannot reference converted lead: --")
    ]
    got = sf.query(
        f"SELECT Id, Appcues_NPS_Score__c, Appcues_NPS_Feedback__c FROM Lead "
        f"WHERE Id IN ('{first}', '{second}') ORDER BY Id"
    )
    assert [(r["Appcues_NPS_Score__c"], r["Appcues_NPS_Feedback__c"]) for r in got["records"]] == [
        (9.0, "great"),
        (None, None),
    ]


def test_bulk2_failed_job_leaves_unprocessed_records(sf, org):
    org.control(
        "POST",
        "bulk",
        {
            "fail_ingest_jobs": 1,
            "ingest_fail_after_records": 1,
            "ingest_error_message": "InternalServerError : injected",
        },
    )
    records = [_event("bulk2-fail-1"), _event("bulk2-fail-2"), _event("bulk2-fail-3")]
    with pytest.raises(SalesforceOperationError, match="InternalServerError : injected"):
        sf.bulk2.Event.insert(records=records, wait=0.2)
    jobs = sf.restful("jobs/ingest")["records"]
    job = next(j for j in reversed(jobs) if j["state"] == "Failed")
    assert (
        sf.restful(f"jobs/ingest/{job['id']}")["errorMessage"] == "InternalServerError : injected"
    )
    outcome = sf.bulk2.Event.get_all_ingest_records(job["id"])
    assert len(outcome["successfulRecords"]) == 1
    assert outcome["failedRecords"] == []
    assert len(outcome["unprocessedRecords"]) == 2
