"""`RunContext`: what one tap process shares between discovery, the streams and `--check`.

The tap builds it and hands it to each stream at construction, so calls go one way (tap ->
streams) and no stream reaches back into the tap.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from salesforce_appcues_clients.appcues import AppcuesClient
from salesforce_appcues_clients.errors import SalesforceError
from salesforce_appcues_clients.salesforce import SalesforceClient

from .schema_mapping import ObjectInfo, ParentPath, SchemaMappingError, resolve_path
from .settings import TapSettings

APPCUES_REQUIRED = ("appcues_account_id", "appcues_api_key", "appcues_api_secret")
MAX_PARENT_DEPTH = 4
SALESFORCE_CREDENTIALS = ("refresh_token", "private_key", "private_key_file", "client_secret")


class RunContext:
    """The run's settings, its clients (one of each, created on first use), describes and
    Appcues' clock; the clients count the run's API calls."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self._sf: SalesforceClient | None = None
        self._appcues: AppcuesClient | None = None

    @cached_property
    def settings(self) -> TapSettings:
        return TapSettings.from_config(self.config)

    # --- clients -------------------------------------------------------------------------
    @property
    def salesforce(self) -> SalesforceClient:
        if self._sf is None:
            self._sf = SalesforceClient.from_config(self.config)
        return self._sf

    @property
    def appcues(self) -> AppcuesClient:
        if self._appcues is None:
            self._appcues = AppcuesClient.from_config(self.config, prefix="appcues_")
        return self._appcues

    @property
    def salesforce_configured(self) -> bool:
        return any(self.config.get(k) for k in SALESFORCE_CREDENTIALS)

    @property
    def appcues_configured(self) -> bool:
        return all(self.config.get(k) for k in APPCUES_REQUIRED)

    def api_calls(self) -> dict[str, int]:
        return {
            "salesforce": self._sf.calls_made if self._sf is not None else 0,
            "appcues": self._appcues.requests_made if self._appcues is not None else 0,
        }

    def close_clients(self) -> None:
        for client in (self._sf, self._appcues):
            if client is not None:
                client.close()

    # --- clocks --------------------------------------------------------------------------
    def appcues_now(self) -> datetime:
        """Appcues' clock (the Date of its last response) when known, else the local clock.

        Not Salesforce's: the events job would log in to Salesforce just to ask the time.
        A local clock that is off is harmless: once Appcues' first answer tells its time,
        `AppcuesEventsStream` reads only up to Appcues' clock minus `appcues_lag`.
        """
        return self.appcues.server_time() or datetime.now(UTC)

    # --- describes -----------------------------------------------------------------------
    def describe_objects(self, names: list[str]) -> dict[str, tuple[ObjectInfo, list[ParentPath]]]:
        """One describe batch for `names` (plus one per level of parents, if needed)."""
        sf = self.salesforce
        try:
            described = sf.describe(names)
        except SalesforceError as exc:
            if exc.status != 404 and exc.error_code not in ("NOT_FOUND", "INVALID_TYPE"):
                raise
            raise SchemaMappingError(
                f"settings user_objects / account_object ({', '.join(names)}): {exc}"
            ) from None
        infos = {name: ObjectInfo.from_describe(described[name]) for name in names}
        by_name = {info.name: info for info in infos.values()}
        paths: dict[str, list[ParentPath]] = {}
        for depth in range(MAX_PARENT_DEPTH + 1):  # each pass describes one more level
            missing: set[str] = set()
            for name, info in infos.items():
                paths[name] = []
                for path in self.relationship_paths(name, info.name):
                    resolved, needed = resolve_path(info, path, by_name)
                    if resolved is not None:
                        paths[name].append(resolved)
                    elif needed is not None:
                        missing.add(needed)
            if not missing:
                break
            if depth == MAX_PARENT_DEPTH:
                raise SchemaMappingError(
                    f"relationship_fields: paths deeper than {MAX_PARENT_DEPTH} parents"
                )
            for parent, raw in sf.describe(sorted(missing)).items():
                by_name[parent] = ObjectInfo.from_describe(raw)
        return {name: (info, paths[name]) for name, info in infos.items()}

    def relationship_paths(self, name: str, actual_name: str) -> list[str]:
        """The configured relationship_fields paths of an object, by either spelling."""
        configured = self.settings.relationship_fields
        for key in (name, actual_name):
            if key in configured:
                return list(configured[key])
        lowered = {k.lower(): v for k, v in configured.items()}
        return list(lowered.get(name.lower(), ()))
