"""Bulk API 1.0 query jobs over HTTPS: lifecycle, XML shapes, CSV results, PK chunking, errors."""

import csv
import gzip
import io
import time
import xml.etree.ElementTree as ET

import pytest

from salesforce_appcues_sandbox.server import Sandbox

NS = "{http://www.force.com/2009/06/asyncapi/dataload}"


class Async:
    """A Bulk 1.0 client the way singer-io's tap talks: X-SFDC-Session, JSON jobs, XML batches."""

    def __init__(self, org):
        self.org = org
        self.base = f"{org.conn['instance_url']}/services/async/61.0"
        token = org.http.headers["Authorization"].split(" ", 1)[1]
        self.headers = {"X-SFDC-Session": token, "Content-Type": "application/json"}

    def create(self, obj, operation="query", **headers):
        resp = self.org.anon.post(
            f"{self.base}/job",
            json={"operation": operation, "object": obj, "contentType": "CSV"},
            headers={**self.headers, **headers},
        )
        assert resp.status_code == 201, resp.text
        return resp.json()

    def add_batch(self, job_id, soql):
        resp = self.org.anon.post(
            f"{self.base}/job/{job_id}/batch",
            data=soql,
            headers={**self.headers, "Content-Type": "text/csv"},
        )
        assert resp.status_code == 201, resp.text
        return _fields(ET.fromstring(resp.content))

    def get(self, path, **headers):
        return self.org.anon.get(f"{self.base}/{path}", headers={**self.headers, **headers})

    def close(self, job_id):
        resp = self.org.anon.post(
            f"{self.base}/job/{job_id}", json={"state": "Closed"}, headers=self.headers
        )
        assert resp.status_code == 200, resp.text
        return resp.json()

    def batch(self, job_id, batch_id):
        for _ in range(200):
            info = _fields(ET.fromstring(self.get(f"job/{job_id}/batch/{batch_id}").content))
            if info["state"] in ("Completed", "Failed", "Not Processed"):
                return info
            time.sleep(0.02)
        raise AssertionError("batch did not finish")

    def batches(self, job_id):
        root = ET.fromstring(self.get(f"job/{job_id}/batch").content)
        assert root.tag == f"{NS}batchInfoList"
        return [_fields(b) for b in root]

    def results(self, job_id, batch_id):
        resp = self.get(f"job/{job_id}/batch/{batch_id}/result")
        assert resp.status_code == 200, resp.text
        root = ET.fromstring(resp.content)
        assert root.tag == f"{NS}result-list"
        return [r.text for r in root]

    def rows(self, job_id, batch_id):
        rows = []
        for result in self.results(job_id, batch_id):
            resp = self.get(f"job/{job_id}/batch/{batch_id}/result/{result}")
            assert resp.status_code == 200
            assert resp.headers["Content-Type"].startswith("text/csv")
            rows.append(list(csv.reader(io.StringIO(resp.text))))
        return rows


def _fields(element):
    return {child.tag.removeprefix(NS): child.text for child in element}


@pytest.fixture
def bulk(org):
    return Async(org)


def test_query_lifecycle_xml_shapes_and_csv(org, bulk):
    org.seed(Account=3, Contact=30)
    job = bulk.create("Contact")
    assert job["id"].startswith("750") and job["state"] == "Open"
    assert job["operation"] == "query" and job["object"] == "Contact"
    assert job["contentType"] == "CSV" and job["apiVersion"] == 61.0
    assert job["createdDate"].endswith(".000+0000")

    added = bulk.add_batch(job["id"], "SELECT Id, Email, IsDeleted FROM Contact ORDER BY Id")
    assert added["id"].startswith("751") and added["jobId"] == job["id"]
    assert added["state"] == "Queued" and added["createdDate"].endswith(".000Z")
    assert set(added) >= {"systemModstamp", "numberRecordsProcessed", "apexProcessingTime"}
    closed = bulk.close(job["id"])
    assert closed["state"] == "Closed" and closed["numberBatchesTotal"] == 1

    info = bulk.batch(job["id"], added["id"])
    assert info["state"] == "Completed" and info["numberRecordsProcessed"] == "30"
    assert [b["id"] for b in bulk.batches(job["id"])] == [added["id"]]
    [result] = bulk.results(job["id"], added["id"])
    assert result.startswith("752")
    [rows] = bulk.rows(job["id"], added["id"])
    assert rows[0] == ["Id", "Email", "IsDeleted"] and len(rows) == 31
    ids = [r["Id"] for r in org.query("SELECT Id FROM Contact ORDER BY Id")["records"]]
    assert [r[0] for r in rows[1:]] == ids
    assert {r[2] for r in rows[1:]} == {"false"}

    job_info = bulk.get(f"job/{job['id']}").json()
    assert job_info["numberBatchesCompleted"] == 1 and job_info["numberRecordsProcessed"] == 30
    request = bulk.get(f"job/{job['id']}/batch/{added['id']}/request")
    assert request.text.startswith("SELECT Id, Email")
    stats = org.anon.get(f"{org.control}/stats").json()
    assert any(k.startswith("POST /services/async/61.0/job") for k in stats["calls"])
    assert stats["bulk1_batches"] == {"Completed": 1}


