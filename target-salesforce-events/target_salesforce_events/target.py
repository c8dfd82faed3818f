"""TargetSalesforceEvents: entry point, configuration schema and the `--check` preflight."""

from __future__ import annotations

import sqlite3
import sys
from types import FrameType
from typing import IO, Any

from singer_sdk import Target
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.plugin_base import _ConfigInput
from singer_sdk.sinks import Sink

from salesforce_appcues_clients.errors import ConfigurationError
from salesforce_appcues_clients.plugin_kit.checks import report
from salesforce_appcues_clients.plugin_kit.dead_letter_threshold import (
    DeadLetterThreshold,
    TooManyDeadLettersError,
    threshold_properties,
)
from salesforce_appcues_clients.plugin_kit.local_files import LocalFileError
from salesforce_appcues_clients.plugin_kit.run_lock import RunLock, RunLockedError
from salesforce_appcues_clients.plugin_kit.run_summary import log_run_summary
from salesforce_appcues_clients.plugin_kit.singer_input import BadLine, DeadLetteringReader
from salesforce_appcues_clients.plugin_kit.target_commands import TargetCommands
from salesforce_appcues_clients.settings import salesforce_properties
from salesforce_appcues_clients.termination import STOP, Terminated

from .pipeline import EventPipeline
from .preflight import run_preflight
from .settings import EventSettings, target_properties
from .sinks import EventSink


class TargetSalesforceEvents(TargetCommands, Target):
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
    message_reader_class = DeadLetteringReader

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
        self.records_read = 0  # RECORD messages and unreadable lines: the threshold's base
        # On the ledger, which is part of exactly-once: a second run on it refuses to start.
        self.run_lock = RunLock(
            self.pipeline.settings.ledger_path.with_name(
                self.pipeline.settings.ledger_path.name + ".lock"
            ),
            self.name,
        )
        if isinstance(self.message_reader, DeadLetteringReader):
            self.message_reader.on_bad_line = self._dead_letter_line

    # --- the run: one at a time, stoppable, failing past the dead-letter threshold --------
    def listen(self, file_input: IO[str] | None = None) -> None:  # type: ignore[misc]
        """Reads the input under the ledger's lock; ends the process with the exit code of a
        refused, stopped or failed run (docs/operations.md, "Exit codes")."""
        try:
            self.run_lock.acquire()
        except RunLockedError as exc:
            self.logger.error("Run refused: %s", exc)
            sys.exit(exc.exit_code)
        try:
            super().listen(file_input)
        except Terminated as exc:
            self._end(f"Run {exc}: no STATE beyond the confirmed writes")
            sys.exit(exc.exit_code)
        except (TooManyDeadLettersError, LocalFileError) as exc:
            # One line naming the cause (a damaged ledger, a full disk), no traceback.
            self._end(f"Run failed: {exc}")
            sys.exit(exc.exit_code)
        except sqlite3.OperationalError as exc:  # a ledger write: a full disk, an I/O error
            self.logger.debug("The ledger write failed", exc_info=True)
            path = self.loader.settings.ledger_path
            failed = LocalFileError(f"setting ledger_path: cannot write the ledger {path}: {exc}")
            self._end(f"Run failed: {failed}")
            sys.exit(failed.exit_code)
        finally:
            self.run_lock.release()

    def _end(self, message: str) -> None:
        self.logger.error("%s", message)
        self._close(failed=True)

    def _close(self, *, failed: bool) -> None:
        """Closes the pipeline and logs the summary (also as a structured record), once."""
        if not self._closed:
            self._closed = True
            self.pipeline.close()
            summary = self.pipeline.summary
            log_run_summary(self.logger, summary.totals(failed=failed), "%s", summary.describe())

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """Not singer-sdk's drain-and-confirm-everything: see salesforce_appcues_clients
        .termination."""
        STOP.handle(signum, frame)

    def drain_all(self, *, is_endofpipe: bool = False) -> None:  # type: ignore[misc]
        # A signal during a drain lets the requests in flight finish and stops before the
        # next one; the STATE that follows a complete drain is still emitted.
        with STOP.protected():
            super().drain_all(is_endofpipe=is_endofpipe)

    def drain_one(self, sink: Sink) -> None:  # type: ignore[misc]
        # A full sink drains alone (no STATE follows): protected the same way. The run
        # stops after the batch that crossed the dead-letter threshold.
        with STOP.protected():
            super().drain_one(sink)
        self._check_dead_letter_threshold()

    def _process_record_message(self, message_dict: dict) -> None:
        self.records_read += 1
        super()._process_record_message(message_dict)

    def _dead_letter_line(self, bad: BadLine) -> None:
        self.records_read += 1
        with STOP.protected():  # a dead letter is written whole
            self.pipeline.dead_letter_line(bad)

    def _check_dead_letter_threshold(self) -> None:
        self.threshold.check(self.pipeline.dead_letters.total, self.records_read)

    def _write_state_message(self, state: dict) -> None:
        # No STATE past the batch that crossed the dead-letter threshold.
        self._check_dead_letter_threshold()
        super()._write_state_message(state)

    def process_endofpipe(self) -> None:
        failed = True
        try:
            super().process_endofpipe()
            self._check_dead_letter_threshold()  # also a run that had no STATE
            failed = False
        finally:
            self._close(failed=failed)

    CHECK_HELP = (
        "Check the config against the Salesforce org (credentials, user id field, Event "
        "access, NPS fields, duplicate protection) and exit: 0 ready, 1 not."
    )

    @classmethod
    def run_check(cls, config: _ConfigInput) -> int:
        target = cls(config=config.config, validate_config=True, parse_env_config=config.parse_env)
        return cls.preflight(dict(target.config))

    @classmethod
    def preflight(cls, config: dict[str, Any]) -> int:
        """Print the preflight findings; 0 when the config can run, else 1."""
        findings, calls = run_preflight(config, EventSettings.from_config(config))
        return report(findings, {"salesforce": calls})


if __name__ == "__main__":
    TargetSalesforceEvents.cli()
