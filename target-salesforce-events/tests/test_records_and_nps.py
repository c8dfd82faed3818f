"""Event parsing, NPS latest-wins planning, the ledger and the dead-letter file (no network)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from target_salesforce_events.dead_letter import DeadLetter, DeadLetterFile
from target_salesforce_events.events import InvalidEventError, parse_event, parse_timestamp
from target_salesforce_events.ledger import Ledger
from target_salesforce_events.matching import MatchedRecord
from target_salesforce_events.nps import (
    FEEDBACK,
    SCORE,
    NpsFields,
    answers_from,
    latest_per_field,
    plan_updates,
    value_hash,
)

CONTACT = MatchedRecord("Contact", "003000000000001AAA", "Contact")
FIELDS = NpsFields("Appcues_NPS_Score__c", "Appcues_NPS_Feedback__c")


def event(name, ts, eid, **attributes):
    return parse_event(
        {"id": eid, "name": name, "timestamp": ts, "user_id": "u1", "attributes": attributes}
    )


@pytest.mark.parametrize(
    "value",
    [
        "2026-03-01T10:00:00Z",
        "2026-03-01T10:00:00.000+0000",
        "2026-03-01T11:00:00+01:00",
        "2026-03-01T10:00:00",
        1772359200000,
        1772359200,
        datetime(2026, 3, 1, 10, tzinfo=UTC),
    ],
)
def test_timestamp_forms(value):
    assert parse_timestamp(value) == datetime(2026, 3, 1, 10, tzinfo=UTC)


def test_derived_id_is_deterministic_and_content_bound():
    record = {
        "name": "appcues:flow_completed",
        "timestamp": "2026-03-01T10:00:00Z",
        "user_id": "u1",
        "attributes": {"flowName": "a"},
    }
    first, again = parse_event(record), parse_event(dict(record))
    other = parse_event({**record, "attributes": {"flowName": "b"}})
    assert first.id_derived and first.event_id == again.event_id != other.event_id
    assert len(first.event_id) == 36


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"timestamp": "2026-01-01T00:00:00Z", "user_id": "u"}, "missing_name"),
        ({"name": "x", "timestamp": "2026-01-01T00:00:00Z", "user_id": " "}, "missing_user_id"),
        ({"name": "x", "user_id": "u"}, "missing_timestamp"),
        ({"name": "x", "user_id": "u", "timestamp": "yesterday"}, "invalid_timestamp"),
        ({"name": "x", "user_id": "a\ud800", "timestamp": 1}, "invalid_user_id"),
        ({"name": "x", "user_id": "a", "timestamp": 1, "id": "\udfff"}, "invalid_event_id"),
    ],
)
def test_invalid_records_name_their_reason(record, reason):
    with pytest.raises(InvalidEventError) as caught:
        parse_event(record)
    assert caught.value.reason == reason


def test_answers_from_each_nps_event():
    both = event(
        "appcues:nps_score_and_feedback", "2026-01-01T00:00:00Z", "e1", score="8", feedback="ok"
    )
    assert [(a.part, a.value) for a in answers_from(both, CONTACT)] == [
        (SCORE, 8),
        (FEEDBACK, "ok"),
    ]
    with pytest.raises(InvalidEventError, match="score"):
        answers_from(event("appcues:nps_score", "2026-01-01T00:00:00Z", "e2", score=11), CONTACT)
    assert answers_from(event("appcues:nps_feedback", "2026-01-01T00:00:00Z", "e3"), CONTACT) == []


def test_latest_wins_within_a_batch_regardless_of_order():
    newer = event("appcues:nps_score", "2026-01-02T00:00:00Z", "b", score=9)
    older = event("appcues:nps_score", "2026-01-01T00:00:00Z", "a", score=2)
    feedback = event("appcues:nps_feedback", "2026-01-01T12:00:00Z", "c", feedback="meh")
    answers = [a for e in (newer, older, feedback) for a in answers_from(e, CONTACT)]
    updates, stale = plan_updates(latest_per_field(answers), FIELDS, ledger_prior={})
    assert stale == []
    assert updates[0].as_record() == {
        "Id": CONTACT.record_id,
        "Appcues_NPS_Score__c": 9,
        "Appcues_NPS_Feedback__c": "meh",
    }


def test_ledger_prior_blocks_older_answers(tmp_path):
    with Ledger(tmp_path / "l.sqlite3") as ledger:
        ledger.set_nps_latest(
            [(CONTACT.record_id, SCORE, datetime(2026, 1, 5, tzinfo=UTC), "z", None)]
        )
        # An older row never replaces a newer one in the ledger itself either.
        ledger.set_nps_latest(
            [(CONTACT.record_id, SCORE, datetime(2026, 1, 1, tzinfo=UTC), "y", None)]
        )
        prior = ledger.nps_latest([CONTACT.record_id])
    late = event("appcues:nps_score", "2026-01-03T00:00:00Z", "late", score=1)
    updates, stale = plan_updates(
        latest_per_field(answers_from(late, CONTACT)), FIELDS, ledger_prior=prior
    )
    assert updates == [] and [a.event.event_id for a in stale] == ["late"]
    fresh = event("appcues:nps_score", "2026-01-06T00:00:00Z", "fresh", score=10)
    updates, _ = plan_updates(
        latest_per_field(answers_from(fresh, CONTACT)), FIELDS, ledger_prior=prior
    )
    assert updates[0].values == {"Appcues_NPS_Score__c": 10}


def test_date_field_prior_and_written_date():
    fields = NpsFields("S__c", "F__c", date_field="NPS_Date__c")
    late = event("appcues:nps_score", "2026-01-03T00:00:00Z", "late", score=1)
    prior = {CONTACT.record_id: datetime(2026, 1, 4, tzinfo=UTC)}
    updates, stale = plan_updates(
        latest_per_field(answers_from(late, CONTACT)), fields, date_prior=prior
    )
    assert updates == [] and len(stale) == 1
    new = event(
        "appcues:nps_score_and_feedback", "2026-01-05T06:07:08.250Z", "n", score=7, feedback="x"
    )
    updates, _ = plan_updates(
        latest_per_field(answers_from(new, CONTACT)), fields, date_prior=prior
    )
    # Whole seconds, truncated: as the field keeps them, whichever way the org drops a fraction.
    assert updates[0].values == {"S__c": 7, "F__c": "x", "NPS_Date__c": "2026-01-05T06:07:08.000Z"}


def test_ledger_written_ids(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    with Ledger(path) as ledger:
        ledger.add_written([("a", "00U1"), ("b", None)])
    with Ledger(path) as reopened:
        assert reopened.written(["a", "b", "c"] + [f"x{i}" for i in range(1200)]) == {"a", "b"}


def test_ledger_confirmed_events_need_every_required_effect(tmp_path):
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        ledger.add_confirmed([("a", {"event", "nps"}), ("b", {"event"})])
        required = {"a": {"event", "nps"}, "b": {"event", "nps"}, "c": {"event"}}
        assert ledger.confirmed(required) == {"a"}  # b's NPS answers were never confirmed
        assert ledger.confirmed({"b": {"event"}}) == {"b"}
        ledger.add_confirmed([("b", {"nps"})])  # added to what was confirmed before
        assert ledger.confirmed(required) == {"a", "b"}
        many = {f"x{i}": {"event"} for i in range(1200)}
        ledger.add_confirmed(many.items())
        assert ledger.confirmed(many) == set(many)


def test_ledger_pruning_forgets_only_old_confirmations(tmp_path):
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        ledger.add_confirmed([("old", {"event"})])
        ledger.add_written([("old", "00U1")])
        ledger.set_nps_latest([("003A", SCORE, datetime(2020, 1, 1, tzinfo=UTC), "old", None)])
        now = datetime.now(tz=UTC)
        assert ledger.prune_confirmed(now - timedelta(days=1)) == 0
        ledger.add_confirmed([("new", {"event"})])
        assert ledger.prune_confirmed(now + timedelta(seconds=1)) == 2
        assert ledger.confirmed({"old": {"event"}, "new": {"event"}}) == set()
        # The ledger strategy's written ids and the NPS times are not a cache: kept.
        assert ledger.written(["old"]) == {"old"}
        assert ledger.nps_latest(["003A"]) != {}


def test_dead_letter_lines(tmp_path):
    letters = DeadLetterFile(tmp_path / "dl" / "dead.jsonl")
    letters.add(DeadLetter("unmatched_user", "no Contact", event_id="e1", user_id="u1"))
    letters.add(
        DeadLetter(
            "salesforce_rejected",
            "too long",
            event_id="e2",
            user_id="u2",
            status="STRING_TOO_LONG",
            fields=["Appcues_Event_Id__c"],
            record={"ts": datetime(2026, 1, 1, tzinfo=UTC)},
        )
    )
    letters.flush()
    lines = [json.loads(line) for line in letters.path.read_text().splitlines()]
    assert [(x["event_id"], x["reason"], x["status"]) for x in lines] == [
        ("e1", "unmatched_user", None),
        ("e2", "salesforce_rejected", "STRING_TOO_LONG"),
    ]
    assert lines[1]["fields"] == ["Appcues_Event_Id__c"]
    assert letters.counts == {"unmatched_user": 1, "salesforce_rejected:STRING_TOO_LONG": 1}


def test_event_selection_settings():
    from target_salesforce_events.settings import EventSettings

    default = EventSettings.from_config({})
    assert default.writes_event("appcues:goal_reached")
    assert not default.writes_event("appcues:flow_started")
    assert not default.writes_event("Clicked")
    named = EventSettings.from_config({"event_names": ["Clicked"]})
    assert named.writes_event("Clicked") and not named.writes_event("Other")
    every = EventSettings.from_config({"include_custom_events": True})
    assert every.writes_event("Other") and not every.writes_event("appcues:flow_started")
    off = EventSettings.from_config({"sync_events": False, "event_id_field": None})
    assert not off.writes_event("appcues:goal_reached") and off.updates_nps("appcues:nps_score")
    assert off.event_id_field is None


def test_a_blank_feedback_is_no_answer():
    for blank in ("", "  ", "\n", None):
        both = event(
            "appcues:nps_score_and_feedback", "2026-01-01T00:00:00Z", "e", score=3, feedback=blank
        )
        assert [a.part for a in answers_from(both, CONTACT)] == [SCORE]
        alone = event("appcues:nps_feedback", "2026-01-01T00:00:00Z", "f", feedback=blank)
        assert answers_from(alone, CONTACT) == []


DATED = NpsFields("S__c", "F__c", date_field="NPS_Date__c")


def ledger_rows(tmp_path, *rows):
    with Ledger(tmp_path / "l.sqlite3") as ledger:
        ledger.set_nps_latest(rows)
        return ledger.nps_latest([CONTACT.record_id])


def test_the_ledger_decides_each_field_when_the_date_field_is_its_own(tmp_path):
    """The date field (day 2) is the newest time this ledger wrote: a day-1 feedback is
    newer than the ledger's feedback time, so it applies; the date stays at day 2."""
    prior = ledger_rows(
        tmp_path,
        (CONTACT.record_id, SCORE, datetime(2026, 1, 2, 9, 0, 0, 500_000, tzinfo=UTC), "s2", None),
        (CONTACT.record_id, FEEDBACK, datetime(2025, 12, 1, tzinfo=UTC), "f0", None),
    )
    dates = {CONTACT.record_id: datetime(2026, 1, 2, 9, tzinfo=UTC)}
    feedback = event("appcues:nps_feedback", "2026-01-01T00:00:00Z", "f1", feedback="late")
    score = event("appcues:nps_score", "2026-01-01T00:00:00Z", "s1", score=1)
    answers = [a for e in (feedback, score) for a in answers_from(e, CONTACT)]
    updates, stale = plan_updates(
        latest_per_field(answers), DATED, ledger_prior=prior, date_prior=dates
    )
    assert [a.event.event_id for a in stale] == ["s1"]
    assert updates[0].values == {"F__c": "late"}  # no date: it already holds a newer time
    assert updates[0].floor is None
    assert updates[0].ledger_rows() == [
        (CONTACT.record_id, FEEDBACK, feedback.timestamp, "f1", value_hash("late")),
    ]