def test_query_all_includes_deleted_rows_and_query_hides_them(org, bulk):
    org.seed(Contact=5)
    gone = org.query("SELECT Id FROM Contact ORDER BY Id LIMIT 1")["records"][0]["Id"]
    assert org.http.delete(org.url(f"sobjects/Contact/{gone}")).status_code == 204
    seen = {}
    for operation in ("query", "queryAll"):
        job = bulk.create("Contact", operation=operation)
        batch = bulk.add_batch(job["id"], "SELECT Id, IsDeleted FROM Contact")
        bulk.close(job["id"])
        assert bulk.batch(job["id"], batch["id"])["state"] == "Completed"
        [rows] = bulk.rows(job["id"], batch["id"])
        seen[operation] = dict(rows[1:])
    assert gone not in seen["query"] and len(seen["query"]) == 4
    assert seen["queryAll"][gone] == "true" and len(seen["queryAll"]) == 5


def test_empty_result_says_records_not_found(org, bulk):
    job = bulk.create("Lead")
    batch = bulk.add_batch(job["id"], "SELECT Id FROM Lead")
    assert bulk.batch(job["id"], batch["id"])["state"] == "Completed"
    [result] = bulk.results(job["id"], batch["id"])
    body = bulk.get(f"job/{job['id']}/batch/{batch['id']}/result/{result}").text
    assert body == "Records not found for this query"


def test_pk_chunking_splits_into_id_range_batches(org, bulk):
    org.seed(Contact=25)
    gone = org.query("SELECT Id FROM Contact ORDER BY Id LIMIT 1 OFFSET 3")["records"][0]["Id"]
    assert org.http.delete(org.url(f"sobjects/Contact/{gone}")).status_code == 204
    job = bulk.create("Contact", **{"Sforce-Enable-PKChunking": "true; chunkSize=10"})
    original = bulk.add_batch(job["id"], "SELECT Id FROM Contact")
    batches = bulk.batches(job["id"])
    assert batches[0]["id"] == original["id"]
    states = [bulk.batch(job["id"], b["id"])["state"] for b in batches]
    assert states == ["Not Processed", "Completed", "Completed", "Completed"]
    chunks = [[r[0] for r in bulk.rows(job["id"], b["id"])[0][1:]] for b in batches[1:]]
    # chunks cut the Id index (deleted rows count) every 10 Ids; `query` hides the deleted one
    assert [len(c) for c in chunks] == [9, 10, 5]
    ids = [r["Id"] for r in org.query("SELECT Id FROM Contact ORDER BY Id")["records"]]
    assert [i for c in chunks for i in c] == ids
    results = bulk.get(f"job/{job['id']}/batch/{original['id']}/result")
    assert results.status_code == 400
    assert results.json()["exceptionCode"] == "InvalidBatch"


def test_pk_chunking_refusals(org, bulk):
    too_big = org.anon.post(
        f"{bulk.base}/job",
        json={"operation": "query", "object": "Contact", "contentType": "CSV"},
        headers={**bulk.headers, "Sforce-Enable-PKChunking": "true; chunkSize=250001"},
    )
    assert too_big.status_code == 400 and too_big.json()["exceptionCode"] == "InvalidJob"
    job = bulk.create("Event", **{"Sforce-Enable-PKChunking": "TRUE"})
    batch = bulk.add_batch(job["id"], "SELECT Id FROM Event")
    info = bulk.batch(job["id"], batch["id"])
    assert info["state"] == "Failed" and "PKChunking is not supported" in info["stateMessage"]


