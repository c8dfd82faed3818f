"""Bad input (issue 11): each bad record gets a clear message naming it, a dead letter with the
reason, and the rest of its batch is delivered; wrong configs stop with a message naming the
setting. The targets run as processes on Singer lines, against the sandbox."""

from __future__ import annotations

import json
import uuid
from types import SimpleNamespace

import pytest

from tap_salesforce_appcues.events import EVENT_SCHEMA  # what the tap sends

H = SimpleNamespace()

# Product ids that must only ever match themselves: quotes, backslashes, SOQL syntax and
# wildcards, unicode, case.
HOSTILE_IDS = [
    "o'brien",
    "back\\slash",
    "x' OR Product_User_Id__c != '",
    "50%_off",
    "üñí-çødé-用户",
    "Case-Exact",
]
# Ids no record carries, each close to one above: they must stay unmatched.
LOOKALIKES = ["O'Brien", "back\\\\slash", "' OR Id != '", "50%", "case-exact", "%", "_"]


@pytest.fixture(autouse=True)
def _bind(harness):
    H.__dict__.update({k: getattr(harness, k) for k in dir(harness) if not k.startswith("__")})


def line(message: dict) -> str:
    return json.dumps(message)


def schema(stream: str, properties: dict, key: str = "id") -> str:
    return line({"type": "SCHEMA", "stream": stream, "schema": properties, "key_properties": [key]})


def record(stream: str, body: dict) -> str:
    return line({"type": "RECORD", "stream": stream, "record": body})


def event(user_id, name="appcues:goal_reached", **extra) -> dict:
    body = {
        "id": str(uuid.uuid4()),
        "name": name,
        "timestamp": "2026-03-04T05:06:07.123Z",
        "user_id": user_id,
        "attributes": {"goalName": "Activated"},
        "context": {"url": "https://app.example.com/x", "title": "X"},
    }
    body.update(extra)
    return body


@pytest.fixture
def contacts(world):
    """A clean org with one Contact per hostile id (and the seed's own Contacts)."""
    world.reset(events=False)
    results = world.salesforce.call(
        "POST",
        "records/Contact",
        {
            "records": [
                {"LastName": f"Hostile {n}", "Product_User_Id__c": uid}
                for n, uid in enumerate(HOSTILE_IDS)
            ]
        },
    )
    assert all(r["success"] for r in results), results
    return {uid: r["id"] for uid, r in zip(HOSTILE_IDS, results, strict=True)}


def events_config(world, tmp_path, **overrides):
    return {
        **world.salesforce_config(),
        "state_dir": str(tmp_path / "state"),
        **overrides,
    }


def written_events(world) -> list[dict]:
    sf, _ = H.verification_clients(world)
    try:
        return list(
            sf.query(
                "SELECT Id, WhoId, Subject, Description, ActivityDateTime, Appcues_Event_Id__c "
                "FROM Event"
            )
        )
    finally:
        sf.close()


def letters_by_event(fed) -> dict[str, dict]:
    return {d["event_id"]: d for d in fed.dead_letters if d.get("event_id")}


