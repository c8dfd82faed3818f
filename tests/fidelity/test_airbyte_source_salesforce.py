"""Airbyte's source-salesforce (PyPI, its own virtualenv) against the sandbox: check, discover,
and reads of Contact in full refresh and incremental, over REST and Bulk API 2.0.

Only its hard-coded login host is redirected (airbyte_source_salesforce_login_redirect.py).
Every read must give exactly the records our tap gives on the same data: same Ids, same
values once both sides' spellings are normalised (Airbyte's REST path keeps Salesforce's
`+0000` datetimes and drops nulls; its Bulk path cannot select compound fields).
"""

import contextlib
import io
import json
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from salesforce_appcues_sandbox.testing import appcues_config, ca_environment, salesforce_config
from tap_salesforce_appcues.tap import TapSalesforceAppcues

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # a first run installs the source

HERE = Path(__file__).parent
REQUIREMENTS = HERE / "airbyte-source-salesforce-requirements.txt"
WRAPPER = HERE / "airbyte_source_salesforce_login_redirect.py"
CONTACTS = 2100  # more than one REST page (2000)
COMPOUND = "MailingAddress"  # Bulk API 2.0 cannot select compound fields
_DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)$")


@pytest.fixture(scope="module")
def source_python(pinned_python):
    return pinned_python(REQUIREMENTS, "airbyte-source-salesforce")


