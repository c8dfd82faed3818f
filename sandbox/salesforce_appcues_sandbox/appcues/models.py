"""The Appcues account's state: profiles, groups, membership and the one event store (SQLite).

Every reader (per-user event list, analytics query and export, webhook sender) reads the
same `events` table, so an event that arrives by any path is seen by all of them.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Limits on profile attributes (not published by Appcues; conservative choices).
MAX_ATTRIBUTE_NAME = 255
MAX_ATTRIBUTE_VALUE = 4096

# The columns of an event row besides its attributes/context JSON; the analytics engine
# reads them directly. Each is derived on write from the event's attributes or context.
EVENT_COLUMNS = (
    "seq",
    "event_id",
    "timestamp_ms",
    "arrival_ms",
    "user_id",
    "group_id",
    "name",
    "flow_id",
    "flow_version",
    "flow_type",
    "step_id",
    "checklist_id",
    "checklist_item_id",
    "goal_id",
    "goal_version",
    "score",
    "feedback",
    "url",
    "current_page_url",
    "session_id",
    "source",
    "attributes",
    "context",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    user_id TEXT PRIMARY KEY, attrs TEXT NOT NULL, updated_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS groups (
    group_id TEXT PRIMARY KEY, attrs TEXT NOT NULL, updated_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS memberships (
    group_id TEXT NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (group_id, user_id));
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    timestamp_ms INTEGER NOT NULL,
    arrival_ms INTEGER NOT NULL,
    user_id TEXT NOT NULL,
    group_id TEXT,
    name TEXT NOT NULL,
    flow_id TEXT,
    flow_version INTEGER,
    flow_type TEXT,
    step_id TEXT,
    checklist_id TEXT,
    checklist_item_id TEXT,
    goal_id TEXT,
    goal_version INTEGER,
    score INTEGER,
    feedback TEXT,
    url TEXT,
    current_page_url TEXT,
    session_id TEXT,
    source TEXT NOT NULL,
    attributes TEXT NOT NULL,
    context TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_time ON events (timestamp_ms, seq);
CREATE INDEX IF NOT EXISTS events_by_user ON events (user_id, timestamp_ms);
"""


