"""Runs SOQL against the SQLite store: REST query pages with locators, and Bulk 2.0 CSV rows.

Paging is a snapshot: the first call materialises the ordered rowids of every match into a
temporary table keyed by position; later pages join that table by position range, so a
page costs the same at row 2,000 as at row 1,000,000. Cursors live 2 days, as in Salesforce.
All SQLite work happens under the lock the storage layer shares.
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from . import ids
from .schema import FieldDef, Schema
from .soql import (
    CompiledQuery,
    ResolvedField,
    SoqlError,
    compile_query,
    quote_ident,
)

# Since API v56.0 Salesforce keeps a cursor and its results for 2 days after the query ran,
# with no limit on open cursors (the old 10-per-user / 15-minutes-idle rules are gone, for
# every API version). The cap below only bounds the emulator's memory; it is no Salesforce limit.
CURSOR_LIFETIME_SECONDS = 2 * 24 * 3600
MAX_CURSORS = 10_000
_CSV_CHUNK = 2000


_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _locator_id(number: int) -> str:
    """An 18-character query locator id (key prefix 01g)."""
    digits = ""
    while True:
        number, rest = divmod(number, 62)
        digits = _B62[rest] + digits
        if number == 0:
            break
    body = "01g5g" + digits.rjust(10, "0")
    return body + ids.checksum(body)


@dataclass
class QueryPage:
    total_size: int
    done: bool
    records: list[dict[str, Any]]
    next_locator: str | None = None


@dataclass
class _Cursor:
    table: str
    compiled: CompiledQuery
    total: int
    batch_size: int
    created: float = field(default_factory=time.monotonic)


# -- value shaping ----------------------------------------------------------------------


def _json_converter(fdef: FieldDef) -> Callable[[Any], Any] | None:
    """Stored value -> REST JSON value (None when the stored value is already right)."""
    if fdef.type == "datetime":
        return lambda v: None if v is None else v[:-1] + "+0000"
    if fdef.type == "boolean":
        return lambda v: None if v is None else bool(v)
    if fdef.type in ("double", "currency", "percent"):
        return lambda v: None if v is None else float(v)
    if fdef.type == "int":
        return lambda v: None if v is None else int(v)
    return None


def _csv_converter(fdef: FieldDef) -> Callable[[Any], str]:
    """Stored value -> Bulk 2.0 CSV text (null = empty)."""
    if fdef.type == "boolean":
        return lambda v: "" if v is None else ("true" if v else "false")
    if fdef.type in ("double", "currency", "percent"):
        scale0 = fdef.scale == 0

        def number(v: Any) -> str:
            if v is None:
                return ""
            value = float(v)
            return str(int(value)) if scale0 and value.is_integer() else repr(value)

        return number
    if fdef.type == "int":
        return lambda v: "" if v is None else str(int(v))
    return lambda v: "" if v is None else str(v)


def _compound_key(compound: str, component: str) -> str:
    """`BillingPostalCode` of `BillingAddress` -> `postalCode`; `Street` -> `street`."""
    prefix = compound[: -len("Address")] if compound.endswith("Address") else ""
    rest = component[len(prefix) :] if component.startswith(prefix) else component
    rest = rest.removesuffix("__s")
    rest = rest.split("__")[-1] if "__" in rest else rest
    return rest[:1].lower() + rest[1:]


class _RecordShape:
    """Turns one SQL row into the REST JSON record, following the SELECT list."""

    def __init__(self, compiled: CompiledQuery, api_version: str) -> None:
        self.columns: list[str] = ['t0."Id"']
        self.base = f"/services/data/v{api_version.lstrip('v')}/sobjects/"
        # per relationship path: index of the parent's Id column
        self.parent_id_index: dict[tuple[str, ...], int] = {}
        for path, join in compiled.joins.items():
            self.parent_id_index[path] = len(self.columns)
            self.columns.append(f'{join.alias}."Id"')
        self.plan: list[tuple[ResolvedField, Any]] = []
        for resolved in compiled.select:
            fdef = resolved.field
            if fdef.is_compound:
                obj = resolved.objects[-1]
                parts = []
                for comp in obj.components(fdef.name):
                    if comp.sql_type is None:
                        continue
                    parts.append(
                        (
                            _compound_key(fdef.name, comp.name),
                            len(self.columns),
                            _json_converter(comp),
                        )
                    )
                    self.columns.append(f"{resolved.alias}.{quote_ident(comp.name)}")
                self.plan.append((resolved, sorted(parts)))
            else:
                self.plan.append((resolved, (len(self.columns), _json_converter(fdef))))
                self.columns.append(resolved.column)
        self.obj = compiled.obj
        self.parent_types = {path: join.target.name for path, join in compiled.joins.items()}

    def record(self, row: tuple[Any, ...]) -> dict[str, Any]:
        record: dict[str, Any] = {
            "attributes": {"type": self.obj.name, "url": self.base + f"{self.obj.name}/{row[0]}"}
        }
        parents: dict[tuple[str, ...], dict[str, Any] | None] = {}
        for resolved, how in self.plan:
            if resolved.field.is_compound:
                value: Any = {k: (row[i] if conv is None else conv(row[i])) for k, i, conv in how}
                if all(v is None for v in value.values()):
                    value = None
            else:
                index, conv = how
                value = row[index] if conv is None else conv(row[index])
            path = resolved.path
            if len(path) == 1:
                record[path[0]] = value
                continue
            target = record
            for depth in range(1, len(path)):
                prefix = path[:depth]
                if prefix not in parents:
                    parent_id = row[self.parent_id_index[prefix]]
                    holder = parents.get(prefix[:-1]) if depth > 1 else record
                    if parent_id is None or holder is None:
                        parents[prefix] = None
                    else:
                        parent_type = self.parent_types[prefix]
                        parents[prefix] = {
                            "attributes": {
                                "type": parent_type,
                                "url": self.base + f"{parent_type}/{parent_id}",
                            }
                        }
                    if holder is not None:
                        holder[prefix[-1]] = parents[prefix]
                node = parents[prefix]
                if node is None:
                    target = None  # type: ignore[assignment]
                    break
                target = node
            if target is not None:
                target[path[-1]] = value
        return record


class QueryEngine:
    """SOQL over the SQLite store, for `/query`, `/queryAll` and Bulk 2.0 query jobs."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock, schema: Schema) -> None:
        self.conn = conn
        self.lock = lock
        self.schema = schema
        self._cursors: OrderedDict[str, _Cursor] = OrderedDict()
        self._numbers = itertools.count(1)
        self._tables = itertools.count(1)

    # -- public API ---------------------------------------------------------------------
    def compile(self, soql: str, *, include_deleted: bool) -> CompiledQuery:
        return compile_query(soql, self.schema, include_deleted=include_deleted)

    def run(
        self, soql: str, *, include_deleted: bool, batch_size: int = 2000, api_version: str
    ) -> QueryPage:
        compiled = self.compile(soql, include_deleted=include_deleted)
        batch_size = max(200, min(2000, batch_size))
        with self.lock:
            if compiled.count_all or compiled.count_field is not None:
                return self._count(compiled)
            table = self._snapshot(compiled)
            total = self._scalar(f"SELECT count(*) FROM temp.{table}")
            if total <= batch_size:
                records = self._page(compiled, table, 0, batch_size, api_version)
                self._drop(table)
                return QueryPage(total, True, records)
            self._expire()
            locator = _locator_id(next(self._numbers))
            self._cursors[locator] = _Cursor(table, compiled, total, batch_size)
            while len(self._cursors) > MAX_CURSORS:
                _, old = self._cursors.popitem(last=False)
                self._drop(old.table)
            records = self._page(compiled, table, 0, batch_size, api_version)
            return QueryPage(total, False, records, f"{locator}-{batch_size}")

    def next_page(self, locator: str, *, api_version: str) -> QueryPage:
        cursor_id, _, offset_text = locator.partition("-")
        with self.lock:
            self._expire()
            cursor = self._cursors.get(cursor_id)
            if cursor is None or not offset_text.isdigit():
                raise SoqlError("INVALID_QUERY_LOCATOR", "invalid query locator")
            self._cursors.move_to_end(cursor_id)
            offset = int(offset_text)
            end = min(offset + cursor.batch_size, cursor.total)
            records = self._page(cursor.compiled, cursor.table, offset, end - offset, api_version)
            if end >= cursor.total:
                del self._cursors[cursor_id]
                self._drop(cursor.table)
                return QueryPage(cursor.total, True, records)
            return QueryPage(cursor.total, False, records, f"{cursor_id}-{end}")

    def check_bulk(self, soql: str, *, include_deleted: bool) -> CompiledQuery:
        """Refuse what Bulk 2.0 refuses at job creation; the compiled query otherwise."""
        compiled = self.compile(soql, include_deleted=include_deleted)
        if any(r.field.is_compound for r in compiled.select):
            raise SoqlError("API_ERROR", "Selecting compound data not supported in Bulk Query")
        if compiled.count_all or compiled.count_field is not None:
            raise SoqlError(
                "API_ERROR", "Aggregate queries are not supported by Bulk API 2.0 query jobs"
            )
        if compiled.offset is not None:
            raise SoqlError("API_ERROR", "OFFSET clause is not supported by Bulk API 2.0")
        return compiled

    def iter_csv(
        self, soql: str, *, include_deleted: bool
    ) -> tuple[list[str], Iterator[list[str]]]:
        """Header and rows of a Bulk 2.0 result, read from a snapshot taken now."""
        return self.compiled_csv(self.check_bulk(soql, include_deleted=include_deleted))

    def compiled_csv(self, compiled: CompiledQuery) -> tuple[list[str], Iterator[list[str]]]:
        """Header and rows of a checked bulk query (Bulk 1.0 narrows it to Id ranges)."""
        header = [r.display for r in compiled.select]
        columns = [r.column for r in compiled.select]
        converters = [_csv_converter(r.field) for r in compiled.select]
        with self.lock:
            table = self._snapshot(compiled)
            total = self._scalar(f"SELECT count(*) FROM temp.{table}")
        sql = (
            f"SELECT {', '.join(columns)} FROM {compiled.snapshot_join_sql(table)} "
            "WHERE c.pos > ? AND c.pos <= ? ORDER BY c.pos"
        )

        def rows() -> Iterator[list[str]]:
            try:
                for start in range(0, total, _CSV_CHUNK):
                    with self.lock:
                        chunk = self.conn.execute(sql, (start, start + _CSV_CHUNK)).fetchall()
                    for row in chunk:
                        yield [conv(v) for conv, v in zip(converters, row, strict=False)]
            finally:
                with self.lock:
                    self._drop(table)

        return header, rows()

    # -- internals ----------------------------------------------------------------------
    def _scalar(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        return int(self.conn.execute(sql, params).fetchone()[0])

    def _count(self, compiled: CompiledQuery) -> QueryPage:
        if compiled.count_field is not None:
            sql, params = compiled.select_sql(f"{compiled.count_field.column} AS v", ordered=False)
            count = self._scalar(f"SELECT count(v) FROM ({sql})", tuple(params))
            record = {"attributes": {"type": "AggregateResult"}, "expr0": count}
            return QueryPage(1, True, [record])
        sql, params = compiled.select_sql("1", ordered=False)
        return QueryPage(self._scalar(f"SELECT count(*) FROM ({sql})", tuple(params)), True, [])

    def _snapshot(self, compiled: CompiledQuery) -> str:
        table = f"soql_cursor_{next(self._tables)}"
        sql, params = compiled.select_sql("t0.rowid")
        was_in_tx = self.conn.in_transaction
        self.conn.execute(f"CREATE TEMP TABLE {table} (pos INTEGER PRIMARY KEY, rid INTEGER)")
        self.conn.execute(f"INSERT INTO temp.{table} (rid) {sql}", params)
        if not was_in_tx and self.conn.in_transaction:
            self.conn.commit()  # our own implicit transaction only
        return table

    def _drop(self, table: str) -> None:
        was_in_tx = self.conn.in_transaction
        self.conn.execute(f"DROP TABLE IF EXISTS temp.{table}")
        if not was_in_tx and self.conn.in_transaction:
            self.conn.commit()

    def _expire(self) -> None:
        now = time.monotonic()
        for key in [
            k for k, c in self._cursors.items() if now - c.created > CURSOR_LIFETIME_SECONDS
        ]:
            self._drop(self._cursors.pop(key).table)

    def _page(
        self, compiled: CompiledQuery, table: str, offset: int, count: int, api_version: str
    ) -> list[dict[str, Any]]:
        shape = _RecordShape(compiled, api_version)
        sql = (
            f"SELECT {', '.join(shape.columns)} FROM {compiled.snapshot_join_sql(table)} "
            "WHERE c.pos > ? AND c.pos <= ? ORDER BY c.pos"
        )
        rows = self.conn.execute(sql, (offset, offset + count)).fetchall()
        return [shape.record(row) for row in rows]


__all__ = ["QueryEngine", "QueryPage", "SoqlError"]
