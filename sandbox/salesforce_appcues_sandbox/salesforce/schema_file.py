"""Loads the org's metadata and the integration user's profile from a YAML or JSON file."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from .schema import FieldDef, ObjectDef, Schema

DEFAULT_SCHEMA_FILE = Path(__file__).with_name("default_schema.yaml")

# (component suffix, type, length, label suffix) of a compound address, in describe order.
_ADDRESS_PARTS = (
    ("Street", "textarea", 255, "Street"),
    ("City", "string", 40, "City"),
    ("State", "string", 80, "State/Province"),
    ("PostalCode", "string", 20, "Zip/Postal Code"),
    ("Country", "string", 80, "Country"),
    ("Latitude", "double", 0, "Latitude"),
    ("Longitude", "double", 0, "Longitude"),
    ("GeocodeAccuracy", "picklist", 40, "Geocode Accuracy"),
)
_GEOCODE_ACCURACY = ("Address", "NearAddress", "Block", "Street", "ExtendedZip", "Zip", "City")


class SchemaFileError(ValueError):
    """The schema file is malformed."""


def load_schema(path: str | Path | None = None) -> Schema:
    """The schema in `path` (YAML or JSON), or the default one shipped with the sandbox."""
    source = Path(path) if path else DEFAULT_SCHEMA_FILE
    text = source.read_text(encoding="utf-8")
    raw = json.loads(text) if source.suffix == ".json" else yaml.safe_load(text)
    if not isinstance(raw, dict) or not isinstance(raw.get("objects"), dict):
        raise SchemaFileError(f"{source}: expected a mapping with 'objects'")
    schema = Schema()
    for name, spec in raw["objects"].items():
        schema.add(_object(str(name), spec or {}))
    _apply_profile(schema, raw.get("profile") or {})
    return schema


def _label(name: str) -> str:
    base = name.removesuffix("__c").replace("_", " ")
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", base)


def _system_fields(owner: bool) -> list[FieldDef]:
    ro: dict[str, Any] = {"createable": False, "updateable": False, "nillable": False}
    fields = [
        FieldDef("Id", "id", "Record ID", length=18, id_lookup=True, **ro),
        FieldDef("IsDeleted", "boolean", "Deleted", defaulted_on_create=True, **ro),
        FieldDef("CreatedDate", "datetime", "Created Date", defaulted_on_create=True, **ro),
        FieldDef(
            "CreatedById",
            "reference",
            "Created By ID",
            length=18,
            reference_to=("User",),
            relationship_name="CreatedBy",
            defaulted_on_create=True,
            **ro,
        ),
        FieldDef(
            "LastModifiedDate", "datetime", "Last Modified Date", defaulted_on_create=True, **ro
        ),
        FieldDef(
            "LastModifiedById",
            "reference",
            "Last Modified By ID",
            length=18,
            reference_to=("User",),
            relationship_name="LastModifiedBy",
            defaulted_on_create=True,
            **ro,
        ),
        FieldDef("SystemModstamp", "datetime", "System Modstamp", defaulted_on_create=True, **ro),
    ]
    if owner:
        fields.insert(
            1,
            FieldDef(
                "OwnerId",
                "reference",
                "Owner ID",
                length=18,
                nillable=False,
                reference_to=("User",),
                relationship_name="Owner",
                defaulted_on_create=True,
            ),
        )
    return fields


def _object(name: str, spec: dict[str, Any]) -> ObjectDef:
    custom = bool(spec.get("custom", name.endswith("__c")))
    fields: dict[str, FieldDef] = {}
    for f in _system_fields(bool(spec.get("owner", False))):
        fields[f.name] = f
    for fname, fspec in (spec.get("fields") or {}).items():
        for f in _fields(str(fname), fspec or {}):
            fields[f.name] = f
    prefix = str(spec.get("key_prefix", ""))
    if len(prefix) != 3:
        raise SchemaFileError(f"object {name}: key_prefix must be 3 characters")
    return ObjectDef(
        name=name,
        label=str(spec.get("label", _label(name))),
        label_plural=str(spec.get("label_plural", _label(name) + "s")),
        key_prefix=prefix,
        custom=custom,
        fields=fields,
    )


def _fields(name: str, spec: dict[str, Any]) -> list[FieldDef]:
    ftype = str(spec.get("type", "string"))
    label = str(spec.get("label", _label(name)))
    if ftype == "address":
        prefix = str(spec.get("prefix", name.removesuffix("Address")))
        parts = []
        for suffix, ptype, length, plabel in _ADDRESS_PARTS:
            parts.append(
                FieldDef(
                    f"{prefix}{suffix}",
                    ptype,
                    f"{prefix and _label(prefix) + ' '}{plabel}",
                    length=length,
                    precision=18 if ptype == "double" else 0,
                    scale=15 if ptype == "double" else 0,
                    picklist_values=_GEOCODE_ACCURACY if ptype == "picklist" else (),
                    compound_field_name=name,
                    sortable=ptype != "textarea",
                    groupable=ptype != "textarea",
                )
            )
        compound = FieldDef(
            name, "address", label, createable=False, updateable=False, filterable=False
        )
        return [*parts, compound]
    formula = spec.get("formula")
    required = bool(spec.get("required", False))
    has_default = "default" in spec or ftype == "boolean"
    long_text = ftype == "textarea" and int(spec.get("length", 255)) > 255
    ref_to = tuple(spec.get("reference_to") or ())
    try:
        return [
            FieldDef(
                name=name,
                type=ftype,
                label=label,
                length=int(
                    spec.get("length", 18 if ftype == "reference" else 0)
                    if ftype not in ("double", "int", "currency", "percent", "boolean")
                    else 0
                ),
                precision=int(spec.get("precision", 0)),
                scale=int(spec.get("scale", 0)),
                nillable=not required and ftype != "boolean",
                createable=formula is None and bool(spec.get("createable", True)),
                updateable=formula is None and bool(spec.get("updateable", True)),
                filterable=not long_text,
                sortable=not long_text,
                groupable=not long_text and ftype not in ("double", "currency", "percent"),
                external_id=bool(spec.get("external_id", False)),
                id_lookup=bool(spec.get("id_lookup", spec.get("external_id", False))),
                unique=bool(spec.get("unique", False)),
                case_sensitive=_case_sensitive(name, spec),
                calculated=formula is not None,
                calculated_formula=str(formula) if formula is not None else None,
                custom=name.endswith("__c"),
                reference_to=ref_to,
                relationship_name=spec.get("relationship_name"),
                picklist_values=tuple(str(v) for v in spec.get("picklist") or ()),
                defaulted_on_create=has_default,
            )
        ]
    except ValueError as exc:
        raise SchemaFileError(str(exc)) from exc


def _apply_profile(schema: Schema, profile: dict[str, Any]) -> None:
    for oname, perms in (profile.get("objects") or {}).items():
        obj = schema.get(str(oname))
        if obj is None:
            raise SchemaFileError(f"profile names unknown object {oname}")
        obj.readable = bool(perms.get("read", True))
        obj.queryable = obj.readable
        obj.createable = bool(perms.get("create", True)) and obj.readable
        obj.updateable = bool(perms.get("edit", True)) and obj.readable
        obj.deletable = bool(perms.get("delete", True)) and obj.updateable
    for qualified, perms in (profile.get("fields") or {}).items():
        oname, _, fname = str(qualified).partition(".")
        obj = schema.get(oname)
        fdef = obj.field(fname) if obj else None
        if obj is None or fdef is None:
            raise SchemaFileError(f"profile names unknown field {qualified}")
        readable = bool(perms.get("read", True))
        editable = bool(perms.get("edit", True)) and readable
        obj.fields[fdef.name] = replace(fdef, readable_by_user=readable, editable_by_user=editable)
        obj.__post_init__()  # refresh the case-insensitive indexes


def field_defaults(path: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """Per object, the field defaults the file declares (`default:`), applied on create."""
    source = Path(path) if path else DEFAULT_SCHEMA_FILE
    text = source.read_text(encoding="utf-8")
    raw = json.loads(text) if source.suffix == ".json" else yaml.safe_load(text)
    out: dict[str, dict[str, Any]] = {}
    for oname, spec in (raw.get("objects") or {}).items():
        for fname, fspec in ((spec or {}).get("fields") or {}).items():
            if isinstance(fspec, dict) and "default" in fspec:
                out.setdefault(str(oname), {})[str(fname)] = fspec["default"]
    return out


def user_view(schema: Schema) -> Schema:
    """What the integration user can see: readable objects and readable fields only."""
    view = Schema()
    for obj in schema.objects.values():
        if not obj.readable:
            continue
        fields = {k: f for k, f in obj.fields.items() if f.readable_by_user}
        view.add(replace(obj, fields=fields))
    return view


def _case_sensitive(name: str, spec: dict[str, Any]) -> bool:
    """Salesforce offers case sensitivity only for a unique field (Setup's "Unique" option)."""
    flag = bool(spec.get("case_sensitive", False))
    if flag and not spec.get("unique"):
        raise SchemaFileError(f"field {name}: case_sensitive needs unique: true")
    return flag