# --- target-salesforce-events ----------------------------------------------------------------
def test_events_bad_records_are_dead_lettered_and_the_rest_delivered(world, contacts, tmp_path):
    good = [event(uid) for uid in HOSTILE_IDS]
    nps_good = event(HOSTILE_IDS[0], "appcues:nps_score", attributes={"score": 9})
    bad = {
        "missing_user_id": event(None),
        "blank_user_id": event("   "),
        "number_user_id": event(12345),
        "object_user_id": event({"id": "x"}),
        "nps_out_of_range": event(HOSTILE_IDS[1], "appcues:nps_score", attributes={"score": 11}),
        "nps_not_number": event(HOSTILE_IDS[2], "appcues:nps_score", attributes={"score": "ten"}),
        "missing_name": {k: v for k, v in event(HOSTILE_IDS[3]).items() if k != "name"},
    }
    lookalikes = [event(uid) for uid in LOOKALIKES]
    odd_times = [
        event(HOSTILE_IDS[4], timestamp="2026-03-04T10:36:07+05:30"),  # an offset
        event(HOSTILE_IDS[4], name="appcues:flow_completed", timestamp="2026-03-04T05:06:08Z"),
        event(HOSTILE_IDS[4], name="appcues:checklist_completed", timestamp="2026-03-04T05:06:09"),
    ]
    duplicate = event(HOSTILE_IDS[5], name="appcues:flow_completed")
    unknown_name = event(HOSTILE_IDS[5], name="appcues:made_up_event")
    custom_name = event(HOSTILE_IDS[5], name="Clicked Secret Button")
    odd_attributes = [
        event(HOSTILE_IDS[0], name="appcues:flow_completed", attributes=None),
        event(
            HOSTILE_IDS[1],
            name="appcues:flow_completed",
            attributes={"flowName": "é" * 100_000, "nested": {"a": [1, {"b": None}]}},
        ),
    ]
    records = [
        *good,
        nps_good,
        *bad.values(),
        *lookalikes,
        *odd_times,
        duplicate,
        duplicate,
        unknown_name,
        custom_name,
        *odd_attributes,
    ]
    fed = H.feed_target(
        "target-salesforce-events",
        events_config(world, tmp_path),
        [schema("appcues_events", EVENT_SCHEMA)]
        + [record("appcues_events", r) for r in records]
        + [line({"type": "STATE", "value": {"bookmarks": {"appcues_events": {"x": 1}}}})],
        tmp_path,
    )
    assert fed.returncode == 0, fed.stderr[-3000:]
    assert '"bookmarks"' in fed.stdout, "the batch was confirmed, so STATE is emitted"
    letters = letters_by_event(fed)

    # Every bad record: a dead letter with a reason and a message naming it.
    for label, body in bad.items():
        letter = letters.get(body["id"])
        assert letter is not None, f"{label} was not dead-lettered: {fed.dead_letters}"
        assert letter["reason"] and letter["message"], letter
        assert letter["record"]["id"] == body["id"], letter  # the entry carries the record
    assert "dead-lettered:" in fed.stderr  # the run summary counts them by reason
    assert letters[bad["nps_out_of_range"]["id"]]["reason"] == "invalid_nps_score"
    assert letters[bad["nps_not_number"]["id"]]["reason"] == "invalid_nps_score"
    assert letters[bad["missing_name"]["id"]]["reason"] == "missing_name"
    assert letters[bad["missing_user_id"]["id"]]["reason"] == "missing_user_id"
    # Lookalike ids match nothing (no injection, no wildcard, no case folding).
    for body in lookalikes:
        assert letters[body["id"]]["reason"] == "unmatched_user", body["user_id"]

    by_id = {}
    for row in written_events(world):
        assert row["Appcues_Event_Id__c"] not in by_id, "an Event was written twice"
        by_id[row["Appcues_Event_Id__c"]] = row
    # The good events landed on exactly the record their id names.
    for body in good:
        assert by_id[body["id"]]["WhoId"] == contacts[body["user_id"]], body["user_id"]
    # Out-of-range / non-numeric scores still produce their Event (only the NPS part fails).
    assert bad["nps_out_of_range"]["id"] in by_id
    # Odd timestamps: offsets and epoch milliseconds are the same instant in UTC.
    times = {by_id[e["id"]]["ActivityDateTime"][:19] for e in odd_times}
    assert times == {"2026-03-04T05:06:07", "2026-03-04T05:06:08", "2026-03-04T05:06:09"}
    # A duplicate within the batch is one Event; unknown and custom names are not written.
    assert duplicate["id"] in by_id
    assert unknown_name["id"] not in by_id and custom_name["id"] not in by_id
    # Null, nested and huge attributes: written, Description within Salesforce's 32,000.
    for body in odd_attributes:
        assert len(by_id[body["id"]]["Description"] or "") <= 32000
    # The one valid NPS answer is the Latest NPS of its Contact.
    sf, _ = H.verification_clients(world)
    try:
        (row,) = sf.query(
            f"SELECT Appcues_NPS_Score__c FROM Contact WHERE Id = '{contacts[HOSTILE_IDS[0]]}'"
        )
    finally:
        sf.close()
    assert row["Appcues_NPS_Score__c"] == 9


