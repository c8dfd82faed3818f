"""One stream's batch, top to bottom: map -> filter unchanged -> deliver -> confirm -> ledger.

1. map (record_mapping.py): records -> profiles by id; bad records dead-lettered.
2. filter (confirmations.py `ChangeFilter`): profiles whose digest the ledger holds need
   no call.
3. deliver (delivery.py, imports.py): PATCH, or bulk imports confirmed on evidence.
4. confirm (confirmations.py `Confirmations`): what Appcues confirmed, and only that, goes
   to the ledger, as soon as it is known; refusals are dead-lettered (dead_lettering.py)
   and the batch goes on.
Then the same for the memberships of a user stream (`user_group_field`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .confirmations import ChangeFilter, Confirmations, ProfileChanges
from .dead_lettering import DeadLettering
from .delivery import ProfileDelivery, Rejection
from .ledger import ProfileKind
from .record_mapping import MappedProfile, RecordMapper

if TYPE_CHECKING:
    from .runtime import Runtime


class ProfilePipeline:
    """Loads the batches of one stream of user or group profiles."""

    def __init__(
        self,
        runtime: Runtime,
        kind: ProfileKind,
        stream: str,
        *,
        schema: Mapping[str, Any],
        announced_schema: Mapping[str, Any],
        key_properties: Sequence[str],
        logger: logging.Logger,
    ) -> None:
        """`schema`: the sink's, whose date formats the mapping parses; `announced_schema`:
        the stream's SCHEMA as received, which dead letters keep for a replay."""
        self.runtime = runtime
        self.kind: ProfileKind = kind
        self.stream = stream
        self.summary = runtime.summary
        settings = runtime.settings
        self.dead_letters = DeadLettering(
            runtime.dead_letters,
            stream,
            announced_schema,
            key_properties,
            settings.id_field(stream),
            logger,
        )
        self.mapper = RecordMapper(
            settings, kind, stream, schema, key_properties, self.dead_letters, self.summary
        )

    def load(self, records: Sequence[dict]) -> None:
        mapped = self.mapper.map(records)
        if not mapped:
            return
        # The ledger and the client are opened on first use: a run with nothing to send
        # opens no connection.
        changes = ChangeFilter(
            self.runtime.ledger, self.stream, skip_unchanged=self.runtime.settings.skip_unchanged
        )
        profiles = changes.profiles(self.kind, mapped)
        self.summary.skipped_unchanged(self.kind, self.stream, profiles.unchanged)
        rejected = self._send_profiles(profiles, mapped) if profiles.to_send else set()
        if self.mapper.group_field:
            members = {
                pid: p.group_id
                for pid, p in mapped.items()
                if p.group_id is not None and pid not in rejected
            }
            if members:
                self._send_memberships(changes.memberships(members), len(members), mapped)

    def _send_profiles(
        self, profiles: ProfileChanges, mapped: Mapping[str, MappedProfile]
    ) -> set[str]:
        """Delivers the changed profiles; returns the ids Appcues refused."""
        rejected: set[str] = set()

        def on_rejected(rejection: Rejection) -> None:
            rejected.add(rejection.key)
            self._refused(rejection, "profile", mapped[rejection.key])

        with Confirmations(self.runtime.ledger, self.kind, self.stream) as confirm:

            def on_confirmed(ids: Sequence[str]) -> None:
                for pid in ids:
                    self.summary.written(self.kind, self.stream, new=pid not in profiles.known)
                confirm({pid: profiles.digests[pid] for pid in ids})

            self._delivery().send_profiles(profiles.to_send, on_confirmed, on_rejected)
        return rejected

    def _send_memberships(
        self, to_add: dict[str, str], members: int, mapped: Mapping[str, MappedProfile]
    ) -> None:
        """Adds users to their groups (user id -> group id), one request per group."""
        self.summary.membership_unchanged(members - len(to_add))
        if not to_add:
            return
        by_group: dict[str, list[str]] = {}
        for user, group in to_add.items():
            by_group.setdefault(group, []).append(user)

        def on_rejected(rejection: Rejection) -> None:
            self._refused(rejection, "membership", mapped[rejection.key])

        with Confirmations(self.runtime.ledger, "membership", self.stream) as confirm:

            def on_confirmed(users: Sequence[str]) -> None:
                self.summary.membership_added(len(users))
                confirm({user: to_add[user] for user in users})

            self._delivery().add_members(by_group, on_confirmed, on_rejected)

    def _refused(self, rejection: Rejection, what: str, item: MappedProfile) -> None:
        self.dead_letters.refused(rejection, self.kind, what, item.record_key, item.record)

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
            counters=self.summary,
        )