class AirbyteSource:
    """The source as Airbyte runs it: one process per command, messages on stdout."""

    def __init__(self, python: Path, org, workdir: Path, *, bulk: bool) -> None:
        self.python = python
        self.workdir = workdir
        workdir.mkdir(exist_ok=True)
        info = org.info
        self.config = self._write(
            "config.json",
            {
                "client_id": info["client_id"],
                "client_secret": info["client_secret"],
                "refresh_token": info["refresh_token"],
                "start_date": "2000-01-01T00:00:00Z",
                "force_use_bulk_api": bulk,
                # one window for the whole history (the default P30D makes ~330 slices)
                "stream_slice_step": "P36500D",
            },
        )
        self.env = ca_environment(org.connection)
        self.env["SANDBOX_SALESFORCE_LOGIN_URL"] = info["login_url"]  # the wrapper's target

    def _write(self, name: str, payload: Any) -> Path:
        path = self.workdir / name
        path.write_text(json.dumps(payload))
        return path

    def __call__(self, command: str, *args: str) -> list[dict]:
        done = subprocess.run(
            [str(self.python), str(WRAPPER), command, "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.workdir,
            timeout=240,
            check=False,
        )
        messages = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        errors = [
            m["trace"]["error"]
            for m in messages
            if m["type"] == "TRACE" and m["trace"]["type"] == "ERROR"
        ]
        assert done.returncode == 0 and not errors, (errors or done.stderr)[-3:]
        return messages

    def read(self, catalog: Path, state: list[dict] | None = None) -> tuple[list[dict], list[dict]]:
        """Records of Contact, and the last state message as Airbyte would pass it back."""
        args = ["--catalog", str(catalog)]
        if state is not None:
            args += ["--state", str(self._write("state.json", state))]
        messages = self("read", *args)
        records = [m["record"]["data"] for m in messages if m["type"] == "RECORD"]
        assert all(m["record"]["stream"] == "Contact" for m in messages if m["type"] == "RECORD")
        states = [m["state"] for m in messages if m["type"] == "STATE"]
        return records, states[-1:]

    def configured(self, stream: dict, mode: str) -> Path:
        return self._write(
            f"catalog-{mode}.json",
            {
                "streams": [
                    {
                        "stream": stream,
                        "sync_mode": mode,
                        "destination_sync_mode": "append" if mode == "incremental" else "overwrite",
                        "cursor_field": stream["default_cursor_field"],
                        "primary_key": stream["source_defined_primary_key"],
                    }
                ]
            },
        )


def our_tap(org, api_type: str, state: dict | None = None) -> tuple[list[dict], dict]:
    """Our tap on the same org, in-process: Contact records and the final state."""
    config = {
        **salesforce_config(org.connection),
        "user_objects": ["Contact"],
        "account_object": "",
        "relationship_fields": {},
        "api_type": api_type,
        "start_date": "2000-01-01T00:00:00Z",
        "lag": 0,
        "lookback_window": 600,  # Airbyte's default lookback (PT10M)
    }
    config.update(appcues_config(org.connection, "appcues_"))
    tap = TapSalesforceAppcues(config=config, state=state or {})
    for name, stream in tap.streams.items():
        stream.selected = name == "Contact"
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            tap.sync_all()
    finally:
        tap.close_clients()
    messages = [json.loads(line) for line in out.getvalue().splitlines()]
    records = [m["record"] for m in messages if m["type"] == "RECORD" and m["stream"] == "Contact"]
    states = [m["value"] for m in messages if m["type"] == "STATE"]
    return records, states[-1]


def _value(value: Any) -> Any:
    if isinstance(value, str) and _DATETIME.match(value):
        return datetime.fromisoformat(value).astimezone(UTC)  # `+0000` and `.000Z` alike
    if isinstance(value, dict):
        return {k: _value(v) for k, v in value.items() if v is not None}
    return value


def normalised(records: list[dict], *, drop: tuple[str, ...] = ()) -> dict[str, dict]:
    """By Id; nulls and REST's `attributes` dropped, datetimes as UTC instants."""
    by_id: dict[str, dict] = {}
    for record in records:
        assert record["Id"] not in by_id, f"duplicate {record['Id']}"
        by_id[record["Id"]] = {
            k: _value(v)
            for k, v in record.items()
            if v is not None and k != "attributes" and k not in drop
        }
    return by_id


def _changes(org) -> dict[str, set[str]]:
    """Three Contacts updated, one deleted, one created through the REST API."""
    token = org.token()
    api = org.session()
    api.headers["Authorization"] = f"Bearer {token['access_token']}"
    base = f"{token['instance_url']}/services/data/v62.0"
    oldest = api.get(
        f"{base}/query", params={"q": "SELECT Id FROM Contact ORDER BY SystemModstamp, Id LIMIT 4"}
    ).json()["records"]
    ids = [r["Id"] for r in oldest]
    for n, rid in enumerate(ids[:3]):
        resp = api.patch(
            f"{base}/sobjects/Contact/{rid}", json={"Title": f"Changed {n}", "Phone": None}
        )
        assert resp.status_code == 204, resp.text
    assert api.delete(f"{base}/sobjects/Contact/{ids[3]}").status_code == 204
    resp = api.post(
        f"{base}/sobjects/Contact", json={"LastName": "Incremental", "Email": "new@example.com"}
    )
    assert resp.status_code == 201, resp.text
    api.close()
    return {"updated": set(ids[:3]), "deleted": {ids[3]}, "created": {resp.json()["id"]}}


def test_check_and_discover_match_our_catalog(org, source_python, tmp_path):
    org.reseed(Contact=20, seed=5)
    source = AirbyteSource(source_python, org, tmp_path, bulk=False)
    (status,) = [m for m in source("check") if m["type"] == "CONNECTION_STATUS"]
    assert status["connectionStatus"]["status"] == "SUCCEEDED"

    (catalog,) = [m["catalog"] for m in source("discover") if m["type"] == "CATALOG"]
    streams = {s["name"]: s for s in catalog["streams"]}
    contact = streams["Contact"]
    assert contact["source_defined_primary_key"] == [["Id"]]
    assert contact["default_cursor_field"] == ["SystemModstamp"]
    assert "incremental" in contact["supported_sync_modes"]
    ours = TapSalesforceAppcues(
        config={
            **salesforce_config(org.connection),
            "user_objects": ["Contact"],
            "account_object": "",
            "relationship_fields": {},
        }
    )
    try:
        our_fields = set(ours.streams["Contact"].schema["properties"])
    finally:
        ours.close_clients()
    assert set(contact["json_schema"]["properties"]) == our_fields
    props = contact["json_schema"]["properties"]
    assert props["SystemModstamp"]["format"] == "date-time"
    assert "number" in props["Product_User_Number__c"]["type"]
    assert "object" in props[COMPOUND]["type"]


@pytest.mark.parametrize("api", ["REST", "BULK2"])
def test_reads_equal_our_tap_full_and_incremental(org, source_python, tmp_path, api):
    assert org.reseed(Contact=CONTACTS, seed=5)["seeded"] == {"Contact": CONTACTS}
    bulk = api == "BULK2"
    drop = (COMPOUND,) if bulk else ()
    source = AirbyteSource(source_python, org, tmp_path / "airbyte", bulk=bulk)
    (catalog,) = [m["catalog"] for m in source("discover") if m["type"] == "CATALOG"]
    (contact,) = [s for s in catalog["streams"] if s["name"] == "Contact"]
    stats_before = org.control("GET", "stats")["calls"]

    ours, our_state = our_tap(org, api)
    expected = normalised(ours, drop=drop)
    assert len(expected) == CONTACTS

    full, _ = source.read(source.configured(contact, "full_refresh"))
    assert normalised(full) == expected
    first, state = source.read(source.configured(contact, "incremental"))
    assert normalised(first) == expected
    calls = org.control("GET", "stats")["calls"]
    jobs = calls.get("POST /services/data/vXX.X/jobs/query", 0) - stats_before.get(
        "POST /services/data/vXX.X/jobs/query", 0
    )
    assert (jobs > 0) == bulk  # each client really took the path under test

    # -- changes, then both clients' next incremental run from their own state -------------
    changed = _changes(org)
    second_ours, _ = our_tap(org, api, our_state)
    second, _ = source.read(source.configured(contact, "incremental"), state)
    got, want = normalised(second), normalised(second_ours, drop=drop)
    # Airbyte resumes from the end of its last window (minus its lookback), so it re-reads
    # only what changed; our tap re-reads the lookback before its bookmark (the newest
    # SystemModstamp) as well: those extra records are unchanged copies of the first run.
    assert set(got) == set().union(*changed.values())
    assert {rid: want[rid] for rid in got} == got
    assert {rid: r for rid, r in want.items() if rid not in got} == {
        rid: expected[rid] for rid in want if rid not in got
    }
    for rid in changed["updated"]:
        assert got[rid]["Title"].startswith("Changed ") and "Phone" not in got[rid]
    (deleted,) = changed["deleted"]
    assert got[deleted]["IsDeleted"] is True  # both read with queryAll
