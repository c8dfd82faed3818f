"""Shape REST records and Bulk CSV rows into one record form, typed by the describe schema.

Both paths query the same SOQL field list: compound fields are read through their
components and rebuilt (null when every component is null), parent fields are nested as
`{"Account": {"Product_Account_Id__c": ...}}` (values null when there is no parent), and
every value is converted by its Salesforce type, so REST and Bulk give identical records.

Records leave here final: only schema properties, JSON types, no NaN or infinity. The
streams rely on that to skip singer-sdk's per-record type conformance (see client.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from salesforce_appcues_clients.soql import select_parts

from .schema_mapping import FieldInfo, ObjectInfo, ParentPath, component_key
from .timefmt import canonical_datetime

ALWAYS_READ = ("Id", "SystemModstamp")
_MISSING = object()  # a key absent under its exact spelling: look again case-insensitively

Converter = Callable[[Any], Any]


class RecordShapeError(ValueError):
    """A value cannot be read as its field's type (the message names record and field)."""


def _to_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        raise ValueError(value)
    return text == "true"


def _to_integer(value: Any) -> int:
    if type(value) is int:  # a JSON integer already (not bool: str(True) is no number)
        return value
    return int(Decimal(str(value)))


def _to_number(value: Any) -> float | None:
    number = float(value)
    # JSON has no NaN or infinity; singer-sdk's conformance also wrote them as null.
    return number if math.isfinite(number) else None


def _to_datetime(value: Any) -> str:
    return canonical_datetime(value if isinstance(value, str) else str(value))


def _to_text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def converter(sf_type: str) -> Converter:
    """The conversion of a non-empty value of one Salesforce type (raises ValueError & co)."""
    if sf_type == "boolean":
        return _to_boolean
    if sf_type in ("int", "long"):
        return _to_integer
    if sf_type in ("double", "currency", "percent"):
        return _to_number
    if sf_type == "datetime":
        return _to_datetime
    return _to_text


def _shape_error(record_id: str, field: str, value: Any, sf_type: str) -> RecordShapeError:
    return RecordShapeError(
        f"record {record_id}: field {field}: {value!r} is not a valid {sf_type}"
    )


class _Column:
    """One value to read: where it sits in a result, where it goes, how it converts."""

    __slots__ = ("convert", "field", "key", "path", "path_lower", "sf_type")

    def __init__(self, field: str, path: tuple[str, ...], key: str, sf_type: str) -> None:
        self.field = field  # the name an error message gives (SOQL spelling)
        self.path = path  # REST: keys from the record down (one, or a parent path)
        self.path_lower = tuple(p.lower() for p in path)
        self.key = key  # the key in the record (or compound) built
        self.sf_type = sf_type
        self.convert = converter(sf_type)