# One encoder for every write: json.dumps with options builds a new encoder per call.
compact_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class ValidationError(ValueError):
    """A request value Appcues would refuse with 400; the message names the field."""


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def iso_ms(ms: int, tz: Any = UTC) -> str:
    """Epoch ms -> RFC 3339 with milliseconds (`Z` for UTC)."""
    text = datetime.fromtimestamp(ms / 1000, tz).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def parse_timestamp(value: Any, field_name: str = "timestamp") -> int:
    """RFC 3339 string or epoch milliseconds -> epoch ms (naive strings are UTC)."""
    if isinstance(value, bool) or value is None:
        raise ValidationError(f"{field_name} must be an RFC 3339 datetime or epoch milliseconds")
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return int(text)
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ValidationError(
                f"{field_name} {value!r} is not an RFC 3339 datetime or epoch milliseconds"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return epoch_ms(moment)
    raise ValidationError(f"{field_name} must be an RFC 3339 datetime or epoch milliseconds")


# Epoch ms below this are before March 1973; as epoch seconds they would be after year 5000.
EPOCH_MS_FLOOR = 10**11


def parse_event_timestamp(value: Any) -> int:
    """An event's `timestamp`: RFC 3339 (documented) or epoch ms (third-party clients).

    A number below EPOCH_MS_FLOOR is refused rather than stored in early 1970: it is almost
    surely epoch seconds, which no source documents (*choice*, docs/sandbox.md).
    """
    ms = parse_timestamp(value)
    numeric = isinstance(value, int | float) or (isinstance(value, str) and value.strip().isdigit())
    if numeric and ms < EPOCH_MS_FLOOR:
        raise ValidationError(
            f"timestamp {value!r} is not epoch milliseconds (it would be {iso_ms(ms)}); epoch"
            " seconds are not accepted: send an RFC 3339 datetime or epoch milliseconds"
        )
    return ms


def check_attributes(attrs: Any, *, what: str = "profile") -> dict[str, Any]:
    """A profile update: a flat object of string/number/boolean/null, no `_` names."""
    if not isinstance(attrs, dict):
        raise ValidationError(f"{what} update must be a JSON object of attributes")
    for name, value in attrs.items():
        if not name:
            raise ValidationError("attribute names must not be empty")
        if len(name) > MAX_ATTRIBUTE_NAME:
            raise ValidationError(
                f"attribute name {name[:40]!r}... is longer than {MAX_ATTRIBUTE_NAME} characters"
            )
        if name.startswith("_"):
            raise ValidationError(
                f"attribute {name!r} is reserved: names beginning with '_' are set by Appcues"
            )
        if isinstance(value, dict | list):
            shape = "array" if isinstance(value, list) else "object"
            raise ValidationError(
                f"attribute {name!r} has a nested {shape} value;"
                " values must be a string, number, boolean or null"
            )
        if isinstance(value, str) and len(value) > MAX_ATTRIBUTE_VALUE:
            raise ValidationError(
                f"attribute {name!r} is longer than {MAX_ATTRIBUTE_VALUE} characters"
            )
    return attrs


def _text(value: Any) -> str | None:
    return None if value is None or isinstance(value, dict | list) else str(value)


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@dataclass
class Event:
    """An event as it enters the store, by whatever path."""

    user_id: str
    name: str
    timestamp_ms: int
    attributes: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    group_id: str | None = None
    event_id: str = ""
    source: str = "api"

    def row(self, arrival_ms: int) -> tuple[Any, ...]:
        a, c = self.attributes, self.context
        url = c.get("url") or a.get("_currentPageUrl")
        return (
            self.event_id or str(uuid.uuid4()),
            self.timestamp_ms,
            max(arrival_ms, self.timestamp_ms),
            self.user_id,
            self.group_id,
            self.name,
            _text(a.get("flowId")),
            _int(a.get("flowVersion")),
            _text(a.get("flowType")),
            _text(a.get("stepId")),
            _text(a.get("checklistId")),
            _text(a.get("itemId")),
            _text(a.get("goalId")),
            _int(a.get("goalVersion")),
            _int(a.get("score")),
            _text(a.get("feedback")),
            _text(url),
            _text(a.get("_currentPageUrl") or url),
            _text(a.get("sessionId") or c.get("session_id")),
            self.source,
            compact_json(a),
            compact_json(c),
        )


_INSERT_EVENT = (
    "INSERT OR IGNORE INTO events (event_id, timestamp_ms, arrival_ms, user_id, group_id, name,"
    " flow_id, flow_version, flow_type, step_id, checklist_id, checklist_item_id, goal_id,"
    " goal_version, score, feedback, url, current_page_url, session_id, source, attributes,"
    " context) VALUES (" + ",".join("?" * 22) + ")"
)


class AppcuesStore:
    """One account's data. Thread-safe: every access holds one lock around one connection."""

    def __init__(self, data_dir: Path | None) -> None:
        target = str(data_dir / "appcues.sqlite3") if data_dir is not None else ":memory:"
        self._db = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        with self._lock:
            self._db.executescript(_SCHEMA)
            if data_dir is not None:
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=OFF")
        self._listeners: list[Any] = []

    @contextmanager
    def locked(self) -> Iterator[sqlite3.Connection]:
        """The connection, held for the block (readers such as analytics use it directly)."""
        with self._lock:
            yield self._db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def reset(self) -> None:
        with self.transaction() as db:
            for table in ("users", "groups", "memberships", "events"):
                db.execute(f"DELETE FROM {table}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- profiles ----------------------------------------------------------------------
    def get_profile(self, kind: str, key: str) -> dict[str, Any] | None:
        table, id_field = _table(kind)
        with self.locked() as db:
            row = db.execute(
                f"SELECT attrs FROM {table} WHERE {id_field} = ?",
                (key,),
            ).fetchone()
        if row is None:
            return None
        return {id_field: key, **json.loads(row["attrs"])}

    def merge_profiles(
        self, kind: str, updates: Iterable[tuple[str, dict[str, Any]]], now_ms: int
    ) -> int:
        """Create or merge each (id, attrs); one transaction. Returns profiles written."""
        table, id_field = _table(kind)
        written = 0
        with self.transaction() as db:
            for key, attrs in updates:
                row = db.execute(
                    f"SELECT attrs FROM {table} WHERE {id_field} = ?",
                    (key,),
                ).fetchone()
                merged = {**json.loads(row["attrs"]), **attrs} if row else dict(attrs)
                if kind == "user":  # Appcues' own bookkeeping attribute, epoch ms
                    merged["_updatedAt"] = now_ms
                db.execute(
                    f"INSERT OR REPLACE INTO {table} ({id_field}, attrs, updated_ms)"
                    " VALUES (?, ?, ?)",
                    (key, compact_json(merged), now_ms),
                )
                written += 1
        return written

    def bulk_merge_profiles(
        self, kind: str, updates: Iterable[tuple[str, dict[str, Any]]], now_ms: int
    ) -> None:
        """Fast merge for the generator (its values are never null, which json_patch drops)."""
        table, id_field = _table(kind)
        sql = (
            f"INSERT INTO {table} ({id_field}, attrs, updated_ms) VALUES (?, ?, ?)"
            f" ON CONFLICT({id_field}) DO UPDATE SET attrs = json_patch({table}.attrs,"
            " excluded.attrs), updated_ms = excluded.updated_ms"
        )
        with self.transaction() as db:
            db.executemany(sql, ((k, compact_json(a), now_ms) for k, a in updates))

    def add_memberships(self, pairs: Iterable[tuple[str, str]]) -> None:
        """(group_id, user_id) pairs in one transaction."""
        with self.transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO memberships (group_id, user_id) VALUES (?, ?)", pairs
            )

    def ensure_user(self, user_id: str, now_ms: int) -> None:
        with self.locked() as db:
            db.execute(
                "INSERT OR IGNORE INTO users (user_id, attrs, updated_ms) VALUES (?, ?, ?)",
                (user_id, "{}", now_ms),
            )

    def delete_user(self, user_id: str) -> bool:
        """Removes the profile and its memberships; events stay (as in Appcues' analytics)."""
        with self.transaction() as db:
            gone = db.execute("DELETE FROM users WHERE user_id = ?", (user_id,)).rowcount
            db.execute("DELETE FROM memberships WHERE user_id = ?", (user_id,))
        return gone > 0

    def add_members(self, group_id: str, user_ids: Sequence[str]) -> None:
        with self.transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO memberships (group_id, user_id) VALUES (?, ?)",
                [(group_id, u) for u in user_ids],
            )

    def group_members(self, group_id: str) -> list[str]:
        with self.locked() as db:
            rows = db.execute(
                "SELECT user_id FROM memberships WHERE group_id = ? ORDER BY user_id", (group_id,)
            ).fetchall()
        return [r["user_id"] for r in rows]

    def user_groups(self, user_id: str) -> list[str]:
        with self.locked() as db:
            rows = db.execute(
                "SELECT group_id FROM memberships WHERE user_id = ? ORDER BY group_id", (user_id,)
            ).fetchall()
        return [r["group_id"] for r in rows]

    # --- events ------------------------------------------------------------------------
    def add_events(self, events: Iterable[Event], arrival_ms: int) -> int:
        """Store events (an event id seen before is ignored). Returns how many were new."""
        with self.transaction() as db:
            before = db.total_changes
            db.executemany(_INSERT_EVENT, (e.row(arrival_ms) for e in events))
            added = db.total_changes - before
        return added

    def user_events(self, user_id: str, limit: int) -> list[sqlite3.Row]:
        with self.locked() as db:
            return db.execute(
                "SELECT * FROM events WHERE user_id = ? ORDER BY timestamp_ms DESC, seq DESC"
                " LIMIT ?",
                (user_id, limit),
            ).fetchall()

    def events_after(self, seq: int, limit: int) -> list[sqlite3.Row]:
        with self.locked() as db:
            return db.execute(
                "SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
            ).fetchall()

    def last_seq(self) -> int:
        with self.locked() as db:
            row = db.execute("SELECT COALESCE(MAX(seq), 0) AS s FROM events").fetchone()
        return int(row["s"])

    def counts(self) -> dict[str, int]:
        with self.locked() as db:
            return {
                table: int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
                for table in ("users", "groups", "memberships", "events")
            }


