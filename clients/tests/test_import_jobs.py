"""Reading Appcues' undocumented import job object; CSV bodies that keep every value."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from salesforce_appcues_clients.appcues import ImportJob, csv_body, csv_can_carry


def job(**body):
    return ImportJob.from_json("j1", {"job_id": "j1", **body})


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        *((w, "succeeded") for w in ("complete", "completed", "done", "finished", "succeeded")),
        ("success", "succeeded"),
        ("DONE", "succeeded"),
        *((w, "failed") for w in ("failed", "error", "errored", "cancelled", "canceled")),
        *((w, "pending") for w in ("queued", "running", "processing", "", "partial", "ok")),
    ],
)
def test_status_words_are_read_tolerantly(status, outcome):
    assert job(status=status).outcome == outcome
    assert job(status=status).finished is (outcome != "pending")


def test_a_body_without_counters_gives_no_per_row_verdict():
    done = job(status="done")
    assert done.finished and not done.accounts_for(3)
    assert not done.reports_trouble(3)  # nothing said either way: read back a sample


def test_a_detailed_body_accounts_for_every_row():
    ok = job(status="complete", total_rows=3, processed_rows=3, failed_rows=0, errors=[])
    assert ok.accounts_for(3)
    assert ok.suspect_indexes(3) == {}
    assert not ok.accounts_for(4)  # counted other rows than we sent


def test_error_rows_are_suspects_under_either_numbering():
    body = job(
        status="complete",
        total_rows=5,
        processed_rows=5,
        failed_rows=2,
        errors=[{"row": 2, "message": "bad"}, {"row": 5, "message": "worse"}],
    )
    assert body.accounts_for(5)
    # row 2 is index 1 counted from 1, index 2 counted from 0; row 5 only index 4
    assert body.suspect_indexes(5) == {1: "bad", 2: "bad", 4: "worse"}


@pytest.mark.parametrize(
    "body",
    [
        {"status": "complete", "total_rows": 3, "failed_rows": 2, "errors": [{"row": 1}]},
        {"status": "complete", "total_rows": 3, "processed_rows": 2, "failed_rows": 0},
        {"status": "complete", "total_rows": 3, "failed_rows": 1, "errors": [{"row": 9}]},
        {"status": "complete", "total_rows": 3, "failed_rows": 1, "errors": [{"line": 1}]},
        {"status": "complete", "total_rows": 3, "failed_rows": "0", "errors": []},
        {"status": "complete", "total_rows": True, "failed_rows": 0},
        {"status": "complete", "total_rows": 0, "failed_rows": 0, "errors": []},
        {"status": "failed", "total_rows": 3, "failed_rows": 1, "errors": [{"row": 1}]},
        {"status": "running", "total_rows": 3, "failed_rows": 0, "errors": []},
    ],
)
def test_bodies_that_do_not_account_for_each_row(body):
    assert not job(**body).accounts_for(3)


def test_partial_or_failed_jobs_report_trouble():
    assert job(status="complete", total_rows=3, processed_rows=2).reports_trouble(3)
    assert job(status="done", failed_rows=1).reports_trouble(3)
    assert job(status="cancelled").reports_trouble(3)


def test_a_failed_job_where_every_row_failed_accounts_for_them():
    errors = [{"row": r, "message": "no"} for r in (1, 2)]
    body = job(status="failed", total_rows=2, processed_rows=2, failed_rows=2, errors=errors)
    assert body.accounts_for(2)
    assert set(body.suspect_indexes(2)) == {0, 1}


@pytest.mark.parametrize(
    ("value", "carried"),
    [
        ("Lyon", True),
        ("F-69001", True),
        ("69001", False),
        ("1e3", False),
        ("true", False),
        ("NULL", False),
        ("", False),
        (" padded", False),
        ("nan", False),
        (5, True),
        (2.5, True),
        (True, True),
        (None, True),
        (2**60, False),
    ],
)
def test_which_values_a_csv_import_carries(value, carried):
    assert csv_can_carry({"user_id": "u1", "a": value}, "user_id") is carried


def test_numeric_ids_travel_as_csv_but_zero_padded_ones_do_not():
    assert csv_can_carry({"user_id": "12345"}, "user_id")
    assert not csv_can_carry({"user_id": "007"}, "user_id")


def _cast(cell: str):
    """The cast of Appcues' uploader, as docs/sandbox.md describes it."""
    low = cell.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "null":
        return None
    try:
        number = float(cell)
    except ValueError:
        return cell
    return int(number) if number.is_integer() and "." not in cell and "e" not in low else number


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(min_size=0, max_size=20),
)


@given(st.dictionaries(st.text(min_size=1, max_size=8), _values, max_size=5))
def test_a_row_csv_can_carry_reads_back_as_sent(attributes):
    row = {"user_id": "u1", **{f"a_{k}": v for k, v in attributes.items()}}
    if not csv_can_carry(row, "user_id"):
        return
    header, cells = list(csv.reader(io.StringIO(csv_body([row]).decode())))
    read = {k: _cast(c) for k, c in zip(header, cells, strict=True) if c != ""}
    assert read.keys() == row.keys()
    for key, value in row.items():
        assert read[key] == value
        assert type(read[key]) is type(value)
