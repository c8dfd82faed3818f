"""Issue 15, items 2, 3 and 8, with the targets as processes against the sandbox: one bad
record never stops a run (dead-lettered naming the record and field, the rest delivered, STATE
emitted); event ids differing only by case are two Salesforce Events; a dead-letter file is
replayed once the cause is fixed (delivered records leave it, the rest stay with their new
reason, no Event is ever written twice)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from tap_salesforce_appcues.events import EVENT_SCHEMA  # what the tap sends

H = SimpleNamespace()

CONTACT_SCHEMA = {
    "type": "object",
    "properties": {
        "Id": {"type": "string"},
        "Product_User_Id__c": {"type": ["string", "null"]},
        "FirstName": {"type": ["string", "null"]},
        "Signed_Up__c": {"type": ["string", "null"], "format": "date-time"},
    },
}
HIGH = "9999-12-31T23:00:00-05:00"  # year 10000 once in UTC
LOW = "0001-01-01T00:00:00+14:00"  # year 0 once in UTC


@pytest.fixture(autouse=True)
def _bind(harness):
    H.__dict__.update({k: getattr(harness, k) for k in dir(harness) if not k.startswith("__")})


def lines(stream: str, schema: dict, key: str, records: list[dict]) -> list[str]:
    out = [{"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": [key]}]
    out += [{"type": "RECORD", "stream": stream, "record": r} for r in records]
    out.append({"type": "STATE", "value": {"bookmarks": {stream: {"n": len(records)}}}})
    return [json.dumps(m) for m in out]


def replay(target: str, config: dict, path: Path, workdir: Path) -> str:
    """`target --replay-dead-letters path` as a process; returns its stderr."""
    config_path = workdir / f"{target}-replay.json"
    config_path.write_text(json.dumps(config))
    done = subprocess.run(
        [
            Path(sys.executable).with_name(target),
            "--config",
            config_path,
            "--replay-dead-letters",
            path,
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, **H.debug_env},
        check=False,
    )
    H.remember(f"{target} replay ({workdir.name})", done.stdout + done.stderr + path.read_text())
    assert done.returncode == 0, done.stderr[-3000:]
    assert not done.stdout.strip(), "a replay emits no STATE"
    return done.stderr


def letters(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def event(event_id: str | None, user_id: str, minute: int) -> dict:
    body = {
        "name": "appcues:goal_reached",
        "timestamp": f"2026-03-05T06:{minute:02d}:00.000Z",
        "user_id": user_id,
        "attributes": {"goalName": f"Goal {minute}"},
    }
    if event_id is not None:
        body["id"] = event_id
    return body


def events_of(world, *who: str) -> list[dict]:
    sf, _ = H.verification_clients(world)
    try:
        ids = ", ".join(f"'{w}'" for w in who)
        return list(
            sf.query(f"SELECT Id, WhoId, Appcues_Event_Id__c FROM Event WHERE WhoId IN ({ids})")
        )
    finally:
        sf.close()


def test_events_bad_record_case_only_ids_and_replay(world, tmp_path):
    world.reset(events=False)
    tag = uuid.uuid4().hex[:8]
    a, b, later = f"cross-a-{tag}", f"cross-b-{tag}", f"later-{tag}"
    made = world.salesforce.call(
        "POST",
        "records/Contact",
        {
            "records": [
                {"LastName": "A", "Product_User_Id__c": a},
                {"LastName": "B", "Product_User_Id__c": b},
            ]
        },
    )
    ca, cb = (r["id"] for r in made)
    config = {**world.salesforce_config(), "state_dir": str(tmp_path / "state")}
    upper, lower = f"P9-CROSS-{tag.upper()}", f"p9-cross-{tag}"

    # Run 1: a good event, one without its key property `id`, one of a user not in Salesforce.
    first = H.feed_target(
        "target-salesforce-events",
        config,
        lines(
            "appcues_events",
            EVENT_SCHEMA,
            "id",
            [
                event(upper, a, 0),
                event(None, a, 1),
                event(f"ev-later-{tag}", later, 2),
            ],
        ),
        tmp_path / "run1",
    )
    assert first.returncode == 0, first.stderr[-3000:]
    assert '"bookmarks"' in first.stdout
    reasons = {d["reason"]: d for d in first.dead_letters}
    assert set(reasons) == {"missing_key_property", "unmatched_user"}
    assert reasons["missing_key_property"]["field"] == "id"
    assert a in reasons["missing_key_property"]["message"]

    # Run 2, another user: an id differing from run 1's only by case is another Event.
    second = H.feed_target(
        "target-salesforce-events",
        config,
        lines("appcues_events", EVENT_SCHEMA, "id", [event(lower, b, 3)]),
        tmp_path / "run2",
    )
    assert second.returncode == 0, second.stderr[-3000:]
    assert sorted(e["WhoId"] for e in events_of(world, ca, cb)) == sorted([ca, cb])

    # The cause of the unmatched event is fixed: its user's Contact now exists. Replay.
    (made_later,) = world.salesforce.call(
        "POST", "records/Contact", {"records": [{"LastName": "L", "Product_User_Id__c": later}]}
    )
    path = Path(config["state_dir"]) / "dead-letters.jsonl"
    copy = tmp_path / "copy.jsonl"
    copy.write_text(path.read_text())
    said = replay("target-salesforce-events", config, path, tmp_path)
    assert "1 delivered" in said
    assert [d["reason"] for d in letters(path)] == ["missing_key_property"]
    replay("target-salesforce-events", config, copy, tmp_path)  # the old file once more
    written = events_of(world, ca, cb, made_later["id"])
    assert len(written) == 3, written  # nothing written twice


def test_profiles_dates_outside_utc_years_missing_key_and_replay(world, tmp_path):
    world.reset(events=False)
    tag = uuid.uuid4().hex[:8]

    def contact(n: int, **fields) -> dict:
        body = {
            "Id": f"0035g{n:013d}",
            "Product_User_Id__c": f"p15-{tag}-{n}",
            "FirstName": f"First {n}",
            "Signed_Up__c": "2026-01-02T03:04:05.000Z",
        }
        body.update(fields)
        return body

    no_key = contact(4)
    del no_key["Id"]
    records = [contact(1), contact(2, Signed_Up__c=HIGH), contact(3, Signed_Up__c=LOW), no_key]
    config = {
        **world.appcues_config(),
        "user_streams": ["Contact"],
        "group_streams": [],
        "state_dir": str(tmp_path / "state"),
    }
    fed = H.feed_target(
        "target-appcues-profiles",
        config,
        lines("Contact", CONTACT_SCHEMA, "Id", records),
        tmp_path / "run1",
    )
    assert fed.returncode == 0, fed.stderr[-3000:]
    assert '"bookmarks"' in fed.stdout
    got = {d["record"]["Product_User_Id__c"]: d for d in fed.dead_letters}
    assert {u.rsplit("-", 1)[1]: (d["reason"], d["field"]) for u, d in got.items()} == {
        "2": ("invalid_date", "Signed_Up__c"),
        "3": ("invalid_date", "Signed_Up__c"),
        "4": ("missing_key_property", "Id"),
    }
    assert (
        HIGH in got[f"p15-{tag}-2"]["message"]
        and records[1]["Id"] in got[f"p15-{tag}-2"]["message"]
    )
    _, ac = H.verification_clients(world)
    try:
        assert ac.get_user_profile(f"p15-{tag}-1")["FirstName"] == "First 1"

        # Fixed in the file: the date corrected, the key restored. Replay.
        path = Path(config["state_dir"]) / "dead-letters.jsonl"
        entries = letters(path)
        for entry in entries:
            if entry["record"]["Product_User_Id__c"] == f"p15-{tag}-2":
                entry["record"]["Signed_Up__c"] = "2026-02-03T04:05:06Z"
            if entry["reason"] == "missing_key_property":
                entry["record"]["Id"] = "0035g0000000000000004"
        path.write_text("".join(json.dumps(e) + "\n" for e in entries))
        said = replay("target-appcues-profiles", config, path, tmp_path)
        assert "2 delivered" in said
        assert ac.get_user_profile(f"p15-{tag}-2")["Signed_Up__c"] == "2026-02-03T04:05:06.000Z"
        assert ac.get_user_profile(f"p15-{tag}-4")["FirstName"] == "First 4"
        (left,) = letters(path)
        assert left["reason"] == "invalid_date" and left["record"]["Signed_Up__c"] == LOW
        assert left["at"] > got[f"p15-{tag}-3"]["at"]
    finally:
        ac.close()
