"""The org's metadata: objects and fields as describe reports them.

This module is the contract between storage (`models.py`) and the SOQL engine
(`soql.py` / `query_engine.py`). Storage conventions, one SQLite table per object:
- table name = object API name, column name = field API name (exact case);
- id / reference / string-like types: TEXT; boolean: INTEGER 0/1; int: INTEGER;
  double / currency / percent: REAL; date: TEXT 'YYYY-MM-DD';
  datetime: TEXT 'YYYY-MM-DDTHH:MM:SS.000Z' (UTC, sortable); multipicklist: TEXT 'a;b';
- compound fields (type 'address' / 'location') have no column: they are assembled from
  their components, whose FieldDef.compound_field_name names the compound;
- formula fields are real columns that storage recomputes on every write.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

# describe 'type' -> (soapType, SQLite column type or None for compound fields)
# Field types whose values are text: stored as TEXT, compared ignoring case unless the field
# is case-sensitive.
TEXT_TYPES = frozenset(
    {
        "string",
        "textarea",
        "email",
        "phone",
        "url",
        "picklist",
        "multipicklist",
        "combobox",
        "encryptedstring",
    }
)
_TYPES: dict[str, tuple[str, str | None]] = {
    "id": ("tns:ID", "TEXT"),
    "reference": ("tns:ID", "TEXT"),
    "string": ("xsd:string", "TEXT"),
    "textarea": ("xsd:string", "TEXT"),
    "email": ("xsd:string", "TEXT"),
    "phone": ("xsd:string", "TEXT"),
    "url": ("xsd:string", "TEXT"),
    "picklist": ("xsd:string", "TEXT"),
    "multipicklist": ("xsd:string", "TEXT"),
    "combobox": ("xsd:string", "TEXT"),
    "encryptedstring": ("xsd:string", "TEXT"),
    "boolean": ("xsd:boolean", "INTEGER"),
    "int": ("xsd:int", "INTEGER"),
    "double": ("xsd:double", "REAL"),
    "currency": ("xsd:double", "REAL"),
    "percent": ("xsd:double", "REAL"),
    "date": ("xsd:date", "TEXT"),
    "datetime": ("xsd:dateTime", "TEXT"),
    "time": ("xsd:time", "TEXT"),
    "address": ("urn:address", None),
    "location": ("urn:location", None),
}


@dataclass(frozen=True)
class FieldDef:
    name: str
    type: str
    label: str = ""
    length: int = 0
    precision: int = 0
    scale: int = 0
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    filterable: bool = True
    sortable: bool = True
    groupable: bool = True
    external_id: bool = False
    id_lookup: bool = False
    unique: bool = False
    # A unique field created "case sensitive" (Setup: treat "ABC" and "abc" as different
    # values): its values match exactly, in upserts, SOQL filters and the unique check.
    case_sensitive: bool = False
    calculated: bool = False
    calculated_formula: str | None = None
    custom: bool = False
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    picklist_values: tuple[str, ...] = ()
    defaulted_on_create: bool = False
    compound_field_name: str | None = None
    # field-level security of the integration user's profile
    readable_by_user: bool = True
    editable_by_user: bool = True

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise ValueError(f"field {self.name}: unknown type {self.type!r}")

    @property
    def soap_type(self) -> str:
        return _TYPES[self.type][0]

    @property
    def sql_type(self) -> str | None:
        return _TYPES[self.type][1]

    @property
    def is_compound(self) -> bool:
        return self.sql_type is None


@dataclass
class ObjectDef:
    name: str
    label: str
    label_plural: str
    key_prefix: str
    custom: bool = False
    fields: dict[str, FieldDef] = field(default_factory=dict)  # in describe order
    # object permissions of the integration user's profile
    createable: bool = True
    readable: bool = True
    updateable: bool = True
    deletable: bool = True
    queryable: bool = True

    def __post_init__(self) -> None:
        self._by_lower = {k.lower(): v for k, v in self.fields.items()}
        self._by_relationship = {
            f.relationship_name.lower(): f for f in self.fields.values() if f.relationship_name
        }

    def field(self, name: str) -> FieldDef | None:
        """Case-insensitive, as SOQL and REST are."""
        return self._by_lower.get(name.lower())

    def relationship(self, name: str) -> FieldDef | None:
        """The reference field behind a relationship name (`Account` -> AccountId)."""
        return self._by_relationship.get(name.lower())

    def components(self, compound: str) -> list[FieldDef]:
        return [f for f in self.fields.values() if f.compound_field_name == compound]

    def stored_fields(self) -> Iterator[FieldDef]:
        return (f for f in self.fields.values() if not f.is_compound)


@dataclass
class Schema:
    objects: dict[str, ObjectDef] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._by_lower = {k.lower(): v for k, v in self.objects.items()}

    def get(self, name: str) -> ObjectDef | None:
        """Case-insensitive object lookup."""
        return self._by_lower.get(name.lower())

    def add(self, obj: ObjectDef) -> None:
        self.objects[obj.name] = obj
        self._by_lower[obj.name.lower()] = obj

    def by_key_prefix(self, prefix: str) -> ObjectDef | None:
        return next((o for o in self.objects.values() if o.key_prefix == prefix), None)
