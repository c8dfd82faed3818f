"""Latest NPS fields per field, by each answer's own event time, with `nps_date_field` shared
by score and feedback, through both write paths (collections and Bulk API 2.0 update jobs):
an empty feedback keeps the previous one, an older feedback arriving after a newer score is
applied, another writer's newer value is kept, and a replayed run changes nothing."""

from __future__ import annotations

import sqlite3

import pytest

SCORE, FEEDBACK, DATE = "Appcues_NPS_Score__c", "Appcues_NPS_Feedback__c", "NPS_Date__c"
API_TYPES = ["REST", "BULK2"]


def with_nps_date(raw):
    for obj in ("Contact", "Lead"):
        raw["objects"][obj]["fields"][DATE] = {"type": "datetime", "label": "NPS Date"}


@pytest.fixture(scope="module")
def dated_org(variant_org):
    return variant_org(with_nps_date)


@pytest.fixture
def org(dated_org, tmp_path):
    dated_org.state_dir = tmp_path / "state"
    return dated_org


def nps(org, contact):
    row = org.get("Contact", contact, SCORE, FEEDBACK, DATE)
    return row[SCORE], row[FEEDBACK], row[DATE]


def at(moment: str) -> str:
    """A datetime as Salesforce answers it."""
    return moment.replace("Z", ".000+0000")


@pytest.mark.parametrize("dated", [True, False], ids=["date field", "ledger only"])
@pytest.mark.parametrize("api_type", API_TYPES)
def test_an_empty_feedback_keeps_the_previous_feedback(org, kit, api_type, dated):
    user = org.user(f"empty-{api_type}-{dated}")
    contact = org.create("Contact", Product_User_Id__c=user)
    config = org.config(sync_events=False, api_type=api_type, nps_date_field=DATE if dated else "")
    both = "appcues:nps_score_and_feedback"
    kit.run_target(
        config,
        [kit.event(user, both, "2026-06-01T10:00:00Z", f"{user}-1", score=8, feedback="Great")],
    )
    later = [
        kit.event(user, both, "2026-06-02T10:00:00Z", f"{user}-2", score=3, feedback=""),
        kit.event(user, "appcues:nps_feedback", "2026-06-03T10:00:00Z", f"{user}-3", feedback=" "),
    ]
    target, _ = kit.run_target(config, later)
    # The score moved on; the blank feedbacks are no answers: neither cleared nor dated.
    assert nps(org, contact) == (
        3.0,
        "Great",
        at("2026-06-02T10:00:00Z") if dated else None,
    )
    assert target.pipeline.summary.nps_fields_updated == {SCORE: 1}
    assert kit.dead_letters(config) == []


@pytest.mark.parametrize("api_type", API_TYPES)
def test_an_older_feedback_after_a_newer_score_is_applied_across_runs(org, kit, api_type):
    """Day 1: score 5, then feedback "meh"; day 2: score 9. The day-2 score is written
    first; the day-1 answers come in a later run: the feedback field has nothing newer, so
    "meh" is applied; the day-1 score is older than the score written, so it is not."""
    user = org.user(f"late-{api_type}")
    contact = org.create("Contact", Product_User_Id__c=user)
    config = org.config(sync_events=False, api_type=api_type, nps_date_field=DATE)
    newer = [kit.event(user, "appcues:nps_score", "2026-06-02T09:00:00Z", f"{user}-s2", score=9)]
    kit.run_target(config, newer)
    assert nps(org, contact) == (9.0, None, at("2026-06-02T09:00:00Z"))

    older = [
        kit.event(user, "appcues:nps_score", "2026-06-01T09:00:00Z", f"{user}-s1", score=5),
        kit.event(
            user, "appcues:nps_feedback", "2026-06-01T09:00:30Z", f"{user}-f1", feedback="meh"
        ),
    ]
    target, _ = kit.run_target(config, older)
    # The date keeps the newest time written to the record.
    assert nps(org, contact) == (9.0, "meh", at("2026-06-02T09:00:00Z"))
    assert target.pipeline.summary.nps_answers_superseded == 1
    assert target.pipeline.summary.nps_fields_updated == {FEEDBACK: 1}

    # A replay of both runs changes nothing and writes nothing; nor does it once the
    # ledger forgot the confirmations (the NPS field times alone decide then).
    replay, _ = kit.run_target(config, newer + older)
    assert nps(org, contact) == (9.0, "meh", at("2026-06-02T09:00:00Z"))
    assert replay.pipeline.summary.nps_records_updated == 0
    with sqlite3.connect(org.state_dir / "ledger.sqlite3") as db:
        db.execute("DELETE FROM confirmed_events")
    again, _ = kit.run_target(config, older + newer)
    assert nps(org, contact) == (9.0, "meh", at("2026-06-02T09:00:00Z"))
    assert again.pipeline.summary.nps_records_updated == 0
    assert again.pipeline.summary.nps_answers_superseded == 2  # each field's latest