def _table(kind: str) -> tuple[str, str]:
    if kind == "user":
        return "users", "user_id"
    if kind == "group":
        return "groups", "group_id"
    raise ValueError(kind)


def event_json(row: sqlite3.Row, tz: Any = UTC) -> dict[str, Any]:
    """An event as the per-user list and the webhook payload show it."""
    return {
        "id": row["event_id"],
        "name": row["name"],
        "timestamp": iso_ms(row["timestamp_ms"], tz),
        "user_id": row["user_id"],
        "group_id": row["group_id"],
        "attributes": json.loads(row["attributes"]),
        "context": json.loads(row["context"]),
    }


def utc_now_ms() -> int:
    return epoch_ms(datetime.now(UTC))


# --- asynchronous jobs: bulk imports and analytics exports ------------------------------
@dataclass
class ImportJob:
    """A bulk import; `to_json` is the client contract of `GET /jobs/{job_id}`."""

    job_id: str
    kind: str  # profiles | groups | events
    created_ms: int
    updated_ms: int
    status: str = "queued"  # queued | running | complete | failed
    total_rows: int = 0
    processed_rows: int = 0  # rows handled so far, failed ones included
    failed_rows: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    # The account's import switches when the job was created (they shape the whole job).
    style: str = "detailed"  # detailed | minimal | ignores_body
    row_base: int = 1

    def to_json(self) -> dict[str, Any]:
        """The job as its style answers it (the real job object is not public; see docs)."""
        style = self.style
        head = {
            "job_id": self.job_id,
            "status": self.status,
            "created_at": iso_ms(self.created_ms),
            "updated_at": iso_ms(self.updated_ms),
        }
        if style in ("minimal", "ignores_body"):
            # minimal: like Appcues' analytics export jobs, a status and nothing more;
            # ignores_body: the same answer, though the body was never read
            head["status"] = "done" if self.status == "complete" else self.status
            return head
        return {
            **head,
            "total_rows": self.total_rows,
            "processed_rows": self.processed_rows,
            "failed_rows": self.failed_rows,
            "errors": list(self.errors),
        }


