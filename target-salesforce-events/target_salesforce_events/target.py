"""TargetSalesforceEvents: entry point, configuration schema and the `--check` preflight."""

from __future__ import annotations

import sys
from typing import Any

import click
from singer_sdk import Target
from singer_sdk.plugin_base import _ConfigInput

from salesforce_appcues_clients.checks import check_option, report
from salesforce_appcues_clients.run_summary import log_run_summary
from salesforce_appcues_clients.settings import salesforce_properties
from salesforce_appcues_clients.singer_input import DeadLetteringReader

from .loader import EventLoader
from .preflight import run_preflight
from .settings import EventSettings, target_properties
from .sinks import EventSink


class TargetSalesforceEvents(Target):
    """Loads Appcues events into Salesforce Event records and Latest NPS fields."""

    name = "target-salesforce-events"
    config_jsonschema = {  # noqa: RUF012 - the SDK reads it as a class attribute
        "type": "object",
        "properties": {**salesforce_properties(), **target_properties()},
    }
    default_sink_class = EventSink
    message_reader_class = DeadLetteringReader

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # One client, ledger and dead-letter file for the run: drain sinks one at a time.
        self.max_parallelism = 1
        self.loader = EventLoader(self.config)
        if isinstance(self.message_reader, DeadLetteringReader):
            self.message_reader.on_bad_line = self.loader.dead_letter_line

    def process_endofpipe(self) -> None:
        failed = True
        try:
            super().process_endofpipe()
            failed = False
        finally:
            self.loader.close()
            summary = self.loader.summary
            log_run_summary(self.logger, summary.totals(failed=failed), "%s", summary.describe())

    @classmethod
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: _ConfigInput | None = None,
        file_input: Any = None,
        check: bool = False,
    ) -> None:
        """Run the target, or with `--check` only the preflight against the org."""
        if not check:
            super().invoke(
                about=about, about_format=about_format, config=config, file_input=file_input
            )
            return
        config = config or _ConfigInput()
        target = cls(config=config.config, validate_config=True, parse_env_config=config.parse_env)
        sys.exit(cls.preflight(dict(target.config)))

    @classmethod
    def preflight(cls, config: dict[str, Any]) -> int:
        """Print the preflight findings; 0 when the config can run, else 1."""
        findings, calls = run_preflight(config, EventSettings.from_config(config))
        return report(findings, {"salesforce": calls})

    @classmethod
    def get_singer_command(cls) -> click.Command:
        command = super().get_singer_command()
        command.params.append(
            check_option(
                "Check the config against the Salesforce org (credentials, user id "
                "field, Event access, NPS fields, duplicate protection) and exit."
            )
        )
        return command


if __name__ == "__main__":
    TargetSalesforceEvents.cli()
