"""TargetAppcuesProfiles: configuration, stream routing, and the run summary."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any, ClassVar

from singer_sdk import Target
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.sinks import Sink

from salesforce_appcues_clients.errors import ConfigurationError
from salesforce_appcues_clients.plugin_kit.checks import FAIL, Finding, report
from salesforce_appcues_clients.plugin_kit.dead_letter_threshold import (
    DeadLetterThreshold,
    threshold_properties,
)
from salesforce_appcues_clients.plugin_kit.run_lock import RunLock
from salesforce_appcues_clients.plugin_kit.singer_input import BadLine
from salesforce_appcues_clients.plugin_kit.target_commands import TargetCommands
from salesforce_appcues_clients.plugin_kit.target_run import TargetRun
from salesforce_appcues_clients.settings import appcues_properties

from .dead_lettering import dead_letter_line
from .ledger import Ledger
from .preflight import run_preflight
from .runtime import Runtime
from .settings import SettingsError, TargetSettings, target_properties
from .sinks import GroupProfileSink, UnroutedStreamSink, UserProfileSink


class TargetAppcuesProfiles(TargetCommands, TargetRun, Target):
    """Loads user and group records into Appcues user and group profiles."""

    name = "target-appcues-profiles"
    package_name = "target-appcues-profiles"
    config_jsonschema: ClassVar[dict] = {
        "type": "object",
        "properties": {**appcues_properties(), **target_properties(), **threshold_properties()},
        "required": ["account_id", "api_key", "api_secret"],
    }
    default_sink_class = UserProfileSink

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

    # --- TargetRun's hooks (the run itself: plugin_kit/target_run.py) ----------------
    def _run_lock(self) -> RunLock:
        return self.runtime.run_lock

    def _dead_letter_threshold(self) -> DeadLetterThreshold:
        return self.runtime.threshold

    def _dead_letters_total(self) -> int:
        return self._runtime.dead_letters.total if self._runtime is not None else 0

    def _dead_letter_line(self, bad: BadLine) -> None:
        dead_letter_line(self.runtime.dead_letters, bad, self.logger)

    def _ledger_file(self) -> tuple[str, Path]:
        return "state_dir", Path(self.runtime.settings.state_dir) / Ledger.FILE_NAME

    def _close_run(self, *, failed: bool) -> None:
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

    CHECK_VALIDATES_CONFIG = False  # a check opens no ledger; `preflight` checks the settings

    @classmethod
    def preflight(cls, config: dict[str, Any]) -> int:
        try:
            TargetSettings.from_config(config)
        except SettingsError as exc:
            return report([Finding(FAIL, "settings", str(exc))], {"appcues": 0})
        findings, calls = run_preflight(config)
        return report(findings, calls)


if __name__ == "__main__":
    TargetAppcuesProfiles.cli()
