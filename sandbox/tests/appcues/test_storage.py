"""Storage under --data-dir: the account survives a restart of the service."""

from __future__ import annotations

from salesforce_appcues_sandbox.appcues.models import Event
from salesforce_appcues_sandbox.appcues.service import AppcuesService
from salesforce_appcues_sandbox.common.clock import SandboxClock


def test_profiles_and_events_persist_in_the_data_dir(tmp_path):
    first = AppcuesService(SandboxClock(), tmp_path)
    try:
        first.store.merge_profiles("user", [("u1", {"plan": "pro"})], 0)
        first.store.add_events([Event("u1", "Clicked", 1767225600000, event_id="e-1")], 0)
    finally:
        first.close()
    assert (tmp_path / "appcues.sqlite3").exists()
    second = AppcuesService(SandboxClock(), tmp_path)
    try:
        assert second.store.get_profile("user", "u1")["plan"] == "pro"
        assert [r["event_id"] for r in second.store.user_events("u1", 10)] == ["e-1"]
        # The same event id offered again is not stored twice.
        assert second.store.add_events([Event("u1", "Clicked", 1, event_id="e-1")], 0) == 0
    finally:
        second.close()
