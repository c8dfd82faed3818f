"""SOQL literals and IN-list chunking: the only way user values enter a query.

SOQL strings are single-quoted; inside them a backslash escapes `\\n \\r \\t \\b \\f \\" \\'
\\\\` and `\\uXXXX`. Any other control character is written as `\\uXXXX`, so no value can end
the literal early or smuggle in a line break.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from urllib.parse import quote_plus

# The one limit every query URL this project builds stays under (IN-list chunks and split
# SELECT lists alike; docs/sandbox.md, "contract"). Salesforce refuses a GET URI over
# 16,384 bytes with 414; 431 (header fields too large) has been observed from about 16,088
# characters, so the limit may count the whole request head: 2 KB of it stays free.
DEFAULT_MAX_URI_LENGTH = 16_384
URL_MARGIN = 2_048
SAFE_URL_LENGTH = DEFAULT_MAX_URI_LENGTH - URL_MARGIN
# `in_chunks` is not told the endpoint: room for the scheme, host, port and
# /services/data/vNN.N/queryAll?q= in front of the query.
_ENDPOINT_ALLOWANCE = 400

_SIMPLE_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}
_SURROGATE = re.compile("[\ud800-\udfff]")
_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*$")

SoqlValue = str | int | float | Decimal | bool | None | date | datetime


def _escape_char(char: str) -> str:
    simple = _SIMPLE_ESCAPES.get(char)
    if simple is not None:
        return simple
    code = ord(char)
    # C0/C1 controls, DEL, line/paragraph separators: spell them out.
    if code < 0x20 or 0x7F <= code <= 0x9F or code in (0x2028, 0x2029):
        return f"\\u{code:04x}"
    return char


def escape_string(value: str) -> str:
    """The body of a SOQL string literal (without the surrounding quotes)."""
    if _SURROGATE.search(value):
        raise ValueError("a SOQL string cannot hold an unpaired surrogate (not valid UTF-8)")
    return "".join(_escape_char(c) for c in value)


def quote(value: SoqlValue) -> str:
    """A SOQL literal for `value`: strings quoted and escaped, the rest in SOQL syntax."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"SOQL has no literal for {value!r}")
        # SOQL has no exponent syntax (`1e-05` is MALFORMED_QUERY): write the shortest
        # round-tripping digits out in full.
        return format(Decimal(repr(value)), "f")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"SOQL has no literal for {value!r}")
        return format(value, "f")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("a naive datetime is ambiguous in SOQL; give it a timezone")
        value = value.astimezone(UTC)
        text = value.strftime("%Y-%m-%dT%H:%M:%S")
        if value.microsecond:
            text += f".{value.microsecond // 1000:03d}"
        return text + "Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return f"'{escape_string(value)}'"
    raise TypeError(f"no SOQL literal for values of type {type(value).__name__}")


def quote_like(value: str) -> str:
    """A LIKE pattern literal matching `value` exactly (`%` and `_` escaped as well)."""
    body = escape_string(value).replace("%", "\\%").replace("_", "\\_")
    return f"'{body}'"


def field_name(name: str) -> str:
    """`name` if it is a plain or dotted SOQL field name, else ValueError."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a SOQL field name: {name!r}")
    return name


def _encoded_length(text: str) -> int:
    return len(quote_plus(text, safe=""))


def in_chunks(
    select_from_where_prefix: str,
    field: str,
    values: Iterable[SoqlValue],
    suffix: str = "",
    max_uri_length: int = SAFE_URL_LENGTH,
) -> Iterator[str]:
    """Complete queries `<prefix> <field> IN (...) <suffix>`, each short enough for a GET URI
    (the whole URL, an endpoint of up to 400 characters included, under `max_uri_length`).

    Duplicate values are sent once; no values yields no query at all.
    """
    field_name(field)
    head = f"{select_from_where_prefix.rstrip()} {field} IN ("
    tail = ")" + (f" {suffix.strip()}" if suffix.strip() else "")
    budget = max_uri_length - _ENDPOINT_ALLOWANCE - _encoded_length(head) - _encoded_length(tail)
    seen: set[str] = set()
    chunk: list[str] = []
    used = 0
    for value in values:
        literal = quote(value)
        if literal in seen:
            continue
        seen.add(literal)
        cost = _encoded_length(literal) + (_encoded_length(",") if chunk else 0)
        if chunk and used + cost > budget:
            yield head + ",".join(chunk) + tail
            chunk, used = [], 0
            cost = _encoded_length(literal)
        if cost > budget:
            raise ValueError(f"a single {field} value is too long for one query URI")
        chunk.append(literal)
        used += cost
    if chunk:
        yield head + ",".join(chunk) + tail


def query_url_length(endpoint: str, soql: str) -> int:
    """Length of `<endpoint>?q=<soql>` as requests encodes it."""
    return len(endpoint) + len("?q=") + _encoded_length(soql)


def select_parts(
    keep: Sequence[str],
    columns: Sequence[str],
    rest_of_query: str,
    endpoint: str,
    max_url_length: int = SAFE_URL_LENGTH,
) -> list[list[str]]:
    """The SELECT list `keep + columns`, split into the fewest ordered parts whose queries
    `SELECT <keep + part> <rest_of_query>` fit a GET URL of `max_url_length` on `endpoint`.

    Every part starts with `keep` (the join keys). One part when the whole list fits.
    """
    base = query_url_length(endpoint, f"SELECT {', '.join(keep)} {rest_of_query}")
    budget = max_url_length - base
    parts: list[list[str]] = []
    current: list[str] = []
    used = 0
    for column in columns:
        if column in keep:
            continue
        cost = _encoded_length(f", {column}")
        if cost > budget:
            raise ValueError(f"the field {column} alone makes the query too long for a URL")
        if current and used + cost > budget:
            parts.append([*keep, *current])
            current, used = [], 0
        current.append(column)
        used += cost
    if current or not parts:
        parts.append([*keep, *current])
    return parts
