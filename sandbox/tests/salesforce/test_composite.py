"""POST composite (compositeRequest): one counted call, limits, allOrNone, faults, and a
wire check with simple-salesforce's raw `restful` call."""

from __future__ import annotations

import pytest

from .conftest import API

_EVENT = {"ActivityDateTime": "2024-05-01T09:00:00.000Z", "DurationInMinutes": 15}


def _collection(ref: str, records: list[dict], all_or_none: bool = False) -> dict:
    return {
        "method": "POST",
        "url": f"/services/data/{API}/composite/sobjects",
        "referenceId": ref,
        "body": {"allOrNone": all_or_none, "records": records},
    }


def _contacts(*names: str | None) -> list[dict]:
    return [
        {"attributes": {"type": "Contact"}, **({"LastName": n} if n else {"FirstName": "x"})}
        for n in names
    ]


def test_simple_salesforce_restful_composite_is_one_call(org):
    from simple_salesforce import Salesforce

    sf = Salesforce(
        session_id=org.http.headers["Authorization"].split()[1],
        instance_url=org.conn["instance_url"],
        version=API[1:],
        session=org.anon,
    )
    contact = org.create("Contact", LastName="Target")
    before = org.http.get(org.url("limits")).json()["DailyApiRequests"]["Remaining"]
    body = sf.restful(
        "composite",
        method="POST",
        json={
            "allOrNone": False,
            "compositeRequest": [
                _collection("events", [{"attributes": {"type": "Event"}, **_EVENT}]),
                {
                    "method": "PATCH",
                    "url": f"/services/data/{API}/composite/sobjects",
                    "referenceId": "nps",
                    "body": {
                        "allOrNone": False,
                        "records": [
                            {"attributes": {"type": "Contact"}, "id": contact, "FirstName": "N"}
                        ],
                    },
                },
                {
                    "method": "GET",
                    "url": f"/services/data/{API}/query?q=SELECT+FirstName+FROM+Contact",
                    "referenceId": "read",
                },
            ],
        },
    )
    answers = body["compositeResponse"]
    assert [a["referenceId"] for a in answers] == ["events", "nps", "read"]
    assert [a["httpStatusCode"] for a in answers] == [200, 200, 200]
    assert answers[0]["body"][0]["success"] is True
    assert answers[0]["body"][0]["id"].startswith("00U")
    assert answers[1]["body"] == [{"id": contact, "success": True, "errors": []}]
    assert answers[2]["body"]["records"][0]["FirstName"] == "N"
    after = org.http.get(org.url("limits"))
    # the composite counted once, then /limits itself
    assert after.json()["DailyApiRequests"]["Remaining"] == before - 2


def test_limits_25_subrequests_and_5_collections_or_queries(org):
    six = [_collection(f"c{i}", _contacts(f"C{i}")) for i in range(6)]
    refused = org.http.post(org.url("composite"), json={"compositeRequest": six})
    assert refused.status_code == 400
    assert refused.json()[0]["errorCode"] == "INVALID_BATCH_REQUEST"
    assert org.query("SELECT COUNT() FROM Contact")["totalSize"] == 0
    queries = [
        {
            "method": "GET",
            "url": f"/services/data/{API}/query?q=SELECT+Id+FROM+User",
            "referenceId": f"q{i}",
        }
        for i in range(3)
    ]
    mixed = six[:3] + queries
    assert org.http.post(org.url("composite"), json={"compositeRequest": mixed}).status_code == 400
    five = org.http.post(org.url("composite"), json={"compositeRequest": six[:5]})
    assert five.status_code == 200
    singles = [
        {
            "method": "POST",
            "url": f"/services/data/{API}/sobjects/Contact",
            "referenceId": f"s{i}",
            "body": {"LastName": f"S{i}"},
        }
        for i in range(26)
    ]
    assert (
        org.http.post(org.url("composite"), json={"compositeRequest": singles}).status_code == 400
    )
    ok = org.http.post(org.url("composite"), json={"compositeRequest": singles[:20] + six[:5]})
    assert ok.status_code == 200
    assert org.query("SELECT COUNT() FROM Contact")["totalSize"] == 5 + 20 + 5


def test_all_or_none_false_keeps_collections_independent(org):
    subs = [
        _collection("a", _contacts("A1", None)),  # one refused record, the other written
        _collection("b", _contacts("B1")),
    ]
    answers = org.http.post(
        org.url("composite"), json={"allOrNone": False, "compositeRequest": subs}
    ).json()["compositeResponse"]
    assert [a["httpStatusCode"] for a in answers] == [200, 200]
    assert [r["success"] for r in answers[0]["body"]] == [True, False]
    assert answers[0]["body"][1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert org.query("SELECT COUNT() FROM Contact")["totalSize"] == 2


def test_all_or_none_true_overrides_the_collections_flag(org):
    subs = [
        _collection("a", _contacts("B1")),
        _collection("b", _contacts("A1", None), all_or_none=False),
        _collection("c", _contacts("C1")),
    ]
    answers = org.http.post(
        org.url("composite"), json={"allOrNone": True, "compositeRequest": subs}
    ).json()["compositeResponse"]
    assert answers[0]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    failed = answers[1]["body"]
    assert failed[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert failed[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert answers[2]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert org.query("SELECT COUNT() FROM Contact")["totalSize"] == 0


@pytest.mark.parametrize("status", [503, 500])
def test_faults_are_injectable_on_composite(org, status):
    org.faults({"match": {"method": "POST", "path": "/composite$"}, "status": status, "times": 1})
    subs = [_collection("a", _contacts("A1"))]
    refused = org.http.post(org.url("composite"), json={"compositeRequest": subs})
    assert refused.status_code == status
    assert isinstance(refused.json(), list) and "errorCode" in refused.json()[0]
    assert org.query("SELECT COUNT() FROM Contact")["totalSize"] == 0
    assert org.http.post(org.url("composite"), json={"compositeRequest": subs}).status_code == 200
    assert org.query("SELECT COUNT() FROM Contact")["totalSize"] == 1