class RecordShaper:
    """The SOQL field list of one stream, and the conversion of its results into records."""

    def __init__(
        self,
        obj: ObjectInfo,
        selected: Iterable[str],
        parent_paths: Iterable[ParentPath] = (),
        extra_fields: Iterable[str] = (),
    ) -> None:
        self.obj = obj
        self.parent_paths = list(parent_paths)
        wanted = list(dict.fromkeys([*ALWAYS_READ, *extra_fields, *selected]))
        self.scalars: list[FieldInfo] = []  # plain fields to read and keep
        self.compounds: dict[str, list[tuple[str, str, str]]] = {}  # name -> (component, key, type)
        columns: list[str] = []
        for name in wanted:
            info = obj.field(name)
            if info is None:
                continue  # a parent-path property or an unknown name: handled elsewhere
            if info.is_compound:
                parts = [
                    (c.name, component_key(info.name, c.name), c.sf_type)
                    for c in obj.components(info.name)
                ]
                self.compounds[info.name] = parts
                columns.extend(p[0] for p in parts)
            else:
                self.scalars.append(info)
                columns.append(info.name)
        selected_roots = {name.lower() for name in wanted}
        self.parent_paths = [
            p for p in self.parent_paths if p.segments[0].lower() in selected_roots
        ]
        columns.extend(p.soql for p in self.parent_paths)
        self.columns = list(dict.fromkeys(columns))
        # The plan, worked out once: record building runs per record.
        self._scalar_columns = [_Column(f.name, (f.name,), f.name, f.sf_type) for f in self.scalars]
        self._compound_columns = [
            (compound, [_Column(name, (name,), key, sf_type) for name, key, sf_type in parts])
            for compound, parts in self.compounds.items()
        ]
        self._parent_columns = [
            (p.segments[:-1], _Column(p.soql, p.segments, p.segments[-1], p.leaf.sf_type))
            for p in self.parent_paths
        ]

    def soql(self, where: str = "", order_by: str = "") -> str:
        text = f"SELECT {', '.join(self.columns)} FROM {self.obj.name}"
        if where:
            text += f" WHERE {where}"
        if order_by:
            text += f" ORDER BY {order_by}"
        return text

    def soql_parts(self, where: str, order_by: str, endpoint: str) -> list[str]:
        """The query as REST GETs that fit a URL on `endpoint`: itself when it fits, else
        several queries of the same rows, each reading `Id`, `SystemModstamp` and a share of
        the fields (a wide object; see docs/reliability.md "Wide objects")."""
        rest = self.soql(where, order_by).split(" FROM ", 1)[1]
        parts = select_parts(ALWAYS_READ, self.columns, f"FROM {rest}", endpoint)
        if len(parts) == 1:
            return [self.soql(where, order_by)]
        return [f"SELECT {', '.join(part)} FROM {rest}" for part in parts]

    def from_rest(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """A REST query record (nested parents, `attributes`) as a stream record.

        Keys are read as Salesforce spells them, case-insensitively when that misses.
        """
        lowered: dict[str, Any] | None = None

        def fallback(column: _Column) -> Any:
            nonlocal lowered
            if lowered is None:
                lowered = {k.lower(): v for k, v in raw.items() if k != "attributes"}
            return lowered.get(column.field.lower())

        def get_path(column: _Column) -> Any:
            node: Any = raw
            for segment, lower in zip(column.path, column.path_lower, strict=True):
                if not isinstance(node, Mapping):
                    return None
                value = node.get(segment, _MISSING)
                if value is _MISSING:
                    value = {k.lower(): v for k, v in node.items()}.get(lower)
                node = value
            return node

        return self._build(lambda: str(raw.get("Id")), raw, fallback, get_path)

    def from_bulk(self, row: Mapping[str, str | None]) -> dict[str, Any]:
        """A Bulk 2.0 CSV row (all strings, parents as `Account.Field` columns) as a record."""
        lowered: dict[str, Any] | None = None

        def fallback(column: _Column) -> Any:
            nonlocal lowered
            if lowered is None:
                lowered = {k.lower(): v for k, v in row.items()}
            return lowered.get(column.field.lower())

        def get_path(column: _Column) -> Any:
            value = row.get(column.field, _MISSING)
            return fallback(column) if value is _MISSING else value

        def record_id() -> str:
            return str({k.lower(): v for k, v in row.items()}.get("id"))

        return self._build(record_id, row, fallback, get_path)

    def _build(
        self,
        record_id: Callable[[], str],
        source: Mapping[str, Any],
        fallback: Callable[[_Column], Any],
        get_path: Callable[[_Column], Any],
    ) -> dict[str, Any]:
        """The record, in a fixed key order: plain fields, compounds, then parent paths."""
        record: dict[str, Any] = {}
        column: _Column | None = None
        value: Any = None
        get = source.get
        try:
            for column in self._scalar_columns:
                value = get(column.field, _MISSING)
                if value is _MISSING:
                    value = fallback(column)
                record[column.key] = None if value is None or value == "" else column.convert(value)
            for compound, parts in self._compound_columns:
                built: dict[str, Any] = {}
                for column in parts:
                    value = get(column.field, _MISSING)
                    if value is _MISSING:
                        value = fallback(column)
                    built[column.key] = (
                        None if value is None or value == "" else column.convert(value)
                    )
                record[compound] = built if any(v is not None for v in built.values()) else None
            for holders, column in self._parent_columns:
                node = record
                for segment in holders:
                    node = node.setdefault(segment, {})
                value = get_path(column)
                node[column.key] = None if value is None or value == "" else column.convert(value)
        except (ValueError, TypeError, InvalidOperation):
            assert column is not None
            raise _shape_error(record_id(), column.field, value, column.sf_type) from None
        return record
