"""Singer input reader for both targets: reports a bad line and goes on, instead of stopping.

It lives here because the clients are the one package both targets share.
"""

from __future__ import annotations

import copy
import typing as t
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from singer_sdk.exceptions import RecordsWithoutSchemaException
from singer_sdk.io_base import SingerReader
from singer_sdk.singerlib.exceptions import InvalidInputLine
from singer_sdk.singerlib.json import deserialize_json

QUOTE_LIMIT = 300  # characters of a bad line quoted in messages and dead letters

# What each message type must carry (and of which JSON type) for the SDK to handle it.
_REQUIRED: dict[str, dict[str, type | tuple[type, ...]]] = {
    "RECORD": {"stream": str, "record": dict},
    "SCHEMA": {"stream": str, "schema": dict},
    "STATE": {"value": dict},
    "ACTIVATE_VERSION": {"stream": str, "version": int},
    "BATCH": {"stream": str, "encoding": dict, "manifest": list},
}


@dataclass(frozen=True)
class BadLine:
    """One input line that is not a usable Singer message.

    `reason`: `malformed_line` (not JSON, not an object, no or unknown `type`, a required
    key missing or of the wrong type) or `record_without_schema` (a RECORD of a stream no
    SCHEMA announced). `stream`/`record` are filled when the line got that far.
    """

    number: int
    text: str  # the line, cut to QUOTE_LIMIT characters
    reason: str
    problem: str
    stream: str | None = None
    record: dict[str, t.Any] | None = None

    @property
    def message(self) -> str:
        return f"input line {self.number} {self.problem}; skipped it: {self.text!r}"


class _MalformedLineError(ValueError):
    """The line is no usable Singer message; the text says why."""


class DeadLetteringReader(SingerReader):
    """Hands each bad line to `on_bad_line` (the target's dead letters) and reads on.

    Only problems of the line itself are caught: anything a sink raises while writing
    (Appcues or Salesforce unavailable, ...) still fails the run.
    """

    def __init__(self) -> None:
        super().__init__()
        self.on_bad_line: Callable[[BadLine], None] | None = None

    def process_lines(
        self,
        file_input: t.IO[str] | None,
        callbacks: dict[str, Callable[[dict], None]],
    ) -> Counter[str]:
        stats: Counter[str] = Counter()
        for number, (line, undecodable) in enumerate(self._lines(file_input), start=1):
            if not line.strip():
                continue  # a blank line carries nothing (e.g. a trailing newline)
            self._current_message = line
            message: dict[str, t.Any] | None = None
            try:
                if undecodable:
                    raise _MalformedLineError(undecodable)
                message = self._parse(line)
                kind = message["type"]
                if kind not in callbacks:
                    raise _MalformedLineError(f"has an unknown message type {kind!r}")
                callbacks[kind](message)
            except _MalformedLineError as exc:
                self._report(number, line, "malformed_line", str(exc), message)
                continue
            except RecordsWithoutSchemaException:
                self._report(
                    number, line, "record_without_schema", "is a RECORD before its SCHEMA", message
                )
                continue
            stats[kind] += 1
        return stats

    def _lines(self, file_input: t.IO[str] | None) -> t.Iterator[tuple[str, str | None]]:
        """(line, why it is not UTF-8 or None), reading bytes where the input has them.

        A text stream would raise on the first byte that is not UTF-8 and end the run;
        decoding each line on its own confines the damage to that line.
        """
        source = file_input or self.default_input
        raw = getattr(source, "buffer", None)
        if raw is None:
            for line in source:
                yield line, None
            return
        for data in raw:
            try:
                yield data.decode("utf-8"), None
            except UnicodeDecodeError as exc:
                text = data.decode("utf-8", "replace")
                yield text, f"is not valid UTF-8 ({exc.reason} at byte {exc.start})"

    def deserialize_json(self, line: str) -> dict:
        """The SDK's JSON parsing (decimals kept exact), without its full-line error log."""
        try:
            value: t.Any = deserialize_json(line)
        except (ValueError, RecursionError) as exc:
            raise _MalformedLineError(f"is not valid JSON ({exc})") from None
        if not isinstance(value, dict):
            kind = type(value).__name__
            raise _MalformedLineError(f"is JSON {kind}, not a Singer message object")
        return value

    def _parse(self, line: str) -> dict[str, t.Any]:
        message = self.deserialize_json(line)
        kind = message.get("type")
        if not isinstance(kind, str):
            raise _MalformedLineError("has no message 'type'")
        for key, kinds in _REQUIRED.get(kind, {}).items():
            value = message.get(key)
            if not isinstance(value, kinds) or isinstance(value, bool):
                raise _MalformedLineError(f"is a {kind} message without a valid {key!r}")
        if kind == "SCHEMA" and not isinstance(message["schema"].get("properties"), dict):
            raise _MalformedLineError("is a SCHEMA message whose schema has no 'properties'")
        return message

    def _report(
        self, number: int, line: str, reason: str, problem: str, message: dict | None
    ) -> None:
        text = line.rstrip("\r\n")
        if len(text) > QUOTE_LIMIT:
            text = f"{text[:QUOTE_LIMIT]}… ({len(text)} characters)"
        stream = message.get("stream") if message else None
        record = message.get("record") if message else None
        bad = BadLine(
            number=number,
            text=text,
            reason=reason,
            problem=problem,
            stream=stream if isinstance(stream, str) else None,
            record=record if isinstance(record, dict) else None,
        )
        if self.on_bad_line is None:
            raise InvalidInputLine(bad.message)  # no dead-letter file: stop, as the SDK does
        self.on_bad_line(bad)


def without_date_formats(schema: dict[str, t.Any]) -> dict[str, t.Any]:
    """A copy of a stream schema whose date-like properties carry no `format`.

    Sinks hand this to the SDK so it leaves dates as text: the target parses them itself and
    dead-letters one bad value instead of failing the whole run.
    """
    clean = copy.deepcopy(schema)

    def strip(node: t.Any) -> None:
        if isinstance(node, dict):
            if node.get("format") in ("date", "date-time", "time"):
                del node["format"]
            for value in node.values():
                strip(value)
        elif isinstance(node, list):
            for value in node:
                strip(value)

    strip(clean)
    return clean
