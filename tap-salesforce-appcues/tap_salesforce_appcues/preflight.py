"""`tap-salesforce-appcues --check`: what would stop a run, found before it starts.

Only the parts the config sets up are checked, as a run would use them: Salesforce when
credentials and objects are configured (login, API version, each object readable, the id
fields, selected and parent fields visible, API quota headroom), Appcues when its three
settings are (key and region, analytics). Salesforce costs 2 calls (describeGlobal and one
describe batch, one more per level of parent objects), Appcues 2 requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from salesforce_appcues_clients.errors import (
    AuthenticationError,
    ClientError,
    ConfigurationError,
    SalesforceError,
)
from salesforce_appcues_clients.plugin_kit.appcues_checks import access_findings, analytics_findings
from salesforce_appcues_clients.plugin_kit.checks import (
    FAIL,
    NUMBER_TYPES,
    OK,
    TEXT_TYPES,
    WARN,
    Finding,
)

# The id fields the targets read by default (user_id_field, group_id_field): a Text field,
# or a TEXT() formula over a number, since Appcues ids are matched as text.
from salesforce_appcues_clients.settings import GROUP_ID_FIELD, USER_ID_FIELD

from .events import ANALYTICS_COLUMNS, name_conditions, spec_time
from .run_context import RunContext
from .schema_mapping import ObjectInfo, SchemaMappingError

# Below this share of the org's daily API requests left before quota_percent_total, warn.
QUOTA_WARN_MARGIN = 10.0


def run_preflight(
    run: RunContext, catalog: Mapping[str, Any] | None
) -> tuple[list[Finding], dict[str, int]]:
    """Findings for the run's config, and the calls they took by service."""
    findings: list[Finding] = []
    objects = list(run.settings.objects)
    if objects and run.salesforce_configured:
        findings.extend(_salesforce(run, objects, catalog))
    elif objects:
        findings.append(
            Finding(
                OK,
                "salesforce",
                "no Salesforce credentials configured: Salesforce is not checked, and a run "
                "reads no Salesforce stream.",
            )
        )
    if run.appcues_configured:
        findings.extend(_appcues(run))
    if not (objects and run.salesforce_configured) and not run.appcues_configured:
        findings.append(
            Finding(
                FAIL,
                "settings",
                "neither Salesforce (credentials and user_objects or account_object) nor "
                "Appcues (appcues_account_id, appcues_api_key, appcues_api_secret) is "
                "configured: a run would read nothing.",
            )
        )
    return findings, run.api_calls()


# --- Salesforce ------------------------------------------------------------------------------
def _salesforce(
    run: RunContext, objects: list[str], catalog: Mapping[str, Any] | None
) -> list[Finding]:
    try:
        client = run.salesforce
        visible = {str(o.get("name")).lower(): o for o in client.describe_global()["sobjects"]}
    except ConfigurationError as exc:
        return [Finding(FAIL, "salesforce settings", str(exc))]
    except AuthenticationError as exc:
        return [Finding(FAIL, "salesforce credentials", f"Salesforce refused the login: {exc}")]
    except SalesforceError as exc:
        return [Finding(FAIL, "salesforce", f"Salesforce refused the first call: {exc}")]
    except ClientError as exc:
        return [Finding(FAIL, "salesforce connection", f"cannot reach Salesforce: {exc}")]
    findings = [
        Finding(
            OK,
            "salesforce credentials",
            f"logged in to {client.instance_url}; API v{client.api_version} is served.",
        )
    ]
    readable: list[str] = []
    for name in objects:
        entry = visible.get(name.lower())
        setting = "account_object" if _is_account(run, name) else "user_objects"
        if entry is None:
            findings.append(
                Finding(
                    FAIL,
                    name,
                    f"Salesforce has no object {name} visible to the integration user "
                    f"(setting {setting}); grant Read access to it or remove it.",
                )
            )
        elif not entry.get("queryable", True):
            findings.append(
                Finding(FAIL, name, f"the integration user cannot query {name}; grant Read.")
            )
        else:
            readable.append(str(entry["name"]))
    if readable:
        try:
            described = client.describe(readable)
        except ClientError as exc:
            return [*findings, Finding(FAIL, "describe", f"describe failed: {exc}")]
        infos = {name: ObjectInfo.from_describe(described[name]) for name in readable}
        for name, info in infos.items():
            findings.append(Finding(OK, name, f"{name} is readable ({len(info.fields)} fields)."))
            is_account = _is_account(run, name)
            findings.extend(
                _id_field(info, GROUP_ID_FIELD if is_account else USER_ID_FIELD, is_account)
            )
        findings.extend(_parent_fields(run, infos))
        findings.extend(_selected_fields(infos, catalog))
    findings.extend(_quota(run))
    return findings


def _is_account(run: RunContext, name: str) -> bool:
    return name.lower() == (run.settings.account_object or "").lower()


