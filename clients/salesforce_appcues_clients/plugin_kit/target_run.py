"""A target's run as both targets run it: one at a time, stoppable, failing past the
dead-letter threshold, with unreadable lines dead-lettered.

A target mixes `TargetRun` in before singer-sdk's `Target` (after `TargetCommands`) and
supplies the six hooks at the end: its run lock, its threshold and dead-letter count, how
it dead-letters a bad line, where its ledger is, and how it ends (summary logged and
everything closed, once).
What happens on a signal, a refused lock or too many dead letters, and the exit codes
(docs/operations.md, "Exit codes"), are written here once.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Any, ClassVar

from ..termination import STOP, Terminated
from .dead_letter_threshold import DeadLetterThreshold, TooManyDeadLettersError
from .local_files import LocalFileError
from .run_lock import RunLock, RunLockedError
from .singer_input import BadLine, DeadLetteringReader

if TYPE_CHECKING:
    import logging

    from singer_sdk.sinks import Sink


class TargetRun:
    """`listen`, the drains, the signal handler and the dead-letter threshold of a run."""

    message_reader_class: ClassVar[type[DeadLetteringReader]] = DeadLetteringReader
    logger: logging.Logger  # singer-sdk's

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.records_read = 0  # RECORD messages and unreadable lines: the threshold's base
        reader = getattr(self, "message_reader", None)
        if isinstance(reader, DeadLetteringReader):
            reader.on_bad_line = self._on_bad_line

    def listen(self, file_input: IO[str] | None = None) -> None:
        """Reads the input under the run lock; ends the process with the exit code of a
        refused, stopped or failed run (docs/operations.md, "Exit codes")."""
        lock = self._run_lock()
        try:
            lock.acquire()
        except RunLockedError as exc:
            self.logger.error("Run refused: %s", exc)
            sys.exit(exc.exit_code)
        try:
            super().listen(file_input)  # type: ignore[misc]
        except Terminated as exc:
            self._end(f"Run {exc}: no STATE beyond the confirmed writes")
            sys.exit(exc.exit_code)
        except (TooManyDeadLettersError, LocalFileError) as exc:
            # One line naming the cause (a damaged ledger, a full disk), no traceback.
            self._end(f"Run failed: {exc}")
            sys.exit(exc.exit_code)
        except sqlite3.OperationalError as exc:  # a ledger write: a full disk, an I/O error
            self.logger.debug("The ledger write failed", exc_info=True)
            setting, path = self._ledger_file()
            failed = LocalFileError(f"setting {setting}: cannot write the ledger {path}: {exc}")
            self._end(f"Run failed: {failed}")
            sys.exit(failed.exit_code)
        finally:
            lock.release()

    def _end(self, message: str) -> None:
        self.logger.error("%s", message)
        self._close_run(failed=True)

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """Not singer-sdk's drain-and-confirm-everything: see salesforce_appcues_clients
        .termination."""
        STOP.handle(signum, frame)

    def drain_all(self, *, is_endofpipe: bool = False) -> None:
        # A signal during a drain lets the requests in flight finish and stops before the
        # next one; the STATE that follows a complete drain is still emitted.
        with STOP.protected():
            super().drain_all(is_endofpipe=is_endofpipe)  # type: ignore[misc]

    def drain_one(self, sink: Sink) -> None:
        # A full sink drains alone (no STATE follows): protected the same way. The run
        # stops after the batch that crossed the dead-letter threshold.
        with STOP.protected():
            super().drain_one(sink)  # type: ignore[misc]
        self.check_dead_letter_threshold()

    def _drain_all(self, sink_list: Iterable[Sink], parallelism: int) -> None:
        """Sinks drain in parallel (`max_parallelism` > 1), and every drain ends before this
        returns or raises: singer-sdk's joblib pool raises the first error at once and leaves
        the other sinks' threads running, so a stopped run would exit before they record the
        writes they finished. The first error that is not a stop is raised (it says why the
        run failed)."""
        sinks = list(sink_list)
        if parallelism == 1 or len(sinks) < 2:
            super()._drain_all(sinks, 1)  # type: ignore[misc]
            return
        with ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="drain") as pool:
            futures = [pool.submit(self.drain_one, sink) for sink in sinks]
        errors = [e for e in (f.exception() for f in futures) if e is not None]
        if errors:
            raise next((e for e in errors if not isinstance(e, Terminated)), errors[0])

    def _process_record_message(self, message_dict: dict) -> None:
        self.records_read += 1
        super()._process_record_message(message_dict)  # type: ignore[misc]

    def _on_bad_line(self, bad: BadLine) -> None:
        """A line that is no usable Singer message: dead-lettered, the rest read on."""
        self.records_read += 1
        with STOP.protected():  # a dead letter is written whole
            self._dead_letter_line(bad)

    def check_dead_letter_threshold(self) -> None:
        """Raises `TooManyDeadLettersError` once the run is past the threshold."""
        dead_lettered = self._dead_letters_total()
        if dead_lettered:  # none: never past it (and a target may have built nothing yet)
            self._dead_letter_threshold().check(dead_lettered, self.records_read)

    def _write_state_message(self, state: dict) -> None:
        # No STATE past the batch that crossed the dead-letter threshold.
        self.check_dead_letter_threshold()
        super()._write_state_message(state)  # type: ignore[misc]

    def process_endofpipe(self) -> None:
        failed = True
        try:
            super().process_endofpipe()  # type: ignore[misc]
            self.check_dead_letter_threshold()  # also a run that had no STATE
            failed = False
        finally:
            self._close_run(failed=failed)

    # --- what each target supplies ---------------------------------------------------
    def _run_lock(self) -> RunLock:
        """The lock on the run's state (ledger): a second run on it refuses to start."""
        raise NotImplementedError

    def _dead_letter_threshold(self) -> DeadLetterThreshold:
        raise NotImplementedError

    def _dead_letters_total(self) -> int:
        """Records (and lines) dead-lettered so far in this run."""
        raise NotImplementedError

    def _dead_letter_line(self, bad: BadLine) -> None:
        """Writes an unreadable input line to the dead-letter file."""
        raise NotImplementedError

    def _ledger_file(self) -> tuple[str, Path]:
        """The setting that places the run's ledger, and its path (for a failed write)."""
        raise NotImplementedError

    def _close_run(self, *, failed: bool) -> None:
        """Logs the run summary and closes the clients and the ledger; only once a run."""
        raise NotImplementedError
