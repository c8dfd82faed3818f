"""SOQL: parse the subset connectors send, check it against the schema, translate it to SQL.

`compile_query(soql, schema, include_deleted=...)` returns a `CompiledQuery` whose SQL is
parametrised (values never enter the SQL text) and follows the storage conventions of
`schema.py`. Errors are `SoqlError`s carrying Salesforce's error code and message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from . import datetimes, ids
from .schema import TEXT_TYPES, FieldDef, ObjectDef, Schema


class SoqlError(Exception):
    """A query Salesforce would refuse; the REST layer answers `[{message, errorCode}]`."""

    def __init__(self, error_code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{error_code}: {message}")
        self.error_code = error_code
        self.message = message
        self.status = status


# ---------------------------------------------------------------------------------------
# Grammar. Keywords are case-insensitive; NAME carries the i flag too so lark can tell a
# keyword from a field that merely starts with one (`Selection__c`).
_GRAMMAR = r"""
start: _SELECT select_list _FROM NAME where? order_by? limit? offset?

select_list: select_item ("," select_item)*
?select_item: count_all | count_field | field_path
count_all: _COUNT "(" ")"
count_field: _COUNT "(" field_path ")"
field_path: NAME ("." NAME)*

where: _WHERE condition
?condition: and_chain | or_chain | unary
and_chain: unary (_AND unary)+
or_chain: unary (_OR unary)+
?unary: _NOT unary -> not_
      | "(" condition ")"
      | predicate
?predicate: field_path COMP_OP value -> compare
          | field_path _LIKE value -> like
          | field_path _IN "(" value_list ")" -> in_
          | field_path _NOT _IN "(" value_list ")" -> not_in
value_list: value ("," value)*
?value: STRING -> string
      | NUMBER -> number
      | DATETIME -> datetime
      | DATE -> date
      | _NULL -> null
      | _TRUE -> true
      | _FALSE -> false

order_by: _ORDER _BY order_item ("," order_item)*
order_item: field_path DIRECTION? nulls?
nulls: _NULLS NULLS_POS
limit: _LIMIT INT
offset: _OFFSET INT

_SELECT: "select"i
_FROM: "from"i
_WHERE: "where"i
_AND: "and"i
_OR: "or"i
_NOT: "not"i
_LIKE: "like"i
_IN: "in"i
_NULL: "null"i
_TRUE: "true"i
_FALSE: "false"i
_ORDER: "order"i
_BY: "by"i
_LIMIT: "limit"i
_OFFSET: "offset"i
_NULLS: "nulls"i
_COUNT: "count"i
DIRECTION: "asc"i | "desc"i
NULLS_POS: "first"i | "last"i

COMP_OP: "=" | "!=" | "<>" | "<=" | ">=" | "<" | ">"
NAME: /[a-z][a-z0-9_]*/i
DATETIME.4: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})/i
DATE.3: /\d{4}-\d{2}-\d{2}(?![\dT:])/
NUMBER.2: /[+-]?(\d+(\.\d*)?|\.\d+)/
INT: /\d+/
STRING: /'(?:[^'\\]|\\.)*'/s

