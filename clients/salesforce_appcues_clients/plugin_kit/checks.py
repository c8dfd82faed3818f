"""The preflight report every plugin's `--check` prints: findings, a verdict, an exit code.

A finding is one line in plain words, `[OK  ]`, `[WARN]` or `[FAIL]`, with what to fix;
any FAIL makes the check exit 1, so a scheduler or a deploy script can gate on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import click

OK, WARN, FAIL = "ok", "warn", "fail"
# Salesforce field types a text id can live in, and the number types that need TEXT().
TEXT_TYPES = frozenset({"string", "textarea", "email", "phone", "url", "combobox", "picklist"})
NUMBER_TYPES = frozenset({"double", "int", "currency", "percent", "long"})


@dataclass(frozen=True)
class Finding:
    level: str  # ok | warn | fail
    topic: str
    message: str

    def line(self) -> str:
        return f"[{self.level.upper():4}] {self.topic}: {self.message}"


def report(
    findings: Iterable[Finding],
    calls: Mapping[str, int],
    echo: Callable[[str], None] = click.echo,
) -> int:
    """Print the findings and the verdict; 0 when ready to run, else 1."""
    found = list(findings)
    for finding in found:
        echo(finding.line())
    failed = sum(1 for f in found if f.level == FAIL)
    verdict = "ready to run" if not failed else f"{failed} problem(s) to fix before a run"
    spent = ", ".join(f"{n} {service}" for service, n in calls.items()) or "none"
    echo(f"Preflight: {verdict} (API calls: {spent}).")
    return 1 if failed else 0


def check_option(help_text: str) -> click.Option:
    """The `--check` flag added to a plugin's Singer command."""
    return click.Option(["--check"], is_flag=True, default=False, help=help_text)
