"""The bulk-import path of delivery: profiles imported in jobs, confirmed only on evidence.

Bulk imports rest on an undocumented contract (body format, job object, job route), so a
row imported is confirmed only on evidence: a job body that gives a verdict for every row,
or, for a body that just says it is done, a read-back of a sample of the job's profiles.
Any row without that evidence is handed back to be sent by PATCH (docs: the target's
README, "Delivery").
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from salesforce_appcues_clients.appcues import (
    IMPORT_FORMATS,
    ImportJob,
    ImportJobTimeoutError,
    csv_can_carry,
)
from salesforce_appcues_clients.errors import AppcuesError
from salesforce_appcues_clients.termination import STOP

from .ledger import ProfileKind
from .mapping import AppcuesValue

logger = logging.getLogger(__name__)

Confirmed = Callable[[Sequence[str]], None]
Profiles = dict[str, dict[str, AppcuesValue]]  # profile id -> attributes


class ImportClient(Protocol):
    """The part of salesforce_appcues_clients.AppcuesClient the import path uses."""

    def get_user_profile(self, user_id: str) -> dict[str, Any] | None: ...
    def get_group_profile(self, group_id: str) -> dict[str, Any] | None: ...
    def import_profiles(self, rows: list[dict[str, Any]], fmt: str = ...) -> str: ...
    def import_groups(self, rows: list[dict[str, Any]], fmt: str = ...) -> str: ...
    def wait_for_job(self, job_id: str, timeout: float = ...) -> ImportJob: ...


class ImportCounters(Protocol):
    """Where the import path counts its work (the run summary)."""

    def import_job(self) -> None: ...
    def import_readback(self) -> None: ...


def error_detail(exc: AppcuesError) -> str:
    return exc.detail or exc.title


# Rows read back from a job whose terminal body carries no per-row result: the first, the
# last and evenly spaced ones between, plus the largest row (the likeliest to be refused).
READBACK_SAMPLE = 10
CONTRACT = "unverified Appcues import contract (docs/sandbox.md, contract table)"


class ImportContract:
    """What one run has learnt about Appcues' undocumented import contract; shared by the
    run's sinks. Each change is logged once.

    Bodies are tried in IMPORT_FORMATS order: NDJSON, then CSV (a multipart `file`
    upload); a 400 or 415 for one moves the run to the next, and past the last to PATCH.
    A job that proves imports untrustworthy (its read-back differs from what was sent, it
    counted other rows than we sent, its route is unknown) moves the run to PATCH too.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._formats = list(IMPORT_FORMATS)
        self._stopped: str | None = None

    @property
    def format(self) -> str | None:
        """The body format to import with; None when this run sends everything by PATCH."""
        with self._lock:
            return None if self._stopped or not self._formats else self._formats[0]

    def refused(self, fmt: str, exc: AppcuesError) -> None:
        with self._lock:
            if not self._formats or self._formats[0] != fmt:
                return  # another sink learnt it first
            self._formats.pop(0)
            following = self._formats[0] if self._formats else None
        logger.warning(
            "Appcues refused the %s import body (%s: %s); %s for the rest of this run (%s)",
            fmt.upper(),
            exc.status,
            error_detail(exc),
            f"importing as {following.upper()}" if following else "sending profiles by PATCH",
            CONTRACT,
        )

    def stop(self, reason: str) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = reason
        logger.warning(
            "%s; bulk imports are not trusted for the rest of this run: profiles go by PATCH (%s)",
            reason,
            CONTRACT,
        )


