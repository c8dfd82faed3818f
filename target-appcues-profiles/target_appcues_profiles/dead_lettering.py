"""One stream's dead letters as the steps write them: each names its record (key
properties, else `Id`, else the profile id) and keeps the record, its stream's SCHEMA part
and key properties (what `--replay-dead-letters` re-announces)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from salesforce_appcues_clients.plugin_kit.dead_letters import schema_for
from salesforce_appcues_clients.plugin_kit.singer_input import BadLine

from .dead_letter import DeadLetter, DeadLetterFile
from .mapping import RecordError, resolve_path

if TYPE_CHECKING:
    from .delivery import Rejection


class DeadLettering:
    """Dead-letters the records of one stream: names each record in the message and the
    log, and keeps what a replay needs (the record, its schema part, the key properties)."""

    def __init__(
        self,
        letters: DeadLetterFile,
        stream: str,
        schema: Mapping[str, Any],
        key_properties: Sequence[str],
        id_field: str,
        logger: logging.Logger,
    ) -> None:
        self.letters = letters
        self.stream = stream
        self.schema = schema  # as announced, dates included: what a replay re-announces
        self.key_properties = list(key_properties)
        self.id_field = id_field
        self.logger = logger

    def key_of(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """The record's key properties, else its Salesforce `Id`: what finds it at the source."""
        keys = [k for k in self.key_properties if k in record]
        if keys:
            return {k: record[k] for k in keys}
        return {"Id": record["Id"]} if "Id" in record else {}

    def unmappable(
        self,
        record: Mapping[str, Any],
        exc: RecordError,
        pid: str | None = None,
        reason: str | None = None,
    ) -> None:
        """A record that cannot become a profile (or membership): `exc` says why."""
        key = self.key_of(record)
        message = f"{self.stream} record {key or self._named_without_key(record)}: {exc}"
        self.logger.warning("Dead-lettered: %s", message)
        self.letters.add(
            DeadLetter(
                reason or exc.reason,
                message,
                stream=self.stream,
                record_key=key,
                profile_id=pid,
                fields=(exc.field_name,) if exc.field_name else (),
                **self._replayable(record),
            )
        )

    def refused(
        self,
        rejection: Rejection,
        kind: str,
        what: str,
        key: Mapping[str, Any],
        record: Mapping[str, Any] | None,
    ) -> None:
        """Appcues refused the `what` ("profile" or "membership") of this record."""
        message = (
            f"{self.stream} record {key or '(no key)'}: Appcues refused the {what} of"
            f" {kind if what == 'profile' else 'user'} {rejection.key!r}"
            f" ({rejection.status or 'import'}): {rejection.detail}"
        )
        self.logger.warning("Dead-lettered: %s", message)
        self.letters.add(
            DeadLetter(
                rejection.reason,
                message,
                stream=self.stream,
                record_key=key,
                profile_id=rejection.key,
                status=rejection.status,
                detail=rejection.detail,
                **self._replayable(record),
            )
        )

    def _named_without_key(self, record: Mapping[str, Any]) -> str:
        """A record without its key is named by its profile id, when it has one."""
        found, value = resolve_path(record, self.id_field)
        if found and isinstance(value, str | int) and not isinstance(value, bool):
            return f"without key ({self.id_field} {value!r})"
        return "(no key)"

    def _replayable(self, record: Mapping[str, Any] | None) -> dict[str, Any]:
        if record is None:
            return {}
        return {
            "record": record,
            "schema": schema_for(self.schema, record),
            "key_properties": list(self.key_properties),
        }


def dead_letter_line(letters: DeadLetterFile, bad: BadLine, logger: logging.Logger) -> None:
    """An input line that is no usable Singer message: logged and written at once."""
    logger.error("Dead-lettered: %s", bad.message)
    record = bad.record or {}
    letters.write(
        DeadLetter(
            bad.reason,
            bad.message,
            stream=bad.stream,
            record_key={"Id": record["Id"]} if "Id" in record else {},
            line_number=bad.number,
            line_text=bad.text,
        )
    )
