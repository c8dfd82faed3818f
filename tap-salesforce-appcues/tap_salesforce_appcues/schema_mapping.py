"""Salesforce describe -> JSON schema, and the field facts record shaping needs.

Type mapping (describe `type` -> JSON schema):
- id, reference, string, textarea, email, phone, url, picklist, multipicklist (Salesforce's
  `a;b` text), combobox, encryptedstring, anyType -> string
- boolean -> boolean; int, long -> integer; double, currency, percent -> number
- date -> string/date; datetime -> string/date-time; time -> string/time
- address, location (compound fields) -> object of their components (`street`, `city`, ...)
- base64 -> left out (bodies of files are not profile data and Bulk cannot read them)
A field is nullable when describe says `nillable`; compound and parent fields always are.

A run given a catalog rebuilds the same facts from the catalog's schema instead of describing
again (`catalog_object`): the JSON types above map back to the Salesforce types that record
shaping distinguishes, and compound components to their field names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

STRING_TYPES = frozenset(
    {
        "id",
        "reference",
        "string",
        "textarea",
        "email",
        "phone",
        "url",
        "picklist",
        "multipicklist",
        "combobox",
        "encryptedstring",
        "anyType",
    }
)
COMPOUND_TYPES = frozenset({"address", "location"})
SKIPPED_TYPES = frozenset({"base64"})


class SchemaMappingError(ValueError):
    """A configured object or field does not exist in the org (named in the message)."""


def json_type(sf_type: str, *, nullable: bool) -> dict[str, Any]:
    """The JSON schema of one scalar Salesforce field type."""
    if sf_type == "boolean":
        schema: dict[str, Any] = {"type": "boolean"}
    elif sf_type in ("int", "long"):
        schema = {"type": "integer"}
    elif sf_type in ("double", "currency", "percent"):
        schema = {"type": "number"}
    elif sf_type == "date":
        schema = {"type": "string", "format": "date"}
    elif sf_type == "datetime":
        schema = {"type": "string", "format": "date-time"}
    elif sf_type == "time":
        schema = {"type": "string", "format": "time"}
    else:  # the string family, and any type Salesforce adds later
        schema = {"type": "string"}
    if nullable:
        schema["type"] = [schema["type"], "null"]
    return schema


def component_key(compound: str, component: str) -> str:
    """The key of a component inside its compound value (`BillingPostalCode` -> `postalCode`)."""
    name = component
    if compound.endswith("__c"):  # custom geolocation: Loc__c -> Loc__Latitude__s
        base = compound[: -len("__c")]
        name = name.removeprefix(base + "__").removesuffix("__s")
    elif compound.endswith("Address"):
        name = name.removeprefix(compound[: -len("Address")])
    return name[:1].lower() + name[1:]


def component_field(compound: str, key: str) -> str:
    """The inverse of `component_key`: the field name of a component (`postalCode` ->
    `BillingPostalCode`)."""
    part = key[:1].upper() + key[1:]
    if compound.endswith("__c"):
        return f"{compound[: -len('__c')]}__{part}__s"
    if compound.endswith("Address"):
        return compound[: -len("Address")] + part
    return part


def is_compound_name(name: str) -> bool:
    """Whether an object-typed catalog property can be a compound field.

    Address compounds end in `Address`, custom geolocations in `__c`; relationship names
    (`Account`, `Owner`, `Parent__r`) do not.
    """
    return name.endswith(("Address", "__c"))


def sf_type_of(schema: Mapping[str, Any]) -> str:
    """The Salesforce type family of a scalar JSON schema written by `json_type`."""
    for option in schema.get("anyOf") or ():  # other taps' catalogs: the first typed option
        if isinstance(option, Mapping) and option.get("type") not in (None, "null"):
            return sf_type_of(option)
    types = schema.get("type")
    listed = set(types) if isinstance(types, list) else {types}
    fmt = schema.get("format")
    if "boolean" in listed:
        return "boolean"
    if "integer" in listed:
        return "int"
    if "number" in listed:
        return "double"
    if fmt == "date-time":
        return "datetime"
    if fmt in ("date", "time"):
        return str(fmt)
    return "string"


def _nullable(schema: Mapping[str, Any]) -> bool:
    types = schema.get("type")
    return isinstance(types, list) and "null" in types


def _is_object(schema: Mapping[str, Any]) -> bool:
    types = schema.get("type")
    listed = types if isinstance(types, list) else [types]
    return "object" in listed and isinstance(schema.get("properties"), Mapping)


@dataclass(frozen=True)
class FieldInfo:
    """What the tap needs of one describe field."""

    name: str
    sf_type: str
    nillable: bool
    compound_field_name: str | None = None
    relationship_name: str | None = None
    reference_to: tuple[str, ...] = ()

    @classmethod
    def from_describe(cls, raw: Mapping[str, Any]) -> FieldInfo:
        return cls(
            name=str(raw["name"]),
            sf_type=str(raw.get("type") or "string"),
            nillable=bool(raw.get("nillable", True)),
            compound_field_name=raw.get("compoundFieldName") or None,
            relationship_name=raw.get("relationshipName") or None,
            reference_to=tuple(raw.get("referenceTo") or ()),
        )

    @property
    def is_compound(self) -> bool:
        return self.sf_type in COMPOUND_TYPES

    def schema(self) -> dict[str, Any]:
        return json_type(self.sf_type, nullable=self.nillable)


@dataclass
class ObjectInfo:
    """One object's fields in describe order, looked up case-insensitively like SOQL does."""

    name: str
    fields: dict[str, FieldInfo] = field(default_factory=dict)
    from_catalog: bool = False  # rebuilt from a catalog, not described in this run

    def __post_init__(self) -> None:
        self._by_lower = {k.lower(): v for k, v in self.fields.items()}
        self._by_relationship = {
            f.relationship_name.lower(): f for f in self.fields.values() if f.relationship_name
        }

    @classmethod
    def from_describe(cls, describe: Mapping[str, Any]) -> ObjectInfo:
        fields = [FieldInfo.from_describe(f) for f in describe.get("fields") or []]
        return cls(
            name=str(describe.get("name")),
            fields={f.name: f for f in fields if f.sf_type not in SKIPPED_TYPES},
        )

    @classmethod
    def from_catalog_schema(
        cls, name: str, schema: Mapping[str, Any], parent_roots: Iterable[str] = ()
    ) -> ObjectInfo:
        """The object as a catalog's stream schema describes it (parent roots left out)."""
        roots = {r.lower() for r in parent_roots}
        fields: dict[str, FieldInfo] = {}
        for prop, sub in (schema.get("properties") or {}).items():
            if prop.lower() in roots:
                continue
            if _is_object(sub):
                if not is_compound_name(prop):
                    continue  # a parent no longer configured: not read
                kind = "location" if prop.endswith("__c") else "address"
                fields[prop] = FieldInfo(prop, kind, nillable=True)
                for key, component in sub["properties"].items():
                    part = component_field(prop, key)
                    plain = fields.get(part)  # components are also plain properties
                    fields[part] = FieldInfo(
                        part,
                        sf_type_of(component),
                        nillable=plain.nillable if plain else True,
                        compound_field_name=prop,
                    )
            else:
                linked = fields.get(prop)
                fields[prop] = FieldInfo(
                    prop,
                    sf_type_of(sub),
                    nillable=_nullable(sub),
                    compound_field_name=linked.compound_field_name if linked else None,
                )
        return cls(name=name, fields=fields, from_catalog=True)

    def field(self, name: str) -> FieldInfo | None:
        return self._by_lower.get(name.lower())

    def relationship(self, name: str) -> FieldInfo | None:
        return self._by_relationship.get(name.lower())

    def components(self, compound: str) -> list[FieldInfo]:
        return [f for f in self.fields.values() if f.compound_field_name == compound]


