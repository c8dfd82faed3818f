"""The local ledger of what Appcues confirmed: one digest per profile and per membership.

A record whose mapped attributes hash to the confirmed digest needs no Appcues call. Rows
are written only after Appcues confirmed the write, so a crash or an outage can only make
the next run send again, never skip something unconfirmed.

Entries are kept per stream: two streams may feed one profile with different attributes
(CRM fields from Contact, usage fields from a warehouse table); one shared digest would make
each look changed after the other's write, and both would be re-sent on every run.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from salesforce_appcues_clients.plugin_kit.local_files import LocalFileError, local_file_errors

log = logging.getLogger(__name__)

ProfileKind = Literal["user", "group"]
Kind = Literal[ProfileKind, "membership"]

# v2: entries keyed by stream; a file of another layout is set aside, never misread.
_LAYOUT = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS confirmed (
    account_id   TEXT NOT NULL,
    kind         TEXT NOT NULL,
    stream       TEXT NOT NULL,
    profile_id   TEXT NOT NULL,
    digest       TEXT NOT NULL,
    confirmed_at TEXT NOT NULL,
    PRIMARY KEY (account_id, kind, stream, profile_id)
) WITHOUT ROWID
"""

# SQLite caps bound parameters per statement; stay well below it.
_LOOKUP_CHUNK = 500


class Ledger:
    """SQLite file under `state_dir`, keyed by Appcues account, kind, stream and profile id.

    One connection guarded by a lock: sinks drain in parallel threads.
    """

    FILE_NAME = "appcues-profiles-ledger.sqlite3"

    def __init__(self, state_dir: str | Path, account_id: str) -> None:
        directory = Path(state_dir)
        with local_file_errors(directory, "state_dir", "create the folder"):
            directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / self.FILE_NAME
        self.account_id = account_id
        self._lock = threading.Lock()
        try:
            self._db = self._connect()
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError):  # cannot open, locked, disk full
                message = f"setting state_dir: cannot open the ledger {self.path}: {exc}"
                raise LocalFileError(message) from None
            self._set_aside(exc)
            self._db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        with local_file_errors(self.path, "state_dir", "open the ledger"):
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            self._prepare(db)
        except BaseException:
            db.close()
            raise
        return db

    def _set_aside(self, exc: sqlite3.DatabaseError) -> None:
        """The ledger is only a cache of what Appcues confirmed: a damaged one is renamed (kept
        for inspection) and the run goes on with an empty one, which costs one full re-send."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        aside = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        with local_file_errors(self.path, "state_dir", "set aside the damaged ledger"):
            self.path.rename(aside)
            for suffix in ("-wal", "-shm"):
                companion = self.path.with_name(self.path.name + suffix)
                if companion.exists():
                    companion.rename(aside.with_name(aside.name + suffix))
        log.warning(
            "The ledger %s is damaged or no SQLite database (%s): set aside as %s; this run "
            "starts an empty ledger, so every profile is sent once more",
            self.path,
            exc,
            aside,
        )

    def _prepare(self, db: sqlite3.Connection) -> None:
        db.execute("PRAGMA journal_mode=WAL")
        if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise sqlite3.DatabaseError("integrity check failed")
        db.execute("PRAGMA synchronous=NORMAL")
        if db.execute("PRAGMA user_version").fetchone()[0] not in (0, _LAYOUT):
            db.execute("DROP TABLE IF EXISTS confirmed")  # worst case: one full re-send
        db.execute(_SCHEMA)
        db.execute(f"PRAGMA user_version = {_LAYOUT}")

    def digests(self, kind: Kind, stream: str, profile_ids: Iterable[str]) -> dict[str, str]:
        """Confirmed digest per profile id, for those the ledger knows."""
        ids = list(dict.fromkeys(profile_ids))
        found: dict[str, str] = {}
        with self._lock:
            for start in range(0, len(ids), _LOOKUP_CHUNK):
                chunk = ids[start : start + _LOOKUP_CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    "SELECT profile_id, digest FROM confirmed WHERE account_id = ? AND kind = ?"
                    f" AND stream = ? AND profile_id IN ({marks})",
                    (self.account_id, kind, stream, *chunk),
                )
                found.update(rows)
        return found

    def confirm(self, kind: Kind, stream: str, digests: Mapping[str, str]) -> None:
        """Record what Appcues confirmed; call only after the write succeeded."""
        if not digests:
            return
        now = datetime.now(UTC).isoformat()
        rows = [
            (self.account_id, kind, stream, pid, digest, now) for pid, digest in digests.items()
        ]
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "INSERT INTO confirmed"
                    " (account_id, kind, stream, profile_id, digest, confirmed_at)"
                    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (account_id, kind, stream, profile_id)"
                    " DO UPDATE SET digest = excluded.digest,"
                    " confirmed_at = excluded.confirmed_at",
                    rows,
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def count(self, kind: Kind) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM confirmed WHERE account_id = ? AND kind = ?",
                (self.account_id, kind),
            ).fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
