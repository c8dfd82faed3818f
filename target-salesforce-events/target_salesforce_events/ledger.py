"""The local ledger (SQLite): which events Salesforce confirmed, and the latest NPS answers.

- confirmed_events: events whose every effect the settings ask for (their Event, their NPS
  answers) Salesforce confirmed. A cache in front of every exactly-once strategy, so a
  re-read event costs no call; losing it costs calls, never a duplicate. Pruned after
  `ledger_retention_days`.
- written_events / in_flight: the `local_ledger` strategy's record of inserted Events, its
  only guarantee against duplicates, hence never pruned.
- ingest_jobs / ingest_job_rows: the journal of Bulk ingest jobs created and not yet settled
  (results read). A run killed while a job ran leaves its row; the next run waits for that
  job and reads its results before it sends anything. Rows are kept only for the
  local_ledger strategy, which has no other way to learn what the job wrote.
- nps_latest: NPS latest-wins across runs, per field (one row per
  record and part, so bounded by the org's records): the time and a hash of the value this
  ledger last wrote, so a value someone else wrote since is told from its own.

Rows saying "written" or "confirmed" are added only after Salesforce confirmed the write.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Set
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from salesforce_appcues_clients.plugin_kit.local_files import LocalFileError, local_file_errors

_SCHEMA = """
CREATE TABLE IF NOT EXISTS written_events (
    event_id TEXT PRIMARY KEY,
    salesforce_id TEXT,
    written_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS in_flight (
    event_id TEXT PRIMARY KEY,   -- sent in an insert whose outcome is not recorded yet
    started_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS confirmed_events (
    event_id TEXT PRIMARY KEY,
    parts TEXT NOT NULL,         -- the effects confirmed, sorted and comma-separated
    confirmed_at TEXT NOT NULL   -- local time of the last confirmation, for pruning
);
CREATE INDEX IF NOT EXISTS confirmed_events_at ON confirmed_events (confirmed_at);
CREATE TABLE IF NOT EXISTS ingest_jobs (
    job_id TEXT PRIMARY KEY,
    started_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ingest_job_rows (
    job_id TEXT NOT NULL,
    row_key TEXT NOT NULL,       -- how a result row names it (external id or the row's cells)
    event_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ingest_job_rows_job ON ingest_job_rows (job_id);
CREATE TABLE IF NOT EXISTS nps_latest (
    record_id TEXT NOT NULL,
    part TEXT NOT NULL,          -- 'score' or 'feedback'
    answered_at TEXT NOT NULL,   -- the event's timestamp, sortable UTC text
    event_id TEXT NOT NULL,
    value_hash TEXT,             -- of the value written (NULL: unknown, e.g. an older ledger)
    PRIMARY KEY (record_id, part)
);
"""
# Columns added after a table's first release: (table, column, declaration).
_ADDED_COLUMNS = [("nps_latest", "value_hash", "TEXT")]
_CHUNK = 500  # SQLite host parameters per statement stay well under its limit


def ledger_time(value: datetime) -> str:
    """Fixed-width UTC text, so string order is time order."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _chunks(values: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


class LedgerCorruptError(LocalFileError):
    """The ledger file is no readable SQLite database. It is part of exactly-once, so the run
    stops: setting it aside silently could write Events a second time."""


def _corrupt(path: Path, exc: sqlite3.DatabaseError) -> LedgerCorruptError:
    return LedgerCorruptError(
        f"the ledger {path} is damaged or is no SQLite database ({exc}); the run stops before "
        "writing anything. It guards against duplicate Events, so: restore it from a backup; "
        "or, when --check reports the strategy upsert_by_external_id or query_then_insert "
        "(Salesforce itself keeps Events unique), move it aside and run again (re-read "
        "events then cost API calls, and NPS latest-wins restarts from the answers seen). "
        "Under local_ledger, moving it aside can write Events already written a second time."
    )


class Ledger:
    def __init__(self, path: Path) -> None:
        self.path = path
        setting = "ledger_path / state_dir"
        with local_file_errors(path.parent, setting, "create the ledger's folder"):
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with local_file_errors(path, setting, "open the ledger"):
                self._db = sqlite3.connect(str(path), isolation_level=None)
                self._db.execute("PRAGMA journal_mode=WAL")
                if self._db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                    raise sqlite3.DatabaseError("integrity check failed")
                self._db.executescript(_SCHEMA)
                self._add_columns()
        except sqlite3.DatabaseError as exc:
            if getattr(self, "_db", None) is not None:
                self._db.close()
            if isinstance(exc, sqlite3.OperationalError):  # cannot open, locked, disk full
                message = f"setting {setting}: cannot open the ledger {path}: {exc}"
                raise LocalFileError(message) from None
            raise _corrupt(path, exc) from None

    def _add_columns(self) -> None:
        """Brings a ledger made by an older release up to date; its rows keep working
        (an added column holds NULL there)."""
        for table, column, declaration in _ADDED_COLUMNS:
            held = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            if column in held:
                continue
            try:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
            except sqlite3.OperationalError as exc:  # another process added it meanwhile
                if "duplicate column" not in str(exc):
                    raise

    def written(self, event_ids: Iterable[str]) -> set[str]:
        """Those of `event_ids` already written to Salesforce."""
        found: set[str] = set()
        for chunk in _chunks(sorted(set(event_ids))):
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT event_id FROM written_events WHERE event_id IN ({marks})",
                chunk,
            )
            found.update(row[0] for row in rows)
        return found

    def add_written(self, pairs: Iterable[tuple[str, str | None]]) -> None:
        now = ledger_time(datetime.now(tz=UTC))
        rows = [(event_id, sf_id, now) for event_id, sf_id in pairs]
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO written_events VALUES (?, ?, ?)", rows)
            self._db.executemany("DELETE FROM in_flight WHERE event_id = ?", [r[:1] for r in rows])

    def mark_in_flight(self, event_ids: Iterable[str]) -> None:
        """Before an insert: if the run dies before its outcome is recorded, the next run
        checks Salesforce for these instead of inserting them again."""
        now = ledger_time(datetime.now(tz=UTC))
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO in_flight VALUES (?, ?)", [(e, now) for e in event_ids]
            )

    def clear_in_flight(self, event_ids: Iterable[str]) -> None:
        """After Salesforce refused these: they were not written."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "DELETE FROM in_flight WHERE event_id = ?", [(e,) for e in event_ids]
            )

    def in_flight(self, event_ids: Iterable[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(sorted(set(event_ids))):
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT event_id FROM in_flight WHERE event_id IN ({marks})", chunk
            )
            found.update(row[0] for row in rows)
        return found

    def open_ingest_job(self, job_id: str, rows: Iterable[tuple[str, str]] = ()) -> None:
        """Before a job's data is sent: (row key, event id) of the rows it will hold."""
        now = ledger_time(datetime.now(tz=UTC))
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("INSERT OR REPLACE INTO ingest_jobs VALUES (?, ?)", (job_id, now))
            self._db.executemany(
                "INSERT INTO ingest_job_rows VALUES (?, ?, ?)",
                [(job_id, key, event_id) for key, event_id in rows],
            )

    def open_ingest_jobs(self) -> list[str]:
        return [row[0] for row in self._db.execute("SELECT job_id FROM ingest_jobs ORDER BY 1")]

    def ingest_job_rows(self, job_id: str) -> dict[str, list[str]]:
        """Row key -> event ids (several when rows are keyed by identical content)."""
        found: dict[str, list[str]] = {}
        rows = self._db.execute(
            "SELECT row_key, event_id FROM ingest_job_rows WHERE job_id = ?", (job_id,)
        )
        for key, event_id in rows:
            found.setdefault(key, []).append(event_id)
        return found

    def settle_ingest_job(self, job_id: str) -> None:
        """After the job's outcome is recorded."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM ingest_job_rows WHERE job_id = ?", (job_id,))
            self._db.execute("DELETE FROM ingest_jobs WHERE job_id = ?", (job_id,))

    def confirmed(self, required: Mapping[str, Set[str]]) -> set[str]:
        """Those event ids of `required` whose confirmed effects include all required ones."""
        held = self._parts_of(required)
        return {e for e, parts in required.items() if e in held and parts <= held[e]}

    def add_confirmed(self, rows: Iterable[tuple[str, Set[str]]]) -> None:
        """After Salesforce confirmed these effects (added to any confirmed before)."""
        wanted = {event_id: set(parts) for event_id, parts in rows}
        if not wanted:
            return
        now = ledger_time(datetime.now(tz=UTC))
        with self._db:
            self._db.execute("BEGIN")
            for event_id, parts in self._parts_of(wanted).items():
                wanted[event_id] |= parts
            self._db.executemany(
                "INSERT OR REPLACE INTO confirmed_events VALUES (?, ?, ?)",
                [(e, ",".join(sorted(parts)), now) for e, parts in wanted.items()],
            )

    def prune_confirmed(self, before: datetime) -> int:
        """Forget confirmations older than `before`; returns how many. The cache only: the
        ledger strategy's written_events and the NPS rows are kept."""
        with self._db:
            self._db.execute("BEGIN")
            cursor = self._db.execute(
                "DELETE FROM confirmed_events WHERE confirmed_at < ?", (ledger_time(before),)
            )
        return cursor.rowcount

    def _parts_of(self, event_ids: Iterable[str]) -> dict[str, frozenset[str]]:
        held: dict[str, frozenset[str]] = {}
        for chunk in _chunks(sorted(set(event_ids))):
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT event_id, parts FROM confirmed_events WHERE event_id IN ({marks})",
                chunk,
            )
            held.update((row[0], frozenset(row[1].split(","))) for row in rows)
        return held

    def nps_latest(self, record_ids: Iterable[str]) -> dict[tuple[str, str], tuple[str, str]]:
        """(record id, part) -> (answered_at ledger time, event id) of the last applied answer."""
        latest: dict[tuple[str, str], tuple[str, str]] = {}
        for chunk in _chunks(sorted(set(record_ids))):
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                "SELECT record_id, part, answered_at, event_id FROM nps_latest "
                f"WHERE record_id IN ({marks})",
                chunk,
            )
            for record_id, part, answered_at, event_id in rows:
                latest[(record_id, part)] = (answered_at, event_id)
        return latest

    def nps_written_values(self, record_ids: Iterable[str]) -> dict[tuple[str, str], str | None]:
        """(record id, part) -> the hash of the value this ledger last wrote (None: unknown)."""
        found: dict[tuple[str, str], str | None] = {}
        for chunk in _chunks(sorted(set(record_ids))):
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT record_id, part, value_hash FROM nps_latest WHERE record_id IN ({marks})",
                chunk,
            )
            found.update(((record_id, part), held) for record_id, part, held in rows)
        return found

    def set_nps_latest(self, rows: Iterable[tuple[str, str, datetime, str, str | None]]) -> None:
        """Rows of (record id, part, answered at, event id, value hash), applied only if newer."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO nps_latest (record_id, part, answered_at, event_id, value_hash) "
                "VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (record_id, part) DO UPDATE SET "
                "answered_at = excluded.answered_at, event_id = excluded.event_id, "
                "value_hash = excluded.value_hash "
                "WHERE (excluded.answered_at, excluded.event_id) > "
                "(nps_latest.answered_at, nps_latest.event_id)",
                [(rid, part, ledger_time(at), eid, held) for rid, part, at, eid, held in rows],
            )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
