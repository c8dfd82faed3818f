"""Dead letters, import mode versus PATCH mode, the rate limit, and faults with a re-run."""

from __future__ import annotations

import pytest

from salesforce_appcues_clients.errors import AppcuesError

PATCH_USER = "PATCH /v2/accounts/{account_id}/users/{user_id}/profile"


def contacts_feed(feeds, *records, bookmark=1):
    return [
        feeds.schema("Contact", feeds.CONTACT_PROPERTIES),
        *(feeds.record("Contact", r) for r in records),
        feeds.state({"bookmarks": {"Contact": bookmark}}),
    ]


def test_bad_records_are_dead_lettered_and_the_rest_delivered(appcues, tmp_path, feeds, run):
    config = appcues.config(tmp_path, user_group_field="Account.Product_Account_Id__c")
    records = [
        feeds.contact(1),
        feeds.contact(2, Product_User_Id__c=None),
        feeds.contact(3, Product_User_Id__c="   "),
        feeds.contact(4, Product_User_Id__c={"id": "x"}),
        feeds.contact(5, Birthdate="17/05/1990"),
        feeds.contact(6, Email="x" * 5000),  # Appcues refuses values over 4 KB
        feeds.contact(7, Account={"Product_Account_Id__c": ["acct_1"]}),
        feeds.contact(8),
    ]
    result = run(config, contacts_feed(feeds, *records))
    by_key = {d["record_key"]["Id"]: d for d in result.dead_letters}
    assert {k: d["reason"] for k, d in by_key.items()} == {
        records[1]["Id"]: "missing_id",
        records[2]["Id"]: "blank_id",
        records[3]["Id"]: "non_text_id",
        records[4]["Id"]: "invalid_date",
        records[5]["Id"]: "rejected",
        records[6]["Id"]: "membership_non_text_id",
    }
    assert by_key[records[1]["Id"]]["field"] == "Product_User_Id__c"
    assert by_key[records[4]["Id"]]["field"] == "Birthdate"
    assert "Birthdate" in by_key[records[4]["Id"]]["message"]
    rejected = by_key[records[5]["Id"]]
    assert rejected["status"] == 400
    assert rejected["profile_id"] == "usr_c0000006"
    assert "Email" in rejected["detail"]
    assert rejected["stream"] == "Contact"
    # the good ones (and the one whose only problem was its group) are delivered
    for n in (1, 7, 8):
        assert appcues.user(f"usr_c{n:07d}")["FirstName"] == f"First{n}"
    assert appcues.user("usr_c0000006") is None
    assert result.summary["dead_lettered"] == 6
    assert result.summary["dead_lettered_by_reason"]["rejected"] == 1
    assert result.states == [{"bookmarks": {"Contact": 1}}]
    # a dead-lettered profile is not in the ledger: once fixed at the source, it is sent
    fixed = run(config, contacts_feed(feeds, feeds.contact(6), bookmark=2))
    assert fixed.summary["users_created"] == 1
    assert appcues.user("usr_c0000006")["Email"] == "user6@example.com"


def _profiles(appcues, ids):
    return {pid: appcues.user(pid) for pid in ids}


def test_import_mode_and_patch_mode_produce_identical_profiles(appcues, tmp_path, feeds, run):
    records = [feeds.contact(n) for n in range(1, 31)]
    records.append(feeds.contact(31, Email="y" * 5000))  # one row Appcues refuses
    ids = [f"usr_c{n:07d}" for n in range(1, 32)]
    messages = contacts_feed(feeds, *records)
    config = {"user_group_field": "Account.Product_Account_Id__c"}

    patched = run(appcues.config(tmp_path / "a", import_threshold=10_000, **config), messages)
    via_patch = _profiles(appcues, ids)
    members_patch = {g: appcues.members(f"acct_{g:06d}") for g in range(7)}
    assert appcues.stats()["import_jobs"] == 0

    appcues.reset()
    imported = run(appcues.config(tmp_path / "b", import_threshold=10, **config), messages)
    via_import = _profiles(appcues, ids)
    stats = appcues.stats()
    assert stats["import_jobs"] == 1
    # only the row the job names as failed (the last: no neighbour after it under either
    # numbering of errors[].row) is re-sent by PATCH, for a verdict of its own
    assert stats["calls"][PATCH_USER] == 1

    assert via_import == via_patch
    assert via_import["usr_c0000031"] is None
    assert {g: appcues.members(f"acct_{g:06d}") for g in range(7)} == members_patch
    assert imported.summary["users_created"] == patched.summary["users_created"] == 30
    [letter] = imported.dead_letters
    assert letter["reason"] == "import_row_error"
    assert letter["profile_id"] == "usr_c0000031"
    assert "Email" in letter["detail"]
    assert imported.summary["import_jobs"] == 1


