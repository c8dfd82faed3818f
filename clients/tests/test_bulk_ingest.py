"""BulkIngest against the sandbox's Bulk API 2.0 ingest: the upload limit splits a write into
several jobs, results are matched by key (any order, either error spelling, empty files),
a replayed upload after a reset, and the timeout aborts the job."""

from __future__ import annotations

from collections import deque

import pytest

from salesforce_appcues_clients.bulk_ingest import BulkIngest, _waiting_rows, error_code

DEFAULTS = {
    "ingest_error_format": "bulk",
    "ingest_processed_counts_failed": True,
    "ingest_results_order": "upload",
    "ingest_empty_results": "header",
    "ingest_processing_seconds": 0,
}


@pytest.fixture
def ingest_switches(sf_control):
    yield lambda **body: sf_control.call("POST", "bulk", body)
    sf_control.call("POST", "bulk", DEFAULTS)


def contacts(tag: str, n: int) -> list[dict[str, object]]:
    return [
        {"LastName": f"{tag}-{i}", "Product_User_Id__c": f"{tag}-{i}", "Email": None}
        for i in range(n)
    ]


@pytest.mark.parametrize(
    "switches",
    [
        {},
        {"ingest_results_order": "reversed"},
        {"ingest_error_format": "plain"},
        {"ingest_empty_results": "empty"},
        {"ingest_processed_counts_failed": False},
    ],
    ids=lambda s: "-".join(map(str, s.values())) or "defaults",
)
def test_a_write_over_the_upload_limit_becomes_several_jobs(
    sf, sf_control, tag, ingest_switches, switches
):
    ingest_switches(**switches)
    records = contacts(tag, 30)
    records[7]["Product_User_Id__c"] = "x" * 300  # too long: that row alone fails
    bulk = BulkIngest(sf, max_upload_bytes=600)
    created = sf_control.count_calls("POST /services/data/vXX.X/jobs/ingest")
    jobs: list[tuple[str, list[int]]] = []
    settled: list[str] = []
    outcome = bulk.write(
        "Contact",
        "upsert",
        records,
        key_field="Product_User_Id__c",
        external_id_field="Product_User_Id__c",
        on_job=lambda job_id, positions: jobs.append((job_id, positions)),
        on_settled=lambda job_id, results: settled.append(job_id),
    )
    jobs_created = sf_control.count_calls("POST /services/data/vXX.X/jobs/ingest") - created
    assert jobs_created == len(jobs) > 1
    assert [j for j, _ in jobs] == settled
    assert sorted(i for _, positions in jobs for i in positions) == list(range(30))
    assert outcome.failure is None and outcome.unconfirmed == []
    assert [r.index for r in outcome.results] == list(range(30))
    failed = [r for r in outcome.results if not r.success]
    assert [r.index for r in failed] == [7]
    (error,) = failed[0].errors
    assert error["statusCode"] == "STRING_TOO_LONG"
    assert error["message"].startswith("STRING_TOO_LONG:")
    assert all(r.created for r in outcome.results if r.success)
    found = {
        row["Product_User_Id__c"]: row["Id"]
        for row in sf.query(
            f"SELECT Id, Product_User_Id__c FROM Contact WHERE LastName LIKE '{tag}-%'"
        )
    }
    assert {r.id for r in outcome.results if r.success} == set(found.values())
    assert len(found) == 29


def test_rows_are_matched_by_whole_content_without_a_key(sf, tag, ingest_switches):
    ingest_switches(ingest_results_order="reversed")
    records = [{"LastName": tag, "FirstName": "Same"}, {"LastName": tag, "FirstName": "Other"}]
    records.append(dict(records[0]))  # identical rows are interchangeable
    outcome = BulkIngest(sf).write("Contact", "insert", records)
    assert outcome.unconfirmed == [] and all(r.success for r in outcome.results)
    assert len({r.id for r in outcome.results}) == 3


def test_an_update_leaves_alone_the_fields_a_row_does_not_carry(sf, tag):
    """Rows with different fields share the job's columns: a column a row lacks is an empty
    cell (left alone), an explicit None is `#N/A` (set to null)."""
    made = BulkIngest(sf).write(
        "Contact", "insert", [{"LastName": tag, "Title": "Kept", "Phone": "1"}] * 2
    )
    first, second = (str(r.id) for r in made.results)
    rows = [
        {"Id": first, "FirstName": "A"},
        {"Id": second, "FirstName": "B", "Title": "New", "Phone": None},
    ]
    outcome = BulkIngest(sf).write("Contact", "update", rows, key_field="Id")
    assert outcome.unconfirmed == [] and all(r.success for r in outcome.results)
    found = {
        r["Id"]: (r["FirstName"], r["Title"], r["Phone"])
        for r in sf.query(
            f"SELECT Id, FirstName, Title, Phone FROM Contact WHERE LastName = '{tag}'"
        )
    }
    assert found == {first: ("A", "Kept", "1"), second: ("B", "New", None)}


