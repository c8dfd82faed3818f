"""Shared helpers: configs for sandbox orgs, records in, the target driven in-process."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from singer_sdk.testing import target_sync_test

from salesforce_appcues_clients import soql
from salesforce_appcues_clients.salesforce import SalesforceClient
from salesforce_appcues_sandbox.salesforce.schema_file import DEFAULT_SCHEMA_FILE
from salesforce_appcues_sandbox.server import Sandbox
from salesforce_appcues_sandbox.testing import SandboxControl, salesforce_config
from target_salesforce_events.target import TargetSalesforceEvents

STREAM = "appcues_events"
EVENT_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": ["string", "null"]},
        "name": {"type": "string"},
        "timestamp": {"type": "string", "format": "date-time"},
        "user_id": {"type": ["string", "null"]},
        "group_id": {"type": ["string", "null"]},
        "attributes": {"type": ["object", "null"]},
        "context": {"type": ["object", "null"]},
    },
}


def sandbox_config(sb: Sandbox, state_dir: Path, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        **salesforce_config(sb.connection),
        "retry_base_delay": 0.01,
        "retry_max_seconds": 2,
        "max_retries": 3,
        "quota_percent_per_run": 100,
        "quota_percent_total": 100,
        "state_dir": str(state_dir),
    }
    config.update(overrides)
    return config


class Org:
    """A sandbox org seen through its own client: set-up writes and SOQL checks."""

    def __init__(self, sb: Sandbox, state_dir: Path) -> None:
        self.sandbox = sb
        self.state_dir = state_dir
        self.client = SalesforceClient.from_config(sandbox_config(sb, state_dir))
        self.tag = uuid.uuid4().hex[:8]  # keeps this test's users apart from others'
        self.defaults: dict[str, Any] = {}  # settings a variant org needs (under overrides)

    def config(self, **overrides: Any) -> dict[str, Any]:
        return sandbox_config(self.sandbox, self.state_dir, **{**self.defaults, **overrides})

    def user(self, name: str) -> str:
        return f"{name}-{self.tag}"

    def create(self, sobject: str, **fields: Any) -> str:
        if sobject == "Lead":
            fields.setdefault("Company", "Acme")
        fields.setdefault("LastName", "Tester")
        (result,) = self.client.insert(sobject, [fields])
        assert result.success, result.errors
        return str(result.id)

    def query(self, text: str) -> list[dict[str, Any]]:
        return list(self.client.query(text, include_deleted=True))

    def events_of(self, *who_ids: str) -> list[dict[str, Any]]:
        prefix = (
            "SELECT Id, WhoId, Subject, Description, ActivityDateTime, DurationInMinutes, "
            "Appcues_Event_Id__c FROM Event WHERE"
        )
        rows: list[dict[str, Any]] = []
        for text in soql.in_chunks(prefix, "WhoId", list(who_ids)):
            rows.extend(self.query(text))
        return rows

    def events_of_plain(self, *who_ids: str) -> list[dict[str, Any]]:
        """For schemas without Appcues_Event_Id__c."""
        prefix = "SELECT Id, WhoId, Subject, ActivityDateTime FROM Event WHERE"
        rows: list[dict[str, Any]] = []
        for text in soql.in_chunks(prefix, "WhoId", list(who_ids)):
            rows.extend(self.query(text))
        return rows

    def get(self, sobject: str, record_id: str, *fields: str) -> dict[str, Any]:
        (row,) = self.query(
            f"SELECT {', '.join(fields)} FROM {sobject} WHERE Id = {soql.quote(record_id)}"
        )
        return row

    def control(self, method: str, path: str, body: Any = None) -> Any:
        with SandboxControl.of(self.sandbox.connection, "salesforce") as control:
            return control.call(method, path, body)

    def close(self) -> None:
        self.client.close()


def event(user_id: str | None, name: str, ts: str, event_id: str | None = None, **attrs: Any):
    record: dict[str, Any] = {
        "name": name,
        "timestamp": ts,
        "user_id": user_id,
        "attributes": attrs,
        "context": {"url": "https://app.example.com/home", "title": "Home"},
    }
    if event_id is not None:
        record["id"] = event_id
    return record


def singer_lines(records: list[dict[str, Any]], state: dict[str, Any] | None = None) -> str:
    lines = [{"type": "SCHEMA", "stream": STREAM, "schema": EVENT_SCHEMA, "key_properties": []}]
    lines += [{"type": "RECORD", "stream": STREAM, "record": r} for r in records]
    lines.append({"type": "STATE", "value": state or {"bookmarks": {STREAM: {"n": len(records)}}}})
    return "\n".join(json.dumps(line) for line in lines) + "\n"


def run_target(config: dict[str, Any], records: list[dict[str, Any]]):
    """Drive the target in-process; returns (target, STATE lines written to stdout)."""
    target = TargetSalesforceEvents(config=config)
    stdout, _ = target_sync_test(target, io.StringIO(singer_lines(records)), finalize=True)
    states = [json.loads(line) for line in stdout.read().splitlines() if line.strip()]
    return target, states


def dead_letters(config: dict[str, Any]) -> list[dict[str, Any]]:
    path = Path(config["state_dir"]) / "dead-letters.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def org(sandbox, tmp_path) -> Iterator[Org]:
    """The shared sandbox (default schema); each test uses its own user ids."""
    made = Org(sandbox, tmp_path / "state")
    yield made
    made.close()


def variant_schema(mutate: Callable[[dict[str, Any]], None], path: Path) -> Path:
    raw = yaml.safe_load(DEFAULT_SCHEMA_FILE.read_text())
    mutate(raw)
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def variant_org(tmp_path_factory) -> Iterator[Callable[..., Org]]:
    """variant_org(mutate, seed=None, options=None) -> an Org on a private sandbox with a
    changed schema (and Salesforce service options)."""
    started: list[tuple[Sandbox, Org]] = []

    def make(
        mutate: Callable[[dict[str, Any]], None] | None = None,
        seed: dict | None = None,
        options: dict[str, Any] | None = None,
    ):
        folder = tmp_path_factory.mktemp("variant")
        options = dict(options or {})
        if mutate is not None:
            options["schema_file"] = str(variant_schema(mutate, folder / "schema.yaml"))
        sb = Sandbox(options={"salesforce": options}).start()
        made = Org(sb, folder / "state")
        started.append((sb, made))
        if seed:
            made.control("POST", "seed", seed)
        return made

    yield make
    for sb, made in started:
        made.close()
        sb.stop()


@pytest.fixture
def kit() -> SimpleNamespace:
    """The helpers above, for test modules (importlib mode keeps conftest unimportable)."""
    return SimpleNamespace(
        event=event,
        run_target=run_target,
        dead_letters=dead_letters,
        singer_lines=singer_lines,
        schema=EVENT_SCHEMA,
    )