@dataclass(frozen=True)
class ParentPath:
    """A configured parent field resolved against describes (names as the org spells them)."""

    segments: tuple[str, ...]  # relationship names, then the field name
    leaf: FieldInfo

    @property
    def soql(self) -> str:
        return ".".join(self.segments)


def parents_needed(obj: ObjectInfo, paths: Iterable[str]) -> set[str]:
    """Objects the first relationship of each path points at (to describe with the rest)."""
    needed: set[str] = set()
    for path in paths:
        head = path.split(".", 1)[0]
        ref = obj.relationship(head)
        if ref is not None:
            needed.update(ref.reference_to[:1])
    return needed


def resolve_path(
    obj: ObjectInfo, path: str, objects: Mapping[str, ObjectInfo]
) -> tuple[ParentPath | None, str | None]:
    """Resolve `Rel.Field` or `Rel.Rel.Field` against describes.

    Returns (resolved, None), or (None, name of an object still to describe), or raises
    SchemaMappingError when the path cannot exist.
    """
    parts = path.split(".")
    if len(parts) < 2 or not all(parts):
        raise SchemaMappingError(
            f"relationship_fields: {obj.name}: {path!r} is not a parent path like "
            "'Account.Product_Account_Id__c'"
        )
    current, segments = obj, []
    for part in parts[:-1]:
        ref = current.relationship(part)
        if ref is None or not ref.reference_to:
            raise SchemaMappingError(
                f"relationship_fields: {obj.name}: {current.name} has no relationship {part!r} "
                f"(in {path!r})"
            )
        segments.append(ref.relationship_name or part)
        target = ref.reference_to[0]
        parent = objects.get(target)
        if parent is None:
            return None, target
        current = parent
    leaf = current.field(parts[-1])
    if leaf is None or leaf.is_compound:
        raise SchemaMappingError(
            f"relationship_fields: {obj.name}: {current.name} has no readable field "
            f"{parts[-1]!r} (in {path!r})"
        )
    segments.append(leaf.name)
    return ParentPath(tuple(segments), leaf), None


