"""SOQL literals and IN chunking, checked against the sandbox's own SOQL string decoder."""

import math
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from salesforce_appcues_clients import soql
from salesforce_appcues_sandbox.salesforce.soql import SoqlError, decode_string, parse

HOSTILE = [
    "x' OR Name != '",
    "a\\' OR Id != null OR Name = \\'",
    "back\\slash",
    "line\nbreak\r\ttab",
    'quote"double',
    "nul\x00byte\x1fctl\x7f",
    "ünïcödé ✓ 𝄞 中文",
    "percent%_underscore",
    "\u2028sep\u2029",
    "'",
    "\\",
    "",
]


def _decoded(literal: str) -> str:
    assert literal.startswith("'") and literal.endswith("'")
    return decode_string(literal[1:-1])


@pytest.mark.parametrize("value", HOSTILE)
def test_quote_round_trips_through_the_sandbox_decoder(value):
    literal = soql.quote(value)
    assert _decoded(literal) == value
    # the whole query parses as exactly one comparison, whatever the value holds
    statement = parse(f"SELECT Id FROM Contact WHERE Email = {literal}")
    assert type(statement.where).__name__ == "Compare"


@given(st.text())
def test_any_string_round_trips(value):
    literal = soql.quote(value)
    assert "\n" not in literal and "\r" not in literal
    assert _decoded(literal) == value


def test_other_literals():
    assert soql.quote(None) == "null"
    assert soql.quote(True) == "true"
    assert soql.quote(False) == "false"
    assert soql.quote(42) == "42"
    assert soql.quote(1.5) == "1.5"
    assert soql.quote(Decimal("10.250")) == "10.250"
    assert soql.quote(date(2024, 1, 2)) == "2024-01-02"
    assert soql.quote(datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2024-01-02T03:04:05Z"
    plus_two = timezone(timedelta(hours=2))
    assert (
        soql.quote(datetime(2024, 1, 2, 3, 4, 5, 678900, tzinfo=plus_two))
        == "2024-01-02T01:04:05.678Z"
    )
    with pytest.raises(ValueError, match="naive"):
        soql.quote(datetime(2024, 1, 2))  # noqa: DTZ001
    with pytest.raises(ValueError):
        soql.quote(float("nan"))
    with pytest.raises(TypeError):
        soql.quote(object())  # type: ignore[arg-type]


def test_unpaired_surrogates_are_refused():
    with pytest.raises(ValueError, match="surrogate"):
        soql.quote("abc\ud800")
    assert soql.quote("\U0001d11e") == "'\U0001d11e'"


def test_quote_like_escapes_wildcards():
    literal = soql.quote_like("50%_off'")
    assert literal == "'50\\%\\_off\\''"


def test_field_name_rejects_injection():
    assert soql.field_name("Account.Name") == "Account.Name"
    for bad in ["Id) OR (Id", "Name = 'x'", "", "1abc", "a..b"]:
        with pytest.raises(ValueError):
            soql.field_name(bad)


def test_in_chunks_splits_under_the_uri_limit_and_keeps_every_value():
    values = [f"usr_{i:07d}'x" for i in range(3000)] + ["usr_0000000'x"]  # one duplicate
    limit = 4000
    queries = list(
        soql.in_chunks(
            "SELECT Id FROM Contact WHERE", "Product_User_Id__c", values, "ORDER BY Id", limit
        )
    )
    assert len(queries) > 1
    seen = []
    for q in queries:
        assert len(quote_plus(q)) + 400 <= limit
        assert q.startswith("SELECT Id FROM Contact WHERE Product_User_Id__c IN (")
        assert q.endswith(") ORDER BY Id")
        statement = parse(q)
        seen.extend(decode_string(v.value) for v in statement.where.values)
    assert seen == values[:3000]


def test_in_chunks_with_no_values_yields_nothing():
    assert list(soql.in_chunks("SELECT Id FROM Lead WHERE", "Email", [])) == []


def test_in_chunks_rejects_a_bad_field_name():
    with pytest.raises(ValueError):
        list(soql.in_chunks("SELECT Id FROM Lead WHERE", "Email) OR (Id", ["a"]))


@pytest.mark.parametrize(
    ("value", "literal"),
    [(1e-05, "0.00001"), (1e16, "10000000000000000"), (-2.5e-3, "-0.0025"), (1.5, "1.5")],
)
def test_floats_are_written_without_exponents(value, literal):
    assert soql.quote(value) == literal


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_finite_float_round_trips_through_the_sandbox_parser(value):
    literal = soql.quote(value)
    statement = parse(f"SELECT Id FROM Contact WHERE Appcues_NPS_Score__c = {literal}")
    assert statement.where.value.kind == "number"
    parsed = float(Decimal(statement.where.value.value))
    assert parsed == value and math.copysign(1, parsed) == math.copysign(1, value)


@pytest.mark.parametrize("text", ["1e-05", "1E5", "1.5e3", "2.0E-7"])
def test_the_sandbox_refuses_exponent_literals_as_salesforce_does(text):
    with pytest.raises(SoqlError) as caught:
        parse(f"SELECT Id FROM Contact WHERE Appcues_NPS_Score__c = {text}")
    assert caught.value.error_code == "MALFORMED_QUERY"
