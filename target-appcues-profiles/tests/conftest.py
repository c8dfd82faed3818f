"""Shared helpers: the Appcues sandbox's control API, target configs, Singer message feeds."""

from __future__ import annotations

import contextlib
import io
import json
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

from salesforce_appcues_sandbox.testing import SandboxControl, appcues_config
from target_appcues_profiles.dead_letter import read_dead_letters
from target_appcues_profiles.target import TargetAppcuesProfiles


class AppcuesSandbox:
    """The Appcues half of the session's sandbox, seen from outside: control API + public API."""

    def __init__(self, sandbox: Any) -> None:
        self.sandbox = sandbox
        self.connection = sandbox.connection
        self.info = self.connection["appcues"]
        self.controls = SandboxControl.of(self.connection, "appcues")
        self.session = self.controls.session  # for the public API too: the sandbox's CA

    def control(self, method: str, path: str, body: Any = None) -> Any:
        return self.controls.call(method, path, body)

    def reset(self) -> None:
        self.control("POST", "reset")
        self.control("DELETE", "faults")

    def stats(self) -> dict[str, Any]:
        return self.control("GET", "stats")

    def faults(self, *rules: dict[str, Any]) -> None:
        self.controls.faults(*rules, seed=1)

    def _get(self, path: str) -> dict[str, Any] | None:
        url = f"{self.info['base_url']}/v2/accounts/{self.info['account_id']}/{path}"
        auth = (self.info["api_key"], self.info["api_secret"])
        response = self.session.get(url, auth=auth)
        while response.status_code == 429:  # checks read many profiles; Appcues allows 60/s
            time.sleep(float(response.headers.get("Retry-After", "1")))
            response = self.session.get(url, auth=auth)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()

    def user(self, user_id: str) -> dict[str, Any] | None:
        """A user profile through the public API, without Appcues' own `_` attributes."""
        body = self._get(f"users/{user_id}/profile")
        return None if body is None else {k: v for k, v in body.items() if k[:1] != "_"}

    def group(self, group_id: str) -> dict[str, Any] | None:
        body = self._get(f"groups/{group_id}/profile")
        return None if body is None else {k: v for k, v in body.items() if k[:1] != "_"}

    def members(self, group_id: str) -> list[str]:
        # The API has no read route for group membership; ask the emulator's store.
        return self.sandbox.appcues.store.group_members(group_id)

    def config(self, tmp_path: Any, **overrides: Any) -> dict[str, Any]:
        return {
            **appcues_config(self.connection),
            "state_dir": str(tmp_path / "state"),
            "retry_base_delay": 0.05,
            **overrides,
        }


@pytest.fixture
def appcues(sandbox):
    helper = AppcuesSandbox(sandbox)
    helper.reset()
    yield helper
    helper.control("DELETE", "faults")
    helper.session.close()  # an idle keep-alive connection would slow the sandbox's shutdown


@dataclass
class Run:
    target: TargetAppcuesProfiles
    states: list[dict[str, Any]]
    summary: dict[str, Any]
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    error: BaseException | None = None


def run_target(
    config: dict[str, Any], messages: list[dict[str, Any] | str], *, fails: bool = False
) -> Run:
    """Feeds Singer messages to a fresh target in this process; STATE lines are captured.

    A message given as text is fed as that raw line (for malformed input).
    With `fails=True` the run must raise; the exception is kept in `Run.error`.
    """
    target = TargetAppcuesProfiles(config=config)
    stdout = io.StringIO()
    text = "".join((m if isinstance(m, str) else json.dumps(m)) + "\n" for m in messages)
    error: BaseException | None = None
    with contextlib.redirect_stdout(stdout):
        try:
            target.listen(io.StringIO(text))
        except Exception as exc:
            target.runtime.close()  # a run failing mid-stream never reaches its end of pipe
            if not fails:
                raise
            error = exc
    if fails and error is None:
        raise AssertionError("the target run was expected to fail")
    states = [json.loads(line) for line in stdout.getvalue().splitlines() if line.strip()]
    return Run(
        target,
        states,
        dict(target.summary()),
        read_dead_letters(target.runtime.settings.dead_letter_path),
        error,
    )


