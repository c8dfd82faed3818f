"""Salesforce's JSON shapes: error lists, records, describe metadata, write results."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .models import RecordError, SalesforceError, WriteResult
from .schema import FieldDef, ObjectDef, Schema

_TEXT_TYPES = {"textarea"}


@dataclass
class ApiCall:
    method: str
    version: str
    params: dict[str, str]  # path parameters, URL-decoded
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes = b""
    _json: Any = field(default=None, repr=False)

    def json(self) -> Any:
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            raise SalesforceError(
                400, "JSON_PARSER_ERROR", "The request body is not valid JSON"
            ) from None


@dataclass
class ApiResult:
    """A handler's answer: JSON `body` (None for an empty body) or `raw` bytes."""

    status: int = 200
    body: Any = None
    raw: bytes | None = None
    media_type: str = "application/json;charset=UTF-8"
    headers: dict[str, str] = field(default_factory=dict)


def error(status: int, code: str, message: str, fields: list[str] | None = None) -> ApiResult:
    item: dict[str, Any] = {"message": message, "errorCode": code}
    if fields is not None:
        item["fields"] = fields
    return ApiResult(status, [item])


def rest_datetime(stored: str | None) -> str | None:
    """'2024-01-01T00:00:00.000Z' (storage) -> '2024-01-01T00:00:00.000+0000' (REST)."""
    if stored is None:
        return None
    return stored[:-1] + "+0000" if stored.endswith("Z") else stored


def field_value(f: FieldDef, value: Any) -> Any:
    if value is None:
        return None
    if f.type == "boolean":
        return bool(value)
    if f.type == "datetime":
        return rest_datetime(str(value))
    if f.type == "int":
        return int(value)
    if f.type in ("double", "currency", "percent"):
        return float(value)
    return value


def record_json(
    obj: ObjectDef, row: dict[str, Any], version: str, only: list[str] | None = None
) -> dict[str, Any]:
    """A record as GET /sobjects/{Obj}/{Id} returns it (readable fields, describe order)."""
    out: dict[str, Any] = {
        "attributes": {
            "type": obj.name,
            "url": f"/services/data/v{version}/sobjects/{obj.name}/{row['Id']}",
        }
    }
    wanted = {n.lower() for n in only} if only else None
    for f in obj.fields.values():
        if wanted is not None and f.name.lower() not in wanted:
            continue
        if f.is_compound:
            parts = obj.components(f.name)
            values = {_component_key(obj, f, p): field_value(p, row.get(p.name)) for p in parts}
            out[f.name] = values if any(v is not None for v in values.values()) else None
        else:
            out[f.name] = field_value(f, row.get(f.name))
    return out


def _component_key(obj: ObjectDef, compound: FieldDef, part: FieldDef) -> str:
    prefix = compound.name.removesuffix("Address")
    suffix = part.name[len(prefix) :]
    return suffix[:1].lower() + suffix[1:]


