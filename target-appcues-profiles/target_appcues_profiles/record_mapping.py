"""The map step: a batch of one stream's records -> the profiles to send, by profile id.

A record that cannot become a profile is dead-lettered here and the batch goes on; records
flagged deleted are skipped; the last record of a profile in the batch wins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .dead_lettering import DeadLettering
from .ledger import ProfileKind
from .mapping import (
    AppcuesValue,
    AttributeMapper,
    RecordError,
    ValueCoercer,
    date_kinds_from_schema,
    is_deleted,
    profile_id,
    resolve_path,
)
from .settings import TargetSettings
from .summary import RunSummary


@dataclass
class MappedProfile:
    attributes: dict[str, AppcuesValue]
    record_key: dict[str, Any]
    group_id: str | None = None  # the user's group, when user_group_field names one
    record: Mapping[str, Any] | None = None  # for the dead letter, should Appcues refuse it


class RecordMapper:
    """Maps the records of one stream (user or group profiles) with its settings."""

    def __init__(
        self,
        settings: TargetSettings,
        kind: ProfileKind,
        stream: str,
        schema: Mapping[str, Any],
        key_properties: Sequence[str],
        dead_letters: DeadLettering,
        summary: RunSummary,
    ) -> None:
        self.stream = stream
        self.key_properties = list(key_properties)
        self.dead_letters = dead_letters
        self.summary = summary
        self.id_field = settings.id_field(stream)
        self.group_field = settings.user_group_field if kind == "user" else None
        excluded = {self.id_field}
        if self.group_field:
            excluded.add(self.group_field)
        self.attributes = AttributeMapper(
            fields=settings.attributes.get(stream),
            prefix=settings.attribute_prefix,
            excluded=frozenset(excluded),
            coercer=ValueCoercer(settings.date_format),
            # Dates are parsed here, not by the SDK, so a bad date dead-letters one record
            # instead of failing the run.
            date_kinds=date_kinds_from_schema(schema),
        )

    def map(self, records: Sequence[dict]) -> dict[str, MappedProfile]:
        """Profile id -> what to send; the last record of a profile in the batch wins."""
        profiles: dict[str, MappedProfile] = {}
        self.summary.read(self.stream, len(records))
        for record in records:
            if is_deleted(record):
                self.summary.skipped_deleted(self.stream)
                continue
            key = self.dead_letters.key_of(record)
            try:
                self._check_key_properties(record)
                pid = profile_id(record, self.id_field)
                attributes = self.attributes.map(record)
            except RecordError as exc:
                self.dead_letters.unmappable(record, exc)
                continue
            group_id = self._group_of(record, pid)
            if pid in profiles:
                self.summary.skipped_duplicate(self.stream)
            profiles[pid] = MappedProfile(attributes, key, group_id, record)
        return profiles

    def _check_key_properties(self, record: Mapping[str, Any]) -> None:
        missing = [k for k in self.key_properties if k not in record]
        if missing:
            raise RecordError(
                "missing_key_property",
                f"key property {', '.join(repr(k) for k in missing)} of stream "
                f"'{self.stream}' is missing",
                missing[0],
            )

    def _group_of(self, record: Mapping[str, Any], pid: str) -> str | None:
        if not self.group_field:
            return None
        found, value = resolve_path(record, self.group_field)
        if not found or value is None or (isinstance(value, str) and not value.strip()):
            return None  # a user without a group is normal (a contact with no account)
        try:
            return profile_id(record, self.group_field)
        except RecordError as exc:
            self.dead_letters.unmappable(record, exc, pid, reason=f"membership_{exc.reason}")
            return None
