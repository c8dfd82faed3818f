"""/query and /queryAll wiring: paging, batch size, locator URLs, errors."""

import requests


def test_query_pages_follow_next_records_url(org):
    org.seed(Account=3, Contact=450)
    headers = {"Sforce-Query-Options": "batchSize=200"}
    soql = "SELECT Id, Name FROM Contact ORDER BY Id"
    page = org.http.get(org.url("queryAll/"), params={"q": soql}, headers=headers).json()
    assert page["totalSize"] == 450 and page["done"] is False
    assert len(page["records"]) == 200
    assert page["nextRecordsUrl"].startswith("/services/data/v61.0/query/01g")
    assert page["nextRecordsUrl"].endswith("-200")
    seen = [r["Id"] for r in page["records"]]
    while not page["done"]:
        # singer-io re-sends q= on later pages; the locator endpoint ignores it
        url = org.conn["instance_url"] + page["nextRecordsUrl"]
        page = org.http.get(url, params={"q": soql}).json()
        seen += [r["Id"] for r in page["records"]]
    assert "nextRecordsUrl" not in page
    assert len(seen) == len(set(seen)) == 450 and seen == sorted(seen)


def test_default_page_is_2000(org):
    org.seed(Contact=2100)
    page = org.query("SELECT Id FROM Contact")
    assert len(page["records"]) == 2000 and page["done"] is False


def test_query_errors_are_lists(org, errors_of):
    missing = org.http.get(org.url("query"))
    assert missing.status_code == 400 and errors_of(missing) == ["MALFORMED_QUERY"]
    bad_field = org.http.get(org.url("query"), params={"q": "SELECT Nope__c FROM Contact"})
    assert bad_field.status_code == 400 and errors_of(bad_field) == ["INVALID_FIELD"]
    bad_type = org.http.get(org.url("query"), params={"q": "SELECT Id FROM Nope__c"})
    assert errors_of(bad_type) == ["INVALID_TYPE"]
    bad_locator = org.http.get(org.url("query/01g5g0000000zzzAAA-2000"))
    assert bad_locator.status_code == 400


def _request_line(url: str, soql: str) -> int:
    prepared = requests.Request("GET", url, params={"q": soql}).prepare()
    target = prepared.path_url
    return len(f"GET {target} HTTP/1.1")


def test_a_request_line_over_16384_bytes_is_refused_with_414(org):
    """Salesforce documents a 16,384-byte URI limit; a longer one never reaches the API."""
    url = org.url("query")
    head = "SELECT Id FROM Contact WHERE LastName IN ('"
    filler = 16_384 - _request_line(url, head + "')")
    fits = head + "x" * filler + "')"
    assert _request_line(url, fits) == 16_384
    assert org.http.get(url, params={"q": fits}).status_code == 200
    too_long = head + "x" * (filler + 1) + "')"
    refused = org.http.get(url, params={"q": too_long})
    assert refused.status_code == 414
    assert refused.headers["Content-Type"].startswith("text/html")
    # Nothing routed: the same session goes on working (a new connection).
    assert org.http.get(url, params={"q": "SELECT Id FROM Contact"}).status_code == 200
