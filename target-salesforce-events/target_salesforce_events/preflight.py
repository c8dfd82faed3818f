"""Preflight: checks the user's config against the org and explains each finding in plain words.

`evaluate` judges describe results (pure, also used at the start of every run, where any
"fail" stops the run before a record is written); `run_preflight` makes the calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from salesforce_appcues_clients.errors import AuthenticationError, ClientError, ConfigurationError

# the report shape all three plugins share
from salesforce_appcues_clients.plugin_kit.checks import (
    FAIL,
    NUMBER_TYPES,
    OK,
    TEXT_TYPES,
    WARN,
    Finding,
)
from salesforce_appcues_clients.salesforce import SalesforceClient

from .idempotency import Strategy, choose_strategy, find_field
from .settings import EventSettings

__all__ = [
    "FAIL",
    "NUMBER_TYPES",
    "OK",
    "TEXT_TYPES",
    "WARN",
    "Finding",
    "evaluate",
    "run_preflight",
]

EVENT_FIELDS = ("Subject", "Description", "WhoId", "ActivityDateTime", "DurationInMinutes")


def _user_id_findings(obj: str, describe: Mapping[str, Any], setting: str) -> list[Finding]:
    topic = f"{obj}.{setting}"
    spec = find_field(dict(describe), setting)
    if spec is None:
        return [
            Finding(
                FAIL,
                topic,
                f"{obj} has no field {setting} (setting user_id_field). Create a Text field "
                f"holding the Appcues user id on {obj}, or remove {obj} from user_objects.",
            )
        ]
    kind = spec.get("type")
    name = spec.get("name", setting)
    if kind in NUMBER_TYPES:
        return [
            Finding(
                FAIL,
                topic,
                f"{obj}.{name} is a number field ({kind}), but Appcues user ids are text and "
                f"are matched as text. Create a formula field of return type Text with the "
                f"formula TEXT({name}) (for example {name.removesuffix('__c')}_Text__c) and "
                f"set user_id_field to that field.",
            )
        ]
    if kind not in TEXT_TYPES:
        return [
            Finding(
                FAIL,
                topic,
                f"{obj}.{name} is of type {kind}; the user id field must be a Text field.",
            )
        ]
    if not spec.get("filterable", True):
        return [
            Finding(
                FAIL,
                topic,
                f"{obj}.{name} cannot be used in a query filter (long text areas cannot); "
                "use a Text field.",
            )
        ]
    formula = " (a formula field)" if spec.get("calculated") else ""
    return [Finding(OK, topic, f"{obj}.{name} is a Text field{formula}; users match on it.")]


def _nps_findings(obj: str, describe: Mapping[str, Any], settings: EventSettings) -> list[Finding]:
    found: list[Finding] = []
    wanted = [
        ("nps_score_field", settings.nps_score_field, NUMBER_TYPES | TEXT_TYPES, "a Number"),
        ("nps_feedback_field", settings.nps_feedback_field, TEXT_TYPES, "a Long Text Area"),
    ]
    if settings.nps_date_field:
        wanted.append(
            (
                "nps_date_field",
                settings.nps_date_field,
                frozenset({"datetime", "date"}),
                "a Date/Time",
            )
        )
    for setting, name, types, advice in wanted:
        topic = f"{obj}.{name}"
        spec = find_field(dict(describe), name)
        if spec is None:
            found.append(
                Finding(
                    FAIL,
                    topic,
                    f"{obj} has no field {name} (setting {setting}). Create it as {advice} "
                    f"field on {obj}, name another field in {setting}, or set "
                    "sync_nps_fields to false.",
                )
            )
        elif not spec.get("updateable"):
            found.append(
                Finding(
                    FAIL,
                    topic,
                    f"{obj}.{spec['name']} is not editable by the integration user (read-only, "
                    "a formula, or hidden by field-level security); grant Edit access.",
                )
            )
        elif spec.get("type") not in types:
            found.append(
                Finding(
                    FAIL,
                    topic,
                    f"{obj}.{spec['name']} is of type {spec.get('type')}; {setting} needs "
                    f"{advice} field.",
                )
            )
        elif setting == "nps_date_field" and spec.get("type") == "date":
            found.append(
                Finding(
                    WARN,
                    topic,
                    f"{obj}.{spec['name']} is a Date: answers of the same day cannot be "
                    "ordered across runs; a Date/Time field can.",
                )
            )
        elif setting == "nps_score_field" and spec.get("type") in TEXT_TYPES:
            found.append(
                Finding(
                    WARN,
                    topic,
                    f"{obj}.{spec['name']} is text; scores are "
                    "written as text. A Number field allows reports on them.",
                )
            )
        else:
            found.append(
                Finding(OK, topic, f"{obj}.{spec['name']} is editable ({spec.get('type')}).")
            )
    return found


def _strategy_finding(event: Mapping[str, Any], event_id_field: str | None) -> Finding:
    """The exactly-once strategy; a named event_id_field the run cannot use is a failure, so
    a typo or a field hidden by field-level security never silently downgrades to the local
    ledger (only an empty event_id_field chooses it)."""
    choice = choose_strategy(dict(event), event_id_field)
    if event_id_field and choice.strategy is Strategy.LEDGER:
        spec = find_field(dict(event), event_id_field)
        why = (
            "Event has no field {0} visible to the integration user (a typo, or hidden by "
            "field-level security)"
            if spec is None
            else "Event.{0} is neither an External ID nor a filterable text field the "
            "integration user can set"
        ).format(event_id_field if spec is None else spec.get("name", event_id_field))
        return Finding(
            FAIL,
            "idempotency",
            f"{why} (setting event_id_field). Create it as a Text External ID (unique) and "
            "grant the integration user Edit access, name the right field, or set "
            "event_id_field to empty to rely on the local ledger alone (keep its file).",
        )
    return Finding(OK, "idempotency", f"strategy {choice.strategy.value}: {choice.explanation}")


def evaluate(
    describes: Mapping[str, Mapping[str, Any] | None], settings: EventSettings
) -> list[Finding]:
    """Findings from describe results; `None` marks an object the org does not have."""
    findings: list[Finding] = []
    for obj in settings.user_objects:
        describe = describes.get(obj)
        if describe is None:
            findings.append(
                Finding(
                    FAIL,
                    obj,
                    f"Salesforce has no object {obj} visible to the integration user "
                    "(setting user_objects).",
                )
            )
            continue
        if not describe.get("queryable", True):
            findings.append(Finding(FAIL, obj, f"the integration user cannot query {obj}."))
        findings.extend(_user_id_findings(obj, describe, settings.user_id_field))
        if settings.sync_nps_fields:
            findings.extend(_nps_findings(obj, describe, settings))
    if settings.sync_events:
        event = describes.get("Event")
        if event is None:
            findings.append(Finding(FAIL, "Event", "the integration user cannot see Event."))
        else:
            if not event.get("createable"):
                findings.append(
                    Finding(FAIL, "Event", "the integration user may not create Events.")
                )
            missing = [
                name
                for name in EVENT_FIELDS
                if not (find_field(dict(event), name) or {}).get("createable")
            ]
            if missing:
                findings.append(
                    Finding(
                        FAIL,
                        "Event",
                        f"the integration user cannot set Event field(s) {', '.join(missing)}.",
                    )
                )
            elif event.get("createable"):
                findings.append(
                    Finding(OK, "Event", "Events can be created with " + ", ".join(EVENT_FIELDS))
                )
            findings.append(_strategy_finding(event, settings.event_id_field))
    if settings.sync_nps_fields and not settings.nps_date_field:
        findings.append(
            Finding(
                OK,
                "nps latest-wins",
                f"across runs decided by the local ledger {settings.ledger_path} (set "
                "nps_date_field to see answers other writers put on the record too).",
            )
        )
    return findings


def run_preflight(config: Mapping[str, Any], settings: EventSettings) -> tuple[list[Finding], int]:
    """Findings for this config and the API calls they took."""
    try:
        client = SalesforceClient.from_config(config)
    except ConfigurationError as exc:
        return [Finding(FAIL, "settings", str(exc))], 0
    try:
        try:
            names = {str(o.get("name")): o for o in client.describe_global().get("sobjects", [])}
        except AuthenticationError as exc:
            return [Finding(FAIL, "credentials", f"Salesforce refused the login: {exc}")], (
                client.calls_made
            )
        except ClientError as exc:
            return [Finding(FAIL, "connection", f"cannot reach Salesforce: {exc}")], (
                client.calls_made
            )
        findings = [
            Finding(
                OK,
                "credentials",
                f"logged in to {client.instance_url} (API v{client.api_version}).",
            )
        ]
        lowered = {n.lower(): n for n in names}
        wanted = [*settings.user_objects, *(["Event"] if settings.sync_events else [])]
        present = [lowered[w.lower()] for w in wanted if w.lower() in lowered]
        described = client.describe(present) if present else {}
        by_setting: dict[str, Mapping[str, Any] | None] = {
            w: described.get(lowered.get(w.lower(), ""), None) for w in wanted
        }
        findings.extend(evaluate(by_setting, settings))
        return findings, client.calls_made
    finally:
        client.close()
