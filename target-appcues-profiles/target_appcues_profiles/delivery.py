"""Sends profiles and memberships to Appcues: PATCH with bounded concurrency, or bulk imports.

Every confirmed write is reported through `on_confirmed` as soon as it is known, so the
ledger keeps what Appcues accepted even when a later request fails the run. A request
Appcues rejects on its merits (4xx) is reported through `on_rejected` and the batch goes on;
anything that means Appcues is unavailable or refuses us (auth, 429/5xx after the client's
retries, timeouts) is raised once the requests in flight have finished.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Protocol

from salesforce_appcues_clients.errors import AppcuesError
from salesforce_appcues_clients.termination import STOP, Terminated

from .mapping import AppcuesValue

logger = logging.getLogger(__name__)

# 4xx answers that say nothing about the record itself: never dead-letter on them.
_NOT_ABOUT_THE_RECORD = frozenset({401, 403, 407, 408, 429})
MEMBERSHIP_CHUNK = 500


class AppcuesWriter(Protocol):
    """The part of salesforce_appcues_clients.AppcuesClient this module uses."""

    def patch_user_profile(self, user_id: str, attributes: dict[str, Any]) -> None: ...
    def patch_group_profile(self, group_id: str, attributes: dict[str, Any]) -> None: ...
    def add_users_to_group(self, group_id: str, user_ids: list[str]) -> None: ...
    def import_profiles(self, rows: list[dict[str, Any]]) -> str: ...
    def import_groups(self, rows: list[dict[str, Any]]) -> str: ...
    def wait_for_job(self, job_id: str, timeout: float = ...) -> Any: ...


@dataclass(frozen=True)
class Rejection:
    """Appcues refused one profile or membership on its merits."""

    key: str
    reason: str
    status: int | None
    detail: str


Confirmed = Callable[[Sequence[str]], None]
Rejected = Callable[[Rejection], None]


def is_rejection(exc: BaseException) -> bool:
    """True for an Appcues answer about the request's content (dead-letter it, go on)."""
    return (
        isinstance(exc, AppcuesError)
        and 400 <= exc.status < 500
        and exc.status not in _NOT_ABOUT_THE_RECORD
    )


def _detail(exc: AppcuesError) -> str:
    return exc.detail or exc.title


class ProfileDelivery:
    """Writes one kind of profile ("user" or "group") for one sink."""

    def __init__(
        self,
        client: AppcuesWriter,
        kind: str,
        *,
        max_concurrency: int,
        import_threshold: int,
        import_max_rows: int,
        import_timeout: float,
        request_slots: threading.Semaphore | None = None,
        on_import_job: Callable[[], None] = lambda: None,
    ) -> None:
        self.client = client
        self.kind = kind
        self.max_concurrency = max_concurrency
        self.import_threshold = import_threshold
        self.import_max_rows = import_max_rows
        self.import_timeout = import_timeout
        self.on_import_job = on_import_job
        # Shared by every sink of the run: sinks drain in parallel, and `max_concurrency`
        # bounds the requests in flight for the whole run, not per stream.
        self.slots = request_slots or threading.Semaphore(max_concurrency)

    def send_profiles(
        self,
        profiles: dict[str, dict[str, AppcuesValue]],
        on_confirmed: Confirmed,
        on_rejected: Rejected,
    ) -> None:
        if len(profiles) >= self.import_threshold:
            self._import(profiles, on_confirmed, on_rejected)
        else:
            self._patch(profiles, on_confirmed, on_rejected)

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
        profiles: dict[str, dict[str, AppcuesValue]],
        on_confirmed: Confirmed,
        on_rejected: Rejected,
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
        _run_concurrently(tasks, self.max_concurrency, on_confirmed, on_rejected, "rejected")

    # --- bulk import ------------------------------------------------------------------
    def _import(
        self,
        profiles: dict[str, dict[str, AppcuesValue]],
        on_confirmed: Confirmed,
        on_rejected: Rejected,
    ) -> None:
        items = list(profiles.items())
        unsure: dict[str, dict[str, AppcuesValue]] = {}
        pending = [
            items[start : start + self.import_max_rows]
            for start in range(0, len(items), self.import_max_rows)
        ]
        while pending:
            STOP.checkpoint()  # a job started is waited for; none is started after a stop
            chunk = pending.pop(0)
            try:
                job_id = self._start_import(chunk)
            except AppcuesError as exc:
                if exc.status != 413:
                    raise
                # Too large a body for Appcues: halve it; a single row too large for an
                # import still gets its own verdict through PATCH.
                if len(chunk) == 1:
                    unsure.update(chunk)
                else:
                    half = len(chunk) // 2
                    pending[:0] = [chunk[:half], chunk[half:]]
                continue
            unsure.update(self._finish_import(job_id, chunk, on_confirmed, on_rejected))
        if unsure:
            self._patch(unsure, on_confirmed, on_rejected)

    def _start_import(self, chunk: list[tuple[str, dict[str, AppcuesValue]]]) -> str:
        id_key = "user_id" if self.kind == "user" else "group_id"
        rows = [{id_key: profile_id, **attributes} for profile_id, attributes in chunk]
        start_import = (
            self.client.import_profiles if self.kind == "user" else self.client.import_groups
        )
        job_id = start_import(rows)
        self.on_import_job()
        return job_id

    def _finish_import(
        self,
        job_id: str,
        chunk: list[tuple[str, dict[str, AppcuesValue]]],
        on_confirmed: Confirmed,
        on_rejected: Rejected,
    ) -> dict[str, dict[str, AppcuesValue]]:
        """Waits for the job; reports its rows; returns the rows whose fate is unknown."""
        job = self.client.wait_for_job(job_id, timeout=self.import_timeout)
        failed_rows = {int(e["row"]): str(e.get("message", "")) for e in job.errors if "row" in e}
        accounted = len(failed_rows) >= int(job.failed_rows or 0)
        if job.status == "failed" and not (accounted and failed_rows):
            raise ImportFailedError(
                f"Appcues import job {job_id} of {len(chunk)} {self.kind} rows failed"
                f" without per-row errors: {job.errors[:3]}"
            )
        for number, (profile_id, _attributes) in enumerate(chunk, start=1):
            if number in failed_rows:
                on_rejected(Rejection(profile_id, "import_row_error", None, failed_rows[number]))
        good = [(pid, a) for n, (pid, a) in enumerate(chunk, start=1) if n not in failed_rows]
        if accounted:
            on_confirmed([pid for pid, _a in good])
            return {}
        # The job kept only some of its errors: which other rows failed is unknown, so
        # those rows get a verdict of their own through PATCH.
        logger.warning(
            "Import job %s reported %s failed rows but listed %s; re-sending the other %s rows"
            " by PATCH to learn which were rejected",
            job_id,
            job.failed_rows,
            len(failed_rows),
            len(good),
        )
        return dict(good)


class ImportFailedError(RuntimeError):
    """A bulk import job failed as a whole: nothing it held can be taken as written."""


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
                on_rejected(Rejection(key, reason, exc.status, _detail(exc)))
        elif fatal is None:
            fatal = exc
    if confirmed:
        on_confirmed(confirmed)
    return fatal
