"""The shared dead-letter file: its format, and a replay's rewrite (the targets' replays against
the sandbox are in their own suites)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from salesforce_appcues_clients.plugin_kit.dead_letters import (
    DeadLetterWriter,
    dumps,
    read_dead_letters,
    replay,
    schema_for,
    singer_input,
)

SCHEMA = {"properties": {"id": {"type": "string"}, "n": {"type": "number"}, "x": {}}}


def letter(n: int, reason: str = "unmatched_user") -> dict:
    record = {"id": f"e{n}", "n": Decimal("1.5") if n == 1 else n}
    return {
        "stream": "s",
        "reason": reason,
        "message": f"event e{n}",
        "record": record,
        "schema": schema_for(SCHEMA, record),
        "key_properties": ["id"],
    }


def test_lines_carry_the_format_the_target_and_numbers_as_numbers(tmp_path):
    path = tmp_path / "dl" / "dead.jsonl"
    writer = DeadLetterWriter(path, "target-x")
    writer.add(letter(1))
    writer.add({"reason": "odd", "message": "lone \ud800 surrogate"})
    assert not path.exists()  # buffered until flush
    writer.flush()
    first, second = read_dead_letters(path)
    assert first["format"] == 1 and first["target"] == "target-x" and first["at"]
    assert first["record"] == {"id": "e1", "n": 1.5}
    assert first["schema"] == {
        "type": "object",
        "properties": {"id": {"type": "string"}, "n": {"type": "number"}},
    }
    assert second["message"] == "lone \ud800 surrogate"  # kept, as an ASCII escape
    assert dict(writer.by_reason) == {"unmatched_user": 1, "odd": 1}


def _file(path: Path, entries: list) -> None:
    path.write_text("".join((e if isinstance(e, str) else dumps(e)) + "\n" for e in entries))


def test_replay_keeps_what_is_refused_again_and_what_has_no_record(tmp_path):
    path = tmp_path / "dead.jsonl"
    _file(path, [letter(1), letter(2), "{not json", {"reason": "malformed_line", "message": "m"}])
    sent: list[str] = []

    def run(text: str, letters: Path) -> None:
        sent.append(text)
        # the target refuses e2 again, with another reason; e1 is delivered
        DeadLetterWriter(letters, "t").write(letter(2, "salesforce_rejected"))
        with path.open("a") as other_run:  # a line another run appends meanwhile
            other_run.write(dumps(letter(3)) + "\n")

    result = replay(path, run)
    lines = [json.loads(x) for x in sent[0].splitlines()]
    assert [m["type"] for m in lines] == ["SCHEMA", "RECORD", "RECORD"]
    assert lines[0]["key_properties"] == ["id"]
    assert (result.replayed, result.still_dead, result.kept, result.delivered) == (2, 1, 2, 1)
    text = path.read_text().splitlines()
    assert text[0] == "{not json"
    assert [json.loads(x)["reason"] for x in text[1:]] == [
        "malformed_line",
        "salesforce_rejected",
        "unmatched_user",  # e3, appended by the other run
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dead.jsonl"]


def test_a_failed_replay_leaves_the_file_as_it_was(tmp_path):
    path = tmp_path / "dead.jsonl"
    _file(path, [letter(1)])
    before = path.read_bytes()

    def run(text: str, letters: Path) -> None:
        DeadLetterWriter(letters, "t").write(letter(1, "other"))
        raise RuntimeError("Salesforce unavailable")

    with pytest.raises(RuntimeError):
        replay(path, run)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dead.jsonl"]


def test_singer_input_merges_the_schemas_of_a_stream():
    a = {**letter(1), "schema": {"properties": {"id": {}}}}
    b = {**letter(2), "schema": {"properties": {"x": {}}}}
    (schema_line, *_) = [json.loads(x) for x in singer_input([a, b]).splitlines()]
    assert set(schema_line["schema"]["properties"]) == {"id", "x"}
