"""One run at a time per state directory: an exclusive lock the OS releases with the process.

Two targets sharing a ledger would both find an event unwritten and both write it. The lock
is `fcntl.flock` on a small file next to the ledger: held for the life of the process and
dropped by the kernel however the process ends (exit, crash, SIGKILL), so a dead run never
leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

EXIT_LOCKED = 75  # EX_TEMPFAIL (sysexits.h): another run is busy, try again later


class RunLockedError(RuntimeError):
    """Another process holds the lock: this run must not start."""

    exit_code = EXIT_LOCKED


class RunLock:
    """An exclusive, non-blocking lock on `path`; the holder's pid is written into it."""

    def __init__(self, path: Path, plugin: str) -> None:
        self.path = path
        self.plugin = plugin
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = self.path.open("a+", encoding="utf-8")
        except OSError as exc:
            raise RunLockedError(
                f"cannot open the run lock {self.path}: {exc.strerror or exc}"
            ) from None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise RunLockedError(
                f"another {self.plugin} run (pid {holder}) holds the lock {self.path} on the "
                "same state: two runs at once would write the same records twice. This run "
                "did nothing; start it again once the other has ended."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the descriptor drops the flock
            self._file = None