def _text(nullable: bool = True) -> dict[str, Any]:
    return {"type": ["string", "null"] if nullable else "string"}


class Feeds:
    """Singer message builders and Salesforce-shaped records."""

    @staticmethod
    def schema(stream: str, properties: dict[str, Any], key: tuple[str, ...] = ("Id",)) -> dict:
        return {
            "type": "SCHEMA",
            "stream": stream,
            "key_properties": list(key),
            "schema": {"type": "object", "properties": properties},
        }

    @staticmethod
    def record(stream: str, rec: dict[str, Any]) -> dict:
        return {"type": "RECORD", "stream": stream, "record": rec}

    @staticmethod
    def state(value: dict[str, Any]) -> dict:
        return {"type": "STATE", "value": value}

    CONTACT_PROPERTIES: ClassVar[dict[str, Any]] = {
        "Id": _text(False),
        "IsDeleted": {"type": ["boolean", "null"]},
        "Product_User_Id__c": _text(),
        "FirstName": _text(),
        "LastName": _text(),
        "Email": _text(),
        "Birthdate": {"type": ["string", "null"], "format": "date"},
        "Last_Login__c": {"type": ["string", "null"], "format": "date-time"},
        "NPS_Score__c": {"type": ["number", "null"]},
        "HasOptedOutOfEmail": {"type": ["boolean", "null"]},
        "Interests__c": _text(),
        "MailingAddress": {
            "type": ["object", "null"],
            "properties": {k: _text() for k in ("street", "city", "postalCode", "country")},
        },
        "Account": {
            "type": ["object", "null"],
            "properties": {"Product_Account_Id__c": _text(), "Name": _text()},
        },
        "SystemModstamp": {"type": ["string", "null"], "format": "date-time"},
    }

    ACCOUNT_PROPERTIES: ClassVar[dict[str, Any]] = {
        "Id": _text(False),
        "IsDeleted": {"type": ["boolean", "null"]},
        "Product_Account_Id__c": _text(),
        "Name": _text(),
        "Industry": _text(),
        "AnnualRevenue": {"type": ["number", "null"]},
        "SystemModstamp": {"type": ["string", "null"], "format": "date-time"},
    }

    @staticmethod
    def contact(n: int, **fields: Any) -> dict[str, Any]:
        """The n-th Salesforce Contact as tap-salesforce-appcues emits it (nested relationship)."""
        rec: dict[str, Any] = {
            "Id": f"003{n:015d}",
            "IsDeleted": False,
            "Product_User_Id__c": f"usr_c{n:07d}",
            "FirstName": f"First{n}",
            "LastName": f"Last{n}",
            "Email": f"user{n}@example.com",
            "Birthdate": "1990-05-17",
            "Last_Login__c": "2026-11-01T10:00:00.000+0000",
            "NPS_Score__c": n % 11,
            "HasOptedOutOfEmail": n % 2 == 0,
            "Interests__c": "Flows;Checklists",
            "MailingAddress": {
                "street": f"{n} Main St",
                "city": "Lyon",
                "postalCode": "69001",
                "country": "France",
            },
            "Account": {"Product_Account_Id__c": f"acct_{n % 7:06d}", "Name": f"Acme {n % 7}"},
            "SystemModstamp": "2026-11-02T10:00:00.000+0000",
        }
        rec.update(fields)
        return rec

    @staticmethod
    def account(n: int, **fields: Any) -> dict[str, Any]:
        rec: dict[str, Any] = {
            "Id": f"001{n:015d}",
            "IsDeleted": False,
            "Product_Account_Id__c": f"acct_{n:06d}",
            "Name": f"Acme {n}",
            "Industry": "Software",
            "AnnualRevenue": 1000000.0 + n,
            "SystemModstamp": "2026-11-02T10:00:00.000+0000",
        }
        rec.update(fields)
        return rec


@pytest.fixture
def feeds():
    return Feeds


@pytest.fixture
def run():
    return run_target
