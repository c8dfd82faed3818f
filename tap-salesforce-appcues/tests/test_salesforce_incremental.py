"""Incremental correctness of the Salesforce streams, driven by the sandbox clock and control API.

The tap runs in-process against the sandbox; nothing of ours is mocked. The org clock is
frozen at `t0` and moved by the tests; records are written through the control API, some at
explicit SystemModstamps (a late commit, a group sharing one timestamp).
"""

from __future__ import annotations

import contextlib
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from singer_sdk.singerlib import Catalog

from tap_salesforce_appcues.schema_mapping import SchemaMappingError
from tap_salesforce_appcues.tap import TapSalesforceAppcues

S = timedelta(seconds=1)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def contacts(n: int, tag: str) -> list[dict]:
    return [{"LastName": f"{tag}-{i:05d}", "Email": f"{tag}-{i}@example.com"} for i in range(n)]


def test_late_commit_inside_the_lookback_is_delivered(org, config, run, t0):
    org.write("Contact", contacts(3, "early"), modstamp=t0 - 60 * S)
    first = run(config(), streams=["Contact"])
    assert len(first.records["Contact"]) == 3
    assert first.bookmark("Contact") == iso(t0 - 60 * S)

    # A transaction that started before the bookmark commits after the run: its
    # SystemModstamp (t0 - 90 s) is older than the bookmark but inside the 600 s lookback.
    late = org.write("Contact", contacts(1, "late"), modstamp=t0 - 90 * S)
    # ...and one committed far too late (outside the lookback) is not re-read.
    org.write("Contact", contacts(1, "too-late"), modstamp=t0 - 3600 * S)
    org.advance_clock(120)
    second = run(config(), first.state, streams=["Contact"])
    delivered = second.ids("Contact")
    assert late[0] in delivered
    assert not any(r["LastName"].startswith("too-late") for r in second.records["Contact"])
    # Re-delivery is bounded by the lookback: only the three records inside it come again.
    assert len(delivered) == 4
    assert second.bookmark("Contact") == first.bookmark("Contact")


def test_bookmark_never_passes_now_minus_lag(org, config, run, t0):
    org.write("Contact", contacts(2, "old"), modstamp=t0 - 600 * S)
    org.write("Contact", contacts(2, "fresh"), modstamp=t0 - 10 * S)
    result = run(config(lag=60), streams=["Contact"])
    names = {r["LastName"] for r in result.records["Contact"]}
    assert names == {"old-00000", "old-00001"}  # the fresh ones are still within the lag
    assert result.bookmark("Contact") == iso(t0 - 600 * S)
    org.advance_clock(60)
    later = run(config(lag=60), result.state, streams=["Contact"])
    assert {r["LastName"] for r in later.records["Contact"]} >= {"fresh-00000", "fresh-00001"}
    assert later.bookmark("Contact") == iso(t0 - 10 * S)


def test_equal_timestamps_across_the_page_boundary_all_arrive(org, config, run, t0):
    org.write("Contact", contacts(5, "before"), modstamp=t0 - 120 * S)
    group = org.write("Contact", contacts(2500, "group"), modstamp=t0 - 60 * S)
    cfg = config(api_type="REST")

    # Interrupted after 2,100 records: past the 2,000-record page, inside the group.
    partial = run(cfg, streams=["Contact"], abort_after=2100)
    assert partial.aborted
    assert len(partial.records["Contact"]) == 2100
    # The checkpoint stays before the group: it is never split across a bookmark.
    assert partial.bookmark("Contact") == iso(t0 - 120 * S)

    resumed = run(cfg, partial.state, streams=["Contact"])
    seen = set(partial.ids("Contact")) | set(resumed.ids("Contact"))
    assert set(group) <= seen
    assert set(group) <= set(resumed.ids("Contact"))  # the resumed run alone has the group
    assert resumed.bookmark("Contact") == iso(t0 - 60 * S)

    # One uninterrupted run gets all 2,505 and ends exactly at the group's timestamp.
    whole = run(cfg, streams=["Contact"])
    assert len(set(whole.ids("Contact"))) == 2505
    assert whole.bookmark("Contact") == iso(t0 - 60 * S)


