"""Records become Appcues profiles in the sandbox: mapping, groups, membership, the ledger."""

from __future__ import annotations


def contacts_feed(feeds, *records, bookmark=1):
    return [
        feeds.schema("Contact", feeds.CONTACT_PROPERTIES),
        *(feeds.record("Contact", r) for r in records),
        feeds.state({"bookmarks": {"Contact": {"replication_key_value": bookmark}}}),
    ]


def test_default_mapping_writes_every_non_system_field(appcues, tmp_path, feeds, run, caplog):
    caplog.set_level("INFO")
    result = run(appcues.config(tmp_path), contacts_feed(feeds, feeds.contact(1)))
    [summary_line] = [r.getMessage() for r in caplog.records if "Run summary" in r.getMessage()]
    assert '"users_created": 1' in summary_line
    assert '"api_calls": 1' in summary_line
    assert appcues.user("usr_c0000001") == {
        "user_id": "usr_c0000001",
        "FirstName": "First1",
        "LastName": "Last1",
        "Email": "user1@example.com",
        "Birthdate": "1990-05-17",
        "Last_Login__c": "2026-11-01T10:00:00.000Z",
        "NPS_Score__c": 1,
        "HasOptedOutOfEmail": False,
        "Interests__c": "Flows;Checklists",
        "MailingStreet": "1 Main St",
        "MailingCity": "Lyon",
        "MailingPostalCode": "69001",
        "MailingCountry": "France",
        "Account.Product_Account_Id__c": "acct_000001",
        "Account.Name": "Acme 1",
    }
    assert result.summary["users_created"] == 1
    assert result.states == [{"bookmarks": {"Contact": {"replication_key_value": 1}}}]


def test_selected_attributes_are_renamed_and_prefixed_epoch_dates(appcues, tmp_path, feeds, run):
    config = appcues.config(
        tmp_path,
        attributes={
            "Contact": {
                "Email": "email",
                "FirstName": "firstName",
                "Last_Login__c": "lastLogin",
                "Account.Name": "company",
                "MailingAddress": "mailing",
            }
        },
        attribute_prefix="sf_",
        date_format="epoch_ms",
    )
    run(config, contacts_feed(feeds, feeds.contact(2)))
    assert appcues.user("usr_c0000002") == {
        "user_id": "usr_c0000002",
        "sf_email": "user2@example.com",
        "sf_firstName": "First2",
        "sf_lastLogin": 1793527200000,
        "sf_company": "Acme 2",
        "sf_mailing.street": "2 Main St",
        "sf_mailing.city": "Lyon",
        "sf_mailing.postalCode": "69001",
        "sf_mailing.country": "France",
    }


def test_groups_and_membership_from_nested_and_flat_relationship_fields(
    appcues, tmp_path, feeds, run
):
    config = appcues.config(tmp_path, user_group_field="Account.Product_Account_Id__c")
    flat = {k: v for k, v in feeds.contact(3).items() if k != "Account"}
    flat["Account.Product_Account_Id__c"] = "acct_000001"
    lead_properties = {
        **{k: v for k, v in feeds.CONTACT_PROPERTIES.items() if k != "Account"},
        "Account.Product_Account_Id__c": {"type": ["string", "null"]},
    }
    no_group = feeds.contact(4, Account=None)
    messages = [
        feeds.schema("Account", feeds.ACCOUNT_PROPERTIES),
        feeds.record("Account", feeds.account(1)),
        feeds.record("Account", feeds.account(2)),
        feeds.schema("Contact", feeds.CONTACT_PROPERTIES),
        feeds.record("Contact", feeds.contact(1)),  # nested shape -> acct_000001
        feeds.record("Contact", feeds.contact(2)),  # -> acct_000002
        feeds.record("Contact", no_group),
        feeds.schema("Lead", lead_properties),
        feeds.record("Lead", flat),  # flat shape -> acct_000001
        feeds.state({"bookmarks": {"Account": 1, "Contact": 1, "Lead": 1}}),
    ]
    result = run(config, messages)
    assert appcues.group("acct_000001") == {
        "group_id": "acct_000001",
        "Name": "Acme 1",
        "Industry": "Software",
        "AnnualRevenue": 1000001.0,
    }
    assert appcues.members("acct_000001") == ["usr_c0000001", "usr_c0000003"]
    assert appcues.members("acct_000002") == ["usr_c0000002"]
    # the group id is membership, not an attribute
    assert "Account.Product_Account_Id__c" not in appcues.user("usr_c0000003")
    assert appcues.user("usr_c0000004")["FirstName"] == "First4"
    assert result.summary["groups_created"] == 2
    assert result.summary["memberships_added"] == 3
    calls = appcues.stats()["calls"]
    # one membership request per group and stream batch (Contact: 2 groups, Lead: 1), not per user
    assert calls["POST /v2/accounts/{account_id}/groups/{group_id}/users"] == 3


