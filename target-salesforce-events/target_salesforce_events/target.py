"""TargetSalesforceEvents: entry point, configuration schema and the `--check` preflight."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from singer_sdk import Target
from singer_sdk.exceptions import ConfigValidationError

from salesforce_appcues_clients.errors import ConfigurationError
from salesforce_appcues_clients.plugin_kit.checks import report
from salesforce_appcues_clients.plugin_kit.dead_letter_threshold import (
    DeadLetterThreshold,
    threshold_properties,
)
from salesforce_appcues_clients.plugin_kit.run_lock import RunLock
from salesforce_appcues_clients.plugin_kit.run_summary import log_run_summary
from salesforce_appcues_clients.plugin_kit.singer_input import BadLine
from salesforce_appcues_clients.plugin_kit.target_commands import TargetCommands
from salesforce_appcues_clients.plugin_kit.target_run import TargetRun
from salesforce_appcues_clients.settings import salesforce_properties

from .pipeline import EventPipeline
from .preflight import run_preflight
from .settings import EventSettings, target_properties
from .sinks import EventSink


class TargetSalesforceEvents(TargetCommands, TargetRun, Target):
    """Loads Appcues events into Salesforce Event records and Latest NPS fields."""

    name = "target-salesforce-events"
    config_jsonschema = {  # noqa: RUF012 - the SDK reads it as a class attribute
        "type": "object",
        "properties": {
            **salesforce_properties(),
            **target_properties(),
            **threshold_properties(),
        },
    }
    default_sink_class = EventSink

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # One client, ledger and dead-letter file for the run: drain sinks one at a time.
        self.max_parallelism = 1
        # User matches hold for the run (matching.py); the receiver's expire after 5 minutes.
        self.pipeline = EventPipeline(self.config, match_max_age_seconds=None)
        try:
            self.threshold = DeadLetterThreshold.from_config(self.config)
        except ConfigurationError as exc:
            raise ConfigValidationError(str(exc), errors=[str(exc)]) from None
        self._closed = False
        # On the ledger, which is part of exactly-once: a second run on it refuses to start.
        self.run_lock = RunLock(
            self.pipeline.settings.ledger_path.with_name(
                self.pipeline.settings.ledger_path.name + ".lock"
            ),
            self.name,
        )

    # --- TargetRun's hooks (the run itself: plugin_kit/target_run.py) ----------------
    def _run_lock(self) -> RunLock:
        return self.run_lock

    def _dead_letter_threshold(self) -> DeadLetterThreshold:
        return self.threshold

    def _dead_letters_total(self) -> int:
        return self.pipeline.dead_letters.total

    def _dead_letter_line(self, bad: BadLine) -> None:
        self.pipeline.dead_letter_line(bad)

    def _ledger_file(self) -> tuple[str, Path]:
        return "ledger_path", self.pipeline.settings.ledger_path

    def _close_run(self, *, failed: bool) -> None:
        """Closes the pipeline and logs the summary (also as a structured record), once."""
        if not self._closed:
            self._closed = True
            self.pipeline.close()
            summary = self.pipeline.summary
            log_run_summary(self.logger, summary.totals(failed=failed), "%s", summary.describe())

    CHECK_HELP = (
        "Check the config against the Salesforce org (credentials, user id field, Event "
        "access, NPS fields, duplicate protection) and exit: 0 ready, 1 not."
    )

    @classmethod
    def preflight(cls, config: dict[str, Any]) -> int:
        findings, calls = run_preflight(config, EventSettings.from_config(config))
        return report(findings, {"salesforce": calls})


if __name__ == "__main__":
    TargetSalesforceEvents.cli()