def test_empty_window_keeps_the_bookmark_and_costs_one_query(org, config, run, t0):
    org.write("Contact", contacts(2, "c"), modstamp=t0 - 60 * S)
    first = run(config(lookback_window=0), streams=["Contact", "Account"])
    assert first.bookmark("Contact") == iso(t0 - 60 * S)
    assert first.bookmark("Account") is None  # nothing read: no bookmark invented

    org.advance_clock(3600)  # an hour passes with no changes
    before = sum(org.calls().values())
    second = run(config(lookback_window=0), first.state, streams=["Contact", "Account"])
    assert second.records["Contact"] == []
    assert second.bookmark("Contact") == iso(t0 - 60 * S)  # not moved to "now"
    assert second.bookmark("Account") is None
    # Token + describe + one query per stream (AUTO sizes each window from that query's
    # first page: nothing to read, no further call).
    api_calls = sum(org.calls().values()) - before
    assert api_calls <= 4, org.calls()


def test_deleted_records_come_through_with_isdeleted(org, config, run, sf_client, t0):
    ids = org.write("Lead", [{"LastName": f"L{i}", "Company": "Acme"} for i in range(3)])
    sf_client.simple.Lead.delete(ids[0])
    with_deleted = run(config(user_objects=["Lead"], account_object=""), streams=["Lead"])
    by_id = {r["Id"]: r for r in with_deleted.records["Lead"]}
    assert set(by_id) == set(ids)
    assert by_id[ids[0]]["IsDeleted"] is True
    assert by_id[ids[1]]["IsDeleted"] is False
    assert by_id[ids[0]]["IsConverted"] is False  # conversion status travels with the lead

    without = run(
        config(user_objects=["Lead"], account_object="", include_deleted=False), streams=["Lead"]
    )
    assert set(without.ids("Lead")) == set(ids[1:])


@pytest.mark.parametrize("api_type", ["REST", "AUTO"])  # AUTO: the sizing query times out
def test_query_timeout_halves_the_window_and_retries(org, config, run, t0, api_type):
    for minutes in range(1, 7):
        org.write("Contact", contacts(3, f"m{minutes}"), modstamp=t0 - minutes * 60 * S)
    org.faults(
        {
            "match": {"method": "GET", "path": "queryAll"},
            "action": "error",
            "status": 400,
            "error_code": "QUERY_TIMEOUT",
            "times": 2,
        }
    )
    result = run(config(api_type=api_type), streams=["Contact"])
    assert org.fired() == 2
    assert len(set(result.ids("Contact"))) == 18
    assert result.bookmark("Contact") == iso(t0 - 60 * S)


def test_session_expiring_mid_stream_is_recovered(org, config, run, t0):
    org.write("Contact", contacts(2300, "s"), modstamp=t0 - 30 * S)
    # The second page (queryMore locator) meets an expired session.
    org.faults(
        {
            "match": {"method": "GET", "path": r"/query/[^/]+-\d+"},
            "action": "expire_session",
            "times": 1,
        }
    )
    result = run(config(api_type="REST"), streams=["Contact"])
    assert org.fired() == 1
    assert len(set(result.ids("Contact"))) == 2300


def test_converted_leads_come_through_with_their_conversion(org, config, run, t0):
    org.call("POST", "seed", {"Account": 4, "Contact": 20, "Lead": 40, "seed": 9})
    cfg = config(
        user_objects=["Lead"],
        account_object="",
        relationship_fields={"Lead": ["ConvertedContact.Email"]},
    )
    first = run(cfg, streams=["Lead"])
    leads = first.records["Lead"]
    assert len(leads) == 40
    converted = [r for r in leads if r["IsConverted"]]
    assert converted, "the seed converts a share of its leads"
    for lead in converted:
        assert lead["ConvertedContactId"] and lead["ConvertedDate"]
        assert lead["ConvertedContact"]["Email"]  # the contact it became, read with it
    open_leads = [r for r in leads if not r["IsConverted"]]
    assert all(r["ConvertedContact"] == {"Email": None} for r in open_leads)

    # A lead converted later comes through on the next run, with its new contact.
    org.advance_clock(300)
    lead_id = open_leads[0]["Id"]
    made = org.call("POST", f"leads/{lead_id}/convert", {})
    org.advance_clock(60)
    second = run(cfg, first.state, streams=["Lead"])
    again = next(r for r in second.records["Lead"] if r["Id"] == lead_id)
    assert again["IsConverted"] is True
    assert again["ConvertedContactId"] == made["contactId"]
    assert again["SystemModstamp"] == iso(t0 + 300 * S)
    assert second.bookmark("Lead") == iso(t0 + 300 * S)


