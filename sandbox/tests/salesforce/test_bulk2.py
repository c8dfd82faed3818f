"""Bulk API 2.0 query jobs: lifecycle, CSV pages with locators, gzip, refusals."""

import csv
import gzip
import io
import time


def _wait(org, job_id):
    for _ in range(200):
        info = org.http.get(org.url(f"jobs/query/{job_id}")).json()
        if info["state"] in ("JobComplete", "Failed", "Aborted"):
            return info
        time.sleep(0.02)
    raise AssertionError("job did not finish")


def test_query_job_lifecycle_and_paged_results(org):
    org.seed(Account=5, Contact=250)
    cid = org.query("SELECT Id FROM Contact ORDER BY Id LIMIT 1")["records"][0]["Id"]
    org.http.delete(org.url(f"sobjects/Contact/{cid}"))
    created = org.http.post(
        org.url("jobs/query"),
        json={"operation": "queryAll", "query": "SELECT Id, Email, IsDeleted FROM Contact"},
    )
    assert created.status_code == 200
    job = created.json()
    assert job["state"] == "UploadComplete" and job["id"].startswith("750")
    assert job["object"] == "Contact" and job["jobType"] == "V2Query"
    info = _wait(org, job["id"])
    assert info["state"] == "JobComplete" and info["numberRecordsProcessed"] == 250

    rows, locator, pages = [], None, 0
    while locator != "null":
        params = {"maxRecords": 100, **({"locator": locator} if locator else {})}
        page = org.http.get(org.url(f"jobs/query/{job['id']}/results"), params=params)
        assert page.status_code == 200
        assert page.headers["Content-Type"].startswith("text/csv")
        reader = list(csv.reader(io.StringIO(page.text)))
        assert reader[0] == ["Id", "Email", "IsDeleted"]
        assert int(page.headers["Sforce-NumberOfRecords"]) == len(reader) - 1
        rows += reader[1:]
        locator = page.headers["Sforce-Locator"]
        pages += 1
    assert pages == 3 and len(rows) == 250
    assert next(r for r in rows if r[0] == cid)[2] == "true"  # queryAll includes deleted rows

    aborted_too_late = org.http.patch(org.url(f"jobs/query/{job['id']}"), json={"state": "Aborted"})
    assert aborted_too_late.status_code == 400
    assert org.http.delete(org.url(f"jobs/query/{job['id']}")).status_code == 204
    assert org.http.get(org.url(f"jobs/query/{job['id']}")).status_code == 404


def test_results_are_gzipped_on_request(org):
    org.seed(Contact=10)
    job = org.http.post(
        org.url("jobs/query"), json={"operation": "query", "query": "SELECT Id FROM Contact"}
    ).json()
    _wait(org, job["id"])
    raw = org.http.get(
        org.url(f"jobs/query/{job['id']}/results"),
        headers={"Accept-Encoding": "gzip"},
        stream=True,
    )
    assert raw.headers["Content-Encoding"] == "gzip"
    body = gzip.decompress(raw.raw.read()).decode()
    assert body.count("\n") == 11
    assert raw.headers["Sforce-Locator"] == "null"


def test_refusals(org, errors_of):
    compound = org.http.post(
        org.url("jobs/query"),
        json={"operation": "query", "query": "SELECT Id, MailingAddress FROM Contact"},
    )
    assert compound.status_code == 400
    assert "compound" in compound.json()[0]["message"]
    bad_op = org.http.post(org.url("jobs/query"), json={"operation": "insert", "query": "x"})
    assert bad_op.status_code == 400
    bad_soql = org.http.post(
        org.url("jobs/query"), json={"operation": "query", "query": "SELECT Nope FROM Contact"}
    )
    assert errors_of(bad_soql) == ["INVALID_FIELD"]
    assert org.http.get(org.url("jobs/query/7505g00000000zzAAA")).status_code == 404


def test_injected_job_failure_and_limits_count_jobs(org):
    org.anon.post(f"{org.control}/bulk", json={"fail_jobs": 1, "error_message": "boom"})
    job = org.http.post(
        org.url("jobs/query"), json={"operation": "query", "query": "SELECT Id FROM Contact"}
    ).json()
    info = _wait(org, job["id"])
    assert info["state"] == "Failed" and info["errorMessage"] == "boom"
    results = org.http.get(org.url(f"jobs/query/{job['id']}/results"))
    assert results.status_code == 400
    assert results.json()[0]["errorCode"] == "JOB_NOT_COMPLETE"
    ok = org.http.post(
        org.url("jobs/query"), json={"operation": "query", "query": "SELECT Id FROM Contact"}
    ).json()
    assert _wait(org, ok["id"])["state"] == "JobComplete"
    limits = org.http.get(org.url("limits")).json()
    assert limits["DailyBulkV2QueryJobs"] == {"Max": 10000, "Remaining": 9998}


def test_injected_abort_ends_the_job_aborted_without_results(org):
    org.anon.post(f"{org.control}/bulk", json={"abort_jobs": 1})
    job = org.http.post(
        org.url("jobs/query"), json={"operation": "query", "query": "SELECT Id FROM Contact"}
    ).json()
    assert _wait(org, job["id"])["state"] == "Aborted"
    results = org.http.get(org.url(f"jobs/query/{job['id']}/results"))
    assert results.status_code == 400
    assert results.json()[0]["errorCode"] == "JOB_NOT_COMPLETE"
    ok = org.http.post(
        org.url("jobs/query"), json={"operation": "query", "query": "SELECT Id FROM Contact"}
    ).json()
    assert _wait(org, ok["id"])["state"] == "JobComplete"
