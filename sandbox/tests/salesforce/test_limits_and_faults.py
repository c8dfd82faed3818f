"""Sforce-Limit-Info, the daily allocation, /limits and injected faults."""

import re
import time

import pytest
import requests


def test_every_counted_call_carries_the_exact_limit_header(org):
    first = org.http.get(org.url("sobjects"))
    second = org.http.get(org.url("limits"))
    assert re.fullmatch(r"api-usage=\d+/\d+", first.headers["Sforce-Limit-Info"])
    assert first.headers["Sforce-Limit-Info"] == "api-usage=1/100000"
    assert second.headers["Sforce-Limit-Info"] == "api-usage=2/100000"
    limits = second.json()
    assert limits["DailyApiRequests"] == {"Max": 100000, "Remaining": 99998}
    assert "DailyBulkApiBatches" in limits and "DailyBulkV2QueryJobs" in limits
    # the versions list, OAuth and the control API are not counted
    versions = org.anon.get(f"{org.conn['instance_url']}/services/data/")
    assert "Sforce-Limit-Info" not in versions.headers
    assert {
        "label": "Summer '14",
        "url": "/services/data/v31.0",
        "version": "31.0",
    } in versions.json()
    org.login()
    assert org.http.get(org.url("")).headers["Sforce-Limit-Info"] == "api-usage=3/100000"


def test_spent_allocation_answers_request_limit_exceeded(org):
    org.anon.post(f"{org.control}/api-usage", json={"used": 9, "max": 10}).raise_for_status()
    assert org.http.get(org.url("sobjects")).status_code == 200
    refused = org.http.get(org.url("sobjects"))
    assert refused.status_code == 403
    assert refused.json() == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    assert refused.headers["Sforce-Limit-Info"] == "api-usage=10/10"
    # the allocation is a rolling day
    org.anon.post(f"{org.control}/clock", json={"advance_seconds": 86400}).raise_for_status()
    org.login()
    assert org.http.get(org.url("sobjects")).status_code == 200


@pytest.mark.parametrize(
    ("status", "code"),
    [(503, "SERVER_UNAVAILABLE"), (403, "REQUEST_LIMIT_EXCEEDED"), (400, "QUERY_TIMEOUT")],
)
def test_error_faults_use_salesforce_error_lists(org, status, code):
    org.faults(
        {
            "match": {"method": "GET", "path": "/query"},
            "status": status,
            "error_code": code,
            "retry_after": 2,
            "times": 1,
        }
    )
    response = org.http.get(org.url("query"), params={"q": "SELECT Id FROM Contact"})
    assert response.status_code == status
    assert response.json()[0]["errorCode"] == code
    assert response.headers["Retry-After"] == "2"
    assert org.http.get(org.url("query"), params={"q": "SELECT Id FROM Contact"}).status_code == 200


def test_expire_session_fault_and_reset_fault(org):
    org.faults({"match": {"path": "/sobjects"}, "action": "expire_session", "times": 1})
    expired = org.http.get(org.url("sobjects"))
    assert expired.status_code == 401
    assert expired.json()[0]["errorCode"] == "INVALID_SESSION_ID"
    org.login()
    org.faults({"match": {"path": "/limits"}, "action": "reset", "times": 1})
    with pytest.raises(requests.ConnectionError):
        org.http.get(org.url("limits"))
    assert org.http.get(org.url("limits")).status_code == 200


def test_latency_fault_still_answers(org):
    org.faults({"match": {"path": "/limits"}, "action": "latency", "latency_ms": 50, "times": 1})
    assert org.http.get(org.url("limits")).status_code == 200
    faults = org.anon.get(f"{org.control}/faults").json()
    assert faults["rules"][0]["fired"] == 1


@pytest.mark.parametrize(("on_disconnect", "applied"), [("apply", 1), ("drop", 0)])
def test_a_held_insert_whose_client_left(org, on_disconnect, applied):
    """A held insert whose client timed out and left: by default it was read whole before the
    hold and is applied when the hold ends, as by a server that has the request (whatever its
    size); `on_disconnect: drop` answers the other way (lost with its connection)."""
    name = f"Held-{on_disconnect}"
    org.faults(
        {
            "match": {"method": "POST", "path": "/composite/sobjects$"},
            "action": "latency",
            "latency_ms": 1500,
            "on_disconnect": on_disconnect,
            "times": 1,
        }
    )
    body = {"allOrNone": False, "records": [{"attributes": {"type": "Contact"}, "LastName": name}]}
    with pytest.raises(requests.Timeout):
        org.http.post(org.url("composite/sobjects"), json=body, timeout=0.5)
    org.http.close()  # the client is gone (as a timed-out target's connection is)
    time.sleep(2)  # the hold ends
    found = org.query(f"SELECT Id FROM Contact WHERE LastName = '{name}'")["totalSize"]
    assert found == applied


@pytest.mark.parametrize("page", [None, "<html><body>504 Gateway Time-out</body></html>"])
def test_an_error_after_fault_applies_the_write_then_answers_the_error(org, page):
    """`error_after`: the service handles the request, the client gets the error instead (a
    gateway that stopped waiting); `body` answers with a page instead of Salesforce's list."""
    name = f"ErrorAfter-{'page' if page else 'list'}"
    rule = {
        "match": {"method": "POST", "path": "/composite/sobjects$"},
        "action": "error_after",
        "status": 504,
        "times": 1,
    }
    if page:
        rule["body"] = page
    org.faults(rule)
    body = {"allOrNone": False, "records": [{"attributes": {"type": "Contact"}, "LastName": name}]}
    response = org.http.post(org.url("composite/sobjects"), json=body)
    assert response.status_code == 504
    if page:
        assert response.text == page
        assert response.headers["Content-Type"].startswith("text/html")
    else:
        assert isinstance(response.json()[0]["errorCode"], str)
    found = org.query(f"SELECT Id FROM Contact WHERE LastName = '{name}'")["totalSize"]
    assert found == 1


def test_stats_count_calls_by_pattern_and_records_written(org):
    cid = org.create("Contact", LastName="A")
    org.get("Contact", cid)
    stats = org.anon.get(f"{org.control}/stats").json()
    assert stats["calls"]["POST /services/data/vXX.X/sobjects/Contact/"] == 1
    assert stats["calls"]["GET /services/data/vXX.X/sobjects/Contact/{id}"] == 1
    assert stats["records_written"] == {"Contact": 1}
    assert stats["records"]["Contact"] == 1
    assert stats["api_usage"]["used"] == 2