def test_catalog_selection_decides_the_fields_read(org, config, run, t0):
    org.write("Contact", contacts(2, "sel"), modstamp=t0 - 60 * S)
    cfg = config(relationship_fields={})
    tap = TapSalesforceAppcues(config=cfg)
    catalog = tap.catalog_dict
    tap.close_clients()
    for entry in catalog["streams"]:
        for item in entry["metadata"]:
            crumb = item["breadcrumb"]
            if not crumb:
                item["metadata"]["selected"] = entry["tap_stream_id"] == "Contact"
            elif crumb[1] == "Email":
                item["metadata"]["selected"] = True
            else:
                item["metadata"]["selected"] = False
    selected = TapSalesforceAppcues(config=cfg, catalog=Catalog.from_dict(catalog))
    assert selected.streams["Contact"].shaper().columns == [
        "Id",
        "SystemModstamp",
        "IsDeleted",
        "Email",
    ]
    selected.close_clients()
    records = run(cfg, catalog=catalog).records["Contact"]
    assert len(records) == 2
    # Key and replication key always; IsDeleted (deselected above) always while deletes
    # are delivered.
    assert {frozenset(r) for r in records} == {
        frozenset({"Id", "SystemModstamp", "IsDeleted", "Email"})
    }


def test_a_run_without_changes_costs_one_query_per_stream(
    org, appcues_control, config, run, t0, caplog
):
    # Quiet objects: their last changes (and so their bookmarks) are three days old.
    org.write("Contact", contacts(3, "c"), modstamp=t0 - 3 * 86400 * S)
    org.write("Account", [{"Name": "Acme"}], modstamp=t0 - 3 * 86400 * S)
    appcues_control.call(
        "POST",
        "seed",
        {
            "Contact": 10,
            "events": 200,
            "start": (t0 - 48 * 3600 * S).isoformat(),
            "end": (t0 - 3600 * S).isoformat(),
        },
    )
    cfg = config(appcues_start_date=(t0 - 72 * 3600 * S).isoformat())
    first = run(cfg)
    assert first.bookmark("Contact") and first.bookmark("Account")
    assert first.bookmark("appcues_events")

    org.advance_clock(300)  # the next scheduled run, five minutes later
    # As older versions wrote: ignored, it changes neither the calls nor the bookmarks.
    first.state["bookmarks"]["Contact"]["read_until"] = iso(t0)
    with caplog.at_level("INFO"):
        second = run(cfg, first.state)
    # The discovery describe plus one query per Salesforce stream; one analytics query.
    assert second.calls == {"salesforce": 3, "appcues": 1}
    assert "API calls this run: salesforce=3 appcues=1" in caplog.text
    for stream in ("Contact", "Account", "appcues_events"):
        assert second.bookmark(stream) == first.bookmark(stream)


def test_an_unknown_object_is_named_with_its_setting(org, config):
    with pytest.raises(SchemaMappingError, match=r"account_object.*Acount"):
        TapSalesforceAppcues(config=config(account_object="Acount")).streams  # noqa: B018


def test_no_secret_reaches_output_or_logs(org, config, run, t0, caplog):
    org.write("Contact", contacts(2, "x"), modstamp=t0 - 60 * S)
    cfg = config()
    out = io.StringIO()
    with caplog.at_level("DEBUG"), contextlib.redirect_stdout(out):
        result = run(cfg)
    text = caplog.text + json.dumps(result.records) + json.dumps(result.states)
    for name in ("client_secret", "refresh_token", "appcues_api_secret"):
        assert cfg[name] not in text, name
    assert "Bearer " not in text and "Authorization" not in text


def test_relationship_fields_for_an_unconfigured_object_are_named(org, config, caplog):
    cfg = config(relationship_fields={"Contcat": ["Account.Name"]})
    with caplog.at_level("WARNING"):
        tap = TapSalesforceAppcues(config=cfg)
        streams = tap.streams
    tap.close_clients()
    assert "relationship_fields: Contcat not among the configured objects" in caplog.text
    assert "Account" not in streams["Contact"].schema["properties"]
