"""`meltano invoke <plugin> --check` for every plugin of the project (docs/operations.md).

Meltano passes `--check` through with the plugin's config and runs no discovery or state
lookup for an invocation with arguments, so the preflight is what runs.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow

PLUGINS = (
    "tap-salesforce-appcues--profiles",
    "tap-salesforce-appcues--events",
    "target-appcues-profiles",
    "target-salesforce-events",
)


@pytest.mark.parametrize("plugin", PLUGINS)
def test_each_plugin_is_ready_against_the_sandbox(project, plugin):
    result = project.meltano("invoke", plugin, "--check", check=False)
    assert result.returncode == 0, result.output
    assert "Preflight: ready to run" in result.output
    assert "[FAIL]" not in result.output


def test_the_events_tap_checks_appcues_only(project):
    """Its config names no Salesforce object: the check, like its runs, skips Salesforce."""
    result = project.meltano("invoke", "tap-salesforce-appcues--events", "--check")
    assert "appcues analytics" in result.output
    assert "salesforce credentials" not in result.output
    assert "API calls: 0 salesforce, 2 appcues" in result.output


@pytest.mark.parametrize(
    ("plugin", "variable", "words"),
    [
        (
            "tap-salesforce-appcues--profiles",
            "TAP_SALESFORCE_APPCUES_REFRESH_TOKEN",
            "[FAIL] salesforce credentials: Salesforce refused the login",
        ),
        (
            "target-appcues-profiles",
            "TARGET_APPCUES_PROFILES_API_KEY",
            "[FAIL] appcues credentials: Appcues refused the key",
        ),
    ],
)
def test_a_plugin_not_ready_exits_1_with_the_reason(project, plugin, variable, words):
    result = project.meltano(
        "invoke", plugin, "--check", check=False, extra_env={variable: "not-valid"}
    )
    assert result.returncode == 1, result.output
    assert words in result.output
    assert "problem(s) to fix before a run" in result.output
