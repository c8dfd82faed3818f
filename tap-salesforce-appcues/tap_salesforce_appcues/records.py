"""Shape REST records and Bulk CSV rows into one record form, typed by the describe schema.

Both paths query the same SOQL field list: compound fields are read through their
components and rebuilt (null when every component is null), parent fields are nested as
`{"Account": {"Product_Account_Id__c": ...}}` (values null when there is no parent), and
every value is converted by its Salesforce type, so REST and Bulk give identical records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from .schema_mapping import FieldInfo, ObjectInfo, ParentPath, component_key
from .timefmt import canonical_datetime

ALWAYS_READ = ("Id", "SystemModstamp")


class RecordShapeError(ValueError):
    """A value cannot be read as its field's type (the message names record and field)."""


def convert_value(value: Any, sf_type: str, *, record_id: str, field: str) -> Any:
    """One REST JSON value or Bulk CSV string, as the JSON type of its Salesforce type."""
    if value is None or value == "":
        return None
    try:
        if sf_type == "boolean":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text not in ("true", "false"):
                raise ValueError(value)
            return text == "true"
        if sf_type in ("int", "long"):
            return int(Decimal(str(value)))
        if sf_type in ("double", "currency", "percent"):
            return float(value)
        if sf_type == "datetime":
            return canonical_datetime(str(value))
    except (ValueError, TypeError, InvalidOperation):
        raise RecordShapeError(
            f"record {record_id}: field {field}: {value!r} is not a valid {sf_type}"
        ) from None
    return value if isinstance(value, str) else str(value)


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
        self._types = {f.name: f.sf_type for f in obj.fields.values()}

    def soql(self, where: str = "", order_by: str = "") -> str:
        text = f"SELECT {', '.join(self.columns)} FROM {self.obj.name}"
        if where:
            text += f" WHERE {where}"
        if order_by:
            text += f" ORDER BY {order_by}"
        return text

    def from_rest(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """A REST query record (nested parents, `attributes`) as a stream record."""
        flat = {k.lower(): v for k, v in raw.items() if k != "attributes"}
        record_id = str(raw.get("Id"))

        def lookup_path(segments: tuple[str, ...]) -> Any:
            node: Any = raw
            for segment in segments:
                if not isinstance(node, Mapping):
                    return None
                node = {k.lower(): v for k, v in node.items()}.get(segment.lower())
            return node

        return self._build(record_id, lambda name: flat.get(name.lower()), lookup_path)

    def from_bulk(self, row: Mapping[str, str | None]) -> dict[str, Any]:
        """A Bulk 2.0 CSV row (all strings, parents as `Account.Field` columns) as a record."""
        flat = {k.lower(): v for k, v in row.items()}
        record_id = str(flat.get("id"))
        return self._build(
            record_id,
            lambda name: flat.get(name.lower()),
            lambda segments: flat.get(".".join(segments).lower()),
        )

    def _build(self, record_id: str, get: Any, get_path: Any) -> dict[str, Any]:
        record: dict[str, Any] = {}
        for info in self.scalars:
            record[info.name] = convert_value(
                get(info.name), info.sf_type, record_id=record_id, field=info.name
            )
        for compound, parts in self.compounds.items():
            value = {
                key: convert_value(get(name), sf_type, record_id=record_id, field=name)
                for name, key, sf_type in parts
            }
            record[compound] = value if any(v is not None for v in value.values()) else None
        for path in self.parent_paths:
            node = record
            for segment in path.segments[:-1]:
                node = node.setdefault(segment, {})
            node[path.segments[-1]] = convert_value(
                get_path(path.segments),
                path.leaf.sf_type,
                record_id=record_id,
                field=path.soql,
            )
        return record
