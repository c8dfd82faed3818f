"""The dead-letter file both targets write, and its replay.

Format (`format: 1`), one JSON object per line, UTF-8, appended and fsync'd before the batch
that produced it counts as done:

- `format` (1), `at` (UTC ISO 8601 time written), `target` (the plugin that wrote it)
- `stream`, `reason` (a stable code), `message` (names the record and the field at fault)
- `record_key`: the record's key properties (or what identifies it at the source)
- `field`/`fields`: the field at fault and all fields at fault, when known;
  `status`/`detail`: what the service answered, when it answered (Appcues' HTTP status as a
  number, Salesforce's statusCode as text)
- `record`, `schema`, `key_properties`: the record as the target received it and the part of
  its stream's SCHEMA that describes it, so that it can be sent again (`--replay-dead-letters`)
- `line_number`, `line_text`: for an input line that was no usable Singer message
- plus the target's own fields (`profile_id`; `event_id`, `user_id`, `event_name`, `part`).

Each target writes `DeadLetter`s (a subclass adding its own fields) through a
`DeadLetterFile` (a subclass naming the target).

A replay sends every entry that holds a record and a schema through the target again (the same
checks, the same exactly-once strategy), then rewrites the file atomically: delivered records
leave it, records refused again stay with their new reason, entries without a record stay as
they were.
"""

from __future__ import annotations

import io
import json
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import click

from .local_files import local_file_errors

FORMAT = 1


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal) and value.is_finite():
        # the SDK reads JSON numbers as Decimal: written back as numbers, a replay sees numbers
        return int(value) if value == value.to_integral_value() else float(value)
    return str(value)


def dumps(value: Any) -> str:
    """One JSON line; readable UTF-8, or ASCII escapes when the value holds text UTF-8
    cannot encode (a lone surrogate), so such a record is kept too."""
    text = json.dumps(value, ensure_ascii=False, default=_json_default)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, ensure_ascii=True, default=_json_default)
    return text


