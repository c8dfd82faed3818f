"""Bulk import bodies (JSON array, NDJSON, CSV, multipart `file`) -> rows -> the store.

Row numbers in job errors are 1-based by default: the array index for JSON, the line number
for NDJSON, the data row for CSV (the header is row 0, so row 1 is the first line after it).
The setting `import_error_row_base: 0` numbers them from 0 instead (Appcues' choice is not
public).
"""

from __future__ import annotations

import csv
import email.parser
import email.policy
import io
import json
import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any

from .models import (
    AppcuesStore,
    Event,
    ImportJob,
    ValidationError,
    check_attributes,
    parse_event_timestamp,
)

KINDS = ("profiles", "groups", "events")
ID_FIELD = {"profiles": "user_id", "groups": "group_id", "events": "user_id"}
EVENT_FIELDS = {"user_id", "name", "timestamp", "attributes", "group_id", "context"}
MAX_ERRORS_KEPT = 1000
CHUNK = 1000

_NDJSON_TYPES = {
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/x-jsonlines",
    "application/jsonlines",
}
_FORMAT_OF = {
    "application/json": "json",
    "text/csv": "csv",
    "application/csv": "csv",
    **dict.fromkeys(_NDJSON_TYPES, "ndjson"),
}
_MEDIA_OF = {"json": "application/json", "ndjson": "application/x-ndjson", "csv": "text/csv"}
_NUMBER = re.compile(r"-?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?")


