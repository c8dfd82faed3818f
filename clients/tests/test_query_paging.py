"""REST query paging: the next page is requested in the background, one page ahead, and
the reader still sees the calls, records and errors of a page-by-page reading."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from salesforce_appcues_clients import soql
from salesforce_appcues_clients.errors import SalesforceError

LOCATOR_PAGES = r"/services/data/v[\d.]+/query/."  # queryMore pages, not the first page
PAGE_THREAD = "salesforce-query-page"


def page_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == PAGE_THREAD and t.is_alive()]


def by_tag(tag: str) -> str:
    return f"SELECT Id FROM Contact WHERE LastName = {soql.quote(tag)} ORDER BY Id"


def test_a_page_error_surfaces_where_the_reader_reaches_that_page(
    sf, sf_control, tag, insert_contacts
):
    ids = insert_contacts(sf, tag, 450)
    sf_control.faults(
        {
            "match": {"method": "GET", "path": LOCATOR_PAGES},
            "action": "error",
            "status": 400,
            "error_code": "INVALID_QUERY_LOCATOR",
            "times": 1,
        }
    )
    rows = sf.query(by_tag(tag), batch_size=200)
    seen: list[str] = []
    with pytest.raises(SalesforceError) as info:
        # Page 2 failed in the background while page 1 was read; extend keeps what came.
        seen.extend(row["Id"] for row in rows)
    assert info.value.error_code == "INVALID_QUERY_LOCATOR"
    assert len(seen) == 200  # every record before the failed page, none after
    assert sf_control.fired_by_rule() == [1]
    # Asked again, the result requests that page again, as a page-by-page reading would.
    seen.extend(row["Id"] for row in rows)
    assert sorted(seen) == sorted(ids)
    assert not page_threads()


def test_a_full_reading_makes_one_call_per_page(sf, sf_control, tag, insert_contacts):
    insert_contacts(sf, tag, 601)
    before = sf_control.count_calls("GET /services/data")
    assert len(list(sf.query(by_tag(tag), batch_size=200))) == 601
    assert sf_control.count_calls("GET /services/data") - before == 4
    assert not page_threads()


def test_close_waits_for_the_page_in_flight(sf, sf_control, tag, insert_contacts):
    insert_contacts(sf, tag, 450)
    sf_control.faults(
        {"match": {"method": "GET", "path": LOCATOR_PAGES}, "action": "latency", "latency_ms": 300}
    )
    before = sf_control.count_calls("GET /services/data")
    rows = sf.query(by_tag(tag), batch_size=200)
    next(rows)  # the reader is on page 1: page 2 is on its way
    assert rows.total_size == 450
    rows.close()
    assert not page_threads()  # nothing of this result uses the session any more
    assert list(rows) == []
    # The page in flight was the only one fetched beyond the first.
    assert sf_control.count_calls("GET /services/data") - before == 2
    sf_control.clear_faults()
    assert len(list(sf.query(by_tag(tag), batch_size=200))) == 450


def test_sizing_up_then_closing_fetches_nothing_more(sf, sf_control, tag, insert_contacts):
    insert_contacts(sf, tag, 450)
    before = sf_control.count_calls("GET /services/data")
    rows = sf.query(by_tag(tag), batch_size=200)
    assert rows.total_size == 450
    assert not page_threads()  # sizing up reads no record, so nothing is requested ahead
    rows.close()
    assert sf_control.count_calls("GET /services/data") - before == 1


def test_importing_the_client_loads_neither_simple_salesforce_nor_jwt():
    code = (
        "import sys, salesforce_appcues_clients.salesforce\n"
        "print(sorted(m for m in ('simple_salesforce', 'jwt') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"