def test_failed_batches_carry_a_state_message(org, bulk):
    job = bulk.create("Contact")
    bad_field = bulk.add_batch(job["id"], "SELECT Nope FROM Contact")
    compound = bulk.add_batch(job["id"], "SELECT MailingAddress FROM Contact")
    other_object = bulk.add_batch(job["id"], "SELECT Id FROM Lead")
    for batch, text in (
        (bad_field, "INVALID_FIELD"),
        (compound, "compound"),
        (other_object, "is not the job's object Contact"),
    ):
        info = bulk.batch(job["id"], batch["id"])
        assert info["state"] == "Failed"
        assert info["stateMessage"].startswith("InvalidBatch : Failed to process query")
        assert text in info["stateMessage"]
    org.anon.post(
        f"{org.control}/bulk",
        json={
            "fail_bulk1_batches": 1,
            "bulk1_state_message": "InternalServerError : QUERY_TIMEOUT",
        },
    ).raise_for_status()
    timed_out = bulk.add_batch(job["id"], "SELECT Id FROM Contact")
    info = bulk.batch(job["id"], timed_out["id"])
    assert info["state"] == "Failed" and "QUERY_TIMEOUT" in info["stateMessage"]
    assert bulk.get(f"job/{job['id']}").json()["numberBatchesFailed"] == 4


def test_errors_use_the_exception_shape(org, bulk):
    missing = bulk.get("job/7505g00000000zzAAA")
    assert missing.status_code == 400
    assert missing.headers["Content-Type"] == "application/json"
    assert missing.json()["exceptionCode"] == "InvalidJob"
    xml = bulk.get("job/7505g00000000zzAAA", **{"Content-Type": "application/xml"})
    root = ET.fromstring(xml.content)
    assert root.tag == f"{NS}error"
    assert _fields(root)["exceptionCode"] == "InvalidJob"

    job = bulk.create("Contact")
    assert bulk.get(f"job/{job['id']}/batch/7515g00000000zzAAA").json()["exceptionCode"] == (
        "InvalidBatch"
    )
    bulk.close(job["id"])
    again = org.anon.post(
        f"{bulk.base}/job/{job['id']}", json={"state": "Closed"}, headers=bulk.headers
    )
    assert again.status_code == 400 and again.json()["exceptionCode"] == "InvalidJobState"
    late = org.anon.post(
        f"{bulk.base}/job/{job['id']}/batch",
        data="SELECT Id FROM Contact",
        headers={**bulk.headers, "Content-Type": "text/csv"},
    )
    assert late.status_code == 400 and "InvalidJobState" in late.text

    insert = org.anon.post(
        f"{bulk.base}/job",
        json={"operation": "insert", "object": "Contact", "contentType": "CSV"},
        headers=bulk.headers,
    )
    assert insert.status_code == 400 and insert.json()["exceptionCode"] == "FeatureNotEnabled"
    unknown = org.anon.post(
        f"{bulk.base}/job",
        json={"operation": "query", "object": "Nope__c", "contentType": "CSV"},
        headers=bulk.headers,
    )
    assert unknown.json()["exceptionCode"] == "InvalidEntity"

    anonymous = org.anon.get(f"{bulk.base}/job/{job['id']}")
    assert anonymous.status_code == 401
    assert ET.fromstring(anonymous.content).find(f"{NS}exceptionCode").text == "InvalidSessionId"
    org.anon.post(f"{org.control}/expire-sessions").raise_for_status()
    expired = bulk.get(f"job/{job['id']}")
    assert expired.status_code == 401
    assert expired.json() == {
        "exceptionCode": "InvalidSessionId",
        "exceptionMessage": "Invalid session id",
    }