def test_events_malformed_line_is_skipped(world, contacts, tmp_path):
    """A line that is not JSON between good records, and a record before its SCHEMA: each
    named and dead-lettered, the rest delivered."""
    before, after, early = event(HOSTILE_IDS[0]), event(HOSTILE_IDS[1]), event(HOSTILE_IDS[2])
    fed = H.feed_target(
        "target-salesforce-events",
        events_config(world, tmp_path),
        [
            record("appcues_events", early),  # before its stream's SCHEMA
            schema("appcues_events", EVENT_SCHEMA),
            record("appcues_events", before),
            '{"type": "RECORD", "stream": "appcues_events", "record": {"id": "broken',
            record("appcues_events", after),
        ],
        tmp_path,
    )
    assert fed.returncode == 0, fed.stderr[-3000:]
    assert "broken" in fed.stderr  # the malformed line is quoted in the message
    written = {row["Appcues_Event_Id__c"] for row in written_events(world)}
    assert {before["id"], after["id"]} <= written, fed.stderr[-3000:]
    reasons = {d["reason"]: d for d in fed.dead_letters}
    assert set(reasons) == {"malformed_line", "record_without_schema"}, fed.dead_letters
    assert "line 4" in reasons["malformed_line"]["message"]


def test_events_schema_violation_is_dead_lettered(world, contacts, tmp_path):
    """Records that break the stream's schema (attributes not an object, timestamp not a
    string) between good ones: the good ones are delivered, the others named."""
    good = event(HOSTILE_IDS[0])
    violating = event(HOSTILE_IDS[2], name=["not", "text"], attributes="not an object")
    fed = H.feed_target(
        "target-salesforce-events",
        events_config(world, tmp_path),
        [
            schema("appcues_events", EVENT_SCHEMA),
            record("appcues_events", violating),
            record("appcues_events", good),
        ],
        tmp_path,
    )
    assert fed.returncode == 0, fed.stderr[-3000:]
    written = {row["Appcues_Event_Id__c"] for row in written_events(world)}
    assert good["id"] in written
    assert violating["id"] not in written
    letter = letters_by_event(fed)[violating["id"]]
    assert letter["reason"] == "missing_name", letter
    assert letter["record"]["id"] == violating["id"] and letter["message"], letter


def test_events_unparseable_timestamp_is_dead_lettered(world, contacts, tmp_path):
    """A timestamp that is not ISO 8601 is dead-lettered; epoch milliseconds are accepted."""
    good = event(HOSTILE_IDS[0])
    bad = event(HOSTILE_IDS[1], timestamp="not a time")
    epoch = event(HOSTILE_IDS[2], timestamp=1772600769000)
    fed = H.feed_target(
        "target-salesforce-events",
        events_config(world, tmp_path),
        [
            schema("appcues_events", EVENT_SCHEMA),
            record("appcues_events", bad),
            record("appcues_events", epoch),
            record("appcues_events", good),
        ],
        tmp_path,
    )
    assert fed.returncode == 0, fed.stderr[-3000:]
    written = {row["Appcues_Event_Id__c"] for row in written_events(world)}
    assert {good["id"], epoch["id"]} <= written
    assert letters_by_event(fed)[bad["id"]]["reason"] in ("invalid_timestamp", "missing_timestamp")