class ProfileImport:
    """Imports one kind of profile ("user" or "group") for one sink."""

    def __init__(
        self,
        client: ImportClient,
        kind: ProfileKind,
        *,
        import_max_rows: int,
        import_timeout: float,
        slots: threading.Semaphore,
        contract: ImportContract,
        counters: ImportCounters,
    ) -> None:
        self.client = client
        self.kind = kind
        self.import_max_rows = import_max_rows
        self.import_timeout = import_timeout
        self.slots = slots
        self.contract = contract
        self.counters = counters
        self.id_key = "user_id" if kind == "user" else "group_id"

    def send(self, profiles: Profiles, on_confirmed: Confirmed) -> tuple[Profiles, Profiles]:
        """Imports in jobs of `import_max_rows` and confirms the rows the jobs prove written.

        Returns (rows a job's errors name, rows without a verdict): the caller sends both by
        PATCH, which gives each a verdict of its own."""
        items = list(profiles.items())
        resend: dict[str, dict[str, AppcuesValue]] = {}  # no verdict from the import
        suspects: dict[str, dict[str, AppcuesValue]] = {}  # named by a job's errors
        pending = [
            items[start : start + self.import_max_rows]
            for start in range(0, len(items), self.import_max_rows)
        ]
        while pending:
            STOP.checkpoint()  # a job started is waited for; none is started after a stop
            chunk = pending.pop(0)
            fmt = self.contract.format
            if fmt == "csv":
                chunk = self._csv_fit(chunk, resend)
            if fmt is None or not chunk:
                resend.update(chunk)
                continue
            try:
                job_id = self._start_import(chunk, fmt)
            except AppcuesError as exc:
                if exc.status in (400, 415):
                    self.contract.refused(fmt, exc)
                    pending.insert(0, chunk)
                elif exc.status != 413:
                    raise
                elif len(chunk) == 1:
                    resend.update(chunk)  # too large for any import: PATCH gives a verdict
                else:
                    half = len(chunk) // 2  # too large a body for Appcues: halve it
                    pending[:0] = [chunk[:half], chunk[half:]]
                continue
            unproven, named = self._finish_import(job_id, chunk, on_confirmed)
            resend.update(unproven)
            suspects.update(named)
        return suspects, resend

    def _csv_fit(self, chunk: Chunk, resend: dict[str, dict[str, AppcuesValue]]) -> Chunk:
        """The rows of the chunk a CSV import carries faithfully; the others go to resend."""
        fit: Chunk = []
        for profile_id, attributes in chunk:
            if csv_can_carry({self.id_key: profile_id, **attributes}, self.id_key):
                fit.append((profile_id, attributes))
            else:
                resend[profile_id] = attributes
        return fit

    def _start_import(self, chunk: Chunk, fmt: str) -> str:
        rows = [{self.id_key: profile_id, **attributes} for profile_id, attributes in chunk]
        start_import = (
            self.client.import_profiles if self.kind == "user" else self.client.import_groups
        )
        job_id = start_import(rows, fmt)
        self.counters.import_job()
        return job_id

    def _finish_import(
        self, job_id: str, chunk: Chunk, on_confirmed: Confirmed
    ) -> tuple[dict[str, dict[str, AppcuesValue]], dict[str, dict[str, AppcuesValue]]]:
        """Waits for the job and confirms the rows it proves written.

        Returns (rows without a verdict, rows its errors name under either numbering).
        """
        n = len(chunk)
        try:
            job = self.client.wait_for_job(job_id, timeout=self.import_timeout)
        except ImportJobTimeoutError as exc:
            # Its rows are not taken as written; the job may still apply the same values.
            # A queue that stuck is unlikely to clear within the run: stop waiting on it.
            self.contract.stop(
                f"Import job {job_id} was still {exc.job.status!r} after import_timeout"
                f" ({self.import_timeout:g} s): its {n} rows are not confirmed"
            )
            return dict(chunk), {}
        except AppcuesError as exc:
            if exc.status != 404:
                raise
            self.contract.stop(f"The import job route answered 404 for job {job_id}")
            return dict(chunk), {}
        named = {chunk[i][0]: chunk[i][1] for i in job.suspect_indexes(n)}
        if job.accounts_for(n):
            # The default path: a verdict for every row. Rows its errors name under either
            # numbering get their own verdict by PATCH; the others are written.
            on_confirmed([pid for pid, _a in chunk if pid not in named])
            return {}, named
        others = {pid: a for pid, a in chunk if pid not in named}
        if job.total_rows is not None and job.total_rows != n:
            self.contract.stop(
                f"Import job {job_id} counted {job.total_rows} rows where {n} were sent"
            )
            return others, named
        if job.reports_trouble(n):
            logger.warning(
                "Import job %s ended %r reporting failures without a verdict for each row"
                " (failed_rows %s, %s errors listed): its %s rows are sent by PATCH (%s)",
                job_id,
                job.status,
                job.failed_rows,
                len(job.errors),
                n,
                CONTRACT,
            )
            return others, named
        # Terminal success without a per-row result (e.g. just "done"): read some back.
        if self._read_back(chunk):
            on_confirmed([pid for pid, _a in chunk])
            return {}, {}
        self.contract.stop(
            f"Import job {job_id} ended {job.status!r} but profiles read back differ from"
            " the rows sent"
        )
        return dict(chunk), {}

    def _read_back(self, chunk: Chunk) -> bool:
        """True when every sampled row reads back as sent (READBACK_SAMPLE + 1 GETs at most)."""
        get = self.client.get_user_profile if self.kind == "user" else self.client.get_group_profile
        for index in readback_sample(chunk):
            profile_id, attributes = chunk[index]
            with self.slots:
                profile = get(profile_id)
            self.counters.import_readback()
            if not reads_back_as_sent(attributes, profile):
                logger.info("Read-back of %s %r after an import differs", self.kind, profile_id)
                return False
        return True


Chunk = list[tuple[str, dict[str, AppcuesValue]]]
_ABSENT = object()


def readback_sample(chunk: Chunk) -> list[int]:
    """Indexes to read back: first, last, evenly spaced between, and the largest row."""
    n = len(chunk)
    if n <= READBACK_SAMPLE:
        return list(range(n))
    picks = {round(i * (n - 1) / (READBACK_SAMPLE - 1)) for i in range(READBACK_SAMPLE)}
    sizes = [len(json.dumps(attributes, default=str)) for _pid, attributes in chunk]
    picks.add(max(range(n), key=sizes.__getitem__))
    return sorted(picks)


def reads_back_as_sent(sent: dict[str, AppcuesValue], profile: dict[str, Any] | None) -> bool:
    """Every attribute sent is in the profile with the same value and kind of value (a null
    sent may read back as null or absent)."""
    if profile is None:
        return False
    for name, value in sent.items():
        got = profile.get(name, _ABSENT)
        if value is None:
            if got is not None and got is not _ABSENT:
                return False
        elif isinstance(value, bool) or isinstance(got, bool):
            if got is not value:
                return False
        elif isinstance(value, int | float):
            if not isinstance(got, int | float) or got != value:
                return False
        elif got != value:
            return False
    return True