def schema_for(schema: Mapping[str, Any] | None, record: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a stream schema that describes this record's properties (keeps lines short)."""
    properties = (schema or {}).get("properties") or {}
    return {
        "type": "object",
        "properties": {k: properties[k] for k in record if k in properties},
    }


def fsync_directory(path: Path) -> None:
    """Makes a file's creation or rename durable (POSIX; a no-op where unsupported)."""
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class DeadLetterWriter:
    """Appends dead-letter lines for one target; thread-safe; counts them by reason.

    `add` buffers, `flush` appends and fsyncs; `write` does both for one entry.
    """

    def __init__(self, path: str | Path, target: str) -> None:
        self.path = Path(path)
        self.target = target
        self.by_reason: Counter[str] = Counter()
        self._pending: list[str] = []
        self._lock = threading.Lock()

    def add(self, fields: Mapping[str, Any], *, count_as: str | None = None) -> None:
        """Buffers one entry; `count_as` is its key in the run summary (default: reason)."""
        entry = {"format": FORMAT, "at": datetime.now(UTC).isoformat(), "target": self.target}
        entry.update(fields)
        text = dumps(entry)
        with self._lock:
            self._pending.append(text)
            self.by_reason[count_as or str(fields.get("reason"))] += 1

    def write(self, fields: Mapping[str, Any], *, count_as: str | None = None) -> None:
        self.add(fields, count_as=count_as)
        self.flush()

    def flush(self) -> None:
        """Append what was added, durably, before the batch counts as done."""
        with self._lock:
            if not self._pending:
                return
            with local_file_errors(self.path, "dead_letter_path", "write the dead-letter file"):
                created = not self.path.exists()
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.write("".join(line + "\n" for line in self._pending))
                    handle.flush()
                    os.fsync(handle.fileno())
                if created:
                    fsync_directory(self.path.parent)
            self._pending.clear()

    @property
    def total(self) -> int:
        return sum(self.by_reason.values())


@dataclass(frozen=True)
class DeadLetter:
    """One record (or input line) not delivered, with why: the fields every target writes.

    `record_key`: what finds the record at its source; `fields`: the fields at fault, when
    known; `status`/`detail`: what the service answered, when it answered;
    `line_number`/`line_text`: for an input line that was no usable Singer message;
    `record`/`schema`/`key_properties`: what a replay sends. A target's subclass adds its
    own fields in `own_fields` and may count its letters under another key (`count_as`).
    """

    reason: str  # a stable code
    message: str  # names the record and the field or setting at fault
    _: KW_ONLY
    stream: str | None = None
    record_key: Mapping[str, Any] = field(default_factory=dict)
    fields: Sequence[str] = ()
    status: int | str | None = None
    detail: str | None = None
    line_number: int | None = None
    line_text: str | None = None
    record: Mapping[str, Any] | None = field(default=None, repr=False)
    schema: Mapping[str, Any] | None = field(default=None, repr=False)
    key_properties: Sequence[str] = ()

    def own_fields(self) -> dict[str, Any]:
        """The target's own fields of the entry."""
        return {}

    def count_as(self) -> str:
        """The key this letter is counted under in the run summary."""
        return self.reason

    def entry(self) -> dict[str, Any]:
        fields = list(self.fields)
        return {
            "stream": self.stream,
            "reason": self.reason,
            "message": self.message,
            "record_key": dict(self.record_key),
            "field": fields[0] if fields else None,
            "fields": fields,
            "status": self.status,
            "detail": self.detail,
            **self.own_fields(),
            "line_number": self.line_number,
            "line_text": self.line_text,
            "key_properties": list(self.key_properties),
            "schema": self.schema,
            "record": self.record,
        }


Letter = TypeVar("Letter", bound=DeadLetter)


class DeadLetterFile(Generic[Letter]):
    """One target's dead-letter file: `add` buffers a letter, `flush` appends what was added
    durably (fsync'd, before the batch counts as done), `write` does both; counts letters
    by their `count_as` key; thread-safe."""

    target: ClassVar[str]  # the plugin writing, in every entry's `target`

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._writer = DeadLetterWriter(self.path, self.target)

    @property
    def counts(self) -> Counter[str]:
        return self._writer.by_reason

    @property
    def total(self) -> int:
        return self._writer.total

    def add(self, letter: Letter) -> None:
        self._writer.add(letter.entry(), count_as=letter.count_as())

    def write(self, letter: Letter) -> None:
        self.add(letter)
        self.flush()

    def flush(self) -> None:
        self._writer.flush()


def read_dead_letters(path: str | Path) -> list[dict[str, Any]]:
    """Every entry of a dead-letter file (a line that is not a JSON object is skipped)."""
    entries, _ = _read(Path(path))
    return [e for e in entries if isinstance(e, dict)]


def _read(path: Path) -> tuple[list[Any], int]:
    """(entries, bytes read): a line that is not JSON is kept as its text."""
    if not path.exists():
        return [], 0
    data = path.read_bytes()
    entries: list[Any] = []
    for raw in data.splitlines():
        text = raw.decode("utf-8", "replace")
        if not text.strip():
            continue
        try:
            entries.append(json.loads(text))
        except ValueError:
            entries.append(text)
    return entries, len(data)


def replayable(entry: Any) -> bool:
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("record"), dict)
        and isinstance(entry.get("stream"), str)
        and isinstance(entry.get("schema"), dict)
    )


def singer_input(entries: Sequence[Mapping[str, Any]]) -> str:
    """Singer SCHEMA and RECORD lines for the replayable entries, in their order: one SCHEMA
    per stream (the union of the entries' schema parts), no STATE."""
    streams: dict[str, dict[str, Any]] = {}
    for entry in entries:
        stream = streams.setdefault(
            entry["stream"],
            {"properties": {}, "key_properties": list(entry.get("key_properties") or [])},
        )
        stream["properties"].update(entry["schema"].get("properties") or {})
    lines = [
        {
            "type": "SCHEMA",
            "stream": name,
            "schema": {"type": "object", "properties": spec["properties"]},
            "key_properties": spec["key_properties"],
        }
        for name, spec in streams.items()
    ]
    lines += [{"type": "RECORD", "stream": e["stream"], "record": e["record"]} for e in entries]
    return "".join(dumps(line) + "\n" for line in lines)