def catalog_path(schema: Mapping[str, Any], path: str) -> ParentPath | None:
    """A configured parent path found in a catalog's stream schema (None when absent)."""
    node: Mapping[str, Any] = schema
    segments: list[str] = []
    parts = path.split(".")
    if len(parts) < 2:
        return None  # not a parent path: the describe route names the mistake
    for index, part in enumerate(parts):
        properties = node.get("properties") if _is_object(node) else None
        if not isinstance(properties, Mapping):
            return None
        found = next((k for k in properties if k.lower() == part.lower()), None)
        if found is None:
            return None
        node = properties[found]
        segments.append(found)
        if (index < len(parts) - 1) != _is_object(node):
            return None  # a hop that is not an object, or a leaf that is
    leaf = FieldInfo(segments[-1], sf_type_of(node), nillable=True)
    return ParentPath(tuple(segments), leaf)


def catalog_object(
    name: str, schema: Mapping[str, Any], paths: Iterable[str]
) -> tuple[ObjectInfo, list[ParentPath]] | None:
    """An object and its parent paths from a catalog's schema; None when the schema does not
    hold every configured path (the catalog is older than the setting: describe instead)."""
    listed = list(paths)
    resolved = [catalog_path(schema, p) for p in listed]
    found = [p for p in resolved if p is not None]
    if len(found) < len(listed):
        return None
    roots = [p.split(".", 1)[0] for p in listed]
    return ObjectInfo.from_catalog_schema(name, schema, roots), found


def object_schema(obj: ObjectInfo, parent_paths: Iterable[ParentPath]) -> dict[str, Any]:
    """The stream's JSON schema: every readable field, compounds as objects, parents nested."""
    properties: dict[str, Any] = {}
    for info in obj.fields.values():
        if info.is_compound:
            properties[info.name] = {
                "type": ["object", "null"],
                "properties": {
                    component_key(info.name, c.name): json_type(c.sf_type, nullable=True)
                    for c in obj.components(info.name)
                },
            }
        else:
            properties[info.name] = info.schema()
    for path in parent_paths:
        node = properties
        for segment in path.segments[:-1]:
            holder = node.setdefault(segment, {"type": "object", "properties": {}})
            node = holder["properties"]
        node[path.segments[-1]] = json_type(path.leaf.sf_type, nullable=True)
    return {"type": "object", "properties": properties}
