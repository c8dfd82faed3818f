"""The SOQL parser and literal handling, without a database."""

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from salesforce_appcues_sandbox.salesforce.datetimes import parse_literal
from salesforce_appcues_sandbox.salesforce.soql import (
    BoolOp,
    Compare,
    CountAll,
    CountField,
    FieldPath,
    InList,
    Like,
    Not,
    SoqlError,
    decode_string,
    encode_string,
    parse,
    stored_datetime,
)


def test_singer_io_incremental_shape():
    stmt = parse(
        "SELECT Id,Name,SystemModstamp FROM Contact WHERE SystemModstamp >= "
        "2024-01-01T00:00:00.000000Z  ORDER BY SystemModstamp ASC"
    )
    assert [p.parts for p in stmt.items] == [("Id",), ("Name",), ("SystemModstamp",)]
    assert stmt.object_name == "Contact"
    assert isinstance(stmt.where, Compare)
    assert stmt.where.op == ">="
    assert stmt.where.value.kind == "datetime"
    assert stmt.where.value.value == "2024-01-01T00:00:00.000000Z"
    (order,) = stmt.order_by
    assert order.path.parts == ("SystemModstamp",)
    assert (order.descending, order.nulls_first) == (False, True)


def test_keywords_are_case_insensitive_and_whitespace_free():
    stmt = parse(
        "  sElEcT\n  id ,\tAccount.Owner.Name\nfrom   contact\r\n where  NAME = 'x'  lImIt 5 "
    )
    assert stmt.items[1].parts == ("Account", "Owner", "Name")
    assert stmt.object_name == "contact"
    assert stmt.limit == 5


def test_names_that_start_with_keywords_are_names():
    stmt = parse("SELECT Selection__c, Fromage, Order__c, Limitless FROM Orderly__c")
    assert [p.parts[0] for p in stmt.items] == ["Selection__c", "Fromage", "Order__c", "Limitless"]
    assert stmt.object_name == "Orderly__c"


def test_count_forms():
    assert isinstance(parse("SELECT COUNT() FROM Lead").items[0], CountAll)
    item = parse("select count(Id) from Lead").items[0]
    assert isinstance(item, CountField)
    assert item.path.parts == ("Id",)


def test_boolean_structure_in_list_like_not():
    stmt = parse(
        "SELECT Id FROM Lead WHERE (A = 'x' OR B != null) AND NOT C IN ('a','b') "
        "AND D NOT IN (1, 2.5) AND E LIKE 'a\\_%' AND F <> true"
    )
    where = stmt.where
    assert isinstance(where, BoolOp)
    assert where.op == "AND"
    assert len(where.items) == 5
    first, second, third, fourth, fifth = where.items
    assert isinstance(first, BoolOp)
    assert first.op == "OR"
    assert first.items[1].value.kind == "null"
    assert isinstance(second, Not)
    assert isinstance(second.item, InList)
    assert not second.item.negated
    assert isinstance(third, InList)
    assert third.negated
    assert [v.value for v in third.values] == ["1", "2.5"]
    assert isinstance(fourth, Like)
    assert fourth.value.value == "a\\_%"
    assert fifth.op == "!="
    assert fifth.value.value is True


def test_order_by_several_fields_and_limit_offset():
    stmt = parse(
        "SELECT Id FROM Contact ORDER BY LastName DESC NULLS FIRST, FirstName NULLS LAST, "
        "Email DESC, Id LIMIT 10 OFFSET 20"
    )
    got = [(o.path.parts[0], o.descending, o.nulls_first) for o in stmt.order_by]
    assert got == [
        ("LastName", True, True),
        ("FirstName", False, False),
        ("Email", True, False),
        ("Id", False, True),
    ]
    assert (stmt.limit, stmt.offset) == (10, 20)