def test_xml_jobs_abort_and_limits(org, bulk):
    xml_headers = {**bulk.headers, "Content-Type": "application/xml; charset=UTF-8"}
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<jobInfo xmlns="http://www.force.com/2009/06/asyncapi/dataload">'
        "<operation>queryAll</operation><object>Account</object>"
        "<contentType>CSV</contentType></jobInfo>"
    )
    created = org.anon.post(f"{bulk.base}/job", data=body, headers=xml_headers)
    assert created.status_code == 201
    assert created.headers["Content-Type"].startswith("application/xml")
    job = _fields(ET.fromstring(created.content))
    assert job["operation"] == "queryAll" and job["state"] == "Open"
    assert job["createdDate"].endswith(".000Z")
    abort = (
        '<jobInfo xmlns="http://www.force.com/2009/06/asyncapi/dataload">'
        "<state>Aborted</state></jobInfo>"
    )
    aborted = org.anon.post(f"{bulk.base}/job/{job['id']}", data=abort, headers=xml_headers)
    assert _fields(ET.fromstring(aborted.content))["state"] == "Aborted"

    used_before = org.anon.get(f"{org.control}/api-usage").json()["used"]
    counted = bulk.create("Contact")
    assert counted["state"] == "Open"
    for _ in range(2):
        bulk.add_batch(counted["id"], "SELECT Id FROM Contact")
    after = org.anon.get(f"{org.control}/api-usage").json()["used"]
    assert after == used_before + 3  # every Bulk 1.0 request counts as an API call
    limits = org.http.get(org.url("limits")).json()
    assert limits["DailyBulkApiBatches"] == {"Max": 15000, "Remaining": 14998}


@pytest.fixture(scope="module")
def small_files():
    with Sandbox(options={"salesforce": {"bulk1_result_file_records": 7}}) as running:
        yield running


def test_large_results_come_in_several_files(small_files, org_factory):
    org = org_factory(small_files.connection["salesforce"], small_files.connection["ca_bundle"])
    bulk = Async(org)
    org.seed(Contact=20)
    job = bulk.create("Contact")
    batch = bulk.add_batch(job["id"], "SELECT Id FROM Contact ORDER BY Id")
    assert bulk.batch(job["id"], batch["id"])["state"] == "Completed"
    files = bulk.rows(job["id"], batch["id"])
    assert [len(f) for f in files] == [8, 8, 7]  # each with its header
    assert all(f[0] == ["Id"] for f in files)
    ids = [r["Id"] for r in org.query("SELECT Id FROM Contact ORDER BY Id")["records"]]
    assert [row[0] for f in files for row in f[1:]] == ids


def test_spent_allocation_and_injected_faults_answer_in_the_async_shape(org, bulk):
    limit = org.anon.get(f"{org.control}/api-usage").json()["max"]
    org.anon.post(f"{org.control}/api-usage", json={"used": limit}).raise_for_status()
    spent = bulk.get("job/7505g00000000zzAAA")
    assert spent.status_code == 403 and spent.json()["exceptionCode"] == "ExceededQuota"
    assert spent.headers["Sforce-Limit-Info"] == f"api-usage={limit}/{limit}"
    org.anon.post(f"{org.control}/api-usage", json={"used": 0}).raise_for_status()

    org.faults(
        {
            "match": {"method": "POST", "path": "/services/async/.*/job$"},
            "action": "error",
            "status": 503,
            "error_code": "ServerUnavailable",
            "message": "Server temporarily unavailable",
            "times": 1,
        }
    )
    failed = org.anon.post(
        f"{bulk.base}/job",
        json={"operation": "query", "object": "Contact", "contentType": "CSV"},
        headers=bulk.headers,
    )
    assert failed.status_code == 503
    assert failed.json() == {
        "exceptionCode": "ServerUnavailable",
        "exceptionMessage": "Server temporarily unavailable",
    }
    assert bulk.create("Contact")["state"] == "Open"  # the rule fired once


def test_result_files_are_gzipped_on_request(org, bulk):
    org.seed(Contact=12)
    job = bulk.create("Contact")
    batch = bulk.add_batch(job["id"], "SELECT Id FROM Contact")
    assert bulk.batch(job["id"], batch["id"])["state"] == "Completed"
    [result] = bulk.results(job["id"], batch["id"])
    path = f"job/{job['id']}/batch/{batch['id']}/result/{result}"
    plain = bulk.get(path, **{"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers and plain.text.count("\n") == 13
    packed = org.anon.get(
        f"{bulk.base}/{path}", headers={**bulk.headers, "Accept-Encoding": "gzip"}, stream=True
    )
    assert packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.raw.read()).decode() == plain.text