def test_a_date_newer_than_the_ledger_bounds_every_field(tmp_path):
    """Someone else wrote on day 3, after this ledger's last write (day 1), and the
    record's values were not read: only answers not older than day 3 apply, and once written
    the ledger floors the field left alone there (its value unknown)."""
    prior = ledger_rows(
        tmp_path, (CONTACT.record_id, FEEDBACK, datetime(2026, 1, 1, tzinfo=UTC), "f1", None)
    )
    day3 = datetime(2026, 1, 3, tzinfo=UTC)
    dates = {CONTACT.record_id: day3}
    older = event("appcues:nps_feedback", "2026-01-02T00:00:00Z", "f2", feedback="older")
    same = event("appcues:nps_score", "2026-01-03T00:00:00.400Z", "s3", score=6)
    answers = [a for e in (older, same) for a in answers_from(e, CONTACT)]
    updates, stale = plan_updates(
        latest_per_field(answers), DATED, ledger_prior=prior, date_prior=dates
    )
    assert [a.event.event_id for a in stale] == ["f2"]
    assert updates[0].values == {"S__c": 6}  # the same second as the date: no newer date
    assert updates[0].floor == day3
    assert sorted(updates[0].ledger_rows()) == sorted(
        [
            (CONTACT.record_id, SCORE, same.timestamp, "s3", value_hash(6)),
            (CONTACT.record_id, FEEDBACK, day3, "", None),
        ]
    )
    # Without any ledger row for the record, the date field alone bounds it, as before.
    updates, stale = plan_updates(latest_per_field(answers), DATED, date_prior=dates)
    assert [a.event.event_id for a in stale] == ["f2"] and updates[0].floor == day3