def rewrite_atomically(path: Path, lines: Iterable[str]) -> None:
    """Replace `path` with `lines`: a temporary file, fsync'd, renamed over it."""
    temporary = path.with_name(f".{path.name}.rewrite-{os.getpid()}")
    with temporary.open("w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    fsync_directory(path.parent)


@dataclass(frozen=True)
class ReplayResult:
    replayed: int  # entries sent again
    still_dead: int  # entries the replay dead-lettered again (with their new reason)
    kept: int  # entries without a record, kept as they were
    delivered: int  # replayed entries that left the file

    def describe(self, path: Path) -> str:
        return (
            f"Replayed {self.replayed} dead letter(s) of {path}: {self.delivered} delivered and "
            f"removed, {self.still_dead} dead-lettered again (new reason), {self.kept} without "
            "a record kept as they were"
        )


def replay(path: str | Path, run: Callable[[str, Path], None]) -> ReplayResult:
    """Replays a dead-letter file through a target.

    `run(singer_text, dead_letter_path)` runs the target on the text with its dead letters
    going to that path. If it raises, the file is left as it was (a later replay sends the
    records again: the targets' writes are idempotent and exactly-once).
    """
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"dead-letter file {source} does not exist")
    entries, size = _read(source)
    again = [e for e in entries if replayable(e)]
    kept = [e for e in entries if not replayable(e)]
    fresh = source.with_name(f".{source.name}.replay-{os.getpid()}")
    fresh.unlink(missing_ok=True)
    try:
        if again:
            run(singer_input(again), fresh)
        new_entries, _ = _read(fresh)
        # Lines appended by another run while this one replayed are kept too.
        with source.open("rb") as handle:
            handle.seek(size)
            appended = [raw.decode("utf-8", "replace") for raw in handle.read().splitlines()]
        rewrite_atomically(
            source,
            [
                *(e if isinstance(e, str) else dumps(e) for e in [*kept, *new_entries]),
                *(line for line in appended if line.strip()),
            ],
        )
    finally:
        fresh.unlink(missing_ok=True)
    return ReplayResult(
        replayed=len(again),
        still_dead=len(new_entries),
        kept=len(kept),
        delivered=max(len(again) - len(new_entries), 0),
    )


def replay_through(
    make_target: Callable[[dict[str, Any]], Any], config: Mapping[str, Any], path: str | Path
) -> ReplayResult:
    """Replays `path` through a target built by `make_target(config)`, with the target's
    `dead_letter_path` pointed at a fresh file for the replay's own dead letters."""

    def run(text: str, letters: Path) -> None:
        # The dead-letter threshold is off: records still refused stay in the file instead
        # of failing the replay (a fraction of 1 is never passed).
        target = make_target(
            {**config, "dead_letter_path": str(letters), "dead_letter_max_fraction": 1}
        )
        target.listen(io.StringIO(text))

    return replay(path, run)


REPLAY_HELP = (
    "Send the records of this dead-letter file through the target again (same settings, same "
    "checks), remove those delivered, keep the others with their new reason, and exit."
)


def replay_option() -> click.Option:
    """The `--replay-dead-letters FILE` option both targets add to their command line."""
    return click.Option(
        ["--replay-dead-letters", "replay_dead_letters"],
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help=REPLAY_HELP,
    )


def run_replay(
    make_target: Callable[[dict[str, Any]], Any], config: Mapping[str, Any], path: Path
) -> int:
    """The command: replays `path`, prints what happened (stderr), returns the exit code."""

    def make(settings: dict[str, Any]) -> Any:
        target = make_target(settings)
        # An environment variable must not send the replay's letters into the file replayed.
        used = str(target.config.get("dead_letter_path"))
        if used != settings["dead_letter_path"]:
            raise click.ClickException(
                f"the replay could not direct its dead letters to a new file (dead_letter_path "
                f"is {used}, from the environment?); unset it for the replay"
            )
        return target

    try:
        result = replay_through(make, config, path)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(result.describe(Path(path)), err=True)
    return 0
