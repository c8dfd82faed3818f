"""`--replay-dead-letters FILE` (issue 15): fix the cause, replay, the delivered records leave
the file, the others stay with their new reason, and a replay never duplicates an Event."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from io import StringIO
from pathlib import Path

from singer_sdk.testing import target_sync_test

from salesforce_appcues_clients.plugin_kit.dead_letters import read_dead_letters
from target_salesforce_events.target import TargetSalesforceEvents

TS = ["2026-04-01T08:00:00Z", "2026-04-01T08:05:00Z", "2026-04-01T08:10:00Z"]


def replay(config: dict, path: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    env = {
        **os.environ,
        "REQUESTS_CA_BUNDLE": config["ca_bundle"],
        "SSL_CERT_FILE": config["ca_bundle"],
    }
    env.pop("TARGET_SALESFORCE_EVENTS_DEAD_LETTER_PATH", None)
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("target-salesforce-events")),
            "--config",
            str(config_file),
            "--replay-dead-letters",
            str(path),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def test_replay_delivers_what_was_fixed_and_keeps_the_rest(org, kit, tmp_path):
    known, later = org.user("known"), org.user("later")
    contact = org.create("Contact", Product_User_Id__c=known)
    records = [
        kit.event(known, "appcues:flow_completed", TS[0], f"{org.tag}-r1", flowName="One"),
        kit.event(later, "appcues:flow_completed", TS[1], f"{org.tag}-r2", flowName="Two"),
        kit.event(later, "appcues:goal_reached", TS[2], f"{org.tag}-r3", goalName="Three"),
        kit.event(later, "appcues:goal_reached", "not a time", f"{org.tag}-r4"),
    ]
    config = org.config(sync_nps_fields=False)
    text = kit.singer_lines(records).replace("\n", "\n{not json\n", 1)  # + a malformed line
    target_sync_test(TargetSalesforceEvents(config=config), StringIO(text), finalize=True)
    path = Path(config["state_dir"]) / "dead-letters.jsonl"
    first = read_dead_letters(path)
    assert sorted((d["reason"], d["event_id"]) for d in first) == [
        ("invalid_timestamp", f"{org.tag}-r4"),
        ("malformed_line", None),
        ("unmatched_user", f"{org.tag}-r2"),
        ("unmatched_user", f"{org.tag}-r3"),
    ]
    assert all(d["format"] == 1 and d["target"] == "target-salesforce-events" for d in first)
    original = tmp_path / "original.jsonl"
    shutil.copy(path, original)

    # The cause is fixed: the user's Contact now exists.
    later_contact = org.create("Contact", Product_User_Id__c=later)
    done = replay(config, path, tmp_path)
    assert "Replayed 3 dead letter(s)" in done.stderr and "2 delivered" in done.stderr
    events = org.events_of(contact, later_contact)
    assert sorted(e["Appcues_Event_Id__c"] for e in events) == [
        f"{org.tag}-r1",
        f"{org.tag}-r2",
        f"{org.tag}-r3",
    ]
    left = read_dead_letters(path)
    assert sorted((d["reason"], d["event_id"]) for d in left) == [
        ("invalid_timestamp", f"{org.tag}-r4"),
        ("malformed_line", None),  # no record to send: kept as it was
    ]
    replayed = next(d for d in left if d["reason"] == "invalid_timestamp")
    before = next(d for d in first if d["reason"] == "invalid_timestamp")
    assert replayed["at"] > before["at"]  # written by the replay

    # Replaying again, or replaying the original file once more, writes no Event twice.
    replay(config, path, tmp_path)
    replay(config, original, tmp_path)
    assert len(org.events_of(contact, later_contact)) == 3
    assert sorted(d["reason"] for d in read_dead_letters(original)) == [
        "invalid_timestamp",
        "malformed_line",
    ]