%import common.WS
%ignore WS
"""

MAX_OFFSET = 2000  # Salesforce refuses larger OFFSETs

_PARSER = Lark(_GRAMMAR, parser="lalr", propagate_positions=True, maybe_placeholders=False)


# ---------------------------------------------------------------------------------------
# Syntax tree


@dataclass(frozen=True)
class FieldPath:
    parts: tuple[str, ...]
    line: int
    column: int

    @property
    def text(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True)
class CountAll:
    pass


@dataclass(frozen=True)
class CountField:
    path: FieldPath


@dataclass(frozen=True)
class Literal:
    kind: str  # string | number | datetime | date | null | boolean
    value: Any  # raw text for string (escapes undecoded) / number / datetime / date
    line: int = 0
    column: int = 0


@dataclass(frozen=True)
class Compare:
    path: FieldPath
    op: str
    value: Literal


@dataclass(frozen=True)
class Like:
    path: FieldPath
    value: Literal


@dataclass(frozen=True)
class InList:
    path: FieldPath
    values: tuple[Literal, ...]
    negated: bool


@dataclass(frozen=True)
class BoolOp:
    op: str  # AND | OR
    items: tuple[Any, ...]


@dataclass(frozen=True)
class Not:
    item: Any


@dataclass(frozen=True)
class OrderItem:
    path: FieldPath
    descending: bool
    nulls_first: bool


@dataclass(frozen=True)
class SelectStatement:
    items: tuple[Any, ...]
    object_name: str
    object_line: int
    object_column: int
    where: Any | None
    order_by: tuple[OrderItem, ...]
    limit: int | None
    offset: int | None


def _literal(kind: str, token: Token, value: Any = None) -> Literal:
    return Literal(
        kind, token.value if value is None else value, token.line or 0, token.column or 0
    )


@v_args(inline=True)
class _ToTree(Transformer[Token, SelectStatement]):
    def start(self, select_list: tuple[Any, ...], name: Token, *clauses: Any) -> SelectStatement:
        parts: dict[str, Any] = dict(clauses)
        return SelectStatement(
            items=select_list,
            object_name=name.value,
            object_line=name.line or 0,
            object_column=name.column or 0,
            where=parts.get("where"),
            order_by=parts.get("order_by", ()),
            limit=parts.get("limit"),
            offset=parts.get("offset"),
        )

    def select_list(self, *items: Any) -> tuple[Any, ...]:
        return items

    def count_all(self) -> CountAll:
        return CountAll()

    def count_field(self, path: FieldPath) -> CountField:
        return CountField(path)

    def field_path(self, *names: Token) -> FieldPath:
        return FieldPath(tuple(n.value for n in names), names[0].line or 0, names[0].column or 0)

    def where(self, condition: Any) -> tuple[str, Any]:
        return ("where", condition)

    def and_chain(self, *items: Any) -> BoolOp:
        return BoolOp("AND", items)

    def or_chain(self, *items: Any) -> BoolOp:
        return BoolOp("OR", items)

    def not_(self, item: Any) -> Not:
        return Not(item)

    def compare(self, path: FieldPath, op: Token, value: Literal) -> Compare:
        return Compare(path, "!=" if op.value == "<>" else op.value, value)

    def like(self, path: FieldPath, value: Literal) -> Like:
        return Like(path, value)

    def in_(self, path: FieldPath, values: tuple[Literal, ...]) -> InList:
        return InList(path, values, negated=False)

    def not_in(self, path: FieldPath, values: tuple[Literal, ...]) -> InList:
        return InList(path, values, negated=True)

    def value_list(self, *values: Literal) -> tuple[Literal, ...]:
        return values

    def string(self, token: Token) -> Literal:
        return _literal("string", token, token.value[1:-1])

    def number(self, token: Token) -> Literal:
        return _literal("number", token)

    def datetime(self, token: Token) -> Literal:
        return _literal("datetime", token)

    def date(self, token: Token) -> Literal:
        return _literal("date", token)

    def null(self) -> Literal:
        return Literal("null", None)

    def true(self) -> Literal:
        return Literal("boolean", True)

    def false(self) -> Literal:
        return Literal("boolean", False)

    def order_by(self, *items: OrderItem) -> tuple[str, tuple[OrderItem, ...]]:
        return ("order_by", items)

    def order_item(self, path: FieldPath, *rest: Any) -> OrderItem:
        descending = False
        nulls_first: bool | None = None
        for part in rest:
            if isinstance(part, Token) and part.type == "DIRECTION":
                descending = part.value.lower() == "desc"
            else:
                nulls_first = part
        # Salesforce's default: nulls first ascending, last descending.
        return OrderItem(path, descending, (not descending) if nulls_first is None else nulls_first)

    def nulls(self, pos: Token) -> bool:
        return pos.value.lower() == "first"

    def limit(self, value: Token) -> tuple[str, int]:
        return ("limit", int(value.value))

    def offset(self, value: Token) -> tuple[str, int]:
        return ("offset", int(value.value))


def _snippet(soql: str, line: int, column: int, text: str) -> str:
    """Salesforce's error layout: the offending line, a caret, the position, the text."""
    lines = soql.split("\n")
    source = lines[line - 1] if 0 < line <= len(lines) else soql
    caret = " " * max(column - 1, 0) + "^"
    return f"\n{source}\n{caret}\nERROR at Row:{line}:Column:{column}\n{text}"