@pytest.mark.parametrize("api_type", API_TYPES)
def test_an_older_feedback_after_a_newer_score_in_one_batch(org, kit, api_type):
    user = org.user(f"batch-{api_type}")
    contact = org.create("Contact", Product_User_Id__c=user)
    config = org.config(sync_events=False, api_type=api_type, nps_date_field=DATE)
    kit.run_target(
        config,
        [kit.event(user, "appcues:nps_score", "2026-06-01T08:00:00Z", f"{user}-s0", score=1)],
    )
    batch = [  # newest first
        kit.event(user, "appcues:nps_score", "2026-06-02T09:00:00Z", f"{user}-s2", score=9),
        kit.event(
            user, "appcues:nps_feedback", "2026-06-01T09:00:30Z", f"{user}-f1", feedback="meh"
        ),
        kit.event(user, "appcues:nps_score", "2026-06-01T09:00:00Z", f"{user}-s1", score=5),
    ]
    kit.run_target(config, batch)
    assert nps(org, contact) == (9.0, "meh", at("2026-06-02T09:00:00Z"))
    replay, _ = kit.run_target(config, batch)
    assert nps(org, contact) == (9.0, "meh", at("2026-06-02T09:00:00Z"))
    assert replay.pipeline.summary.nps_records_updated == 0


def receiver_writes(org, contact, **values):
    """Another writer (here: what the webhook receiver, with its own ledger, sends)."""
    (written,) = org.client.update_mixed(
        [{"attributes": {"type": "Contact"}, "Id": contact, **values}]
    )
    assert written.success, written.errors


@pytest.mark.parametrize("api_type", API_TYPES)
def test_another_writers_newer_value_is_not_overwritten(org, kit, api_type):
    """Another writer (the webhook receiver with its own ledger, a person) wrote a feedback
    dated day 3 after this ledger's last write (day 1): feedbacks older than day 3 no longer
    apply to that record; the score field, which the other writer left alone, still takes
    a score newer than the one this ledger wrote there."""
    user = org.user(f"other-{api_type}")
    contact = org.create("Contact", Product_User_Id__c=user)
    config = org.config(sync_events=False, api_type=api_type, nps_date_field=DATE)
    kit.run_target(
        config,
        [
            kit.event(user, "appcues:nps_score", "2026-06-01T09:00:00Z", f"{user}-s1", score=5),
            kit.event(
                user, "appcues:nps_feedback", "2026-06-01T09:00:30Z", f"{user}-f1", feedback="ok"
            ),
        ],
    )
    receiver_writes(
        org, contact, **{FEEDBACK: "from the receiver", DATE: "2026-06-03T09:00:00.000Z"}
    )

    older = [
        kit.event(user, "appcues:nps_score", "2026-06-02T09:00:00Z", f"{user}-s2", score=7),
        kit.event(
            user, "appcues:nps_feedback", "2026-06-02T09:00:30Z", f"{user}-f2", feedback="stale"
        ),
    ]
    target, states = kit.run_target(config, older)
    assert nps(org, contact) == (7.0, "from the receiver", at("2026-06-03T09:00:00Z"))
    assert target.pipeline.summary.nps_answers_superseded == 1
    assert target.pipeline.summary.nps_fields_updated == {SCORE: 1}
    assert states  # superseded answers are settled: the batch is confirmed

    # A newer score applies; the record's other field keeps the receiver's value, and a
    # feedback older than the receiver's still does not apply afterwards.
    kit.run_target(
        config,
        [kit.event(user, "appcues:nps_score", "2026-06-04T09:00:00Z", f"{user}-s4", score=10)],
    )
    assert nps(org, contact) == (10.0, "from the receiver", at("2026-06-04T09:00:00Z"))
    late, _ = kit.run_target(
        config,
        [
            kit.event(
                user, "appcues:nps_feedback", "2026-06-02T12:00:00Z", f"{user}-f3", feedback="no"
            )
        ],
    )
    assert nps(org, contact) == (10.0, "from the receiver", at("2026-06-04T09:00:00Z"))
    assert late.pipeline.summary.nps_answers_superseded == 1


