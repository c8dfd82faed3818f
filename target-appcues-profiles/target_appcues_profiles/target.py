"""TargetAppcuesProfiles: configuration, stream routing, and the run summary."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any, ClassVar

import click
from singer_sdk import Target
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.plugin_base import _ConfigInput
from singer_sdk.sinks import Sink

from salesforce_appcues_clients.dead_letters import replay_option, run_replay
from salesforce_appcues_clients.errors import ConfigurationError
from salesforce_appcues_clients.settings import appcues_properties
from salesforce_appcues_clients.singer_input import BadLine, DeadLetteringReader

from .dead_letter import DeadLetter
from .runtime import Runtime
from .settings import SettingsError, target_properties
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

    @classmethod
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: _ConfigInput | None = None,
        file_input: Any = None,
        replay_dead_letters: Path | None = None,
    ) -> None:
        """Run the target, or with `--replay-dead-letters FILE` replay that file."""
        if replay_dead_letters is None:
            super().invoke(
                about=about, about_format=about_format, config=config, file_input=file_input
            )
            return
        config = config or _ConfigInput()
        parse_env = config.parse_env
        sys.exit(
            run_replay(
                lambda settings: cls(config=settings, parse_env_config=parse_env),
                config.config,
                replay_dead_letters,
            )
        )

    @classmethod
    def get_singer_command(cls) -> click.Command:
        command = super().get_singer_command()
        command.params.append(replay_option())
        return command

    def summary(self) -> Mapping[str, Any]:
        """What this run wrote, skipped and dead-lettered, and the Appcues calls it made."""
        return self.runtime.report()


if __name__ == "__main__":
    TargetAppcuesProfiles.cli()
