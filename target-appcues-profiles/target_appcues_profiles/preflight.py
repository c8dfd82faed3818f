"""`target-appcues-profiles --check`: the Appcues key, its account and region, and that it
may write, found with two requests and without writing anything."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from salesforce_appcues_clients.appcues import AppcuesClient
from salesforce_appcues_clients.errors import ConfigurationError
from salesforce_appcues_clients.plugin_kit.appcues_checks import access_findings, write_findings
from salesforce_appcues_clients.plugin_kit.checks import FAIL, Finding


def run_preflight(config: Mapping[str, Any]) -> tuple[list[Finding], dict[str, int]]:
    """Findings for this config, and the Appcues requests they took."""
    try:
        client = AppcuesClient.from_config(config)
    except ConfigurationError as exc:
        return [Finding(FAIL, "settings", str(exc))], {"appcues": 0}
    try:
        findings = access_findings(client, config)
        if not any(f.level == FAIL for f in findings):
            findings.extend(write_findings(client))
        return findings, {"appcues": client.requests_made}
    finally:
        client.close()