@pytest.mark.parametrize("api_type", API_TYPES)
def test_a_fresh_ledger_fills_an_empty_field_and_keeps_another_writers_value(org, kit, api_type):
    """A fresh state_dir knows nothing of the record: the receiver's score (day 3) is kept
    against an older score, but an older feedback fills the empty feedback field."""
    user = org.user(f"fresh-{api_type}")
    contact = org.create("Contact", Product_User_Id__c=user)
    receiver_writes(org, contact, **{SCORE: 9, DATE: "2026-06-03T09:00:00.000Z"})
    config = org.config(sync_events=False, api_type=api_type, nps_date_field=DATE)
    older = [
        kit.event(user, "appcues:nps_score", "2026-06-02T09:00:00Z", f"{user}-s2", score=7),
        kit.event(
            user, "appcues:nps_feedback", "2026-06-02T09:00:30Z", f"{user}-f2", feedback="fills"
        ),
    ]
    target, _ = kit.run_target(config, older)
    assert nps(org, contact) == (9.0, "fills", at("2026-06-03T09:00:00Z"))
    assert target.pipeline.summary.nps_answers_superseded == 1
    assert target.pipeline.summary.nps_fields_updated == {FEEDBACK: 1}
    # The ledger took the receiver's score as of day 3: an older score still does not apply.
    late, _ = kit.run_target(
        config,
        [kit.event(user, "appcues:nps_score", "2026-06-02T12:00:00Z", f"{user}-s3", score=1)],
    )
    assert nps(org, contact) == (9.0, "fills", at("2026-06-03T09:00:00Z"))
    assert late.pipeline.summary.nps_answers_superseded == 1


@pytest.mark.parametrize("api_type", API_TYPES)
def test_records_updating_different_fields_leave_each_others_fields_alone(org, kit, api_type):
    """One update carries a feedback, another only a score: in one Bulk job both share the
    job's columns, and the score-only row's feedback cell must leave its feedback as it was."""
    scored, both = org.user(f"cols-s-{api_type}"), org.user(f"cols-b-{api_type}")
    contacts = {u: org.create("Contact", Product_User_Id__c=u) for u in (scored, both)}
    config = org.config(sync_events=False, api_type=api_type, nps_date_field=DATE)
    kit.run_target(
        config,
        [
            kit.event(
                scored,
                "appcues:nps_feedback",
                "2026-06-01T09:00:00Z",
                f"{scored}-f",
                feedback="kept",
            )
        ],
    )
    kit.run_target(
        config,
        [
            kit.event(scored, "appcues:nps_score", "2026-06-02T09:00:00Z", f"{scored}-s", score=4),
            kit.event(
                both,
                "appcues:nps_score_and_feedback",
                "2026-06-02T09:00:00Z",
                f"{both}-b",
                score=6,
                feedback="new",
            ),
        ],
    )
    assert nps(org, contacts[scored]) == (4.0, "kept", at("2026-06-02T09:00:00Z"))
    assert nps(org, contacts[both]) == (6.0, "new", at("2026-06-02T09:00:00Z"))


@pytest.fixture(scope="module")
def rounding_org(variant_org):
    return variant_org(with_nps_date, options={"datetime_fraction": "round"})


@pytest.mark.parametrize("api_type", API_TYPES)
def test_a_rounding_org_does_not_mistake_this_ledgers_own_date_for_another_writer(
    rounding_org, kit, tmp_path, api_type
):
    """The date field is written in whole seconds: an org that rounds a fraction would
    otherwise keep 10:00:06 for a score at 10:00:05.600, later than anything this ledger
    wrote, and bound the next run's older answers as if someone else had written. Here the
    ledger's value hashes are unknown (a ledger from before they were kept), so such a
    bound would apply to the feedback."""
    org = rounding_org
    org.state_dir = tmp_path / "state"
    user = org.user(f"round-{api_type}")
    contact = org.create("Contact", Product_User_Id__c=user)
    config = org.config(sync_events=False, api_type=api_type, nps_date_field=DATE)
    kit.run_target(
        config,
        [
            kit.event(
                user, "appcues:nps_feedback", "2026-06-01T10:00:00Z", f"{user}-f1", feedback="first"
            ),
            kit.event(user, "appcues:nps_score", "2026-06-01T10:00:05.600Z", f"{user}-s1", score=4),
        ],
    )
    assert nps(org, contact) == (4.0, "first", at("2026-06-01T10:00:05Z"))
    with sqlite3.connect(org.state_dir / "ledger.sqlite3") as db:
        db.execute("UPDATE nps_latest SET value_hash = NULL")
    db.close()
    later, _ = kit.run_target(
        config,
        [
            kit.event(
                user,
                "appcues:nps_feedback",
                "2026-06-01T10:00:03Z",
                f"{user}-f2",
                feedback="second",
            )
        ],
    )
    assert nps(org, contact) == (4.0, "second", at("2026-06-01T10:00:05Z"))
    assert later.pipeline.summary.nps_answers_superseded == 0
    assert later.pipeline.summary.nps_fields_updated == {FEEDBACK: 1}