def parse(soql: str) -> SelectStatement:
    """The syntax tree of `soql`, or MALFORMED_QUERY."""
    try:
        tree = _PARSER.parse(soql)
    except UnexpectedCharacters as exc:
        pos = exc.pos_in_stream or 0
        char = soql[pos] if pos < len(soql) else ""
        raise SoqlError(
            "MALFORMED_QUERY",
            f"line {exc.line}:{exc.column - 1} no viable alternative at character '{char}'",
        ) from None
    except (UnexpectedToken, UnexpectedEOF) as exc:
        token = getattr(exc, "token", None)
        if token is None or token.type == "$END":
            line = soql.count("\n") + 1
            column = len(soql.split("\n")[-1]) + 1
            text = "unexpected token: <EOF>"
        else:
            line, column = token.line or 1, token.column or 1
            text = f"unexpected token: {token.value}"
        raise SoqlError("MALFORMED_QUERY", _snippet(soql, line, column, text)) from None
    except UnexpectedInput as exc:  # pragma: no cover - lark's remaining kinds
        raise SoqlError("MALFORMED_QUERY", f"unexpected input: {exc}") from None
    return _ToTree().transform(tree)


# ---------------------------------------------------------------------------------------
# Literal values

_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}


def decode_string(raw: str, *, like: bool = False) -> str:
    """The value of a quoted SOQL string (quotes stripped). In LIKE, `\\_` and `\\%` stay
    escaped (as `\\_` / `\\%`) for the LIKE translation; elsewhere they are an error."""
    out: list[str] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = raw[i + 1] if i + 1 < len(raw) else ""
        if nxt and nxt in "'\"\\":
            # a literal backslash stays escaped inside a LIKE pattern
            out.append("\\\\" if like and nxt == "\\" else nxt)
            i += 2
        elif nxt.lower() in _ESCAPES:
            out.append(_ESCAPES[nxt.lower()])
            i += 2
        elif nxt.lower() == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", raw[i + 2 : i + 6]):
            out.append(chr(int(raw[i + 2 : i + 6], 16)))
            i += 6
        elif like and nxt in "_%":
            out.append("\\" + nxt)
            i += 2
        else:
            raise SoqlError(
                "MALFORMED_QUERY",
                f"Invalid string literal '{raw}'. Illegal character sequence "
                f"'\\{nxt}' in string literal.",
            )
    return "".join(out)


def encode_string(value: str) -> str:
    """`value` as a quoted SOQL string literal (the inverse of decode_string)."""
    out = []
    for ch in value:
        if ch == "\\":
            out.append("\\\\")
        elif ch == "'":
            out.append("\\'")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        else:
            out.append(ch)
    return "'" + "".join(out) + "'"


