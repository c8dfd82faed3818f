"""Wrong configs (issue 11): unknown object, unknown field, numeric id field, wrong
credentials, unreachable host. Each plugin stops before moving data, with a message that
names the setting (or the refused login / unreachable host), and never echoes a secret."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

BIN = Path(sys.executable).parent
H = SimpleNamespace()
UNREACHABLE = "https://127.0.0.1:9"  # the discard port: connection refused


@pytest.fixture(autouse=True)
def _bind(harness):
    H.__dict__.update({k: getattr(harness, k) for k in dir(harness) if not k.startswith("__")})


def run_plugin(executable: str, config: dict, tmp_path: Path, *args: str, stdin: str = ""):
    path = tmp_path / f"{executable}-{len(list(tmp_path.iterdir()))}.json"
    path.write_text(json.dumps(config))
    done = subprocess.run(
        [BIN / executable, "--config", path, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **H.debug_env},
        cwd=tmp_path,
        check=False,
    )
    H.remember(f"{executable} {' '.join(args)}", done.stdout + done.stderr)
    return done


def assert_refused(done, *needles: str) -> None:
    assert done.returncode != 0, done.stderr[-2000:]
    output = done.stdout + done.stderr
    for needle in needles:
        assert needle in output, f"{needle!r} not in:\n{output[-3000:]}"


def tap_config(world, **overrides):
    return {
        **world.salesforce_config(max_retries=1, retry_max_seconds=1),
        **world.appcues_config("appcues_", appcues_max_retries=1),
        "user_objects": ["Contact"],
        "account_object": "Account",
        "lag": 1,
        **overrides,
    }


def events_config(world, tmp_path, **overrides):
    return {
        **world.salesforce_config(max_retries=1, retry_max_seconds=1),
        "state_dir": str(tmp_path / "state"),
        **overrides,
    }


def profiles_config(world, tmp_path, **overrides):
    return {
        **world.appcues_config(max_retries=1),
        "state_dir": str(tmp_path / "state"),
        **overrides,
    }


EVENT_LINES = "\n".join(
    json.dumps(m)
    for m in [
        {
            "type": "SCHEMA",
            "stream": "appcues_events",
            "key_properties": ["id"],
            "schema": {"type": "object", "properties": {"id": {}, "name": {}, "timestamp": {}}},
        },
        {
            "type": "RECORD",
            "stream": "appcues_events",
            "record": {
                "id": "e1",
                "name": "appcues:goal_reached",
                "timestamp": "2026-01-01T00:00:00Z",
                "user_id": "usr_c0000001",
            },
        },
    ]
)
PROFILE_LINES = "\n".join(
    json.dumps(m)
    for m in [
        {
            "type": "SCHEMA",
            "stream": "Contact",
            "key_properties": ["Id"],
            "schema": {"type": "object", "properties": {"Id": {}, "Product_User_Id__c": {}}},
        },
        {
            "type": "RECORD",
            "stream": "Contact",
            "record": {"Id": "0035g0000000000001", "Product_User_Id__c": "u1", "Title": "x"},
        },
    ]
)


def no_events(world) -> bool:
    sf, _ = H.verification_clients(world)
    try:
        return sf.query_count("SELECT COUNT() FROM Event") == 0
    finally:
        sf.close()


@pytest.fixture(scope="module")
def seeded(world):
    world.reset(events=False)
    return world


# --- the tap ---------------------------------------------------------------------------------
def test_tap_unknown_object(seeded, tmp_path):
    done = run_plugin(
        "tap-salesforce-appcues",
        tap_config(seeded, account_object="Nope__c"),
        tmp_path,
        "--discover",
    )
    assert_refused(done, "account_object", "Nope__c")


def test_tap_unknown_user_object(seeded, tmp_path):
    done = run_plugin(
        "tap-salesforce-appcues",
        tap_config(seeded, user_objects=["Person"]),
        tmp_path,
        "--discover",
    )
    assert_refused(done, "user_objects", "Person")


def test_tap_wrong_credentials(seeded, tmp_path):
    done = run_plugin(
        "tap-salesforce-appcues",
        tap_config(seeded, refresh_token="5Aep861-not-a-real-refresh-token"),
        tmp_path,
        "--discover",
    )
    assert_refused(done, "invalid_grant")
    assert "5Aep861-not-a-real-refresh-token" not in done.stdout + done.stderr


def test_tap_unreachable_host(seeded, tmp_path):
    done = run_plugin(
        "tap-salesforce-appcues", tap_config(seeded, domain=UNREACHABLE), tmp_path, "--discover"
    )
    assert_refused(done, "127.0.0.1:9")


# --- target-salesforce-events ----------------------------------------------------------------
def test_events_target_unknown_field(seeded, tmp_path):
    done = run_plugin(
        "target-salesforce-events",
        events_config(seeded, tmp_path, nps_score_field="Nope__c"),
        tmp_path,
        stdin=EVENT_LINES,
    )
    assert_refused(done, "Nope__c")
    assert no_events(seeded)


def test_events_target_unknown_object(seeded, tmp_path):
    done = run_plugin(
        "target-salesforce-events",
        events_config(seeded, tmp_path, user_objects=["Person__c"]),
        tmp_path,
        "--check",
    )
    assert_refused(done, "Person__c", "[FAIL]")


def test_events_target_numeric_id_field(seeded, tmp_path):
    done = run_plugin(
        "target-salesforce-events",
        events_config(seeded, tmp_path, user_id_field="Product_User_Number__c"),
        tmp_path,
        "--check",
    )
    assert_refused(done, "Product_User_Number__c", "TEXT(Product_User_Number__c)")


def test_events_target_wrong_credentials(seeded, tmp_path):
    done = run_plugin(
        "target-salesforce-events",
        events_config(seeded, tmp_path, client_secret="wrong-secret-0123456789"),
        tmp_path,
        stdin=EVENT_LINES,
    )
    assert_refused(done, "invalid_client")
    assert "wrong-secret-0123456789" not in done.stdout + done.stderr
    assert no_events(seeded)


def test_events_target_unreachable_host(seeded, tmp_path):
    done = run_plugin(
        "target-salesforce-events",
        events_config(seeded, tmp_path, domain=UNREACHABLE),
        tmp_path,
        stdin=EVENT_LINES,
    )
    assert_refused(done, "127.0.0.1:9")
    assert '"bookmarks"' not in done.stdout


# --- target-appcues-profiles -----------------------------------------------------------------
def test_profiles_target_unknown_id_field(seeded, tmp_path):
    """An id field no record has: every record is dead-lettered naming the field (the
    target cannot know the source's fields before records arrive)."""
    done = run_plugin(
        "target-appcues-profiles",
        profiles_config(seeded, tmp_path, user_id_field="Nope__c"),
        tmp_path,
        stdin=PROFILE_LINES,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    letters = [
        json.loads(line)
        for line in (tmp_path / "state" / "dead-letters.jsonl").read_text().splitlines()
    ]
    assert [d["reason"] for d in letters] == ["missing_id"]
    assert "Nope__c" in letters[0]["message"]


def test_profiles_target_wrong_credentials(seeded, tmp_path):
    done = run_plugin(
        "target-appcues-profiles",
        profiles_config(seeded, tmp_path, api_secret="wrong-appcues-secret-42"),
        tmp_path,
        stdin=PROFILE_LINES,
    )
    assert_refused(done, "401")
    assert "wrong-appcues-secret-42" not in done.stdout + done.stderr
    assert '"bookmarks"' not in done.stdout


def test_profiles_target_unreachable_host(seeded, tmp_path):
    done = run_plugin(
        "target-appcues-profiles",
        profiles_config(seeded, tmp_path, base_url=UNREACHABLE),
        tmp_path,
        stdin=PROFILE_LINES,
    )
    assert_refused(done, "127.0.0.1:9")
