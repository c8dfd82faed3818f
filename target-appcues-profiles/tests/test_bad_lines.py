"""Bad input lines and odd dates: dead-lettered with the reason, the rest delivered."""

from __future__ import annotations

import json
import logging

import pytest

from target_appcues_profiles.mapping import AttributeMapper, RecordError, ValueCoercer


def test_malformed_lines_are_dead_lettered_and_the_rest_delivered(
    appcues, tmp_path, feeds, run, caplog
):
    caplog.set_level(logging.INFO)
    before, after = feeds.contact(1), feeds.contact(2)
    orphan = feeds.contact(3)
    long_garbage = "{" * 2000
    messages = [
        feeds.schema("Contact", feeds.CONTACT_PROPERTIES),  # 1
        feeds.record("Contact", before),  # 2
        '{"type": "RECORD", "stream": "Contact", "record": {"Id": "broken',  # 3
        '"just a string"',  # 4
        json.dumps({"stream": "Contact", "record": {"Id": "no-type"}}),  # 5
        json.dumps({"type": "RECORD", "stream": "Contact", "record": [1]}),  # 6
        json.dumps({"type": "SCHEMA", "stream": "Lead", "schema": {"type": "object"}}),  # 7
        feeds.record("Lead", orphan),  # 8: its SCHEMA was line 7, which was refused
        long_garbage,  # 9
        "   ",  # blank: skipped without a word
        feeds.record("Contact", after),  # 11
        feeds.state({"bookmarks": {"Contact": {"n": 2}}}),
    ]
    result = run(appcues.config(tmp_path, user_streams=["Contact", "Lead"]), messages)

    assert appcues.user(before["Product_User_Id__c"])["FirstName"] == before["FirstName"]
    assert appcues.user(after["Product_User_Id__c"])["FirstName"] == after["FirstName"]
    assert appcues.user(orphan["Product_User_Id__c"]) is None
    assert result.states == [{"bookmarks": {"Contact": {"n": 2}}}]
    letters = {d["line_number"]: d for d in result.dead_letters}
    assert {n: d["reason"] for n, d in letters.items()} == {
        3: "malformed_line",
        4: "malformed_line",
        5: "malformed_line",
        6: "malformed_line",
        7: "malformed_line",
        8: "record_without_schema",
        9: "malformed_line",
    }
    assert letters[3]["line_text"] == messages[2]
    assert letters[3]["message"].startswith("input line 3 is not valid JSON")
    assert messages[2] in letters[3]["message"]
    assert "JSON str, not a Singer message" in letters[4]["message"]
    assert "no message 'type'" in letters[5]["message"]
    assert "RECORD message without a valid 'record'" in letters[6]["message"]
    assert "schema has no 'properties'" in letters[7]["message"]
    # A parsed record is found again by its Salesforce Id.
    assert letters[8]["record_key"] == {"Id": orphan["Id"]} and letters[8]["stream"] == "Lead"
    assert len(letters[9]["line_text"]) < 400 and "(2000 characters)" in letters[9]["line_text"]
    assert "input line 3 is not valid JSON" in caplog.text and "broken" in caplog.text
    assert long_garbage not in caplog.text
    assert result.summary["dead_lettered_by_reason"] == {
        "malformed_line": 6,
        "record_without_schema": 1,
    }
    assert result.summary["users_created"] == 2


def test_dates_in_odd_forms(appcues, tmp_path, feeds, run):
    """Offsets and epoch numbers become the right UTC time; unreadable text is dead-lettered."""
    records = {
        "offset": feeds.contact(1, Last_Login__c="2026-03-04T10:06:09+05:00"),
        "epoch_ms": feeds.contact(2, Last_Login__c=1772600769123),
        "epoch_s": feeds.contact(3, Last_Login__c=1772600769),
        "bad": feeds.contact(4, Last_Login__c="04/03/2026 05:06"),
    }
    result = run(
        appcues.config(tmp_path, user_streams=["Contact"], group_streams=[]),
        [feeds.schema("Contact", feeds.CONTACT_PROPERTIES)]
        + [feeds.record("Contact", r) for r in records.values()],
    )
    login = {k: appcues.user(r["Product_User_Id__c"]) for k, r in records.items()}
    assert login["offset"]["Last_Login__c"] == "2026-03-04T05:06:09.000Z"
    assert login["epoch_ms"]["Last_Login__c"] == "2026-03-04T05:06:09.123Z"
    assert login["epoch_s"]["Last_Login__c"] == "2026-03-04T05:06:09.000Z"
    assert login["bad"] is None
    (letter,) = result.dead_letters
    assert letter["reason"] == "invalid_date" and letter["field"] == "Last_Login__c"
    assert records["bad"]["Id"] in letter["message"] and "04/03/2026 05:06" in letter["message"]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 10**30])
def test_a_number_no_date_can_be_is_an_invalid_date(value):
    mapper = AttributeMapper(date_kinds={"Seen__c": "date-time"})
    with pytest.raises(RecordError) as caught:
        mapper.map({"Seen__c": value})
    assert caught.value.reason == "invalid_date" and caught.value.field_name == "Seen__c"


def test_epoch_dates_follow_date_format():
    kinds = {"Seen__c": "date-time", "Born__c": "date"}
    record = {"Seen__c": 1772600769123, "Born__c": 642902400}
    assert AttributeMapper(date_kinds=kinds).map(record) == {
        "Seen__c": "2026-03-04T05:06:09.123Z",
        "Born__c": "1990-05-17",
    }
    epoch = AttributeMapper(date_kinds=kinds, coercer=ValueCoercer("epoch_ms")).map(record)
    assert epoch == {"Seen__c": 1772600769123, "Born__c": 642902400000}
