"""The tap's closing summary: one log record whose fields count what the run emitted."""

from __future__ import annotations

import logging
from datetime import timedelta

from salesforce_appcues_clients.plugin_kit.run_summary import SUMMARY_FIELDS

S = timedelta(seconds=1)


def test_the_summary_record_counts_records_per_stream_and_calls_per_service(
    org, appcues_control, config, run, t0, caplog
):
    org.write("Contact", [{"LastName": f"s-{i}"} for i in range(4)], modstamp=t0 - 60 * S)
    org.write("Account", [{"Name": "Acme"}], modstamp=t0 - 60 * S)
    with caplog.at_level(logging.INFO):
        done = run(config(), streams=["Contact", "Account"])
    [summary] = [r for r in caplog.records if hasattr(r, "run_summary")]
    fields = {name: getattr(summary, name) for name in SUMMARY_FIELDS}
    calls = done.calls
    assert summary.getMessage() == (
        f"API calls this run: salesforce={calls['salesforce']} appcues={calls['appcues']}"
    )
    assert fields["run_summary"] == "complete"
    assert fields["records_read"] == {"Account": 1, "Contact": 4}
    assert fields["records_read"] == {k: len(v) for k, v in done.records.items()}
    assert fields["records_written"] == fields["records_read"]
    assert fields["records_skipped"] == {} and fields["dead_letters"] == {}
    assert fields["api_calls"] == done.calls
    assert fields["duration_seconds"] > 0
    # The API calls also as METRIC counters, one per service.
    points = [
        r.args[0].to_dict()
        for r in caplog.records
        if r.name == "singer_sdk.metrics" and r.args and hasattr(r.args[0], "to_dict")
    ]
    requests = {
        p["tags"]["service"]: p["value"] for p in points if p["metric"] == "http_request_count"
    }
    assert requests == done.calls
