"""One bad record never stops the run (issue 15): it is dead-lettered naming the record and
the field, and the rest of its batch is delivered."""

from __future__ import annotations

import io
import json

from singer_sdk.testing import target_sync_test

from target_salesforce_events.target import TargetSalesforceEvents

STREAM = "appcues_events"
TS = ["2026-03-02T11:00:00Z", "2026-03-02T11:05:00Z", "2026-03-02T11:10:00Z"]


def lines(schema, records, key_properties):
    out = [{"type": "SCHEMA", "stream": STREAM, "schema": schema, "key_properties": key_properties}]
    out += [{"type": "RECORD", "stream": STREAM, "record": r} for r in records]
    out.append({"type": "STATE", "value": {"bookmarks": {STREAM: {"n": len(records)}}}})
    return "".join(json.dumps(line) + "\n" for line in out)


def run(config, text):
    target = TargetSalesforceEvents(config=config)
    stdout, _ = target_sync_test(target, io.StringIO(text), finalize=True)
    return target, [json.loads(x) for x in stdout.read().splitlines() if x.strip()]


def test_an_event_without_its_key_property_is_dead_lettered(org, kit):
    user = org.user("nokey")
    contact = org.create("Contact", Product_User_Id__c=user)
    good = kit.event(user, "appcues:flow_completed", "2026-03-02T10:00:00Z", f"{org.tag}-k1")
    no_id = kit.event(user, "appcues:flow_completed", "2026-03-02T10:05:00Z")
    config = org.config(sync_nps_fields=False)
    _, states = run(config, lines(kit.schema, [good, no_id], ["id"]))
    assert states, "the run went on and confirmed its batch"
    assert len(org.events_of(contact)) == 1
    (letter,) = kit.dead_letters(config)
    assert (letter["reason"], letter["field"], letter["record"]) == (
        "missing_key_property",
        "id",
        no_id,
    )
    assert "'id'" in letter["message"] and user in letter["message"]


def test_text_utf8_cannot_hold_is_dead_lettered_or_delivered_not_fatal(org, kit):
    """Lone surrogates (valid JSON escapes, not UTF-8) in an event's attributes or name."""
    user = org.user("surrogate")
    contact = org.create("Contact", Product_User_Id__c=user)
    records = [
        kit.event(user, "appcues:flow_completed", TS[0], f"{org.tag}-s1"),
        kit.event(
            user,
            "appcues:flow_completed",
            "2026-03-02T11:05:00Z",
            f"{org.tag}-s2",
            flowName="\ud800",
        ),
        kit.event(
            user, "appcues:goal_reached", "2026-03-02T11:10:00Z", f"{org.tag}-s3", **{"\udfff": 1}
        ),
    ]
    config = org.config(sync_nps_fields=False)
    _, states = run(config, lines(kit.schema, records, ["id"]))
    assert states
    written = {e["Appcues_Event_Id__c"] for e in org.events_of(contact)}
    letters = {d["event_id"]: d for d in kit.dead_letters(config)}
    assert f"{org.tag}-s1" in written
    # each of the others is either written or dead-lettered with a reason naming it
    for n in ("s2", "s3"):
        event_id = f"{org.tag}-{n}"
        assert (event_id in written) != (event_id in letters), (event_id, letters)


def test_a_fractional_epoch_timestamp_is_read_not_refused():
    """singer-sdk reads `1772600769.5` as a Decimal: still epoch seconds (ms above 10^11)."""
    from decimal import Decimal

    from target_salesforce_events.events import parse_timestamp

    expected = "2026-03-04 05:06:09.500000+00:00"
    assert str(parse_timestamp(Decimal("1772600769.5"))) == expected
    assert str(parse_timestamp(Decimal("1772600769500.0"))) == expected