def test_a_reset_upload_is_replayed_from_the_start(sf, sf_control, tag):
    sf_control.faults(
        {"action": "reset", "times": 1, "match": {"method": "PUT", "path": r"/batches$"}}
    )
    outcome = BulkIngest(sf).write("Contact", "insert", contacts(tag, 5))
    assert sf_control.fired_by_rule() == [1]
    assert [r.success for r in outcome.results] == [True] * 5


def test_a_failed_job_leaves_its_unprocessed_rows_unconfirmed(sf, sf_control, tag):
    sf_control.call("POST", "bulk", {"fail_ingest_jobs": 1, "ingest_error_message": "broken"})
    outcome = BulkIngest(sf).write("Contact", "insert", contacts(tag, 4))
    assert outcome.failure is not None and "Failed: broken" in outcome.failure
    assert sorted(outcome.unconfirmed) == [0, 1, 2, 3]
    assert outcome.results == []


def test_a_job_past_bulk_timeout_is_aborted(tag, ingest_switches, sf_config, new_sf):
    ingest_switches(ingest_processing_seconds=5)
    client = new_sf(sf_config(bulk_timeout=1))
    outcome = BulkIngest(client).write("Contact", "insert", contacts(tag, 3))
    assert outcome.failure is not None and "Aborted" in outcome.failure
    assert sorted(outcome.unconfirmed) == [0, 1, 2]


def test_error_code_is_the_text_before_the_first_colon():
    assert error_code("STRING_TOO_LONG:Last Name: data value too large:LastName --") == (
        "STRING_TOO_LONG"
    )
    assert error_code("") == "UNKNOWN_ERROR"


def test_polls_wait_for_the_rows_then_for_the_estimated_end(sf):
    """The cadence that keeps a large job to about two polls: none right after the upload
    (a job just closed has no news), then the end the job's own pace predicts."""
    bulk = BulkIngest(sf)
    assert bulk.first_poll_delay(0) == 0  # size unknown (an earlier run's job): at once
    assert bulk.first_poll_delay(100) == bulk.poll_initial  # small jobs: as soon as before
    assert bulk.first_poll_delay(50_000) == 5.0
    assert bulk.first_poll_delay(1_000_000) == bulk.poll_max
    # a quarter done after 10 s: the rest should take 30 s more, polled just past that end
    # the first time, with the wider margin once an estimate fell short
    assert bulk.next_poll_delay(100_000, 25_000, 10.0, 10.0) == 1.1 * 30
    assert bulk.next_poll_delay(100_000, 25_000, 10.0, 10.0, estimates=1) == 1.25 * 30
    assert bulk.next_poll_delay(100_000, 99_999, 10.0, 10.0) == bulk.poll_initial
    assert bulk.next_poll_delay(10**9, 1, 100.0, 10.0) == bulk.poll_max_estimated
    # no progress yet (queued), or a counter that already shows every row: doubling
    assert bulk.next_poll_delay(100_000, 0, 1.0, 0.25) == 0.5
    assert bulk.next_poll_delay(100_000, 0, 30.0, 8.0) == bulk.poll_max
    assert bulk.next_poll_delay(100, 100, 1.0, 0.0) == bulk.poll_initial


def test_a_job_stuck_at_partial_progress_is_polled_ever_less_often(sf):
    """A 1M-row job whose last chunk sticks: re-estimating from an unmoved count would poll
    every few seconds (elapsed * remaining / processed shrinks as nothing happens); the wait
    doubles instead, up to `poll_max_estimated`."""
    bulk = BulkIngest(sf)
    rows, processed = 1_000_000, 990_000
    assert bulk.next_poll_delay(rows, processed, 100.0, 10.0, 1, before=980_000) == 1.25 * 100 / 99
    elapsed, delay, polls = 100.0, 1.0, 0
    while elapsed < 600:  # ten minutes stuck
        delay = bulk.next_poll_delay(rows, processed, elapsed, delay, 2, before=processed)
        elapsed += delay
        polls += 1
    assert delay == bulk.poll_max_estimated
    assert polls <= 10
    # the count moved again: back to the estimate
    assert bulk.next_poll_delay(rows, 995_000, 700.0, 120.0, 3, before=processed) == (
        1.25 * 700 * 5_000 / 995_000
    )


def test_a_key_field_missing_from_the_columns_is_refused_before_any_job(sf):
    """Keyed by a column the job lacks, every row would key as ("",) and result rows would
    confirm arbitrary rows: refused, naming the field, before a job is created."""
    records = [{"Subject": "a", "Appcues_Event_Id__c": "e1"}, {"Subject": "b"}]
    columns = ["Subject", "Appcues_Event_Id__c"]
    keyed = _waiting_rows(columns, records, [0, 1], "appcues_event_id__c", "")
    assert dict(keyed) == {("e1",): deque([0]), ("",): deque([1])}
    with pytest.raises(ValueError, match="'Missing_Id__c' is not among"):
        _waiting_rows(columns, records, [0, 1], "Missing_Id__c", "")
    calls = sf.calls_made
    with pytest.raises(ValueError, match="'Missing_Id__c' is not among"):
        BulkIngest(sf).write("Event", "insert", records, key_field="Missing_Id__c")
    assert sf.calls_made == calls  # no job was created
