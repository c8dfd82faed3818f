"""The ledger's part in a run: what Appcues already holds costs no call, and a write is
recorded only once Appcues confirmed it.

A profile is sent when its attributes' digest differs from the one Appcues last confirmed
for this stream; a membership when the user's confirmed group differs. `skip_unchanged`
false sends everything (the ledger is still kept).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .ledger import Kind, Ledger, ProfileKind
from .mapping import AppcuesValue, attributes_digest
from .record_mapping import MappedProfile

# Confirmations are written in chunks rather than one transaction per PATCH.
CONFIRM_CHUNK = 500


@dataclass(frozen=True)
class ProfileChanges:
    """The profiles of a batch to send, with the digests to confirm once Appcues took them."""

    to_send: dict[str, dict[str, AppcuesValue]]  # profile id -> attributes
    digests: dict[str, str]  # profile id -> digest, for every mapped profile
    known: frozenset[str]  # profile ids the ledger had confirmed before (updates, not new)

    @property
    def unchanged(self) -> int:
        return len(self.digests) - len(self.to_send)


class ChangeFilter:
    """Compares one stream's mapped profiles and memberships with the ledger."""

    def __init__(self, ledger: Ledger, stream: str, *, skip_unchanged: bool) -> None:
        self.ledger = ledger
        self.stream = stream
        self.skip_unchanged = skip_unchanged

    def profiles(self, kind: ProfileKind, mapped: Mapping[str, MappedProfile]) -> ProfileChanges:
        digests = {pid: attributes_digest(p.attributes) for pid, p in mapped.items()}
        known = self.ledger.digests(kind, self.stream, digests)
        to_send = {
            pid: p.attributes
            for pid, p in mapped.items()
            if not self.skip_unchanged or known.get(pid) != digests[pid]
        }
        return ProfileChanges(to_send, digests, frozenset(known))

    def memberships(self, members: Mapping[str, str]) -> dict[str, str]:
        """User id -> group id for the memberships to add."""
        known = self.ledger.digests("membership", self.stream, members)
        return {
            user: group
            for user, group in members.items()
            if not self.skip_unchanged or known.get(user) != group
        }


class Confirmations:
    """The confirm step: buffers what Appcues confirmed and writes it to the ledger in
    chunks of CONFIRM_CHUNK; flushes on exit, even after an error (what was confirmed before
    a failure is kept)."""

    def __init__(self, ledger: Ledger, kind: Kind, stream: str) -> None:
        self.ledger = ledger
        self.kind: Kind = kind
        self.stream = stream
        self.buffer: dict[str, str] = {}

    def __enter__(self) -> Confirmations:
        return self

    def __call__(self, digests: Mapping[str, str]) -> None:
        self.buffer.update(digests)
        if len(self.buffer) >= CONFIRM_CHUNK:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.ledger.confirm(self.kind, self.stream, self.buffer)
            self.buffer = {}

    def __exit__(self, *exc_info: object) -> None:
        self.flush()