@pytest.mark.parametrize(
    ("literal", "utc"),
    [
        ("2024-01-01T00:00:00Z", "2024-01-01T00:00:00.000Z"),
        ("2024-01-01T00:00:00.000Z", "2024-01-01T00:00:00.000Z"),
        ("2024-01-01T00:00:00.000000Z", "2024-01-01T00:00:00.000Z"),
        ("2024-01-01T00:00:00+00:00", "2024-01-01T00:00:00.000Z"),
        ("2024-01-01T00:00:00.000+00:00", "2024-01-01T00:00:00.000Z"),
        ("2024-01-01T00:00:00-08:00", "2024-01-01T08:00:00.000Z"),
        ("2024-01-01T05:30:00+05:30", "2024-01-01T00:00:00.000Z"),
        ("2024-01-01T00:00:00.250+0100", "2023-12-31T23:00:00.250Z"),
        ("2024-03-01T00:00:00.123456z", "2024-03-01T00:00:00.123Z"),
    ],
)
def test_every_datetime_form_parses_and_normalises(literal, utc):
    stmt = parse(f"SELECT Id FROM Contact WHERE SystemModstamp > {literal}")
    assert stmt.where.value.kind == "datetime"
    moment, nanos = parse_literal(stmt.where.value.value)
    assert stored_datetime(moment, nanos // 1_000_000) == utc


def test_date_literal():
    stmt = parse("SELECT Id FROM Contact WHERE Birthdate >= 2024-02-29")
    assert (stmt.where.value.kind, stmt.where.value.value) == ("date", "2024-02-29")


def test_numbers():
    stmt = parse("SELECT Id FROM X WHERE A = -5.5 AND B = 42 AND C = .5 AND D = +3")
    assert [c.value.value for c in stmt.where.items] == ["-5.5", "42", ".5", "+3"]


@pytest.mark.parametrize(
    ("soql", "fragment"),
    [
        ("SELECT Id FROM", "unexpected token: <EOF>"),
        ("SELECT FROM Contact", "unexpected token: Contact"),
        ("SELECT Id FROM Contact WHERE", "unexpected token: <EOF>"),
        ("SELECT Id FROM Contact WHERE A = 1 AND B = 2 OR C = 3", "unexpected token: OR"),
        ("SELECT Id FROM Contact LIMIT x", "unexpected token: x"),
        ("SELECT Id FROM Contact WHERE A = 'unterminated", "no viable alternative"),
        ('SELECT Id FROM Contact WHERE A = "double"', "no viable alternative"),
        # an unencoded '+' arrives as a space
        ("SELECT Id FROM Contact WHERE S >= 2024-01-01T00:00:00 00:00", "unexpected token"),
        ("SELECT Id FROM Contact; DROP TABLE Contact", "no viable alternative at character ';'"),
    ],
)
def test_malformed_queries(soql, fragment):
    with pytest.raises(SoqlError) as err:
        parse(soql)
    assert err.value.error_code == "MALFORMED_QUERY"
    assert err.value.status == 400
    assert fragment in err.value.message


def test_malformed_message_points_at_the_token():
    with pytest.raises(SoqlError) as err:
        parse("SELECT Id FROM Contact WHERE A = 1 AND B = 2 OR C = 3")
    assert err.value.message == (
        "\nSELECT Id FROM Contact WHERE A = 1 AND B = 2 OR C = 3"
        "\n                                             ^"
        "\nERROR at Row:1:Column:46"
        "\nunexpected token: OR"
    )


def test_field_path_position():
    stmt = parse("SELECT Id,\n  Foo FROM Contact")
    assert stmt.items[1] == FieldPath(("Foo",), 2, 3)


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("O\\'Brien", "O'Brien"),
        ('say \\"hi\\"', 'say "hi"'),
        ("back\\\\slash", "back\\slash"),
        ("a\\nb\\rc\\td\\be\\ff", "a\nb\rc\td\be\ff"),
        ("A\\NB\\RC\\TD", "A\nB\rC\tD"),
        ("\\u00e9t\\u00E9", "été"),
        ("100%_off", "100%_off"),
    ],
)
def test_string_escapes(raw, value):
    stmt = parse(f"SELECT Id FROM Contact WHERE Name = '{raw}'")
    assert decode_string(stmt.where.value.value) == value


def test_like_keeps_its_wildcard_escapes():
    assert decode_string("50\\%\\_x%", like=True) == "50\\%\\_x%"
    assert decode_string("a\\\\b", like=True) == "a\\\\b"


@pytest.mark.parametrize("raw", ["\\_", "\\%", "\\q", "\\u12"])
def test_bad_escapes_outside_like(raw):
    with pytest.raises(SoqlError) as err:
        decode_string(raw)
    assert err.value.error_code == "MALFORMED_QUERY"
    assert "Illegal character sequence" in err.value.message


@given(st.text())
def test_any_string_round_trips_through_soql_quoting(value):
    soql = f"SELECT Id FROM Contact WHERE Name = {encode_string(value)}"
    stmt = parse(soql)
    assert decode_string(stmt.where.value.value) == value


@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1),  # noqa: DTZ001 - hypothesis wants naive bounds
        max_value=datetime(2999, 12, 31),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    st.sampled_from(["Z", "+00:00", ".000Z", ".000000Z", ".000+00:00"]),
)
def test_generated_datetimes_parse_to_the_same_moment(moment, suffix):
    moment = moment.replace(microsecond=0)
    literal = moment.strftime("%Y-%m-%dT%H:%M:%S") + suffix
    stmt = parse(f"SELECT Id FROM Contact WHERE SystemModstamp >= {literal}")
    parsed, nanos = parse_literal(stmt.where.value.value)
    assert (parsed, nanos) == (moment, 0)