@pytest.mark.slow
def test_ten_thousand_profiles_stay_under_the_rate_limit(appcues, tmp_path, feeds, run):
    n_users, n_groups = 10_000, 100
    config = appcues.config(
        tmp_path,
        user_group_field="Account.Product_Account_Id__c",
        import_threshold=1000,
        max_concurrency=16,
    )
    users = [
        feeds.contact(n, Account={"Product_Account_Id__c": f"acct_{n % n_groups:06d}"})
        for n in range(n_users)
    ]
    messages = [
        feeds.schema("Account", feeds.ACCOUNT_PROPERTIES),
        *(feeds.record("Account", feeds.account(g)) for g in range(n_groups)),
        *contacts_feed(feeds, *users),
    ]
    result = run(config, messages)
    stats = appcues.stats()
    assert stats["rate_limited"] == 0
    assert stats["stored"]["users"] == n_users
    assert stats["stored"]["groups"] == n_groups
    assert stats["stored"]["memberships"] == n_users
    assert result.summary["users_created"] == n_users
    assert result.summary["groups_created"] == n_groups
    assert result.summary["memberships_added"] == n_users
    assert result.summary["dead_lettered"] == 0


def test_fault_mid_batch_then_rerun_ends_with_every_profile_correct(appcues, tmp_path, feeds, run):
    config = appcues.config(
        tmp_path, user_group_field="Account.Product_Account_Id__c", max_retries=1
    )
    records = [feeds.contact(n) for n in range(1, 41)]
    # Appcues keeps failing a share of profile writes: more than the client's retries absorb
    appcues.faults(
        {
            "match": {"method": "PATCH", "path": "/users/.*/profile$"},
            "action": "error",
            "status": 503,
            "retry_after": 0,
            "probability": 0.5,
        }
    )
    failed = run(config, contacts_feed(feeds, *records), fails=True)
    assert isinstance(failed.error, AppcuesError)
    assert failed.error.status == 503
    assert failed.states == []  # no bookmark past the unconfirmed batch
    written_first = appcues.stats()["profiles_written"]
    assert 0 < written_first < 40
    assert failed.summary["users_created"] == written_first

    appcues.control("DELETE", "faults")
    rerun = run(config, contacts_feed(feeds, *records))
    # every profile is right, and what the first run confirmed was not sent again
    assert rerun.states == [{"bookmarks": {"Contact": 1}}]
    assert rerun.summary["users_created"] + rerun.summary["users_unchanged_skipped"] == 40
    assert rerun.summary["users_unchanged_skipped"] == written_first
    for n in range(1, 41):
        profile = appcues.user(f"usr_c{n:07d}")
        assert profile["Email"] == f"user{n}@example.com"
        assert f"usr_c{n:07d}" in appcues.members(f"acct_{n % 7:06d}")
    assert appcues.stats()["stored"]["memberships"] == 40


def test_appcues_unavailable_fails_the_run_without_state(appcues, tmp_path, feeds, run, caplog):
    config = appcues.config(tmp_path, max_retries=2)
    appcues.faults({"match": {"path": "/v2/"}, "action": "error", "status": 503, "retry_after": 0})
    failed = run(config, contacts_feed(feeds, feeds.contact(1), feeds.contact(2)), fails=True)
    assert isinstance(failed.error, AppcuesError)
    assert "503" in str(failed.error)
    assert failed.states == []
    assert appcues.stats()["stored"]["users"] == 0
    assert failed.summary["users_created"] == 0
    # nothing leaked: not in the error, the logs, the ledger or the dead letters
    secret = appcues.info["api_secret"]
    assert secret not in str(failed.error)
    assert secret not in repr(failed.error)
    assert secret not in caplog.text
    for path in (tmp_path / "state").iterdir():
        assert secret.encode() not in path.read_bytes()


def test_import_too_large_for_appcues_is_split(appcues, tmp_path, feeds, run):
    appcues.control("POST", "settings", {"max_import_bytes": 4000})
    records = [feeds.contact(n) for n in range(1, 25)]
    result = run(appcues.config(tmp_path, import_threshold=5), contacts_feed(feeds, *records))
    stats = appcues.stats()
    assert stats["stored"]["users"] == 24
    assert stats["calls"]["POST /v2/accounts/{account_id}/import/profiles"] > 2
    assert result.summary["import_jobs"] > 1
    assert result.summary["users_created"] == 24
    assert appcues.user("usr_c0000024")["Email"] == "user24@example.com"


def test_failure_mid_stream_stops_at_the_failed_batch(appcues, tmp_path, feeds, run, caplog):
    """A full batch drained mid-stream fails: the run stops there, with no STATE."""
    caplog.set_level("INFO")
    config = appcues.config(tmp_path, batch_size_rows=5, max_retries=0)
    appcues.faults(
        {"match": {"path": "/users/usr_c0000007/profile$"}, "action": "error", "status": 500}
    )
    records = [feeds.contact(n) for n in range(1, 21)]
    failed = run(config, contacts_feed(feeds, *records), fails=True)
    assert failed.states == []
    assert failed.error.status == 500
    stored = appcues.stats()["stored"]["users"]
    assert 5 <= stored < 10  # the first batch, and the second but for the failed profile
    assert any("Run failed; summary so far" in r.getMessage() for r in caplog.records)
    appcues.control("DELETE", "faults")
    rerun = run(config, contacts_feed(feeds, *records))
    assert rerun.summary["users_created"] == 20 - stored
    assert appcues.stats()["stored"]["users"] == 20