# --- target-appcues-profiles -----------------------------------------------------------------
CONTACT_SCHEMA = {
    "type": "object",
    "properties": {
        "Id": {"type": "string"},
        "Product_User_Id__c": {},
        "FirstName": {"type": ["string", "null"]},
        "Title": {"type": ["string", "null"]},
        "Score__c": {"type": ["number", "null"]},
        "Signed_Up__c": {"type": ["string", "null"], "format": "date-time"},
        "Prefs__c": {},
        "SystemModstamp": {"type": "string", "format": "date-time"},
    },
}


def contact(n: int, user_id, **fields) -> dict:
    body = {
        "Id": f"0035g{n:013d}",
        "Product_User_Id__c": user_id,
        "FirstName": f"First {n}",
        "Title": "Engineer",
        "Score__c": 1.5,
        "Signed_Up__c": "2026-01-02T03:04:05.000Z",
        "SystemModstamp": "2026-01-02T03:04:05.000Z",
    }
    body.update(fields)
    return body


def profiles_config(world, tmp_path, **overrides):
    return {
        **world.appcues_config(),
        "user_streams": ["Contact"],
        "group_streams": [],
        "state_dir": str(tmp_path / "state"),
        **overrides,
    }


def test_profiles_bad_records_are_dead_lettered_and_the_rest_delivered(world, tmp_path):
    world.reset(events=False)
    hostile = [
        contact(n, uid)
        for n, uid in enumerate([*HOSTILE_IDS, "a/b?c=d#e", "../../etc", "tab\there"])
    ]
    bad = {
        "missing_id": contact(100, None),
        "blank_id": contact(101, "  "),
        "non_text_id": contact(102, 1.5),
        "object_id": contact(103, {"x": 1}),
        "huge_attribute": contact(104, "huge-user", Title="t" * 5000),
        "bad_date": contact(105, "bad-date-user", Signed_Up__c="yesterday-ish"),
    }
    odd = [
        contact(200, 42),  # an integer id becomes its decimal text
        contact(201, "tz-user", Signed_Up__c="2026-01-02T08:34:05+05:30"),
        contact(202, "nested-user", Prefs__c={"theme": {"dark": True}, "tags": ["a", "b"]}),
        contact(203, "null-user", FirstName=None, Title=None, Score__c=None),
    ]
    fed = H.feed_target(
        "target-appcues-profiles",
        profiles_config(world, tmp_path),
        [schema("Contact", CONTACT_SCHEMA, "Id")]
        + [record("Contact", r) for r in [*hostile, *bad.values(), *odd]]
        + [line({"type": "STATE", "value": {"bookmarks": {"Contact": {"x": 1}}}})],
        tmp_path,
    )
    assert fed.returncode == 0, fed.stderr[-3000:]
    assert '"bookmarks"' in fed.stdout
    letters = {d["record_key"]["Id"]: d for d in fed.dead_letters}
    for label, body in bad.items():
        letter = letters.get(body["Id"])
        assert letter is not None, f"{label} not dead-lettered: {fed.dead_letters}"
        assert body["Id"] in letter["message"], letter
        assert letter["message"] in fed.stderr or body["Id"] in fed.stderr
    assert letters[bad["missing_id"]["Id"]]["reason"] == "missing_id"
    assert letters[bad["blank_id"]["Id"]]["reason"] == "blank_id"
    assert letters[bad["non_text_id"]["Id"]]["reason"] == "non_text_id"
    assert letters[bad["object_id"]["Id"]]["reason"] == "non_text_id"
    assert letters[bad["bad_date"]["Id"]]["field"] == "Signed_Up__c"
    assert letters[bad["huge_attribute"]["Id"]]["status"] == 400

    _, ac = H.verification_clients(world)
    world.appcues.call("POST", "settings", {"rate_limit_per_second": 100000})
    try:
        for body in hostile:  # stored under exactly that id
            profile = ac.get_user_profile(body["Product_User_Id__c"])
            assert profile and profile["FirstName"] == body["FirstName"], body
        assert ac.get_user_profile("O'Brien") is None
        assert ac.get_user_profile("case-exact") is None
        assert ac.get_user_profile("42")["FirstName"] == "First 200"
        assert ac.get_user_profile("tz-user")["Signed_Up__c"] == "2026-01-02T03:04:05.000Z"
        nested = ac.get_user_profile("nested-user")
        assert not any(isinstance(v, (dict, list)) for v in nested.values()), nested
        nulls = ac.get_user_profile("null-user")
        assert nulls["FirstName"] is None and nulls["Score__c"] is None
        assert ac.get_user_profile("huge-user") is None
    finally:
        world.appcues.call("POST", "settings", {"rate_limit_per_second": 60})
        ac.close()


