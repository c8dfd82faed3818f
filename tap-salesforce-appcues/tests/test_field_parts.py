"""Joining a wide object's field parts by Id (pure logic over query rows, no I/O)."""

from __future__ import annotations

from tap_salesforce_appcues.field_parts import join_parts, merge_into
from tap_salesforce_appcues.timefmt import parse_datetime


def row(rid: str, second: int, **fields):
    return {"Id": rid, "SystemModstamp": f"2026-01-01T00:00:{second:02d}.000+0000", **fields}


def join(*parts):
    held: list[tuple[str, str]] = []
    records = list(
        join_parts([iter(p) for p in parts], lambda rid, at: held.append((rid, at.isoformat())))
    )
    return records, held


def at(second: int) -> str:
    return parse_datetime(f"2026-01-01T00:00:{second:02d}Z").isoformat()


def test_parts_agreeing_give_whole_records_in_order():
    a = [row("1", 1, A=1), row("3", 2, A=3), row("2", 2, A=2)]
    # Same SystemModstamp, Ids in another order: still joined.
    b = [row("1", 1, B=1), row("2", 2, B=2), row("3", 2, B=3)]
    records, held = join(a, b)
    assert [(r["Id"], r["A"], r["B"]) for r in records] == [("1", 1, 1), ("3", 3, 3), ("2", 2, 2)]
    assert held == []


def test_a_record_changed_between_the_reads_is_not_emitted_and_holds_the_bookmark():
    a = [row("1", 1, A=1), row("2", 2, A=2), row("3", 3, A=3)]
    b = [row("1", 1, B=1), row("3", 3, B=3)]  # "2" moved past the window before part b
    records, held = join(a, b)
    assert [r["Id"] for r in records] == ["1", "3"]
    assert held == [("2", at(2))]


def test_a_different_stamp_or_a_record_only_a_later_part_saw_is_held():
    a = [row("1", 1, A=1), row("2", 4, A=2)]
    b = [row("9", 0, B=9), row("1", 2, B=1), row("2", 4, B=2), row("8", 5, B=8)]
    records, held = join(a, b)
    assert [r["Id"] for r in records] == ["2"]
    assert sorted(held) == sorted([("9", at(0)), ("1", at(1)), ("8", at(5))])


def test_parent_relationships_from_several_parts_merge():
    whole = {"Id": "1", "Account": {"attributes": {"type": "Account"}, "Name": "n"}}
    merge_into(whole, {"Id": "1", "Account": {"attributes": {"type": "Account"}, "Site": "s"}})
    assert whole["Account"] == {"attributes": {"type": "Account"}, "Name": "n", "Site": "s"}
    merge_into(whole, {"Owner": None})
    assert whole["Owner"] is None


def test_an_empty_first_part_never_reads_the_others():
    def never():
        raise AssertionError("queried")
        yield  # pragma: no cover

    assert join([], never()) == ([], [])