def write_result_json(result: WriteResult, *, upsert: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if result.id is not None:
        out["id"] = result.id
    out["success"] = result.success
    out["errors"] = [record_error_json(e) for e in result.errors]
    if upsert and result.success:
        out["created"] = bool(result.created)
    return out


def record_error_json(e: RecordError) -> dict[str, Any]:
    return {"statusCode": e.status_code, "message": e.message, "fields": e.fields}


def single_record_error(e: RecordError) -> ApiResult:
    """A single-record REST write failing: a 400 list using `errorCode`."""
    status = 404 if e.status_code == "NOT_FOUND" else 400
    return error(status, e.status_code, e.message, e.fields)


# --- describe ---------------------------------------------------------------------------
def global_entry(obj: ObjectDef, version: str) -> dict[str, Any]:
    base = f"/services/data/v{version}/sobjects/{obj.name}"
    return {
        "activateable": False,
        "associateEntityType": None,
        "associateParentEntity": None,
        "createable": obj.createable,
        "custom": obj.custom,
        "customSetting": False,
        "deepCloneable": False,
        "deletable": obj.deletable,
        "deprecatedAndHidden": False,
        "feedEnabled": False,
        "hasSubtypes": False,
        "isInterface": False,
        "isSubtype": False,
        "keyPrefix": obj.key_prefix,
        "label": obj.label,
        "labelPlural": obj.label_plural,
        "layoutable": True,
        "mergeable": obj.name in ("Account", "Contact", "Lead"),
        "mruEnabled": True,
        "name": obj.name,
        "queryable": obj.queryable,
        "replicateable": True,
        "retrieveable": True,
        "searchable": True,
        "triggerable": True,
        "undeletable": obj.deletable,
        "updateable": obj.updateable,
        "urls": {
            "rowTemplate": f"{base}/{{ID}}",
            "defaultValues": f"{base}/defaultValues?recordTypeId&fields",
            "describe": f"{base}/describe",
            "sobject": base,
        },
    }


def describe_global(schema: Schema, version: str) -> dict[str, Any]:
    return {
        "encoding": "UTF-8",
        "maxBatchSize": 200,
        "sobjects": [global_entry(o, version) for o in schema.objects.values()],
    }


def describe_field(f: FieldDef, default: Any = None) -> dict[str, Any]:
    stringy = f.soap_type == "xsd:string" or f.type in ("id", "reference")
    long_text = f.type in _TEXT_TYPES and f.length > 255
    return {
        "aggregatable": not long_text and f.type not in ("address", "location"),
        "aiPredictionField": False,
        "autoNumber": False,
        "byteLength": f.length * 3 if stringy else 0,
        "calculated": f.calculated,
        "calculatedFormula": f.calculated_formula,
        "cascadeDelete": False,
        "caseSensitive": f.case_sensitive,
        "compoundFieldName": f.compound_field_name,
        "controllerName": None,
        "createable": f.createable and f.editable_by_user,
        "custom": f.custom,
        "defaultValue": default if f.type != "boolean" else bool(default),
        "defaultValueFormula": None,
        "defaultedOnCreate": f.defaulted_on_create,
        "dependentPicklist": False,
        "deprecatedAndHidden": False,
        "digits": f.precision if f.type == "int" else 0,
        "displayLocationInDecimal": False,
        "encrypted": False,
        "externalId": f.external_id,
        "extraTypeInfo": None,
        "filterable": f.filterable,
        "filteredLookupInfo": None,
        "formulaTreatNullNumberAsZero": False,
        "groupable": f.groupable,
        "highScaleNumber": False,
        "htmlFormatted": False,
        "idLookup": f.id_lookup,
        "inlineHelpText": None,
        "label": f.label,
        "length": f.length,
        "mask": None,
        "maskType": None,
        "name": f.name,
        "nameField": f.name == "Name",
        "namePointing": len(f.reference_to) > 1,
        "nillable": f.nillable,
        "permissionable": f.nillable and f.createable,
        "picklistValues": [
            {"active": True, "defaultValue": v == default, "label": v, "validFor": None, "value": v}
            for v in f.picklist_values
        ],
        "polymorphicForeignKey": len(f.reference_to) > 1,
        "precision": f.precision if f.type != "int" else 0,
        "queryByDistance": False,
        "referenceTargetField": None,
        "referenceTo": list(f.reference_to),
        "relationshipName": f.relationship_name,
        "relationshipOrder": None,
        "restrictedDelete": False,
        "restrictedPicklist": False,
        "scale": f.scale,
        "searchPrefilterable": False,
        "soapType": f.soap_type,
        "sortable": f.sortable,
        "type": f.type,
        "unique": f.unique,
        "updateable": f.updateable and f.editable_by_user,
        "writeRequiresMasterRead": False,
    }


def describe_object(
    obj: ObjectDef, schema: Schema, version: str, defaults: dict[str, Any]
) -> dict[str, Any]:
    children: list[dict[str, Any]] = [
        {
            "cascadeDelete": False,
            "childSObject": other.name,
            "deprecatedAndHidden": False,
            "field": f.name,
            "junctionIdListNames": [],
            "junctionReferenceTo": [],
            "relationshipName": other.label_plural.replace(" ", "")
            if f.name not in ("CreatedById", "LastModifiedById", "OwnerId")
            else None,
            "restrictedDelete": False,
        }
        for other in schema.objects.values()
        for f in other.fields.values()
        if obj.name in f.reference_to
    ]
    out = global_entry(obj, version)
    base = f"/services/data/v{version}/sobjects/{obj.name}"
    out.update(
        {
            "actionOverrides": [],
            "childRelationships": children,
            "compactLayoutable": True,
            "defaultImplementation": None,
            "extendedBy": None,
            "extendsInterfaces": None,
            "fields": [describe_field(f, defaults.get(f.name)) for f in obj.fields.values()],
            "implementedBy": None,
            "implementsInterfaces": None,
            "listviewable": None,
            "lookupLayoutable": None,
            "namedLayoutInfos": [],
            "networkScopeFieldName": None,
            "recordTypeInfos": [],
            "searchLayoutable": True,
            "sobjectDescribeOption": "FULL",
            "supportedScopes": [
                {"label": "All " + obj.label_plural.lower(), "name": "everything"},
                {"label": "My " + obj.label_plural.lower(), "name": "mine"},
            ],
        }
    )
    out["urls"] = {
        **out["urls"],
        "compactLayouts": f"{base}/describe/compactLayouts",
        "approvalLayouts": f"{base}/describe/approvalLayouts",
        "layouts": f"{base}/describe/layouts",
        "quickActions": f"{base}/quickActions",
    }
    return out