def test_profiles_malformed_line_is_skipped(world, tmp_path):
    world.reset(events=False)
    before, after = contact(1, "before-user"), contact(2, "after-user")
    fed = H.feed_target(
        "target-appcues-profiles",
        profiles_config(world, tmp_path),
        [
            schema("Contact", CONTACT_SCHEMA, "Id"),
            record("Contact", before),
            '{"type": "RECORD", "stream": "Contact", "record": {"Id": "broken',
            record("Contact", after),
        ],
        tmp_path,
    )
    assert fed.returncode == 0, fed.stderr[-3000:]
    assert "broken" in fed.stderr
    _, ac = H.verification_clients(world)
    try:
        assert ac.get_user_profile("before-user") is not None, fed.stderr[-3000:]
        assert ac.get_user_profile("after-user") is not None, fed.stderr[-3000:]
    finally:
        ac.close()
    (letter,) = fed.dead_letters
    assert letter["reason"] == "malformed_line" and "line 3" in letter["message"], letter


def test_profiles_line_that_is_not_utf8_is_skipped(world, tmp_path):
    """One line in another encoding (Latin-1) between good records: named, dead-lettered,
    and the records around it delivered."""
    world.reset(events=False)
    before, after = contact(1, "before-user"), contact(2, "after-user")
    body = contact(3, "latin1-user") | {"FirstName": "Zoë"}
    latin1 = json.dumps({"type": "RECORD", "stream": "Contact", "record": body}, ensure_ascii=False)
    fed = H.feed_target(
        "target-appcues-profiles",
        profiles_config(world, tmp_path),
        [
            schema("Contact", CONTACT_SCHEMA, "Id"),
            record("Contact", before),
            latin1.encode("latin-1"),
            record("Contact", after),
        ],
        tmp_path,
    )
    assert fed.returncode == 0, fed.stderr[-3000:]
    _, ac = H.verification_clients(world)
    try:
        assert ac.get_user_profile("before-user") is not None, fed.stderr[-3000:]
        assert ac.get_user_profile("after-user") is not None, fed.stderr[-3000:]
        assert ac.get_user_profile("latin1-user") is None
    finally:
        ac.close()
    (letter,) = fed.dead_letters
    assert letter["reason"] == "malformed_line", letter
    assert "line 3 is not valid UTF-8" in letter["message"], letter


def test_profiles_schema_violation_is_dead_lettered(world, tmp_path):
    world.reset(events=False)
    good = contact(1, "good-user")
    violating = contact(3, "violating-user", Score__c="not a number")
    fed = H.feed_target(
        "target-appcues-profiles",
        profiles_config(world, tmp_path),
        [
            schema("Contact", CONTACT_SCHEMA, "Id"),
            record("Contact", violating),
            record("Contact", good),
        ],
        tmp_path,
    )
    assert fed.returncode == 0, fed.stderr[-3000:]
    _, ac = H.verification_clients(world)
    try:
        assert ac.get_user_profile("good-user") is not None
        stored = ac.get_user_profile("violating-user")
    finally:
        ac.close()
    letters = {d["record_key"]["Id"]: d for d in fed.dead_letters}
    # Either refused with a dead letter naming the record, or delivered as sent.
    if violating["Id"] in letters:
        assert violating["Id"] in letters[violating["Id"]]["message"]
    else:
        assert stored is not None and stored["Score__c"] == "not a number", stored
