"""SIGTERM / SIGINT: stop a plugin without confirming what it did not write.

singer-sdk's own handler drains every sink, emits the last STATE it received and exits 0,
so a stopped target would confirm records it never wrote. Instead:

- outside a protected section (reading input, mapping records) the signal raises
  `Terminated` at once: nothing is in flight, nothing is lost but unconfirmed input;
- inside one (a drain, a message being written) it only records the request: the work in
  flight finishes, the next `checkpoint()` (before the next request) raises `Terminated`,
  and the section raises it on exit if nobody did.

The plugin then exits with 128 + the signal number, like a shell reports a killed process.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

log = logging.getLogger(__name__)


class Terminated(Exception):  # noqa: N818 - it is what happened, not an error of ours
    """A SIGTERM or SIGINT stopped the run."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class StopRequest:
    """The process's stop request: set by the signal handler, read at checkpoints."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._depth = 0  # protected sections open (a drain in the main or a worker thread)
        self._lock = threading.Lock()

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        """The signal handler (it runs in the main thread, between two bytecodes)."""
        first = self.signum is None
        if first:
            self.signum = signum
        name = signal.Signals(signum).name
        if self._depth == 0:
            log.warning("Received %s: stopping now; nothing unconfirmed is confirmed", name)
            raise Terminated(self.signum or signum)
        log.warning(
            "Received %s: finishing the requests in flight, then stopping; no STATE beyond "
            "the confirmed writes",
            name,
        )

    def checkpoint(self) -> None:
        """Raises `Terminated` when a stop was requested; call it before starting a request."""
        if self.signum is not None:
            raise Terminated(self.signum)

    @contextmanager
    def protected(self) -> Iterator[None]:
        """A section a signal must not cut: the stop waits for its end, and the end of the
        outermost section raises `Terminated` if nothing did before."""
        with self._lock:
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
        if self._depth == 0:
            self.checkpoint()

    def install(self) -> None:
        """Handles SIGTERM and SIGINT (main thread only, as `signal.signal` requires)."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.handle)
            signal.signal(signal.SIGINT, self.handle)


# One per process: signals are per process, and every client and sink checks the same one.
STOP = StopRequest()
