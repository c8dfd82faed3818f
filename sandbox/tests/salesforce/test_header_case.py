"""Response header names are spelled as Salesforce sends them over HTTP/1.1, so clients
that copy headers into a plain dict (Airbyte's Bulk 2.0 reader) see `Content-Type`."""

import time

from salesforce_appcues_sandbox.salesforce.header_case import canonical


def test_canonical_spellings():
    assert canonical(b"content-type") == b"Content-Type"
    assert canonical(b"sforce-locator") == b"Sforce-Locator"
    assert canonical(b"sforce-numberofrecords") == b"Sforce-NumberOfRecords"
    assert canonical(b"sforce-limit-info") == b"Sforce-Limit-Info"
    assert canonical(b"www-authenticate") == b"WWW-Authenticate"


def test_bulk2_results_and_rest_answers_carry_salesforce_header_names(org):
    org.seed(Contact=3)
    job = org.http.post(
        org.url("jobs/query"), json={"operation": "queryAll", "query": "SELECT Id FROM Contact"}
    ).json()
    for _ in range(200):
        if org.http.get(org.url(f"jobs/query/{job['id']}")).json()["state"] == "JobComplete":
            break
        time.sleep(0.02)
    page = org.http.get(org.url(f"jobs/query/{job['id']}/results"))
    names = set(dict(page.headers))  # a plain dict keeps the wire spelling
    assert {"Content-Type", "Sforce-Locator", "Sforce-NumberOfRecords"} <= names
    assert "content-type" not in names
    rest = org.http.get(org.url("limits"))
    assert {"Content-Type", "Sforce-Limit-Info"} <= set(dict(rest.headers))
