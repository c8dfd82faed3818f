"""The durable spool: accepted deliveries wait here until Salesforce confirmed them.

SQLite in WAL mode with `synchronous=FULL`: a row is on disk (fsync'd) when `append`
returns, which is before the receiver answers 2xx, so a crash after the answer loses
nothing. A delivery whose event key is already spooled is not added again (webhook
retries, a replayed delivery). Rows leave only through `remove`, after the pipeline
confirmed (or dead-lettered) them.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_key TEXT NOT NULL UNIQUE,
    received_at REAL NOT NULL,   -- epoch seconds, receiver clock
    event_time REAL,             -- the event's own time (epoch seconds), when readable
    body BLOB NOT NULL           -- the exact bytes received
)
"""


@dataclass(frozen=True)
class SpooledDelivery:
    seq: int
    event_key: str
    received_at: float
    event_time: float | None
    body: bytes


class Spool:
    """One connection shared by the HTTP handlers and the worker, under a lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # each commit fsync'd, WAL included
        self._db.execute(_SCHEMA)
        self._changed = threading.Condition(self._lock)
        self.appended = 0  # rows added by this process: the worker's arrival rate

    def append(
        self, event_key: str, body: bytes, event_time: float | None, received_at: float
    ) -> bool:
        """Stores the delivery durably; False when that event is already spooled."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO spool (event_key, received_at, event_time, body) "
                "VALUES (?, ?, ?, ?)",
                (event_key, received_at, event_time, body),
            )
            added = cursor.rowcount == 1
            if added:
                self.appended += 1
                self._changed.notify_all()
            return added

    def oldest(self, limit: int) -> list[SpooledDelivery]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, event_key, received_at, event_time, body FROM spool "
                "ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
        return [SpooledDelivery(*row) for row in rows]

    def remove(self, seqs: list[int]) -> None:
        if not seqs:
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("DELETE FROM spool WHERE seq = ?", [(s,) for s in seqs])
            self._db.execute("COMMIT")

    def depth(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM spool").fetchone()[0])

    def oldest_received_at(self) -> float | None:
        with self._lock:
            row = self._db.execute("SELECT MIN(received_at) FROM spool").fetchone()
        return None if row[0] is None else float(row[0])

    def wait_for_rows(self, minimum: int, timeout: float) -> None:
        """Sleeps until at least `minimum` rows are spooled or `timeout` passed."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                count = int(self._db.execute("SELECT COUNT(*) FROM spool").fetchone()[0])
                left = deadline - time.monotonic()
                if count >= minimum or left <= 0:
                    return
                self._changed.wait(left)

    def wake(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def writable(self) -> bool:
        """A write transaction can be opened (the disk and the file accept writes)."""
        try:
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute("ROLLBACK")
        except sqlite3.Error:
            return False
        return True

    def close(self) -> None:
        with self._lock:
            self._db.close()