def test_the_date_floor_bounds_only_a_field_someone_else_changed(tmp_path):
    """This ledger wrote score 5 and feedback "ok" (day 1); someone else wrote feedback
    "theirs" and the date (day 3). A day-2 score is newer than anything in the score field,
    which still holds this ledger's value: it applies. A day-2 feedback is older than the
    other writer's: it does not. Once written, the ledger floors the feedback at day 3 with
    the other writer's value, and takes the score's new value."""
    prior = ledger_rows(
        tmp_path,
        (CONTACT.record_id, SCORE, datetime(2026, 1, 1, tzinfo=UTC), "s1", value_hash(5)),
        (CONTACT.record_id, FEEDBACK, datetime(2026, 1, 1, tzinfo=UTC), "f1", value_hash("ok")),
    )
    with Ledger(tmp_path / "l.sqlite3") as ledger:
        written = ledger.nps_written_values([CONTACT.record_id])
    day3 = datetime(2026, 1, 3, tzinfo=UTC)
    score = event("appcues:nps_score", "2026-01-02T00:00:00Z", "s2", score=7)
    feedback = event("appcues:nps_feedback", "2026-01-02T00:00:00Z", "f2", feedback="stale")
    answers = [a for e in (score, feedback) for a in answers_from(e, CONTACT)]
    updates, stale = plan_updates(
        latest_per_field(answers),
        DATED,
        ledger_prior=prior,
        date_prior={CONTACT.record_id: day3},
        ledger_values=written,
        on_record={CONTACT.record_id: {SCORE: 5.0, FEEDBACK: "theirs"}},  # 5 read back as 5.0
    )
    assert [a.event.event_id for a in stale] == ["f2"]
    assert updates[0].values == {"S__c": 7}  # the date keeps day 3, the newest written
    assert sorted(updates[0].ledger_rows()) == [
        (CONTACT.record_id, FEEDBACK, day3, "", value_hash("theirs")),
        (CONTACT.record_id, SCORE, score.timestamp, "s2", value_hash(7)),
    ]


