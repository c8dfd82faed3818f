"""How fast the Salesforce sandbox serves records: `/queryAll` paging and Bulk 2.0 results.

Seeds the org through the control API, then reads every Contact back twice, timing each:
REST `queryAll` following `nextRecordsUrl`, and a Bulk 2.0 `queryAll` job downloaded with
`maxRecords` pages. Prints JSON. The goal is >= 20,000 records/s on both paths, so the
sandbox never becomes the bottleneck of a connector benchmark.

    python bench/sandbox_serving.py [--contacts 100000] [--connection-file FILE]

Without --connection-file it starts `salesforce-appcues-sandbox serve` as a child process
(separate from this client process, as in a real measurement). `run(connection)` is the
entry point the benchmark driver imports.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import requests

from salesforce_appcues_sandbox.testing import SandboxControl, salesforce_login

FIELDS = (
    "Id,FirstName,LastName,Email,AccountId,Product_User_Id__c,Appcues_NPS_Score__c,"
    "IsDeleted,CreatedDate,SystemModstamp"
)
API = "v61.0"


def _session(ca_bundle: str) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # a preset REQUESTS_CA_BUNDLE would override verify
    session.verify = ca_bundle
    return session


def _token(session: requests.Session, connection: dict[str, Any]) -> tuple[str, str]:
    body = salesforce_login(connection, session)
    return body["access_token"], body["instance_url"]


def seed(connection: dict[str, Any], contacts: int, seed_value: int = 11) -> None:
    with SandboxControl.of(connection, "salesforce", timeout=1800) as control:
        control.reset()
        accounts = max(1, contacts // 20)
        control.seed({"Contact": contacts, "Account": accounts, "Lead": 0, "seed": seed_value})


def measure_query_all(connection: dict[str, Any]) -> dict[str, Any]:
    session = _session(connection["ca_bundle"])
    token, instance = _token(session, connection)
    session.headers["Authorization"] = f"Bearer {token}"
    start = time.perf_counter()
    resp = session.get(
        f"{instance}/services/data/{API}/queryAll",
        params={"q": f"SELECT {FIELDS} FROM Contact"},
        timeout=600,
    )
    resp.raise_for_status()
    body = resp.json()
    first_page = time.perf_counter() - start
    total = body["totalSize"]
    records = len(body["records"])
    pages = 1
    while not body["done"]:
        resp = session.get(instance + body["nextRecordsUrl"], timeout=600)
        resp.raise_for_status()
        body = resp.json()
        records += len(body["records"])
        pages += 1
    seconds = time.perf_counter() - start
    return {
        "records": records,
        "total_size": total,
        "pages": pages,
        "first_page_seconds": round(first_page, 3),
        "seconds": round(seconds, 3),
        "records_per_second": round(records / seconds),
    }


def measure_lookups(connection: dict[str, Any]) -> dict[str, Any]:
    """Latency of the small queries connectors interleave (id lookups, counts, windows)."""
    session = _session(connection["ca_bundle"])
    token, instance = _token(session, connection)
    session.headers["Authorization"] = f"Bearer {token}"
    queries = {
        "lookup_by_external_id": "SELECT Id FROM Contact WHERE Product_User_Id__c = 'usr_c0000042'",
        "count": "SELECT COUNT() FROM Contact",
        "recent_window": "SELECT Id, SystemModstamp FROM Contact WHERE SystemModstamp >= "
        "2000-01-01T00:00:00Z ORDER BY SystemModstamp DESC LIMIT 200",
    }
    out: dict[str, Any] = {}
    for name, soql in queries.items():
        start = time.perf_counter()
        resp = session.get(f"{instance}/services/data/{API}/query", params={"q": soql}, timeout=600)
        resp.raise_for_status()
        out[f"{name}_seconds"] = round(time.perf_counter() - start, 3)
    return out


def measure_bulk2(connection: dict[str, Any], max_records: int = 50000) -> dict[str, Any]:
    session = _session(connection["ca_bundle"])
    token, instance = _token(session, connection)
    session.headers["Authorization"] = f"Bearer {token}"
    base = f"{instance}/services/data/{API}/jobs/query"
    start = time.perf_counter()
    resp = session.post(
        base,
        json={"operation": "queryAll", "query": f"SELECT {FIELDS} FROM Contact"},
        timeout=600,
    )
    resp.raise_for_status()
    job_id = resp.json()["id"]
    while True:
        state = session.get(f"{base}/{job_id}", timeout=600).json()["state"]
        if state in ("JobComplete", "Failed", "Aborted"):
            break
        time.sleep(0.05)
    if state != "JobComplete":
        raise RuntimeError(f"bulk job ended {state}")
    job_seconds = time.perf_counter() - start
    records = 0
    pages = 0
    locator: str | None = None
    while True:
        params: dict[str, Any] = {"maxRecords": max_records}
        if locator:
            params["locator"] = locator
        resp = session.get(
            f"{base}/{job_id}/results",
            params=params,
            headers={"Accept-Encoding": "gzip"},
            timeout=600,
        )
        resp.raise_for_status()
        records += int(resp.headers["Sforce-NumberOfRecords"])
        pages += 1
        if resp.text.count("\n") < int(resp.headers["Sforce-NumberOfRecords"]):
            raise RuntimeError("result page shorter than Sforce-NumberOfRecords")
        locator = resp.headers["Sforce-Locator"]
        if locator == "null":
            break
    seconds = time.perf_counter() - start
    session.delete(f"{base}/{job_id}", timeout=60)
    return {
        "records": records,
        "pages": pages,
        "job_seconds": round(job_seconds, 3),
        "seconds": round(seconds, 3),
        "records_per_second": round(records / seconds),
    }


def run(connection: dict[str, Any], contacts: int = 100_000) -> dict[str, Any]:
    """Reset the org behind `connection` (it must be a throwaway sandbox), seed `contacts`
    Contacts, time both read paths."""
    start = time.perf_counter()
    seed(connection, contacts)
    seeded = time.perf_counter() - start
    query_all = measure_query_all(connection)
    bulk2 = measure_bulk2(connection)
    lookups = measure_lookups(connection)
    goal = 20_000
    return {
        "contacts": contacts,
        "seed_seconds": round(seeded, 3),
        "query_all": query_all,
        "bulk2": bulk2,
        "lookups": lookups,
        "goal_records_per_second": goal,
        "meets_goal": query_all["records_per_second"] >= goal
        and bulk2["records_per_second"] >= goal,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--connection-file", help="a running sandbox's connection file")
    args = parser.parse_args(argv)
    if args.connection_file:
        with open(args.connection_file) as fh:
            result = run(json.load(fh), args.contacts)
    else:
        from salesforce_appcues_sandbox.server import SandboxProcess

        with SandboxProcess() as sandbox:
            result = run(sandbox.connection, args.contacts)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0 if result["meets_goal"] else 1


if __name__ == "__main__":
    sys.exit(main())