def stored_datetime(moment: datetime, millis: int = 0) -> str:
    """The storage form 'YYYY-MM-DDTHH:MM:SS.mmmZ' of a UTC moment."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"


# ---------------------------------------------------------------------------------------
# Checking against the schema and translating to SQL

# SOQL also takes a time field's literal as a quoted string.
_STRING_TYPES = TEXT_TYPES | {"time"}
_ID_TYPES = frozenset({"id", "reference"})
_NUMBER_TYPES = frozenset({"int", "double", "currency", "percent"})


_ID_RE = re.compile(r"[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?")


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class ResolvedField:
    """A field path resolved through the schema: the joins it needs and its column."""

    path: tuple[str, ...]  # canonical names: relationship names, then the field name
    objects: tuple[ObjectDef, ...]  # the object of each hop, the queried one first
    field: FieldDef
    alias: str  # SQL table alias holding the column (t0, j1, ...)

    @property
    def column(self) -> str:
        return f"{self.alias}.{quote_ident(self.field.name)}"

    @property
    def display(self) -> str:
        return ".".join(self.path)


@dataclass
class Join:
    alias: str
    parent_alias: str
    reference: FieldDef
    target: ObjectDef


@dataclass
class CompiledQuery:
    """A checked query: its SQL pieces and what the engine needs to shape records."""

    soql: str
    obj: ObjectDef
    select: list[ResolvedField]  # in SELECT order (compound fields included)
    count_all: bool
    count_field: ResolvedField | None
    joins: dict[tuple[str, ...], Join]  # relationship path (canonical) -> join
    where_sql: str
    where_params: list[Any]
    order_sql: str
    limit: int | None
    offset: int | None

    def joins_sql(self) -> str:
        return "".join(
            f" LEFT JOIN {quote_ident(j.target.name)} AS {j.alias}"
            f' ON {j.alias}."Id" = {j.parent_alias}.{quote_ident(j.reference.name)}'
            for j in self.joins.values()
        )

    def select_sql(self, expression: str, *, ordered: bool = True) -> tuple[str, list[Any]]:
        """SELECT `expression` over the matches in result order, LIMIT/OFFSET applied.
        `ordered=False` skips the sort when only the set of rows matters (counts)."""
        sql = f"SELECT {expression} FROM {quote_ident(self.obj.name)} AS t0{self.joins_sql()}"
        if self.where_sql:
            sql += f" WHERE {self.where_sql}"
        bounded = self.limit is not None or self.offset is not None
        if ordered or bounded:
            sql += f" ORDER BY {self.order_sql}"
        params = list(self.where_params)
        if bounded:
            sql += " LIMIT ? OFFSET ?"
            params += [-1 if self.limit is None else self.limit, self.offset or 0]
        return sql, params

    def snapshot_join_sql(self, cursor_table: str) -> str:
        """FROM clause reading the rows a cursor table lists, in its `pos` order."""
        return (
            f"temp.{cursor_table} AS c JOIN {quote_ident(self.obj.name)} AS t0"
            f" ON t0.rowid = c.rid{self.joins_sql()}"
        )


class _Compiler:
    def __init__(self, soql: str, schema: Schema, stmt: SelectStatement) -> None:
        self.soql = soql
        self.schema = schema
        self.stmt = stmt
        self.params: list[Any] = []
        self.joins: dict[tuple[str, ...], Join] = {}
        obj = schema.get(stmt.object_name)
        if obj is None or not obj.readable or not obj.queryable:
            raise SoqlError(
                "INVALID_TYPE",
                _snippet(
                    soql,
                    stmt.object_line,
                    stmt.object_column,
                    f"sObject type '{stmt.object_name}' is not supported. If you are attempting "
                    "to use a custom object, be sure to append the '__c' after the entity name. "
                    "Please reference your WSDL or the describe call for the appropriate names.",
                ),
            )
        self.obj = obj

    # -- fields -------------------------------------------------------------------------
    def _error(self, path: FieldPath, code: str, text: str) -> SoqlError:
        return SoqlError(code, _snippet(self.soql, path.line, path.column, text))

    def resolve(self, path: FieldPath) -> ResolvedField:
        obj = self.obj
        alias = "t0"
        canonical: list[str] = []
        objects = [obj]
        for hop in path.parts[:-1]:
            reference = obj.relationship(hop)
            target = None
            if (
                reference is not None
                and reference.readable_by_user
                and len(reference.reference_to) == 1
            ):
                target = self.schema.get(reference.reference_to[0])
            if reference is None or target is None or not target.readable:
                raise self._error(
                    path,
                    "INVALID_FIELD",
                    f"Didn't understand relationship '{hop}' in field path. If you are attempting "
                    "to use a custom relationship, be sure to append the '__r' after the custom "
                    "relationship name. Please reference your WSDL or the describe call for the "
                    "appropriate names.",
                )
            assert reference.relationship_name is not None
            canonical.append(reference.relationship_name)
            key = tuple(canonical)
            join = self.joins.get(key)
            if join is None:
                join = Join(f"j{len(self.joins) + 1}", alias, reference, target)
                self.joins[key] = join
            alias = join.alias
            obj = target
            objects.append(obj)
        fdef = obj.field(path.parts[-1])
        if fdef is None or not fdef.readable_by_user:
            raise self._error(
                path,
                "INVALID_FIELD",
                f"No such column '{path.parts[-1]}' on entity '{obj.name}'. If you are "
                "attempting to use a custom field, be sure to append the '__c' after the custom "
                "field name. Please reference your WSDL or the describe call for the appropriate "
                "names.",
            )
        return ResolvedField((*canonical, fdef.name), tuple(objects), fdef, alias)

    # -- WHERE --------------------------------------------------------------------------
    def condition(self, node: Any) -> str:
        if isinstance(node, BoolOp):
            joiner = f" {node.op} "
            return "(" + joiner.join(self.condition(item) for item in node.items) + ")"
        if isinstance(node, Not):
            return f"(NOT {self.condition(node.item)})"
        if isinstance(node, Compare):
            return self.compare(node)
        if isinstance(node, Like):
            return self.like(node)
        if isinstance(node, InList):
            return self.in_list(node)
        raise AssertionError(node)  # pragma: no cover

    def filter_field(self, path: FieldPath) -> ResolvedField:
        resolved = self.resolve(path)
        if resolved.field.is_compound or not resolved.field.filterable:
            raise self._error(
                path,
                "INVALID_FIELD",
                f"field '{resolved.field.name}' can not be filtered in a query call",
            )
        return resolved

    def _type_error(self, path: FieldPath, fdef: FieldDef) -> SoqlError:
        kind = {
            "datetime": "dateTime",
            "date": "date",
            "boolean": "boolean",
            "int": "int",
            "double": "double",
            "currency": "currency",
            "percent": "double",
        }.get(fdef.type, "string")
        if kind == "string":
            text = (
                f"value of filter criterion for field '{fdef.name}' must be of type string "
                "and should be enclosed in quotes"
            )
        else:
            text = (
                f"value of filter criterion for field '{fdef.name}' must be of type {kind} "
                "and should not be enclosed in quotes"
            )
        return self._error(path, "INVALID_FIELD", text)

    def value(self, path: FieldPath, fdef: FieldDef, lit: Literal) -> Any:
        """The stored form of `lit` for a comparison with `fdef`, or a type error."""
        ftype = fdef.type
        if lit.kind == "null":
            return None
        if ftype in _STRING_TYPES:
            if lit.kind != "string":
                raise self._type_error(path, fdef)
            return decode_string(lit.value)
        if ftype in _ID_TYPES:
            if lit.kind != "string":
                raise self._type_error(path, fdef)
            text = decode_string(lit.value)
            if not _ID_RE.fullmatch(text):
                raise self._error(
                    path, "INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {text}"
                )
            # a 15-character id names the same record as its 18-character form
            return text[:15] + ids.checksum(text[:15])
        if ftype == "boolean":
            if lit.kind != "boolean":
                raise self._type_error(path, fdef)
            return 1 if lit.value else 0
        if ftype in _NUMBER_TYPES:
            if lit.kind != "number":
                raise self._type_error(path, fdef)
            try:
                number = Decimal(lit.value)
            except InvalidOperation:  # pragma: no cover - the grammar only lets numbers in
                raise self._type_error(path, fdef) from None
            return int(number) if number == number.to_integral_value() else float(number)
        if ftype == "date":
            if lit.kind != "date":
                raise self._type_error(path, fdef)
            try:
                datetime.strptime(lit.value, "%Y-%m-%d")  # noqa: DTZ007 - a calendar date
            except ValueError:
                raise self._error(path, "MALFORMED_QUERY", f"invalid date: {lit.value}") from None
            return lit.value
        if ftype == "datetime":
            if lit.kind != "datetime":
                raise self._type_error(path, fdef)
            try:
                return datetimes.parse_literal(lit.value)
            except ValueError:
                raise self._error(
                    path, "MALFORMED_QUERY", f"invalid datetime: {lit.value}"
                ) from None
        raise self._type_error(path, fdef)  # pragma: no cover

    def _collate(self, fdef: FieldDef) -> str:
        # Salesforce compares text case-insensitively, except the values of a unique
        # case-sensitive field ("String comparisons using the equals operator are
        # case-sensitive for unique case-sensitive fields"); ids are compared exactly.
        if fdef.type not in _STRING_TYPES:
            return ""
        return " COLLATE BINARY" if fdef.case_sensitive else " COLLATE NOCASE"

    def _bind(self, value: Any) -> str:
        self.params.append(value)
        return "?"

    def compare(self, node: Compare) -> str:
        resolved = self.filter_field(node.path)
        fdef = resolved.field
        col = resolved.column
        value = self.value(node.path, fdef, node.value)
        op = node.op
        if value is None:
            if op == "=":
                return f"{col} IS NULL"
            if op == "!=":
                return f"{col} IS NOT NULL"
            raise self._error(
                node.path,
                "INVALID_QUERY_FILTER_OPERATOR",
                f"invalid operator on null value: {op}",
            )
        if fdef.type == "boolean" and op not in ("=", "!="):
            raise self._error(
                node.path,
                "INVALID_QUERY_FILTER_OPERATOR",
                f"invalid operator on boolean field '{fdef.name}': {op}",
            )
        if fdef.type == "datetime":
            return self._compare_datetime(col, op, value)
        collate = self._collate(fdef)
        # Every predicate is two-valued: a null column never matches = / < / >, always !=.
        if op == "=":
            return f"{col} IS {self._bind(value)}{collate}"
        if op == "!=":
            return f"{col} IS NOT {self._bind(value)}{collate}"
        return f"({col} IS NOT NULL AND {col} {op} {self._bind(value)}{collate})"

    def _compare_datetime(self, col: str, op: str, value: tuple[datetime, int]) -> str:
        moment, nanos = value
        floor = stored_datetime(moment, nanos // 1_000_000)
        exact = nanos % 1_000_000 == 0
        # Stored values have millisecond precision: round the literal the way each
        # comparison needs so sub-millisecond literals (.000000Z from singer) compare right.
        ceil = floor if exact else _next_milli(moment, nanos // 1_000_000)
        if op == "=":
            return f"{col} IS {self._bind(floor)}" if exact else "0"
        if op == "!=":
            return f"{col} IS NOT {self._bind(floor)}" if exact else "1"
        bound = {">=": ceil, "<": ceil, ">": floor, "<=": floor}[op]
        return f"({col} IS NOT NULL AND {col} {op} {self._bind(bound)})"

    def like(self, node: Like) -> str:
        resolved = self.filter_field(node.path)
        fdef = resolved.field
        if fdef.type not in _STRING_TYPES or node.value.kind != "string":
            if node.value.kind == "string":
                raise self._error(
                    node.path,
                    "INVALID_QUERY_FILTER_OPERATOR",
                    f"invalid operator on field '{fdef.name}': LIKE",
                )
            raise self._type_error(node.path, fdef)
        pattern = decode_string(node.value.value, like=True)
        col = resolved.column
        return f"({col} IS NOT NULL AND {col} LIKE {self._bind(pattern)} ESCAPE '\\')"

    def in_list(self, node: InList) -> str:
        resolved = self.filter_field(node.path)
        fdef = resolved.field
        values = [self.value(node.path, fdef, lit) for lit in node.values]
        col = resolved.column
        if fdef.type == "datetime":
            keys = [stored_datetime(m, n // 1_000_000) for m, n in values if n % 1_000_000 == 0]
            values = keys
        non_null = [v for v in values if v is not None]
        has_null = len(non_null) != len(values)
        collate = self._collate(fdef)
        marks = ", ".join(self._bind(v) for v in non_null)
        if node.negated:
            parts = [f"{col} IS NOT NULL"] if has_null else []
            if non_null:
                parts.append(f"({col} IS NULL OR {col}{collate} NOT IN ({marks}))")
            return "(" + " AND ".join(parts) + ")" if parts else "1"
        parts = [f"{col} IS NULL"] if has_null else []
        if non_null:
            parts.append(f"({col} IS NOT NULL AND {col}{collate} IN ({marks}))")
        return "(" + " OR ".join(parts) + ")" if parts else "0"

    # -- ORDER BY -----------------------------------------------------------------------
    def order(self) -> str:
        terms = []
        for item in self.stmt.order_by:
            resolved = self.resolve(item.path)
            if resolved.field.is_compound or not resolved.field.sortable:
                raise self._error(
                    item.path,
                    "INVALID_FIELD",
                    f"field '{resolved.field.name}' can not be sorted in a query call",
                )
            direction = "DESC" if item.descending else "ASC"
            nulls = "NULLS FIRST" if item.nulls_first else "NULLS LAST"
            collate = " COLLATE NOCASE" if resolved.field.type in _STRING_TYPES else ""
            terms.append(f"{resolved.column}{collate} {direction} {nulls}")
        terms.append("t0.rowid ASC")  # a stable tie-break, so paging never reorders
        return ", ".join(terms)

    # -- the whole statement ------------------------------------------------------------
    def compile(self, include_deleted: bool) -> CompiledQuery:
        stmt = self.stmt
        select: list[ResolvedField] = []
        count_all = False
        count_field: ResolvedField | None = None
        for item in stmt.items:
            if isinstance(item, CountAll):
                count_all = True
            elif isinstance(item, CountField):
                count_field = self.resolve(item.path)
            else:
                select.append(self.resolve(item))
        if (count_all or count_field is not None) and len(stmt.items) > 1:
            raise SoqlError(
                "MALFORMED_QUERY",
                "Field must be grouped or aggregated: " + next(r.field.name for r in select)
                if select
                else "COUNT() and COUNT(field) can not be combined",
            )
        if count_all and stmt.order_by:
            raise SoqlError("MALFORMED_QUERY", "Ordered field cannot be aggregated in a query")
        if stmt.offset is not None and stmt.offset > MAX_OFFSET:
            raise SoqlError(
                "NUMBER_OUTSIDE_VALID_RANGE", f"Maximum SOQL offset allowed is {MAX_OFFSET}"
            )
        where_parts = []
        if stmt.where is not None:
            where_parts.append(self.condition(stmt.where))
        if not include_deleted and self.obj.field("IsDeleted") is not None:
            where_parts.append('t0."IsDeleted" = 0')
        where_sql = " AND ".join(where_parts)
        order_sql = self.order()
        return CompiledQuery(
            soql=self.soql,
            obj=self.obj,
            select=select,
            count_all=count_all,
            count_field=count_field,
            joins=self.joins,
            where_sql=where_sql,
            where_params=self.params,
            order_sql=order_sql,
            limit=stmt.limit,
            offset=stmt.offset,
        )


def _next_milli(moment: datetime, millis: int) -> str:
    if millis == 999:
        return stored_datetime(moment + timedelta(seconds=1), 0)
    return stored_datetime(moment, millis + 1)


def compile_query(soql: str, schema: Schema, *, include_deleted: bool) -> CompiledQuery:
    """Parse and check `soql` against `schema`; the SQL to run it. Raises SoqlError."""
    stmt = parse(soql)
    return _Compiler(soql, schema, stmt).compile(include_deleted)


__all__ = [
    "CompiledQuery",
    "ResolvedField",
    "SelectStatement",
    "SoqlError",
    "compile_query",
    "decode_string",
    "encode_string",
    "parse",
    "stored_datetime",
]
