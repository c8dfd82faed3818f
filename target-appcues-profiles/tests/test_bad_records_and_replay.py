"""Issue 15: a record the target cannot deliver (a date-time outside years 1-9999 in UTC, a
missing key property, a value Appcues refuses) is dead-lettered naming the record and the
field, the rest of the batch is delivered; `--replay-dead-letters FILE` sends the letters
again once their cause is fixed, and rewrites the file with only what is still refused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from salesforce_appcues_clients.plugin_kit.dead_letters import read_dead_letters

HIGH = "9999-12-31T23:00:00-05:00"  # year 10000 in UTC
LOW = "0001-01-01T00:00:00+14:00"  # year 0 in UTC


def replay(config: dict, path: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    env = {**os.environ, "REQUESTS_CA_BUNDLE": config["ca_bundle"]}
    env.pop("TARGET_APPCUES_PROFILES_DEAD_LETTER_PATH", None)
    command = Path(sys.executable).with_name("target-appcues-profiles")
    done = subprocess.run(
        [str(command), "--config", str(config_file), "--replay-dead-letters", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def test_bad_records_then_a_replay_after_the_fix(appcues, tmp_path, feeds, run):
    config = appcues.config(tmp_path)
    no_key = feeds.contact(4)
    del no_key["Id"]
    records = [
        feeds.contact(1),
        feeds.contact(2, Last_Login__c=HIGH),
        feeds.contact(3, Email="x" * 5000),  # Appcues refuses values over 4 KB
        no_key,
        feeds.contact(5, Last_Login__c=LOW),
        feeds.contact(6),
    ]
    messages = [
        feeds.schema("Contact", feeds.CONTACT_PROPERTIES),
        *(feeds.record("Contact", r) for r in records),
        feeds.state({"bookmarks": {"Contact": 1}}),
    ]
    result = run(config, messages)
    assert result.states == [{"bookmarks": {"Contact": 1}}]
    assert appcues.user("usr_c0000001")["FirstName"] == "First1"
    assert appcues.user("usr_c0000006")["FirstName"] == "First6"
    by_user = {d["record"]["Product_User_Id__c"]: d for d in result.dead_letters}
    assert {u: (d["reason"], d["field"]) for u, d in by_user.items()} == {
        "usr_c0000002": ("invalid_date", "Last_Login__c"),
        "usr_c0000003": ("rejected", None),
        "usr_c0000004": ("missing_key_property", "Id"),
        "usr_c0000005": ("invalid_date", "Last_Login__c"),
    }
    assert HIGH in by_user["usr_c0000002"]["message"]
    assert records[1]["Id"] in by_user["usr_c0000002"]["message"]
    assert "usr_c0000004" in by_user["usr_c0000004"]["message"]  # named without its key
    assert all(
        d["format"] == 1 and d["target"] == "target-appcues-profiles" for d in by_user.values()
    )

    # The cause is fixed in the file (an operator corrects the two records' data).
    path = Path(result.target.runtime.settings.dead_letter_path)
    letters = read_dead_letters(path)
    for letter in letters:
        user = letter["record"]["Product_User_Id__c"]
        if user == "usr_c0000002":
            letter["record"]["Last_Login__c"] = "2026-01-02T03:04:05Z"
        if user == "usr_c0000003":
            letter["record"]["Email"] = "user3@example.com"
    path.write_text("".join(json.dumps(d) + "\n" for d in letters))
    original = tmp_path / "original.jsonl"
    shutil.copy(path, original)

    done = replay(config, path, tmp_path)
    assert "Replayed 4 dead letter(s)" in done.stderr and "2 delivered" in done.stderr
    assert appcues.user("usr_c0000002")["Last_Login__c"] == "2026-01-02T03:04:05.000Z"
    assert appcues.user("usr_c0000003")["Email"] == "user3@example.com"
    left = {d["record"]["Product_User_Id__c"]: d for d in read_dead_letters(path)}
    assert {u: d["reason"] for u, d in left.items()} == {
        "usr_c0000004": "missing_key_property",
        "usr_c0000005": "invalid_date",
    }
    assert left["usr_c0000005"]["at"] > by_user["usr_c0000005"]["at"]  # the replay's reason
    assert not list(path.parent.glob(".*replay*")) and not list(path.parent.glob(".*rewrite*"))

    # A second replay of the same fixed letters is harmless (profile writes are idempotent).
    replay(config, original, tmp_path)
    assert sorted(d["reason"] for d in read_dead_letters(original)) == [
        "invalid_date",
        "missing_key_property",
    ]
