"""TargetAppcuesProfiles: configuration, stream routing, and the run summary."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePath
from types import FrameType
from typing import IO, Any, ClassVar

from singer_sdk import Target
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.plugin_base import _ConfigInput
from singer_sdk.sinks import Sink

from salesforce_appcues_clients.errors import ConfigurationError
from salesforce_appcues_clients.plugin_kit.checks import FAIL, Finding, report
from salesforce_appcues_clients.plugin_kit.dead_letter_threshold import (
    TooManyDeadLettersError,
    threshold_properties,
)
from salesforce_appcues_clients.plugin_kit.local_files import LocalFileError
from salesforce_appcues_clients.plugin_kit.run_lock import RunLockedError
from salesforce_appcues_clients.plugin_kit.singer_input import BadLine, DeadLetteringReader
from salesforce_appcues_clients.plugin_kit.target_commands import TargetCommands
from salesforce_appcues_clients.settings import appcues_properties
from salesforce_appcues_clients.termination import STOP, Terminated

from .dead_lettering import dead_letter_line
from .ledger import Ledger
from .preflight import run_preflight
from .runtime import Runtime
from .settings import SettingsError, TargetSettings, target_properties
from .sinks import GroupProfileSink, UnroutedStreamSink, UserProfileSink


class TargetAppcuesProfiles(TargetCommands, Target):
    """Loads user and group records into Appcues user and group profiles."""

    name = "target-appcues-profiles"
    package_name = "target-appcues-profiles"
    config_jsonschema: ClassVar[dict] = {
        "type": "object",
        "properties": {**appcues_properties(), **target_properties(), **threshold_properties()},
        "required": ["account_id", "api_key", "api_secret"],
    }
    default_sink_class = UserProfileSink
    message_reader_class = DeadLetteringReader

    def __init__(
        self,
        *,
        config: dict | PurePath | str | list[PurePath | str] | None = None,
        parse_env_config: bool = False,
        validate_config: bool = True,
        setup_mapper: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            config=config,
            parse_env_config=parse_env_config,
            validate_config=validate_config,
            setup_mapper=setup_mapper,
            **kwargs,
        )
        self._runtime: Runtime | None = None
        if isinstance(self.message_reader, DeadLetteringReader):
            self.message_reader.on_bad_line = self._on_bad_line
        if validate_config:
            _ = self.runtime  # a bad setting fails at start, naming the setting

    @property
    def runtime(self) -> Runtime:
        """Settings, client, ledger and dead letters shared by the sinks; built on first use,
        so `--about` and `--version` need no working configuration."""
        if self._runtime is None:
            try:
                self._runtime = Runtime(self.config)
            except (SettingsError, ConfigurationError) as exc:
                raise ConfigValidationError(str(exc), errors=[str(exc)]) from None
        return self._runtime

    def get_sink_class(self, stream_name: str) -> type[Sink]:
        kind = self.runtime.settings.stream_kind(stream_name)
        if kind == "user":
            return UserProfileSink
        if kind == "group":
            return GroupProfileSink
        return UnroutedStreamSink

    # --- the run: one at a time, stoppable, failing past the dead-letter threshold --------
    def listen(self, file_input: IO[str] | None = None) -> None:  # type: ignore[misc]
        """Reads the input under the state_dir lock; ends the process with the exit code of
        a refused, stopped or failed run (docs/operations.md, "Exit codes")."""
        try:
            self.runtime.run_lock.acquire()
            super().listen(file_input)
        except RunLockedError as exc:
            self.logger.error("Run refused: %s", exc)
            sys.exit(exc.exit_code)
        except Terminated as exc:
            self._end(f"Run {exc}: no STATE beyond the confirmed writes", failed=True)
            sys.exit(exc.exit_code)
        except (TooManyDeadLettersError, LocalFileError) as exc:
            # One line naming the cause (a damaged ledger, a full disk), no traceback.
            self._end(f"Run failed: {exc}", failed=True)
            sys.exit(exc.exit_code)
        except sqlite3.OperationalError as exc:  # a ledger write: a full disk, an I/O error
            self.logger.debug("The ledger write failed", exc_info=True)
            path = Path(self.runtime.settings.state_dir) / Ledger.FILE_NAME
            failed = LocalFileError(f"setting state_dir: cannot write the ledger {path}: {exc}")
            self._end(f"Run failed: {failed}", failed=True)
            sys.exit(failed.exit_code)
        finally:
            self.runtime.run_lock.release()

    def _end(self, message: str, *, failed: bool) -> None:
        self.logger.error("%s", message)
        if self._runtime is not None:
            self._runtime.log_summary(self.logger, failed=failed)
            self._runtime.close()

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
        self.runtime.check_dead_letter_threshold()

    def _drain_all(self, sink_list: Iterable[Sink], parallelism: int) -> None:
        """Sinks drain in parallel, and every drain ends before this returns or raises:
        singer-sdk's joblib pool raises the first error at once and leaves the other sinks'
        threads running, so a stopped run would exit before they record the writes they
        finished. The first error that is not a stop is raised (it says why the run failed)."""
        sinks = list(sink_list)
        if parallelism == 1 or len(sinks) < 2:
            super()._drain_all(sinks, 1)
            return
        with ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="drain") as pool:
            futures = [pool.submit(self.drain_one, sink) for sink in sinks]
        errors = [e for e in (f.exception() for f in futures) if e is not None]
        if errors:
            raise next((e for e in errors if not isinstance(e, Terminated)), errors[0])

    def _process_record_message(self, message_dict: dict) -> None:
        self.runtime.records_read += 1
        super()._process_record_message(message_dict)

    def _write_state_message(self, state: dict) -> None:
        # No STATE past the batch that crossed the dead-letter threshold.
        self.runtime.check_dead_letter_threshold()
        super()._write_state_message(state)

    def _on_bad_line(self, bad: BadLine) -> None:
        """A line that is no usable Singer message: dead-lettered, the rest read on."""
        self.runtime.records_read += 1
        with STOP.protected():  # a dead letter is written whole
            dead_letter_line(self.runtime.dead_letters, bad, self.logger)

    def process_endofpipe(self) -> None:
        failed = True
        try:
            super().process_endofpipe()
            if self._runtime is not None:
                self._runtime.check_dead_letter_threshold()  # also a run that had no STATE
            failed = False
        finally:
            if self._runtime is not None:
                self._runtime.log_summary(self.logger, failed=failed)
                self._runtime.close()

    def summary(self) -> Mapping[str, Any]:
        """What this run wrote, skipped and dead-lettered, and the Appcues calls it made."""
        return self.runtime.report()

    # --- `--check`: the preflight instead of a run -----------------------------------
    CHECK_HELP = (
        "Check the Appcues key, account, region and write permission (without writing) and "
        "exit: 0 ready, 1 not."
    )

    @classmethod
    def run_check(cls, config: _ConfigInput) -> int:
        # validate_config=False: a check opens no ledger; the settings are still validated.
        target = cls(config=config.config, validate_config=False, parse_env_config=config.parse_env)
        try:
            TargetSettings.from_config(target.config)
        except SettingsError as exc:
            return report([Finding(FAIL, "settings", str(exc))], {"appcues": 0})
        findings, calls = run_preflight(target.config)
        return report(findings, calls)


if __name__ == "__main__":
    TargetAppcuesProfiles.cli()
