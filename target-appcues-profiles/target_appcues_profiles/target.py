"""TargetAppcuesProfiles: configuration, stream routing, and the run summary."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any, ClassVar

import click
from singer_sdk import Target
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.plugin_base import _ConfigInput
from singer_sdk.sinks import Sink

from salesforce_appcues_clients.checks import FAIL, Finding, check_option, report
from salesforce_appcues_clients.errors import ConfigurationError
from salesforce_appcues_clients.settings import appcues_properties
from salesforce_appcues_clients.singer_input import BadLine, DeadLetteringReader

from .dead_letter import DeadLetter
from .preflight import run_preflight
from .runtime import Runtime
from .settings import SettingsError, TargetSettings, target_properties
from .sinks import GroupProfileSink, UnroutedStreamSink, UserProfileSink


class TargetAppcuesProfiles(Target):
    """Loads user and group records into Appcues user and group profiles."""

    name = "target-appcues-profiles"
    package_name = "target-appcues-profiles"
    config_jsonschema: ClassVar[dict] = {
        "type": "object",
        "properties": {**appcues_properties(), **target_properties()},
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
            self.message_reader.on_bad_line = self._dead_letter_line
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

    def _dead_letter_line(self, bad: BadLine) -> None:
        """A line that is no usable Singer message: logged, dead-lettered, the rest read on."""
        self.logger.error("Dead-lettered: %s", bad.message)
        record = bad.record or {}
        self.runtime.dead_letters.write(
            DeadLetter(
                stream=bad.stream,
                record_key={"Id": record["Id"]} if "Id" in record else {},
                reason=bad.reason,
                message=bad.message,
                line_number=bad.number,
                line_text=bad.text,
            )
        )

    def process_endofpipe(self) -> None:
        failed = True
        try:
            super().process_endofpipe()
            failed = False
        finally:
            if self._runtime is not None:
                self._runtime.log_summary(self.logger, failed=failed)
                self._runtime.close()

    def summary(self) -> Mapping[str, Any]:
        """What this run wrote, skipped and dead-lettered, and the Appcues calls it made."""
        return self.runtime.report()

    # --- `--check`: the preflight instead of a run -----------------------------------
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
        """Run the target, or with `--check` only the preflight (preflight.py)."""
        if not check:
            super().invoke(
                about=about, about_format=about_format, config=config, file_input=file_input
            )
            return
        config = config or _ConfigInput()
        # validate_config=False: a check opens no ledger; the settings are still validated.
        target = cls(config=config.config, validate_config=False, parse_env_config=config.parse_env)
        try:
            TargetSettings.from_config(target.config)
        except SettingsError as exc:
            findings, calls = [Finding(FAIL, "settings", str(exc))], {"appcues": 0}
        else:
            findings, calls = run_preflight(target.config)
        sys.exit(report(findings, calls))

    @classmethod
    def get_singer_command(cls) -> click.Command:
        command = super().get_singer_command()
        command.params.append(
            check_option(
                "Check the Appcues key, account, region and write permission (without "
                "writing) and exit: 0 ready, 1 not."
            )
        )
        return command


if __name__ == "__main__":
    TargetAppcuesProfiles.cli()
