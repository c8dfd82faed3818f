"""Sinks: a batch of records -> mapped profiles -> only the changed ones -> Appcues -> ledger."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from singer_sdk.sinks import BatchSink, RecordSink

from salesforce_appcues_clients.plugin_kit.dead_letters import schema_for
from salesforce_appcues_clients.plugin_kit.singer_input import without_date_formats
from salesforce_appcues_clients.termination import STOP

from .dead_letter import DeadLetter
from .delivery import ProfileDelivery, Rejection
from .ledger import Kind
from .mapping import (
    AppcuesValue,
    AttributeMapper,
    RecordError,
    ValueCoercer,
    attributes_digest,
    date_kinds_from_schema,
    is_deleted,
    profile_id,
    resolve_path,
)

if TYPE_CHECKING:
    from singer_sdk import Target

    from .runtime import Runtime

# Confirmations are written to the ledger in chunks rather than one transaction per PATCH.
_LEDGER_FLUSH = 500


@dataclass
class _Pending:
    attributes: dict[str, AppcuesValue]
    record_key: dict[str, Any]
    group_id: str | None = None
    record: Mapping[str, Any] | None = None  # for the dead letter, should Appcues refuse it


class ProfileSink(BatchSink):
    """Writes a batch of one stream's records as Appcues user or group profiles."""

    kind: ClassVar[Kind] = "user"
    # A record that does not fit its schema is still mapped (coercion makes any value valid
    # for Appcues); one bad record must not stop the run.
    fail_on_record_validation_exception = False

    def __init__(
        self,
        target: Target,
        stream_name: str,
        schema: dict,
        key_properties: Sequence[str] | None,
    ) -> None:
        super().__init__(target, stream_name, schema, key_properties)
        self.runtime: Runtime = target.runtime  # type: ignore[attr-defined]
        self.stream_schema = schema  # as announced, dates included: what a replay re-announces
        settings = self.runtime.settings
        # Dates are parsed here, not by the SDK, so a bad date dead-letters one record
        # instead of failing the run.
        self._date_kinds = date_kinds_from_schema(self.schema)
        self.schema = without_date_formats(self.schema)
        self.id_field = settings.id_field(stream_name)
        self.group_field = settings.user_group_field if self.kind == "user" else None
        excluded = {self.id_field}
        if self.group_field:
            excluded.add(self.group_field)
        self.mapper = AttributeMapper(
            fields=settings.attributes.get(stream_name),
            prefix=settings.attribute_prefix,
            excluded=frozenset(excluded),
            coercer=ValueCoercer(settings.date_format),
            date_kinds=self._date_kinds,
        )

    @property
    def max_size(self) -> int:
        """Records per batch: the `batch_size_rows` setting, else 10,000."""
        return self.batch_size_rows or self.MAX_SIZE_DEFAULT

    # --- one batch --------------------------------------------------------------------
    def process_batch(self, context: dict) -> None:
        STOP.checkpoint()  # stopped: a batch not started is left for the next run
        try:
            self._process_batch(context)
        except Exception:
            # The run stops here (no STATE); say what it did before the traceback.
            self.runtime.log_summary(self.logger, failed=True)
            raise
        finally:
            self.runtime.dead_letters.flush()  # durable before the batch counts as done

    def _process_batch(self, context: dict) -> None:
        pending = self._map_records(context.get("records", []))
        if not pending:
            return
        settings = self.runtime.settings
        ledger = self.runtime.ledger
        summary = self.runtime.summary
        digests = {pid: attributes_digest(p.attributes) for pid, p in pending.items()}
        known = ledger.digests(self.kind, self.stream_name, digests)
        to_send = {
            pid: p.attributes
            for pid, p in pending.items()
            if not settings.skip_unchanged or known.get(pid) != digests[pid]
        }
        summary.add(f"{self.kind}_unchanged", len(pending) - len(to_send), stream=self.stream_name)
        rejected: set[str] = set()

        def rejected_profile(rejection: Rejection) -> None:
            rejected.add(rejection.key)
            self._dead_letter_rejection(rejection, pending[rejection.key], "profile")

        if to_send:
            delivery = self._delivery()
            with _LedgerWriter(self, self.kind) as confirm:

                def confirmed(ids: Sequence[str]) -> None:
                    for pid in ids:
                        summary.add(
                            f"{self.kind}_{'changed' if pid in known else 'new'}",
                            stream=self.stream_name,
                        )
                    confirm({pid: digests[pid] for pid in ids})

                delivery.send_profiles(to_send, confirmed, rejected_profile)
        if self.group_field:
            members = {
                pid: p.group_id
                for pid, p in pending.items()
                if p.group_id is not None and pid not in rejected
            }
            self._send_memberships(members, pending)

    def _map_records(self, records: Sequence[dict]) -> dict[str, _Pending]:
        """Profile id -> what to send; the last record of a profile in the batch wins."""
        pending: dict[str, _Pending] = {}
        summary = self.runtime.summary
        summary.add("read", len(records), stream=self.stream_name)
        for record in records:
            if is_deleted(record):
                summary.add("deleted", stream=self.stream_name)
                continue
            key = self._record_key(record)
            try:
                self._check_key_properties(record)
                pid = profile_id(record, self.id_field)
                attributes = self.mapper.map(record)
            except RecordError as exc:
                self._dead_letter_record(record, exc)
                continue
            group_id = self._group_of(record, pid)
            if pid in pending:
                summary.add("duplicate", stream=self.stream_name)
            pending[pid] = _Pending(attributes, key, group_id, record)
        return pending

    def _singer_validate_message(self, record: dict) -> None:
        """The SDK raises here for a record without its key properties, ending the run;
        `_check_key_properties` dead-letters that record instead."""

    def _check_key_properties(self, record: Mapping[str, Any]) -> None:
        missing = [k for k in self.key_properties if k not in record]
        if missing:
            raise RecordError(
                "missing_key_property",
                f"key property {', '.join(repr(k) for k in missing)} of stream "
                f"'{self.stream_name}' is missing",
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
            self._dead_letter_record(record, exc, pid, reason=f"membership_{exc.reason}")
            return None

    def _send_memberships(self, members: dict[str, str], pending: dict[str, _Pending]) -> None:
        if not members:
            return
        settings = self.runtime.settings
        known = self.runtime.ledger.digests("membership", self.stream_name, members)
        to_add = {
            user: group
            for user, group in members.items()
            if not settings.skip_unchanged or known.get(user) != group
        }
        self.runtime.summary.add("membership_unchanged", len(members) - len(to_add))
        if not to_add:
            return
        by_group: dict[str, list[str]] = {}
        for user, group in to_add.items():
            by_group.setdefault(group, []).append(user)

        def rejected(rejection: Rejection) -> None:
            self._dead_letter_rejection(rejection, pending[rejection.key], "membership")

        with _LedgerWriter(self, "membership") as confirm:

            def confirmed(users: Sequence[str]) -> None:
                self.runtime.summary.add("membership_added", len(users))
                confirm({user: to_add[user] for user in users})

            self._delivery().add_members(by_group, confirmed, rejected)

    def _delivery(self) -> ProfileDelivery:
        settings = self.runtime.settings
        return ProfileDelivery(
            self.runtime.client(),
            self.kind,
            max_concurrency=settings.max_concurrency,
            import_threshold=settings.import_threshold,
            import_max_rows=settings.import_max_rows,
            import_timeout=settings.import_timeout,
            request_slots=self.runtime.request_slots,
            contract=self.runtime.import_contract,
            count=self.runtime.summary.add,
        )

    # --- dead letters -----------------------------------------------------------------
    def _record_key(self, record: Mapping[str, Any]) -> dict[str, Any]:
        keys = [k for k in self.key_properties if k in record]
        if keys:
            return {k: record[k] for k in keys}
        return {"Id": record["Id"]} if "Id" in record else {}

    def _dead_letter_record(
        self,
        record: Mapping[str, Any],
        exc: RecordError,
        pid: str | None = None,
        reason: str | None = None,
    ) -> None:
        key = self._record_key(record)
        message = f"{self.stream_name} record {key or self._named_without_key(record)}: {exc}"
        self.logger.warning("Dead-lettered: %s", message)
        self.runtime.dead_letters.add(
            DeadLetter(
                stream=self.stream_name,
                record_key=key,
                reason=reason or exc.reason,
                message=message,
                profile_id=pid,
                field=exc.field_name,
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
            "schema": schema_for(self.stream_schema, record),
            "key_properties": list(self.key_properties),
        }

    def _dead_letter_rejection(self, rejection: Rejection, item: _Pending, what: str) -> None:
        key = item.record_key
        message = (
            f"{self.stream_name} record {key or '(no key)'}: Appcues refused the {what} of"
            f" {self.kind if what == 'profile' else 'user'} {rejection.key!r}"
            f" ({rejection.status or 'import'}): {rejection.detail}"
        )
        self.logger.warning("Dead-lettered: %s", message)
        self.runtime.dead_letters.add(
            DeadLetter(
                stream=self.stream_name,
                record_key=key,
                reason=rejection.reason,
                message=message,
                profile_id=rejection.key,
                status=rejection.status,
                detail=rejection.detail,
                **self._replayable(item.record),
            )
        )


class UserProfileSink(ProfileSink):
    kind: ClassVar[Kind] = "user"


class GroupProfileSink(ProfileSink):
    kind: ClassVar[Kind] = "group"


class UnroutedStreamSink(RecordSink):
    """A stream named in neither user_streams nor group_streams: counted, never sent.

    Its records are neither validated nor date-parsed: a record nobody sends must not be
    able to fail the run.
    """

    fail_on_record_validation_exception = False

    def get_validator(self) -> None:
        return None

    def __init__(
        self,
        target: Target,
        stream_name: str,
        schema: dict,
        key_properties: Sequence[str] | None,
    ) -> None:
        super().__init__(target, stream_name, schema, key_properties)
        self.schema = without_date_formats(self.schema)
        self.runtime: Runtime = target.runtime  # type: ignore[attr-defined]
        self.logger.warning(
            "Stream '%s' is in neither user_streams nor group_streams; its records are ignored",
            stream_name,
        )

    def process_record(self, record: dict, context: dict) -> None:
        self.runtime.summary.add("unrouted", stream=self.stream_name)
        self.runtime.summary.add("read", stream=self.stream_name)


class _LedgerWriter:
    """Buffers confirmations and writes them in chunks; flushes on exit, even after errors."""

    def __init__(self, sink: ProfileSink, kind: Kind) -> None:
        self.sink = sink
        self.kind = kind
        self.buffer: dict[str, str] = {}

    def __enter__(self) -> _LedgerWriter:
        return self

    def __call__(self, digests: Mapping[str, str]) -> None:
        self.buffer.update(digests)
        if len(self.buffer) >= _LEDGER_FLUSH:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.sink.runtime.ledger.confirm(self.kind, self.sink.stream_name, self.buffer)
            self.buffer = {}

    def __exit__(self, *exc_info: object) -> None:
        self.flush()