class PayloadError(ValueError):
    """The body cannot be accepted at all; `status` is the HTTP answer (400 or 415)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Payload:
    """An accepted body: its format and raw text; rows are parsed by the worker."""

    fmt: str  # json | ndjson | csv
    text: str
    rows: list[Any] | None = None  # JSON arrays are parsed up front (400 if malformed)


def accept(
    content_type: str, body: bytes, formats: Collection[str] = ("json", "ndjson", "csv")
) -> Payload:
    """Checks what can be checked synchronously; raises PayloadError.

    `formats` are the body formats the account accepts (setting `import_formats`); another
    format is refused with 415 before its body is read.
    """
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "multipart/form-data":
        body, filename, media = _multipart_file(content_type, body)
        media = _media_from_part(media, filename, body)
    fmt = _FORMAT_OF.get(media, "")
    if fmt not in formats:
        accepted = ", ".join(_MEDIA_OF[f] for f in formats) or "none"
        raise PayloadError(
            415,
            f"unsupported Content-Type {media or '(none)'!r} for imports; accepted: {accepted}"
            + (" (or multipart/form-data with a 'file' part)" if formats else ""),
        )
    if not body.strip():
        raise PayloadError(400, "the import body is empty")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PayloadError(400, "the import body is not UTF-8") from None
    if fmt == "json":
        try:
            rows = json.loads(text)
        except ValueError as exc:
            raise PayloadError(400, f"the body is not valid JSON: {exc}") from None
        if not isinstance(rows, list):
            raise PayloadError(400, "a JSON import body must be an array of objects")
        return Payload("json", text, rows)
    return Payload(fmt, text)


def _multipart_file(content_type: str, body: bytes) -> tuple[bytes, str, str]:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise PayloadError(400, "malformed multipart/form-data body")
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == "file":
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            return data, str(part.get_filename() or ""), part.get_content_type()
    raise PayloadError(400, "multipart/form-data body has no 'file' part")


def _media_from_part(media: str, filename: str, data: bytes) -> str:
    lower = filename.lower()
    if lower.endswith(".csv") or media == "text/csv":
        return "text/csv"
    if lower.endswith((".ndjson", ".jsonl")) or media in _NDJSON_TYPES:
        return "application/x-ndjson"
    if lower.endswith(".json") or media == "application/json":
        return "application/json"
    start = data.lstrip()[:1]  # no usable name or type: sniff
    if start == b"[":
        return "application/json"
    return "application/x-ndjson" if start == b"{" else "text/csv"


# --- rows ---------------------------------------------------------------------------------
def raw_rows(payload: Payload) -> Iterator[tuple[int, Any]]:
    """(row number, parsed value or PayloadError) for each row of the file."""
    if payload.fmt == "json":
        yield from enumerate(payload.rows or [], start=1)
    elif payload.fmt == "ndjson":
        for number, line in enumerate(payload.text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except ValueError as exc:
                yield number, PayloadError(400, f"line is not valid JSON: {exc}")
    else:
        reader = csv.reader(io.StringIO(payload.text))
        header = next(reader, [])
        for number, cells in enumerate(reader, start=1):
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                yield (
                    number,
                    PayloadError(
                        400, f"has {len(cells)} cells but the header has {len(header)} columns"
                    ),
                )
                continue
            yield (
                number,
                {k: _cast(v) for k, v in zip(header, cells, strict=True) if v != ""},
            )


def csv_header(payload: Payload) -> list[str]:
    return next(csv.reader(io.StringIO(payload.text)), [])


def _cast(cell: str) -> Any:
    """CSV cells: true/false -> bool, null -> None, numerals -> numbers, else text."""
    low = cell.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "null":
        return None
    if _NUMBER.fullmatch(cell.strip()):
        number = float(cell)
        return int(number) if number.is_integer() and "." not in cell and "e" not in low else number
    return cell


def _identifier(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if isinstance(value, bool) or value is None or value == "":
        raise ValidationError(f"missing {key}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, str | int):
        raise ValidationError(f"{key} must be a string")
    return str(value)


def profile_row(kind: str, row: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(row, dict):
        raise ValidationError("row must be a JSON object")
    key = ID_FIELD[kind]
    ident = _identifier(row, key)
    attrs = {k: v for k, v in row.items() if k != key}
    return ident, check_attributes(attrs)


def event_row(row: Any, csv_mode: bool) -> Event:
    if not isinstance(row, dict):
        raise ValidationError("row must be a JSON object")
    user = _identifier(row, "user_id")
    name = row.get("name")
    if not isinstance(name, str) or not name:
        raise ValidationError("missing name")
    if row.get("timestamp") in (None, ""):
        raise ValidationError("missing timestamp")
    ts = parse_event_timestamp(row["timestamp"])
    if csv_mode:  # every other column is an event attribute
        attributes = {k: v for k, v in row.items() if k not in EVENT_FIELDS}
        context: Any = {}
    else:
        unknown = sorted(set(row) - EVENT_FIELDS)
        if unknown:
            raise ValidationError(f"unknown field {unknown[0]!r}")
        attributes = row.get("attributes") or {}
        context = row.get("context") or {}
    if not isinstance(attributes, dict):
        raise ValidationError("attributes must be an object")
    if not isinstance(context, dict):
        raise ValidationError("context must be an object")
    group = row.get("group_id")
    if group is not None and not isinstance(group, str | int):
        raise ValidationError("group_id must be a string")
    return Event(
        user_id=user,
        name=name,
        timestamp_ms=ts,
        attributes=attributes,
        context=context,
        group_id=None if group is None else str(group),
        source="import",
    )


def run_import(
    job: ImportJob,
    payload: Payload,
    store: AppcuesStore,
    now_ms: Callable[[], int],
    update: Callable[..., None],
    on_written: Callable[[str, int], None],
) -> None:
    """The worker's side of an import: validate each row, apply the good ones, record."""
    update(job, now_ms(), status="running")
    if job.style == "ignores_body":  # as if the body's format were silently not understood
        update(job, now_ms(), status="complete")
        return
    if payload.fmt == "csv":
        header = csv_header(payload)
        key = ID_FIELD[job.kind]
        required = (key, "name", "timestamp") if job.kind == "events" else (key,)
        absent = [c for c in required if c not in header]
        if absent:
            update(
                job,
                now_ms(),
                status="failed",
                errors=[
                    {
                        "row": 0 if job.row_base == 1 else None,
                        "message": f"the CSV header has no {absent[0]} column",
                    }
                ],
            )
            return
    rows = list(raw_rows(payload))
    update(job, now_ms(), total_rows=len(rows))
    errors: list[dict[str, Any]] = []
    failed = processed = 0
    for start in range(0, len(rows), CHUNK):
        good_profiles: list[tuple[str, dict[str, Any]]] = []
        good_events: list[Event] = []
        for number, row in rows[start : start + CHUNK]:
            try:
                if isinstance(row, PayloadError):
                    raise ValidationError(str(row))
                if job.kind == "events":
                    good_events.append(event_row(row, payload.fmt == "csv"))
                else:
                    good_profiles.append(profile_row(job.kind, row))
            except ValidationError as exc:
                failed += 1
                if len(errors) < MAX_ERRORS_KEPT:
                    row = number - 1 + job.row_base
                    errors.append({"row": row, "message": str(exc)})
        if good_events:
            added = store.add_events(good_events, now_ms())
            for user in {e.user_id for e in good_events}:
                store.ensure_user(user, now_ms())
            on_written("events_stored", added)
        if good_profiles:
            kind = "user" if job.kind == "profiles" else "group"
            written = store.merge_profiles(kind, good_profiles, now_ms())
            on_written("profiles_written" if kind == "user" else "groups_written", written)
        processed += len(rows[start : start + CHUNK])
        update(job, now_ms(), processed_rows=processed, failed_rows=failed, errors=list(errors))
    everything_failed = bool(rows) and failed == len(rows)
    update(job, now_ms(), status="failed" if everything_failed else "complete")