def _id_field(info: ObjectInfo, name: str, is_account: bool) -> list[Finding]:
    setting = "group_id_field" if is_account else "user_id_field"
    topic = f"{info.name}.{name}"
    field = info.field(name)
    if field is None:
        return [
            Finding(
                WARN,
                topic,
                f"{info.name} has no field {name}, the targets' default {setting}. If the "
                f"targets name another field in {setting}, ignore this; else create a Text "
                f"field on {info.name} holding the Appcues {'group' if is_account else 'user'} id.",
            )
        ]
    if field.sf_type in NUMBER_TYPES:
        return [
            Finding(
                FAIL,
                topic,
                f"{info.name}.{field.name} is a number field ({field.sf_type}), but Appcues ids "
                f"are text and are matched as text (1234 would become 1234.0). Create a formula "
                f"field of return type Text with the formula TEXT({field.name}) and set the "
                f"targets' {setting} to it.",
            )
        ]
    if field.sf_type not in TEXT_TYPES:
        return [
            Finding(
                FAIL,
                topic,
                f"{info.name}.{field.name} is of type {field.sf_type}; an id field must be "
                "a Text field (or a TEXT() formula).",
            )
        ]
    return [Finding(OK, topic, f"{info.name}.{field.name} is a Text field ({setting}).")]


def _parent_fields(run: RunContext, infos: dict[str, ObjectInfo]) -> list[Finding]:
    """Each relationship_fields path resolves to a visible parent field."""
    wanted = [(name, run.relationship_paths(name, name)) for name in infos]
    if not any(paths for _, paths in wanted):
        return []
    try:
        resolved = run.describe_objects([name for name, paths in wanted if paths])
    except (SchemaMappingError, ClientError) as exc:
        return [Finding(FAIL, "relationship_fields", f"{exc}")]
    return [
        Finding(OK, f"{name}.{parent.soql}", "the parent field is visible and read.")
        for name, (_, parents) in resolved.items()
        for parent in parents
    ]


def _selected_fields(
    infos: dict[str, ObjectInfo], catalog: Mapping[str, Any] | None
) -> list[Finding]:
    """The fields a given catalog selects still exist and are visible to the user."""
    if catalog is None:
        return [
            Finding(
                OK,
                "selected fields",
                "no catalog given: a run reads every field the integration user can see.",
            )
        ]
    findings: list[Finding] = []
    by_name = {name.lower(): info for name, info in infos.items()}
    for entry in catalog.get("streams") or []:
        info = by_name.get(str(entry.get("tap_stream_id", "")).lower())
        if info is None:
            continue
        selected = _selected_properties(entry)
        missing = [p for p in selected if info.field(p) is None and info.relationship(p) is None]
        if missing:
            findings.append(
                Finding(
                    FAIL,
                    f"{info.name} fields",
                    f"selected in the catalog but not visible to the integration user (deleted, "
                    f"renamed, or hidden by field-level security): {', '.join(missing)}. Grant "
                    "Read access, or refresh the catalog (meltano run --refresh-catalog).",
                )
            )
        else:
            findings.append(
                Finding(OK, f"{info.name} fields", f"all {len(selected)} selected fields visible.")
            )
    return findings


def _selected_properties(entry: Mapping[str, Any]) -> list[str]:
    metadata = {
        tuple(m.get("breadcrumb") or ()): m.get("metadata") or {}
        for m in entry.get("metadata") or []
    }
    root = metadata.get((), {})
    if not root.get("selected", root.get("selected-by-default", False)):
        return []
    selected = []
    for prop in (entry.get("schema") or {}).get("properties") or {}:
        meta = metadata.get(("properties", prop), {})
        if meta.get("inclusion") == "unsupported":
            continue
        if meta.get("inclusion") == "automatic" or meta.get(
            "selected", meta.get("selected-by-default", True)
        ):
            selected.append(prop)
    return selected


def _quota(run: RunContext) -> list[Finding]:
    """Headroom of the org's daily API requests, from the usage the last answer reported."""
    usage = run.salesforce.api_usage
    cap = run.salesforce.settings.quota_percent_total
    if usage is None:
        return [
            Finding(
                WARN,
                "salesforce quota",
                "Salesforce sent no Sforce-Limit-Info header: the daily usage is unknown, and "
                "only quota_percent_per_run can guard a run.",
            )
        ]
    used, limit = usage
    percent = used * 100 / limit if limit else 100.0
    text = f"the org has used {used} of its {limit} daily API requests ({percent:.1f}%)"
    if percent > cap:
        return [
            Finding(
                FAIL,
                "salesforce quota",
                f"{text}, past quota_percent_total ({cap:g}%): a run would stop at once. "
                "Wait for the 24-hour usage to fall or raise quota_percent_total.",
            )
        ]
    if percent > cap - QUOTA_WARN_MARGIN:
        return [
            Finding(
                WARN,
                "salesforce quota",
                f"{text}, close to quota_percent_total ({cap:g}%), where runs stop.",
            )
        ]
    return [
        Finding(OK, "salesforce quota", f"{text}; runs stop above {cap:g}% (quota_percent_total).")
    ]


# --- Appcues ---------------------------------------------------------------------------------
def _appcues(run: RunContext) -> list[Finding]:
    try:
        client = run.appcues
    except ConfigurationError as exc:
        return [Finding(FAIL, "appcues settings", str(exc))]
    findings = access_findings(client, run.config)
    if any(f.level == FAIL for f in findings):
        return findings  # the analytics query would be refused the same way
    settings = run.settings
    end = datetime.now(UTC).replace(microsecond=0)
    conditions = next(iter(name_conditions(settings.event_names, settings.include_custom_events)))
    spec = {
        "columns": ANALYTICS_COLUMNS,
        "conditions": conditions,
        "start_time": spec_time(end - timedelta(hours=1)),
        "end_time": spec_time(end),
        "timezone": "UTC",
    }
    return [*findings, *analytics_findings(client, spec)]
