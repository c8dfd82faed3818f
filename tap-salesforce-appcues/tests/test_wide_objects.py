"""A Contact with 700 custom fields, all selected: no query URL passes Salesforce's limit,
and every record arrives with every field (REST, AUTO, Bulk, catalog-driven runs)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import yaml

from salesforce_appcues_clients import soql
from salesforce_appcues_sandbox.salesforce.schema_file import DEFAULT_SCHEMA_FILE
from salesforce_appcues_sandbox.server import Sandbox
from tap_salesforce_appcues.field_parts import join_parts
from tap_salesforce_appcues.tap import TapSalesforceAppcues
from tap_salesforce_appcues.timefmt import parse_datetime

WIDE = 700
TYPES = ("string", "double", "boolean", "datetime")
CFG = {"user_objects": ["Contact"], "account_object": "", "relationship_fields": {}}


def wide_name(i: int) -> str:
    return f"Wide_Custom_Field_{i:03d}__c"


def wide_value(i: int, n: int):
    kind = TYPES[i % len(TYPES)]
    if kind == "string":
        return f"c{n}-f{i}"
    if kind == "double":
        return n * 1000 + i + 0.5
    if kind == "boolean":
        return (i + n) % 2 == 0
    return f"2026-05-{1 + n % 28:02d}T{i % 24:02d}:{i % 60:02d}:07.000Z"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """Overrides the shared sandbox for this module: the org's Contact is wide."""
    schema = yaml.safe_load(DEFAULT_SCHEMA_FILE.read_text())
    fields = schema["objects"]["Contact"]["fields"]
    for i in range(WIDE):
        kind = TYPES[i % len(TYPES)]
        spec = {"type": kind, "label": f"Wide {i}"}
        if kind == "string":
            spec["length"] = 40
        if kind == "double":
            spec.update(precision=18, scale=1)
        fields[wide_name(i)] = spec
    path = tmp_path_factory.mktemp("wide") / "schema.yaml"
    path.write_text(yaml.safe_dump(schema))
    with Sandbox(options={"salesforce": {"schema_file": str(path)}}) as running:
        yield running


def _seed(org, t0, count: int = 6) -> dict[str, dict]:
    records = []
    for n in range(count):
        record = {"LastName": f"wide{n}", "Email": f"w{n}@example.com"}
        record.update({wide_name(i): wide_value(i, n) for i in range(WIDE)})
        records.append(record)
    ids = org.write("Contact", records, modstamp=t0 - timedelta(minutes=5))
    return dict(zip(ids, records, strict=True))


def _assert_whole(records: list[dict], written: dict[str, dict]) -> None:
    assert sorted(r["Id"] for r in records) == sorted(written)
    for record in records:
        sent = written[record["Id"]]
        assert record["LastName"] == sent["LastName"] and record["Email"] == sent["Email"]
        for i in range(WIDE):
            name, expected = wide_name(i), sent[wide_name(i)]
            if TYPES[i % len(TYPES)] == "datetime":
                assert parse_datetime(record[name]) == parse_datetime(expected), name
            else:
                assert record[name] == expected, (record["Id"], name)


def _rest_queries(org, before: dict[str, int]) -> int:
    after = org.calls()
    return sum(
        n - before.get(k, 0)
        for k, n in after.items()
        if k.startswith("GET ") and k.rstrip("/").endswith(("/query", "/queryAll"))
    )


def _jobs(org) -> int:
    return org.calls().get("POST /services/data/vXX.X/jobs/query", 0)


def test_every_field_arrives_on_rest_in_two_queries(org, config, run, t0):
    written = _seed(org, t0)
    before = org.calls()
    rest = run(config(api_type="REST", **CFG), streams=["Contact"])
    _assert_whole(rest.records["Contact"], written)
    assert _rest_queries(org, before) == 2  # the field list split in two, one page each
    assert rest.bookmark("Contact") == "2026-06-01T11:55:00.000Z"
    # A quiet window costs what it costs a narrow object: the first part's one query.
    before = org.calls()
    quiet = run(config(api_type="REST", lookback_window=0, **CFG), rest.state, streams=["Contact"])
    assert quiet.records["Contact"] == [] and _rest_queries(org, before) == 1


def test_auto_reads_a_small_window_with_rest_and_a_big_one_with_bulk(org, config, run, t0):
    written = _seed(org, t0)
    jobs = _jobs(org)
    small = run(config(**CFG), streams=["Contact"])
    _assert_whole(small.records["Contact"], written)
    assert _jobs(org) == jobs  # 6 records: two REST queries beat a Bulk job
    big = run(config(bulk_threshold=3, **CFG), streams=["Contact"])
    _assert_whole(big.records["Contact"], written)
    assert _jobs(org) == jobs + 1  # Bulk query is a POST body: one job, no split
    assert small.records == big.records


def test_a_catalog_driven_run_selecting_every_field(org, config, run, t0):
    written = _seed(org, t0, count=3)
    tap = TapSalesforceAppcues(config=config(**CFG))
    catalog = tap.catalog_dict
    tap.close_clients()
    for entry in catalog["streams"]:
        chosen = entry["tap_stream_id"] == "Contact"
        for item in entry["metadata"]:
            item["metadata"]["selected"] = chosen
    contact = next(e for e in catalog["streams"] if e["tap_stream_id"] == "Contact")
    assert len(contact["schema"]["properties"]) > WIDE
    result = run(config(api_type="REST", **CFG), catalog=catalog)
    _assert_whole(result.records["Contact"], written)
    assert set(result.records["Contact"][0]) == set(contact["schema"]["properties"])


def test_parts_page_through_their_own_locators(org, sf_client, t0):
    """Each share pages by its nextRecordsUrl (a short locator): the join spans pages."""
    rows = [
        {"LastName": f"p{n}", "Email": f"p{n}@example.com", "Title": f"t{n}"} for n in range(450)
    ]
    for n in range(0, 450, 50):  # groups of 50 records sharing one SystemModstamp
        org.write("Contact", rows[n : n + 50], modstamp=t0 - timedelta(seconds=450 - n))
    order = "ORDER BY SystemModstamp ASC, Id ASC"
    endpoint = sf_client.base_url + "query/"
    columns = ["LastName", "Email", "Title", "FirstName", "Phone"]
    rest = f"FROM Contact {order}"
    keys = ("Id", "SystemModstamp")
    base = soql.query_url_length(endpoint, f"SELECT {', '.join(keys)} {rest}")
    parts = soql.select_parts(keys, columns, rest, endpoint, max_url_length=base + 20)
    assert len(parts) >= 3 and all(p[:2] == list(keys) for p in parts)
    queries = [f"SELECT {', '.join(p)} {rest}" for p in parts]
    results = [sf_client.query(q, batch_size=200) for q in queries]
    held: list[str] = []
    joined = list(join_parts([iter(r) for r in results], lambda rid, at: held.append(rid)))
    whole = list(sf_client.query(f"SELECT {', '.join([*keys, *columns])} {rest}"))
    assert held == [] and len(joined) == 450
    strip = [{k: v for k, v in r.items() if k != "attributes"} for r in joined]
    assert strip == [{k: v for k, v in r.items() if k != "attributes"} for r in whole]
