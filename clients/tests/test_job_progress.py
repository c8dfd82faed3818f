"""Progress lines of polled jobs (progress.py): state and counts at a steady interval.

A short `progress_interval` stands in for the 30 s of a real backfill: with 0 every poll
logs, so the lines can be counted against the polls the sandbox saw.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from salesforce_appcues_clients import soql

PROGRESS = "salesforce_appcues_clients"


def _progress(caplog, job: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "job", None) == job]


def _polls(control) -> int:
    """GETs of a Bulk 2.0 query job's state (not of its results)."""
    return int(control.stats()["calls"].get("GET /services/data/vXX.X/jobs/query/{id}", 0))


def test_a_bulk_query_job_logs_its_state_and_records_at_every_interval(
    sf, sf_control, tag, insert_contacts, caplog
):
    caplog.set_level(logging.INFO, logger=PROGRESS)
    insert_contacts(sf, tag, 30)
    sf.progress_interval = 0  # every poll
    polls_before = _polls(sf_control)
    rows = list(sf.bulk_query(f"SELECT Id FROM Contact WHERE LastName = {soql.quote(tag)}"))
    polls = _polls(sf_control) - polls_before

    lines = _progress(caplog, "Bulk 2.0 query job")
    assert len(rows) == 30
    assert len(lines) == polls >= 1
    last = lines[-1]
    assert (last.job_state, last.records_processed) == ("JobComplete", 30)  # type: ignore[attr-defined]
    assert "JobComplete" in last.getMessage() and "records processed 30" in last.getMessage()


def test_the_default_interval_logs_a_quick_job_only_at_its_end(sf, tag, insert_contacts, caplog):
    caplog.set_level(logging.INFO, logger=PROGRESS)
    insert_contacts(sf, tag, 3)
    list(sf.bulk_query(f"SELECT Id FROM Contact WHERE LastName = {soql.quote(tag)}"))
    [line] = _progress(caplog, "Bulk 2.0 query job")
    assert line.job_state == "JobComplete"  # type: ignore[attr-defined]


def test_an_appcues_export_shows_life_while_it_runs(ac, ac_control, tag, caplog):
    caplog.set_level(logging.INFO, logger=PROGRESS)
    ac_control.call("POST", "settings", {"export_running_seconds": 1.5})
    try:
        ac.track_event(f"{tag}-u", {"name": "clicked", "timestamp": datetime.now(UTC).isoformat()})
        ac.progress_interval = 0.3
        spec = {
            "columns": ["timestamp", "user_id", "name"],
            "conditions": [["user_id", "==", f"{tag}-u"]],
            "start_time": (datetime.now(UTC) - timedelta(days=1)).date().isoformat(),
            "end_time": (datetime.now(UTC) + timedelta(days=1)).date().isoformat(),
        }
        rows = list(ac.analytics_export(spec, timeout=60))
    finally:
        ac_control.call("POST", "settings", {"export_running_seconds": 0.2})
    lines = _progress(caplog, "Appcues analytics export")
    assert len(rows) == 1
    states = [line.job_state for line in lines]  # type: ignore[attr-defined]
    assert states[-1] == "done"
    # 1.5 s of running at 0.3 s intervals: lines before the end, not only the last one.
    assert len([s for s in states[:-1] if s in ("queued", "running")]) >= 2
    elapsed = [line.elapsed_seconds for line in lines]  # type: ignore[attr-defined]
    assert elapsed == sorted(elapsed) and elapsed[-1] >= 1.5


def test_an_appcues_import_job_logs_its_row_counts(ac, ac_control, tag, caplog):
    caplog.set_level(logging.INFO, logger=PROGRESS)
    ac.progress_interval = 0
    rows = [{"user_id": f"{tag}-{i}", "plan": "team"} for i in range(4)]
    job = ac.wait_for_job(ac.import_profiles(rows), timeout=60)
    lines = _progress(caplog, "Appcues import job")
    assert job.status == "complete" and lines
    last = lines[-1]
    assert last.job_id == job.job_id and last.job_state == "complete"  # type: ignore[attr-defined]
    assert (last.total_rows, last.processed_rows, last.failed_rows) == (4, 4, 0)  # type: ignore[attr-defined]
