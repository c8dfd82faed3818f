"""TapSalesforceAppcues: the tap's entry point, configuration schema and stream discovery."""

from __future__ import annotations

import io
import json
import sys
import time
from functools import cached_property
from types import FrameType
from typing import IO, Any

import click
from singer_sdk import Stream, Tap
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.io_base import SingerWriter
from singer_sdk.plugin_base import _ConfigInput

from salesforce_appcues_clients.errors import ConfigurationError
from salesforce_appcues_clients.plugin_kit.checks import check_option, report
from salesforce_appcues_clients.plugin_kit.run_summary import RunTotals, log_run_summary
from salesforce_appcues_clients.settings import (
    AppcuesSettings,
    appcues_properties,
    salesforce_properties,
)
from salesforce_appcues_clients.termination import STOP, Terminated

from .client import CheckpointedStream, StateError
from .preflight import run_preflight
from .run_context import APPCUES_REQUIRED, RunContext
from .schema_mapping import (
    ObjectInfo,
    ParentPath,
    catalog_object,
)
from .settings import TapSettings, tap_properties
from .streams import AppcuesEventsStream, SalesforceObjectStream
from .timefmt import parse_datetime


class _WholeLineWriter(SingerWriter):
    """A signal never cuts a message in half: the target would dead-letter the fragment."""

    def write_message(self, message: Any) -> None:
        with STOP.protected():
            super().write_message(message)


