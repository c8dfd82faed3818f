"""The deliver step: profiles and memberships to Appcues, by PATCH with bounded concurrency,
or by bulk imports (imports.py) for batches of `import_threshold` profiles or more.

Every confirmed write is reported through `on_confirmed` as soon as it is known, so the
ledger keeps what Appcues accepted even when a later request fails the run. A request
Appcues rejects on its merits (4xx) is reported through `on_rejected` and the batch goes on;
anything that means Appcues is unavailable or refuses us (auth, 429/5xx after the client's
retries, timeouts) is raised once the requests in flight have finished. Rows an import did
not prove written are sent by PATCH, which gives each a verdict of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Protocol

from salesforce_appcues_clients.errors import AppcuesError
from salesforce_appcues_clients.termination import STOP, Terminated

from .imports import (
    Confirmed,
    ImportClient,
    ImportContract,
    ImportCounters,
    ProfileImport,
    Profiles,
    error_detail,
)
from .ledger import ProfileKind

# 4xx answers that say nothing about the record itself: never dead-letter on them.
_NOT_ABOUT_THE_RECORD = frozenset({401, 403, 407, 408, 429})
MEMBERSHIP_CHUNK = 500


class AppcuesWriter(ImportClient, Protocol):
    """The part of salesforce_appcues_clients.AppcuesClient delivery uses."""

    def patch_user_profile(self, user_id: str, attributes: dict[str, Any]) -> None: ...
    def patch_group_profile(self, group_id: str, attributes: dict[str, Any]) -> None: ...
    def add_users_to_group(self, group_id: str, user_ids: list[str]) -> None: ...


class DeliveryCounters(ImportCounters, Protocol):
    """Where delivery counts its work (the run summary)."""

    def import_rows_resent_by_patch(self, count: int) -> None: ...


@dataclass(frozen=True)
class Rejection:
    """Appcues refused one profile or membership on its merits."""

    key: str
    reason: str
    status: int | None
    detail: str


Rejected = Callable[[Rejection], None]


def is_rejection(exc: BaseException) -> bool:
    """True for an Appcues answer about the request's content (dead-letter it, go on)."""
    return (
        isinstance(exc, AppcuesError)
        and 400 <= exc.status < 500
        and exc.status not in _NOT_ABOUT_THE_RECORD
    )


class ProfileDelivery:
    """Writes one kind of profile ("user" or "group") for one sink."""

    def __init__(
        self,
        client: AppcuesWriter,
        kind: ProfileKind,
        *,
        max_concurrency: int,
        import_threshold: int,
        import_max_rows: int,
        import_timeout: float,
        request_slots: threading.Semaphore,
        contract: ImportContract,
        counters: DeliveryCounters,
    ) -> None:
        self.client = client
        self.kind = kind
        self.max_concurrency = max_concurrency
        self.import_threshold = import_threshold
        self.contract = contract
        self.counters = counters
        # Shared by every sink of the run: sinks drain in parallel, and `max_concurrency`
        # bounds the requests in flight for the whole run, not per stream.
        self.slots = request_slots
        self.imports = ProfileImport(
            client,
            kind,
            import_max_rows=import_max_rows,
            import_timeout=import_timeout,
            slots=request_slots,
            contract=contract,
            counters=counters,
        )

    def send_profiles(
        self, profiles: Profiles, on_confirmed: Confirmed, on_rejected: Rejected
    ) -> None:
        if len(profiles) < self.import_threshold or self.contract.format is None:
            self._patch(profiles, on_confirmed, on_rejected)
            return
        suspects, resend = self.imports.send(profiles, on_confirmed)
        if suspects:
            self._patch(suspects, on_confirmed, on_rejected, "import_row_error")
        if resend:
            self.counters.import_rows_resent_by_patch(len(resend))
            self._patch(resend, on_confirmed, on_rejected)

    def add_members(
        self,
        members_by_group: dict[str, list[str]],
        on_confirmed: Confirmed,
        on_rejected: Rejected,
    ) -> None:
        """One request per group (and per MEMBERSHIP_CHUNK users), not one per user.

        Confirmed and rejected keys are user ids.
        """

        def tasks() -> Iterator[tuple[list[str], Callable[[], None]]]:
            for group_id, users in members_by_group.items():
                for start in range(0, len(users), MEMBERSHIP_CHUNK):
                    chunk = users[start : start + MEMBERSHIP_CHUNK]
                    yield chunk, self._bind(self.client.add_users_to_group, group_id, chunk)

        _run_concurrently(
            tasks(), self.max_concurrency, on_confirmed, on_rejected, "membership_rejected"
        )

    def _bind(self, fn: Callable[..., None], *args: Any) -> Callable[[], None]:
        def call() -> None:
            with self.slots:
                fn(*args)

        return call

    # --- PATCH ------------------------------------------------------------------------
    def _patch(
        self,
        profiles: Profiles,
        on_confirmed: Confirmed,
        on_rejected: Rejected,
        reason: str = "rejected",
    ) -> None:
        patch = (
            self.client.patch_user_profile
            if self.kind == "user"
            else self.client.patch_group_profile
        )
        tasks = (
            ([profile_id], self._bind(patch, profile_id, dict(attributes)))
            for profile_id, attributes in profiles.items()
        )
        _run_concurrently(tasks, self.max_concurrency, on_confirmed, on_rejected, reason)


def _run_concurrently(
    tasks: Iterator[tuple[list[str], Callable[[], None]]],
    max_workers: int,
    on_confirmed: Confirmed,
    on_rejected: Rejected,
    reason: str,
) -> None:
    """Runs at most `max_workers` requests at once; stops submitting after a fatal error
    or a stop request (SIGTERM/SIGINT), and reports the requests in flight before raising.

    The client's shared rate limiter paces the requests; this only bounds how many wait.
    """
    fatal: BaseException | None = None
    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="appcues") as pool:
        running: dict[Future[None], list[str]] = {}
        for keys, call in tasks:
            while len(running) >= max_workers:
                fatal = _collect(running, on_confirmed, on_rejected, reason) or fatal
            if fatal is None and STOP.signum is not None:
                fatal = Terminated(STOP.signum)
            if fatal is not None:
                break
            running[pool.submit(call)] = keys
        while running:
            fatal = _collect(running, on_confirmed, on_rejected, reason) or fatal
    if fatal is not None:
        raise fatal


def _collect(
    running: dict[Future[None], list[str]],
    on_confirmed: Confirmed,
    on_rejected: Rejected,
    reason: str,
) -> BaseException | None:
    done, _pending = wait(running, return_when=FIRST_COMPLETED)
    fatal: BaseException | None = None
    confirmed: list[str] = []
    for future in done:
        keys = running.pop(future)
        exc = future.exception()
        if exc is None:
            confirmed.extend(keys)
        elif isinstance(exc, AppcuesError) and is_rejection(exc):
            for key in keys:
                on_rejected(Rejection(key, reason, exc.status, error_detail(exc)))
        elif fatal is None:
            fatal = exc
    if confirmed:
        on_confirmed(confirmed)
    return fatal
