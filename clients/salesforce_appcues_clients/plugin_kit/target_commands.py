"""The command line both targets share: a run, `--check` (the preflight) and
`--replay-dead-letters FILE`.

A target mixes `TargetCommands` in before singer-sdk's `Target` and supplies `CHECK_HELP` and
`preflight`; the dispatch and the click options live here once.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, ClassVar

import click
from singer_sdk.plugin_base import _ConfigInput

from .checks import check_option
from .dead_letters import replay_option, run_replay


class TargetCommands:
    """`invoke` and `get_singer_command` for a singer-sdk Target with a preflight and replay."""

    CHECK_HELP: ClassVar[str]
    # Whether `--check` builds the target as a run does (settings validated, ledger opened);
    # a target whose check must open nothing validates its settings in `preflight`.
    CHECK_VALIDATES_CONFIG: ClassVar[bool] = True

    @classmethod
    def run_check(cls, config: _ConfigInput) -> int:
        """The preflight on the config a run would get (files, and the environment with
        `--config=ENV`)."""
        target = cls(  # type: ignore[call-arg]
            config=config.config,
            validate_config=cls.CHECK_VALIDATES_CONFIG,
            parse_env_config=config.parse_env,
        )
        return cls.preflight(dict(target.config))  # type: ignore[attr-defined]

    @classmethod
    def preflight(cls, config: dict[str, Any]) -> int:
        """Prints the preflight's findings; returns the exit code (0 ready, 1 not)."""
        raise NotImplementedError

    @classmethod
    def invoke(
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: _ConfigInput | None = None,
        file_input: Any = None,
        check: bool = False,
        replay_dead_letters: Path | None = None,
    ) -> None:
        """Run the target; or with `--check` only the preflight; or with
        `--replay-dead-letters FILE` replay that file (docs/operations.md)."""
        if check:
            sys.exit(cls.run_check(config or _ConfigInput()))
        if replay_dead_letters is not None:
            given = config or _ConfigInput()
            parse_env = given.parse_env
            sys.exit(
                run_replay(
                    lambda settings: cls(config=settings, parse_env_config=parse_env),  # type: ignore[call-arg]
                    given.config,
                    replay_dead_letters,
                )
            )
        super().invoke(  # type: ignore[misc]
            about=about, about_format=about_format, config=config, file_input=file_input
        )

    @classmethod
    def get_singer_command(cls) -> click.Command:
        command: click.Command = super().get_singer_command()  # type: ignore[misc]
        command.params.append(check_option(cls.CHECK_HELP))
        command.params.append(replay_option())
        return command