class TapSalesforceAppcues(Tap):
    """Reads changed Salesforce user and account records, and Appcues events."""

    name = "tap-salesforce-appcues"
    config_jsonschema = {  # noqa: RUF012 - the SDK reads it as a class attribute
        "type": "object",
        "properties": {
            **salesforce_properties(),
            **appcues_properties(prefix="appcues_"),
            **tap_properties(),
        },
    }

    message_writer_class = _WholeLineWriter
    _state_source = "the state"  # how messages name the incoming state (its file, if any)
    _calls_logged = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._started = time.monotonic()  # the run summary's duration
        super().__init__(*args, **kwargs)

    @cached_property
    def run_context(self) -> RunContext:
        """Settings, clients and describes, shared with the streams (run_context.py)."""
        return RunContext(self.config)

    @property
    def settings(self) -> TapSettings:
        return self.run_context.settings

    # --- the incoming state ------------------------------------------------------------
    @classmethod
    def _invoke_sync(
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: _ConfigInput | None = None,
        state: IO[str] | None = None,
        catalog: IO[str] | None = None,
    ) -> None:
        """The SDK's run, with a state that is not JSON named instead of a parser traceback,
        and state or settings errors as one line and exit code 1."""
        try:
            if state is not None:
                cls._state_source = f"--state {getattr(state, 'name', '?')}"
                text = state.read()
                try:
                    check_state(json.loads(text), cls._state_source)
                except json.JSONDecodeError as exc:
                    raise StateError(
                        f"{cls._state_source} is not JSON ({exc}); pass the JSON state a "
                        "target emitted, or {} to start afresh"
                    ) from None
                state = io.StringIO(text)
            super().invoke(
                about=about,
                about_format=about_format,
                config=config,
                state=state,
                catalog=catalog,
            )
        except (StateError, ConfigurationError) as exc:
            cls.logger.error("%s", exc)
            sys.exit(1)

    # --- discovery -----------------------------------------------------------------------
    def run_discovery(self) -> str:
        # `--discover` runs outside the SDK's handler of config errors: same clean exit here.
        try:
            return super().run_discovery()
        except ConfigValidationError as exc:
            for error in exc.errors:
                self.logger.error("Config validation error: %s", error)
            raise click.exceptions.Exit(1) from None

    def discover_streams(self) -> list[Stream]:
        try:
            return self._discover()
        except Exception:
            self.close_clients()  # the run ends here; leave no open connection behind
            raise

    def _discover(self) -> list[Stream]:
        streams: list[Stream] = []
        if self.settings.objects and self.run_context.salesforce_configured:
            streams.extend(self._salesforce_streams())
        elif self.settings.objects:
            self.logger.warning("No Salesforce credentials configured: no Salesforce streams")
        if self.run_context.appcues_configured:
            streams.append(AppcuesEventsStream(self, self.run_context))
        elif any(self.config.get(k) for k in APPCUES_REQUIRED):
            # Half-configured: let the shared settings name what is missing, as a config
            # error (the CLI prints it and exits 1, no traceback).
            try:
                AppcuesSettings.from_config(self.config, prefix="appcues_")
            except ConfigurationError as exc:
                raise ConfigValidationError(str(exc), errors=[str(exc)]) from None
        else:
            self.logger.info(
                "Appcues settings incomplete (%s): no appcues_events stream",
                ", ".join(APPCUES_REQUIRED),
            )
        return streams

    def _salesforce_streams(self) -> list[SalesforceObjectStream]:
        """The configured objects' streams: from the given catalog, else one describe batch.

        A run given a catalog (Meltano's cached catalog, or `--catalog`) rebuilds what the
        streams need from the catalog's schemas and makes no describe call; objects the
        catalog lacks, or whose schema lacks a configured parent path, are described.
        """
        wanted = list(self.settings.objects)
        resolved = self._from_catalog(wanted)
        missing = [name for name in wanted if name not in resolved]
        if missing:
            resolved.update(self.run_context.describe_objects(missing))
        else:
            self.logger.info("Streams %s built from the catalog: no describe", ", ".join(wanted))
        self._warn_unknown_relationship_keys(wanted, [info.name for info, _ in resolved.values()])
        return [SalesforceObjectStream(self, self.run_context, *resolved[name]) for name in wanted]

    def _from_catalog(self, wanted: list[str]) -> dict[str, tuple[ObjectInfo, list[ParentPath]]]:
        catalog = self.input_catalog
        if catalog is None:
            return {}
        entries = {entry.tap_stream_id.lower(): entry for entry in catalog.streams}
        found: dict[str, tuple[ObjectInfo, list[ParentPath]]] = {}
        for name in wanted:
            entry = entries.get(name.lower())
            if entry is None:
                continue
            stream = entry.tap_stream_id
            rebuilt = catalog_object(
                stream, entry.schema.to_dict(), self.run_context.relationship_paths(name, stream)
            )
            if rebuilt is not None:
                found[name] = rebuilt
        return found

    def _warn_unknown_relationship_keys(self, wanted: list[str], names: list[str]) -> None:
        known = {n.lower() for n in [*wanted, *names]}
        unknown = [k for k in self.settings.relationship_fields if k.lower() not in known]
        if unknown:  # e.g. a shared config whose other objects this plugin does not read
            self.logger.warning(
                "relationship_fields: %s not among the configured objects (%s); ignored",
                ", ".join(unknown),
                ", ".join(wanted),
            )

    # --- the run's cost ------------------------------------------------------------------
    def api_calls(self) -> dict[str, int]:
        return self.run_context.api_calls()

    def close_clients(self) -> None:
        self.run_context.close_clients()

    def _log_summary(self, *, failed: bool) -> None:
        """The run summary: the API calls line, with the structured fields (run_summary.py)."""
        if self._calls_logged:
            return
        self._calls_logged = True
        calls = self.api_calls()
        read = {
            name: stream.records_read
            for name, stream in self.streams.items()
            if isinstance(stream, CheckpointedStream) and stream.selected
        }
        totals = RunTotals(
            failed=failed,
            duration_seconds=time.monotonic() - self._started,
            records_read=read,
            records_written=read,  # every record read is written to stdout
            records_skipped={},
            dead_letters={},
            api_calls=calls,
        )
        log_run_summary(
            self.logger,
            totals,
            "API calls this run: salesforce=%d appcues=%d",
            calls["salesforce"],
            calls["appcues"],
        )

    # --- `--check`: the preflight instead of a sync ------------------------------------
    @classmethod
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: _ConfigInput | None = None,
        state: IO[str] | None = None,
        catalog: IO[str] | None = None,
        check: bool = False,
    ) -> None:
        """Sync, or with `--check` only the preflight (preflight.py) and its exit code."""
        if not check:
            cls._invoke_sync(
                about=about, about_format=about_format, config=config, state=state, catalog=catalog
            )
            return
        config = config or _ConfigInput()
        # No stream set-up (it would describe): the preflight makes its own calls.
        tap = cls(
            config=config.config,
            parse_env_config=config.parse_env,
            validate_config=True,
            setup_mapper=False,
        )
        try:
            given = json.loads(catalog.read()) if catalog is not None else None
            findings, calls = run_preflight(tap.run_context, given)
        finally:
            tap.close_clients()
        sys.exit(report(findings, calls))

    @classmethod
    def get_singer_command(cls) -> click.Command:
        command = super().get_singer_command()
        command.params.append(
            check_option(
                "Check the config against Salesforce and Appcues (login, API version, "
                "objects, id fields, selected fields, API quota; Appcues key, region and "
                "analytics; only the parts configured) and exit: 0 ready, 1 not."
            )
        )
        return command

    # --- SIGTERM / SIGINT --------------------------------------------------------------------
    def sync_all(self) -> None:  # type: ignore[misc]
        """Syncs, then logs the run summary; a stop signal ends it with 128 + the signal
        number and no further message (singer-sdk would emit a last STATE and exit 0)."""
        try:
            super().sync_all()
        except Terminated as exc:
            self.logger.error("Tap %s: no further records or STATE emitted", exc)
            self.close_clients()
            sys.exit(exc.exit_code)
        if self.streams:  # after every stream's costs, as the SDK's sync ends
            self._log_summary(failed=False)

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        STOP.handle(signum, frame)


def check_state(state: Any, where: str) -> None:
    """Refuse a state of the wrong shape before any call, naming the state and the stream."""
    if not isinstance(state, dict):
        raise StateError(f'{where} must be a JSON object {{"bookmarks": {{...}}}}')
    bookmarks = state.get("bookmarks", {})
    if not isinstance(bookmarks, dict):
        raise StateError(f'{where}: "bookmarks" must be an object keyed by stream name')
    for stream, entry in bookmarks.items():
        if not isinstance(entry, dict):
            raise StateError(
                f"{where}: the entry of stream {stream!r} must be an object such as "
                '{"replication_key": "SystemModstamp", "replication_key_value": "..."}'
            )
        value = entry.get("replication_key_value")
        if value in (None, ""):
            continue
        try:
            parse_datetime(str(value))
        except ValueError:
            raise StateError(
                f"{where}: stream {stream!r} has the bookmark {value!r}, which is not an "
                "ISO 8601 instant such as 2024-01-01T00:00:00.000Z; fix or remove the "
                "stream's entry"
            ) from None


if __name__ == "__main__":
    TapSalesforceAppcues.cli()
