"""Preflight findings about an Appcues account, shared by the tap and the profiles target.

Each check is one request. Appcues keys belong to one data region (a US key is refused by
the EU API and the other way round, docs: /work/shared/reference/appcues-api.md §1), and
Appcues answers a key it does not know with 401 whatever the reason, so a refusal names
the region in use and how to change it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..appcues import AppcuesClient
from ..errors import AppcuesError, ClientError
from ..settings import APPCUES_REGIONS
from .checks import FAIL, OK, Finding

_REGION_NAMES = {"us": "US", "eu": "EU"}
_WITH_ARTICLE = {"us": "a US", "eu": "an EU"}


def _region(client: AppcuesClient, config: Mapping[str, Any]) -> str | None:
    """The region the config asks for (`region`, or the one its base URL belongs to)."""
    prefix = client.settings.prefix
    configured = str(config.get(prefix + "region") or "").lower()
    if configured in APPCUES_REGIONS:
        return configured
    by_url = {url: name for name, url in APPCUES_REGIONS.items()}
    return by_url.get(client.settings.base_url)


def _refusal_advice(client: AppcuesClient, config: Mapping[str, Any]) -> str:
    prefix = client.settings.prefix
    region = _region(client, config)
    if region is None:
        return (
            f"check {prefix}api_key and {prefix}api_secret, and that {prefix}base_url "
            f"({client.settings.base_url}) is the API of the account's region."
        )
    other = "eu" if region == "us" else "us"
    return (
        f"the {_REGION_NAMES[region]} API ({client.settings.base_url}, {prefix}region "
        f"{region}) does not know this key. Appcues keys work only in their account's data "
        f"region: a key of {_WITH_ARTICLE[other]} account is refused here, so if the "
        f"account is in the {_REGION_NAMES[other]}, set {prefix}region to {other}. Otherwise "
        f"check {prefix}api_key and {prefix}api_secret (Studio: Settings > API keys)."
    )


def access_findings(client: AppcuesClient, config: Mapping[str, Any]) -> list[Finding]:
    """Key, secret, account and region: one authenticated read (the import jobs list)."""
    prefix = client.settings.prefix
    account = client.settings.account_id
    try:
        client.list_jobs()
    except AppcuesError as exc:
        if exc.status in (401, 403):
            message = f"Appcues refused the key ({exc.status} {exc.title}): "
            return [Finding(FAIL, "appcues credentials", message + _refusal_advice(client, config))]
        if exc.status == 404:
            return [
                Finding(
                    FAIL,
                    "appcues account",
                    f"Appcues has no account {account} at {client.settings.base_url} (404). "
                    f"Check {prefix}account_id (Studio: Settings > Account) and "
                    f"{prefix}region: an account lives in one region.",
                )
            ]
        return [Finding(FAIL, "appcues credentials", f"Appcues answered {exc}.")]
    except ClientError as exc:
        return [Finding(FAIL, "appcues connection", f"cannot reach Appcues: {exc}")]
    return [
        Finding(
            OK,
            "appcues credentials",
            f"the key is accepted for account {account} at {client.settings.base_url}.",
        )
    ]


def write_findings(client: AppcuesClient) -> list[Finding]:
    """Write permission, asked with a request Appcues refuses without writing anything."""
    try:
        client.probe_write()
    except AppcuesError as exc:
        if exc.status == 400:
            return [
                Finding(
                    OK,
                    "appcues write permission",
                    "the key may write profiles (a deliberately invalid write was checked "
                    "for its body, not refused for permission; nothing was written).",
                )
            ]
        if exc.status in (401, 403):
            return [
                Finding(
                    FAIL,
                    "appcues write permission",
                    f"Appcues refused a write with this key ({exc.status} {exc.title}): the "
                    "key may read but not write. Create a key with the Publisher (or Admin) "
                    "permission level in Studio (Settings > API keys) and set it.",
                )
            ]
        return [Finding(FAIL, "appcues write permission", f"Appcues answered {exc}.")]
    except ClientError as exc:
        return [Finding(FAIL, "appcues connection", f"cannot reach Appcues: {exc}")]
    return [
        Finding(
            FAIL,
            "appcues write permission",
            "Appcues accepted a profile body that is not an object; the API does not behave "
            "as this connector expects.",
        )
    ]


def analytics_findings(client: AppcuesClient, spec: Mapping[str, Any]) -> list[Finding]:
    """The analytics query API (the tap's appcues_events), with one small query."""
    try:
        result = client.analytics_query(spec)
    except AppcuesError as exc:
        return [
            Finding(
                FAIL,
                "appcues analytics",
                f"the analytics API refused a query ({exc}); the key needs access to "
                "analytics to read events.",
            )
        ]
    except ClientError as exc:
        return [Finding(FAIL, "appcues analytics", f"cannot reach the analytics API: {exc}")]
    return [
        Finding(
            OK,
            "appcues analytics",
            f"the analytics API answers (a query of the last hour: {len(result.rows)} rows).",
        )
    ]