def test_without_ledger_rows_the_date_floor_bounds_only_fields_holding_a_value():
    """A fresh ledger: someone else wrote score 9 and the date (day 3), the feedback is
    empty. An older score does not apply; an older feedback fills the empty field."""
    day3 = datetime(2026, 1, 3, tzinfo=UTC)
    score = event("appcues:nps_score", "2026-01-02T00:00:00Z", "s2", score=7)
    feedback = event("appcues:nps_feedback", "2026-01-02T00:00:00Z", "f2", feedback="fills")
    answers = [a for e in (score, feedback) for a in answers_from(e, CONTACT)]
    updates, stale = plan_updates(
        latest_per_field(answers),
        DATED,
        date_prior={CONTACT.record_id: day3},
        on_record={CONTACT.record_id: {SCORE: 9, FEEDBACK: None}},
    )
    assert [a.event.event_id for a in stale] == ["s2"]
    assert updates[0].values == {"F__c": "fills"}
    assert sorted(updates[0].ledger_rows()) == [
        (CONTACT.record_id, FEEDBACK, feedback.timestamp, "f2", value_hash("fills")),
        (CONTACT.record_id, SCORE, day3, "", value_hash(9)),
    ]


def test_an_unknown_written_value_counts_as_changed(tmp_path):
    """A ledger row without a value hash (an older ledger): the conservative floor applies."""
    prior = ledger_rows(
        tmp_path, (CONTACT.record_id, SCORE, datetime(2026, 1, 1, tzinfo=UTC), "s1", None)
    )
    score = event("appcues:nps_score", "2026-01-02T00:00:00Z", "s2", score=7)
    updates, stale = plan_updates(
        latest_per_field(answers_from(score, CONTACT)),
        DATED,
        ledger_prior=prior,
        date_prior={CONTACT.record_id: datetime(2026, 1, 3, tzinfo=UTC)},
        ledger_values={(CONTACT.record_id, SCORE): None},
        on_record={CONTACT.record_id: {SCORE: 5, FEEDBACK: None}},
    )
    assert updates == [] and [a.event.event_id for a in stale] == ["s2"]


