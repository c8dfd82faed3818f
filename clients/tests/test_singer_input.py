"""The targets' Singer input reader: a line that is not UTF-8 is reported, the rest is read."""

from __future__ import annotations

import io
import json

import pytest
from singer_sdk.singerlib.exceptions import InvalidInputLine

from salesforce_appcues_clients.plugin_kit.singer_input import BadLine, DeadLetteringReader


def _line(message: dict) -> bytes:
    return json.dumps(message).encode() + b"\n"


SCHEMA = {"type": "SCHEMA", "stream": "s", "schema": {"properties": {}}, "key_properties": []}


def _read(data: bytes, *, dead_letters: bool = True) -> tuple[list[dict], list[BadLine]]:
    reader = DeadLetteringReader()
    bad: list[BadLine] = []
    if dead_letters:
        reader.on_bad_line = bad.append
    seen: list[dict] = []
    callbacks = dict.fromkeys(("SCHEMA", "RECORD", "STATE"), seen.append)
    stream = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")
    reader.process_lines(stream, callbacks)
    return seen, bad


def test_a_line_that_is_not_utf8_is_dead_lettered_and_reading_goes_on():
    first = {"type": "RECORD", "stream": "s", "record": {"name": "Zoë"}}
    last = {"type": "RECORD", "stream": "s", "record": {"name": "after"}}
    broken = b'{"type": "RECORD", "stream": "s", "record": {"name": "Zo\xeb"}}\r\n'
    seen, bad = _read(_line(SCHEMA) + _line(first) + broken + _line(last))
    assert [m.get("record") for m in seen[1:]] == [{"name": "Zoë"}, {"name": "after"}]
    (letter,) = bad
    assert letter.number == 3 and letter.reason == "malformed_line"
    assert "not valid UTF-8" in letter.message and "Zo\ufffd" in letter.text


def test_without_a_dead_letter_file_the_line_stops_the_run():
    with pytest.raises(InvalidInputLine, match="line 2 is not valid UTF-8"):
        _read(_line(SCHEMA) + b"\xff\xfe\n", dead_letters=False)


def test_text_input_without_bytes_is_read_as_text():
    reader = DeadLetteringReader()
    seen: list[dict] = []
    text = json.dumps(SCHEMA) + "\r\n" + json.dumps({"type": "STATE", "value": {"a": 1}}) + "\n"
    reader.process_lines(io.StringIO(text), {"SCHEMA": seen.append, "STATE": seen.append})
    assert [m["type"] for m in seen] == ["SCHEMA", "STATE"]