def test_second_identical_run_makes_no_appcues_call_and_one_change_makes_one(
    appcues, tmp_path, feeds, run
):
    config = appcues.config(tmp_path, user_group_field="Account.Product_Account_Id__c")
    records = [feeds.contact(n) for n in range(1, 21)]
    first = run(config, contacts_feed(feeds, *records))
    assert first.summary["users_created"] == 20
    before = appcues.stats()["total_calls"]
    assert before == 20 + 7  # 20 PATCHes, 7 groups' memberships

    second = run(config, contacts_feed(feeds, *records, bookmark=2))
    assert appcues.stats()["total_calls"] == before
    assert second.summary["api_calls"] == 0
    assert second.summary["users_unchanged_skipped"] == 20
    assert second.summary["memberships_unchanged_skipped"] == 20
    assert second.states == [{"bookmarks": {"Contact": {"replication_key_value": 2}}}]

    records[4] = feeds.contact(
        5, Email="changed@example.com", SystemModstamp="2026-11-03T00:00:00Z"
    )
    third = run(config, contacts_feed(feeds, *records, bookmark=3))
    stats = appcues.stats()
    assert stats["total_calls"] == before + 1
    assert stats["calls"]["PATCH /v2/accounts/{account_id}/users/{user_id}/profile"] == 21
    assert third.summary["users_updated"] == 1
    assert appcues.user("usr_c0000005")["Email"] == "changed@example.com"

    # a change of an unmapped system field alone sends nothing
    before = appcues.stats()["total_calls"]  # the GET above was a call too
    records[5] = feeds.contact(6, SystemModstamp="2026-11-04T00:00:00Z")
    fourth = run(config, contacts_feed(feeds, *records, bookmark=4))
    assert appcues.stats()["total_calls"] == before
    assert fourth.summary["api_calls"] == 0


def test_skip_unchanged_off_sends_again(appcues, tmp_path, feeds, run):
    config = appcues.config(tmp_path, skip_unchanged=False)
    run(config, contacts_feed(feeds, feeds.contact(1), feeds.contact(2)))
    run(config, contacts_feed(feeds, feeds.contact(1), feeds.contact(2)))
    assert appcues.stats()["total_calls"] == 4


def test_moving_a_user_to_another_group_adds_the_new_membership(appcues, tmp_path, feeds, run):
    config = appcues.config(tmp_path, user_group_field="Account.Product_Account_Id__c")
    run(config, contacts_feed(feeds, feeds.contact(1)))
    moved = feeds.contact(1, Account={"Product_Account_Id__c": "acct_000009", "Name": "Acme 1"})
    result = run(config, contacts_feed(feeds, moved))
    assert "usr_c0000001" in appcues.members("acct_000009")
    assert result.summary["memberships_added"] == 1
    assert result.summary["users_unchanged_skipped"] == 1


def test_deleted_records_and_unrouted_streams_are_counted_not_sent(appcues, tmp_path, feeds, run):
    messages = [
        *contacts_feed(feeds, feeds.contact(1), feeds.contact(2, IsDeleted=True)),
        feeds.schema(
            "Opportunity",
            {"Id": {"type": "string"}, "CloseDate": {"type": "string", "format": "date"}},
        ),
        feeds.record("Opportunity", {"Id": "006A", "CloseDate": "2026-01-01"}),
        # neither a schema violation nor a bad date in an ignored stream stops the run
        feeds.record("Opportunity", {"Id": 7, "CloseDate": "not a date"}),
    ]
    result = run(appcues.config(tmp_path), messages)
    assert appcues.user("usr_c0000002") is None
    assert appcues.user("usr_c0000001") is not None
    assert result.summary["deleted_records_skipped"] == 1
    assert result.summary["unrouted_records_ignored"] == 2


def test_batch_size_rows_is_honoured_and_duplicates_merge(appcues, tmp_path, feeds, run):
    config = appcues.config(tmp_path, batch_size_rows=3)
    records = [feeds.contact(n) for n in range(1, 8)]
    records.append(feeds.contact(1, FirstName="Latest"))
    result = run(config, contacts_feed(feeds, *records))
    sink = result.target._sinks_active["Contact"]
    assert sink.max_size == 3
    assert appcues.user("usr_c0000001")["FirstName"] == "Latest"
    assert appcues.stats()["stored"]["users"] == 7


def test_two_streams_feeding_one_user_do_not_resend_each_other(appcues, tmp_path, feeds, run):
    """CRM fields from Contact and usage fields from a warehouse table, one Appcues user."""
    config = appcues.config(
        tmp_path,
        user_streams=["Contact", "product_usage"],
        id_fields={"product_usage": "user_id"},
    )
    usage_properties = {"user_id": {"type": "string"}, "seats_used": {"type": "integer"}}
    messages = [
        *contacts_feed(feeds, feeds.contact(1)),
        feeds.schema("product_usage", usage_properties, key=("user_id",)),
        feeds.record("product_usage", {"user_id": "usr_c0000001", "seats_used": 4}),
    ]
    run(config, messages)
    profile = appcues.user("usr_c0000001")
    assert profile["seats_used"] == 4
    assert profile["Email"] == "user1@example.com"
    before = appcues.stats()["total_calls"]
    again = run(config, messages)
    assert again.summary["api_calls"] == 0
    assert appcues.stats()["total_calls"] == before