@dataclass
class ExportJob:
    """An analytics export; the rows are kept in memory until reset."""

    job_id: str
    spec: dict[str, Any]
    created_ms: int
    status: str = "queued"  # queued | running | done | failed
    failure_reason: str | None = None
    content: bytes = b""
    row_count: int = 0


class JobRegistry:
    """Import and export jobs of the account, in memory (jobs do not outlive the process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.imports: dict[str, ImportJob] = {}
        self.exports: dict[str, ExportJob] = {}

    def add_import(self, job: ImportJob) -> None:
        with self._lock:
            self.imports[job.job_id] = job

    def add_export(self, job: ExportJob) -> None:
        with self._lock:
            self.exports[job.job_id] = job

    def import_jobs(self) -> list[ImportJob]:
        with self._lock:
            return sorted(self.imports.values(), key=lambda j: j.created_ms, reverse=True)

    def update_import(self, job: ImportJob, now_ms: int, **changes: Any) -> None:
        with self._lock:
            for key, value in changes.items():
                setattr(job, key, value)
            job.updated_ms = now_ms

    def import_snapshot(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            job = self.imports.get(job_id)
            return job.to_json() if job else None

    def summary(self) -> dict[str, Any]:
        with self._lock:
            by_status: dict[str, int] = {}
            for job in self.imports.values():
                by_status[job.status] = by_status.get(job.status, 0) + 1
            return {
                "import_jobs": len(self.imports),
                "import_jobs_by_status": by_status,
                "exports": len(self.exports),
            }

    def clear(self) -> None:
        with self._lock:
            self.imports.clear()
            self.exports.clear()


IMPORT_JOB_STYLES = ("detailed", "minimal", "ignores_body")
IMPORT_FORMATS = ("json", "ndjson", "csv")
_SETTING_CHOICES: dict[str, tuple[str, ...]] = {
    "analytics_window_end": ("exclusive", "inclusive"),
    "analytics_window_precision": ("ms", "s"),
    "analytics_export_order": ("spec", "reverse"),
}


@dataclass
class AccountSettings:
    """Knobs set by service options and the control API (`POST settings`).

    The `import_*` switches answer each plausible way where Appcues' import contract is not
    public (docs/sandbox.md, "Bulk import and jobs").
    """

    rate_limit_per_second: int = 60
    analytics_delay_seconds: float = 0.0
    max_import_bytes: int = 50 * 1024 * 1024
    export_running_seconds: float = 0.2  # how long an export stays `running` at least
    export_url_ttl_seconds: int = 3600  # presigned download URL lifetime (sandbox clock)
    import_job_style: str = "detailed"  # detailed | minimal | ignores_body
    import_formats: list[str] = field(default_factory=lambda: ["ndjson", "csv"])
    import_error_row_base: int = 1  # errors[].row: 1 = first data row is 1; 0 = it is 0
    import_job_stalls: bool = False  # jobs stay `running` forever and apply nothing
    # How analytics compares an event with the spec's time window (undocumented; see
    # docs/sandbox.md): the end excluded or included, bounds in milliseconds or seconds.
    analytics_window_end: str = "exclusive"
    analytics_window_precision: str = "ms"
    # Whether an export file honours the spec's order_by is undocumented: `reverse` writes
    # its rows in the opposite order (the worst case for a reader relying on it).
    analytics_export_order: str = "spec"
    read_only_key: int = 0  # 1: the key may read but not write (403 on every write)

    def update(self, changes: dict[str, Any]) -> None:
        """Applies known keys with type checks; raises ValueError naming a bad one."""
        for key, value in changes.items():
            if key not in self.__dataclass_fields__:
                raise ValueError(f"unknown setting {key!r}")
            setattr(self, key, self._checked(key, value))

    def _checked(self, key: str, value: Any) -> Any:
        if key in _SETTING_CHOICES:
            if value not in _SETTING_CHOICES[key]:
                choices = " or ".join(_SETTING_CHOICES[key])
                raise ValueError(f"setting {key!r} must be {choices}")
            return value
        if key == "import_job_style":
            if value not in IMPORT_JOB_STYLES:
                raise ValueError(f"import_job_style must be one of {list(IMPORT_JOB_STYLES)}")
            return value
        if key == "import_formats":
            if not isinstance(value, list) or not all(v in IMPORT_FORMATS for v in value):
                raise ValueError(f"import_formats must be a list drawn from {list(IMPORT_FORMATS)}")
            return list(dict.fromkeys(value))
        if key == "import_job_stalls":
            if not isinstance(value, bool):
                raise ValueError("import_job_stalls must be true or false")
            return value
        if key == "import_error_row_base":
            if value not in (0, 1) or isinstance(value, bool):
                raise ValueError("import_error_row_base must be 0 or 1")
            return int(value)
        current = getattr(self, key)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"setting {key!r} must be a non-negative number")
        if isinstance(current, int) and not isinstance(current, bool):
            if key == "rate_limit_per_second" and value < 1:
                raise ValueError("rate_limit_per_second must be at least 1")
            value = int(value)
        return value

    def to_json(self) -> dict[str, Any]:
        return {
            k: list(v) if isinstance(v := getattr(self, k), list) else v
            for k in self.__dataclass_fields__
        }

    def analytics_window(self) -> dict[str, Any]:
        """compile_spec's window keywords."""
        return {
            "end_inclusive": self.analytics_window_end == "inclusive",
            "precision": self.analytics_window_precision,
        }
