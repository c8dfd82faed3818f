"""Shared test helpers: describe payloads shaped like Salesforce's, and sandbox tap configs."""

from __future__ import annotations

import contextlib
import io
import json
from collections import defaultdict
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import UTC, datetime
from typing import Any

import pytest
from singer_sdk.exceptions import AbortedSyncPausedException
from singer_sdk.singerlib import Catalog

from salesforce_appcues_clients.salesforce import SalesforceClient
from salesforce_appcues_sandbox.testing import SandboxControl, appcues_config, salesforce_config
from tap_salesforce_appcues.tap import TapSalesforceAppcues


def field(name: str, sf_type: str = "string", nillable: bool = True, **extra: Any) -> dict:
    return {"name": name, "type": sf_type, "nillable": nillable, **extra}


def address_fields(prefix: str, compound: str) -> list[dict]:
    parts = [
        ("Street", "textarea"),
        ("City", "string"),
        ("State", "string"),
        ("PostalCode", "string"),
        ("Country", "string"),
        ("Latitude", "double"),
        ("Longitude", "double"),
        ("GeocodeAccuracy", "picklist"),
    ]
    return [field(compound, "address")] + [
        field(prefix + suffix, t, compoundFieldName=compound) for suffix, t in parts
    ]


@pytest.fixture
def contact_describe() -> dict:
    return {
        "name": "Contact",
        "fields": [
            field("Id", "id", nillable=False),
            field("IsDeleted", "boolean", nillable=False),
            field("AccountId", "reference", referenceTo=["Account"], relationshipName="Account"),
            field("LastName", "string", nillable=False),
            field("Email", "email"),
            field("Birthdate", "date"),
            field("NumberOfThings__c", "int"),
            field("Score__c", "double"),
            field("Revenue__c", "currency"),
            field("Opted_In__c", "boolean", nillable=False),
            field("Interests__c", "multipicklist"),
            field("Photo__c", "base64"),
            field("SystemModstamp", "datetime", nillable=False),
            *address_fields("Mailing", "MailingAddress"),
        ],
    }


@pytest.fixture
def account_describe() -> dict:
    return {
        "name": "Account",
        "fields": [
            field("Id", "id", nillable=False),
            field("Name", "string", nillable=False),
            field("Product_Account_Id__c", "string"),
            field("OwnerId", "reference", referenceTo=["User"], relationshipName="Owner"),
            field("SystemModstamp", "datetime", nillable=False),
        ],
    }


# --- the sandbox: control calls, tap configs, in-process runs ---------------------------------


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class Org(SandboxControl):
    """The Salesforce sandbox: writes at explicit SystemModstamps, seeds, stats."""

    def write(self, obj: str, records: list[dict], modstamp: datetime | None = None) -> list[str]:
        body: dict[str, Any] = {"records": records}
        if modstamp is not None:
            body["SystemModstamp"] = modstamp.isoformat()
        results = self.call("POST", f"records/{obj}", body)
        assert all(r["success"] for r in results), results
        return [r["id"] for r in results]


T0 = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def org(sandbox, t0):
    """The Salesforce sandbox, emptied, its clock frozen at `t0`."""
    conn = sandbox.connection
    control = Org.of(conn, "salesforce")
    control.call("DELETE", "faults")
    control.call("POST", "reset")
    yield control
    control.call("DELETE", "faults")
    control.call("POST", "clock", {"reset": True})
    control.session.close()


@pytest.fixture
def appcues_control(sandbox, t0):
    """The Appcues sandbox, emptied; the clock (shared with Salesforce) frozen at `t0`."""
    conn = sandbox.connection
    control = SandboxControl.of(conn, "appcues")
    control.call("POST", "reset")
    control.call("DELETE", "faults")
    yield control
    control.call("POST", "settings", {"analytics_delay_seconds": 0})
    control.call("DELETE", "faults")
    control.call("POST", "clock", {"reset": True})
    control.session.close()


def sandbox_config(connection: dict, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        **salesforce_config(connection),
        "retry_base_delay": 0.05,
        **appcues_config(connection, "appcues_"),
        "appcues_retry_base_delay": 0.05,
        "user_objects": ["Contact"],
        "account_object": "Account",
        "relationship_fields": {"Contact": ["Account.Product_Account_Id__c"]},
        "lag": 0,
        "lookback_window": 600,
    }
    config.update(overrides)
    return config


@pytest.fixture
def config(sandbox):
    def make(**overrides: Any) -> dict[str, Any]:
        return sandbox_config(sandbox.connection, **overrides)

    return make


@pytest.fixture
def sf_client(sandbox):
    client = SalesforceClient.from_config(sandbox_config(sandbox.connection))
    yield client
    client.close()


@dataclass
class Run:
    records: dict[str, list[dict]] = dc_field(default_factory=lambda: defaultdict(list))
    states: list[dict] = dc_field(default_factory=list)
    calls: dict[str, int] = dc_field(default_factory=dict)
    aborted: bool = False

    @property
    def state(self) -> dict:
        return self.states[-1] if self.states else {}

    def bookmark(self, stream: str) -> str | None:
        return self.state.get("bookmarks", {}).get(stream, {}).get("replication_key_value")

    def ids(self, stream: str) -> list[str]:
        return [r["Id"] if "Id" in r else r["id"] for r in self.records[stream]]


def run_tap(
    config: dict[str, Any],
    state: dict | None = None,
    *,
    streams: list[str] | None = None,
    abort_after: int | None = None,
    catalog: dict | None = None,
) -> Run:
    """Run the tap in-process; only `streams` (default: all) are selected, or, given a
    `catalog`, what it selects."""
    tap = TapSalesforceAppcues(
        config=config,
        state=state or {},
        catalog=Catalog.from_dict(catalog) if catalog is not None else None,
    )
    for name, stream in tap.streams.items():
        if catalog is None:
            stream.selected = streams is None or name in streams
        if abort_after is not None:
            stream.ABORT_AT_RECORD_COUNT = abort_after
    out = io.StringIO()
    run = Run()
    with contextlib.redirect_stdout(out):
        try:
            tap.sync_all()
        except AbortedSyncPausedException:
            run.aborted = True
        finally:
            run.calls = tap.api_calls()
            tap.close_clients()
    for line in out.getvalue().splitlines():
        message = json.loads(line)
        if message["type"] == "RECORD":
            run.records[message["stream"]].append(message["record"])
        elif message["type"] == "STATE":
            run.states.append(message["value"])
    return run


@pytest.fixture
def run():
    """The tap, run in-process: `run(config, state, streams=..., abort_after=..., catalog=...)`."""
    return run_tap


@pytest.fixture
def t0(sandbox):
    """The sandbox clock, frozen here for the test: the org's Date header says this time,
    so the tap's windows, the records' SystemModstamps and analytics visibility follow it."""
    conn = sandbox.connection
    control = SandboxControl.of(conn, "salesforce")
    control.set_clock(T0, freeze=True)
    yield T0
    control.call("POST", "clock", {"reset": True})
    control.session.close()
