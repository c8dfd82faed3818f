"""Bad input lines and unreadable timestamps: dead-lettered with the reason, the rest delivered."""

from __future__ import annotations

import io
import json
import logging

from singer_sdk.testing import target_sync_test

from target_salesforce_events.target import TargetSalesforceEvents

TS = "2026-02-03T04:05:06Z"


def _feed(config, lines):
    target = TargetSalesforceEvents(config=config)
    stdout, _ = target_sync_test(target, io.StringIO("\n".join(lines) + "\n"), finalize=True)
    states = [json.loads(line) for line in stdout.read().splitlines() if line.strip()]
    return target, states


def _line(message):
    return json.dumps(message)


def test_malformed_lines_are_dead_lettered_and_the_rest_delivered(org, kit, caplog):
    caplog.set_level(logging.INFO)
    user = org.user("lines")
    contact = org.create("Contact", Product_User_Id__c=user)
    before = kit.event(user, "appcues:goal_reached", TS, "bl-before", goalName="A")
    after = kit.event(user, "appcues:goal_reached", TS, "bl-after", goalName="B")
    orphan = kit.event(user, "appcues:goal_reached", TS, "bl-orphan", goalName="C")
    schema = {"type": "SCHEMA", "stream": "appcues_events", "schema": kit.schema}
    long_garbage = "x" * 5000
    lines = [
        _line({**schema, "key_properties": []}),  # 1
        _line({"type": "RECORD", "stream": "appcues_events", "record": before}),  # 2
        '{"type": "RECORD", "stream": "appcues_events", "record": {"id": "broken',  # 3
        "[1, 2, 3]",  # 4: JSON, but no message
        _line({"stream": "appcues_events", "record": {"id": "no-type"}}),  # 5
        _line({"type": "BOGUS", "stream": "appcues_events"}),  # 6
        _line({"type": "RECORD", "stream": "appcues_events"}),  # 7: no record
        _line({"type": "RECORD", "stream": "other_events", "record": orphan}),  # 8: no SCHEMA
        long_garbage,  # 9
        "",  # a blank line is no message and no problem
        _line({"type": "RECORD", "stream": "appcues_events", "record": after}),  # 11
        _line({"type": "STATE", "value": {"bookmarks": {"appcues_events": {"n": 2}}}}),
    ]
    target, states = _feed(org.config(), lines)

    rows = {r["Appcues_Event_Id__c"] for r in org.events_of(contact)}
    assert rows == {"bl-before", "bl-after"}
    assert states == [{"bookmarks": {"appcues_events": {"n": 2}}}]
    letters = {d["line_number"]: d for d in kit.dead_letters(org.config())}
    assert sorted(letters) == [3, 4, 5, 6, 7, 8, 9]
    assert {n: d["reason"] for n, d in letters.items()} == {
        3: "malformed_line",
        4: "malformed_line",
        5: "malformed_line",
        6: "malformed_line",
        7: "malformed_line",
        8: "record_without_schema",
        9: "malformed_line",
    }
    broken = letters[3]
    assert broken["line_text"] == lines[2]
    assert "input line 3 is not valid JSON" in broken["message"]
    assert lines[2] in broken["message"]  # quoted in full: it is short
    assert "unknown message type 'BOGUS'" in letters[6]["message"]
    # A parsed record keeps its content and id, so it can be replayed.
    assert letters[8]["record"] == orphan and letters[8]["event_id"] == "bl-orphan"
    assert letters[8]["stream"] == "other_events"
    # A long line is quoted cut short, with its length.
    assert len(letters[9]["line_text"]) < 400 and "(5000 characters)" in letters[9]["line_text"]
    assert long_garbage not in caplog.text
    # The log names each line and quotes it.
    assert "input line 3 is not valid JSON" in caplog.text and "broken" in caplog.text
    dead_lettered = target.pipeline.summary.dead_lettered
    assert dead_lettered == {"malformed_line": 6, "record_without_schema": 1}


def test_unreadable_timestamp_is_dead_lettered_and_epoch_is_written(org, kit):
    user = org.user("ts")
    contact = org.create("Contact", Product_User_Id__c=user)
    records = [
        kit.event(user, "appcues:goal_reached", "not a time", "ts-bad", goalName="A"),
        kit.event(user, "appcues:goal_reached", 1772600769123, "ts-epoch-ms", goalName="B"),
        kit.event(user, "appcues:goal_reached", 1772600769, "ts-epoch-s", goalName="C"),
        kit.event(user, "appcues:goal_reached", "2026-03-04T10:06:09+0500", "ts-offset"),
        kit.event(user, "appcues:goal_reached", TS, "ts-good", goalName="D"),
    ]
    _, states = kit.run_target(org.config(), records)

    rows = {r["Appcues_Event_Id__c"]: r["ActivityDateTime"] for r in org.events_of(contact)}
    assert rows == {
        "ts-epoch-ms": "2026-03-04T05:06:09.000+0000",  # Salesforce keeps whole seconds
        "ts-epoch-s": "2026-03-04T05:06:09.000+0000",
        "ts-offset": "2026-03-04T05:06:09.000+0000",
        "ts-good": "2026-02-03T04:05:06.000+0000",
    }
    assert states  # the batch was confirmed
    (letter,) = kit.dead_letters(org.config())
    assert letter["reason"] == "invalid_timestamp"
    assert letter["event_id"] == "ts-bad" and letter["record"]["timestamp"] == "not a time"
    assert "'ts-bad'" in letter["message"] and "'timestamp'" in letter["message"]
    assert "'not a time'" in letter["message"]