def test_value_hashes_match_what_salesforce_reads_back():
    assert value_hash(7) == value_hash(7.0) == value_hash("7") == value_hash(" 7.0 ")
    assert value_hash(7) != value_hash(7.5)
    assert value_hash("a\r\nb ") == value_hash("a\nb")
    assert value_hash(None) == value_hash("") == value_hash("  ")
    assert value_hash("ok") != value_hash("OK")


def test_an_older_ledger_gains_the_value_column_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:  # the nps_latest table as released before
        db.execute(
            "CREATE TABLE nps_latest (record_id TEXT NOT NULL, part TEXT NOT NULL, "
            "answered_at TEXT NOT NULL, event_id TEXT NOT NULL, PRIMARY KEY (record_id, part))"
        )
        db.execute(
            "INSERT INTO nps_latest VALUES ('003A', 'score', '2026-01-01T00:00:00.000000Z', 'e')"
        )
    db.close()
    with Ledger(path) as ledger:
        assert ledger.nps_latest(["003A"]) == {
            ("003A", SCORE): ("2026-01-01T00:00:00.000000Z", "e")
        }
        assert ledger.nps_written_values(["003A"]) == {("003A", SCORE): None}
        ledger.set_nps_latest([("003A", SCORE, datetime(2026, 1, 2, tzinfo=UTC), "f", "h")])
        assert ledger.nps_written_values(["003A"]) == {("003A", SCORE): "h"}
    with Ledger(path) as reopened:  # opening again migrates nothing twice
        assert reopened.nps_written_values(["003A"]) == {("003A", SCORE): "h"}
