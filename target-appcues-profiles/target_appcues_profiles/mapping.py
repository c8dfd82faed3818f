"""Turns a Singer record into an Appcues profile id and a flat dict of Appcues attribute values.

Appcues accepts strings, numbers, booleans and null as attribute values, and reserves names
starting with `_` for its own attributes. Everything here exists to honour those two rules
for whatever a tap sends (Salesforce records or any warehouse table).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal

AppcuesValue = str | int | float | bool | None
DateFormat = Literal["iso8601", "epoch_ms"]
DATE_FORMATS: tuple[str, ...] = ("iso8601", "epoch_ms")

# JavaScript (and so Appcues) loses precision on integers outside this range.
_MAX_SAFE_INTEGER = 2**53 - 1
# A number in a date field is epoch milliseconds above this (year 5138 in seconds), else
# seconds: the rule target-salesforce-events applies to event timestamps.
_EPOCH_MS_ABOVE = 100_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Salesforce bookkeeping fields: never product attributes, and the audit timestamps would
# make every edit look like a change of the mapped attributes.
SYSTEM_FIELDS = frozenset(
    {
        "attributes",
        "Id",
        "IsDeleted",
        "CreatedById",
        "CreatedDate",
        "LastModifiedById",
        "LastModifiedDate",
        "SystemModstamp",
        "LastActivityDate",
        "LastViewedDate",
        "LastReferencedDate",
        "LastCURequestDate",
        "LastCUUpdateDate",
        "MasterRecordId",
        "JigsawContactId",
        "PhotoUrl",
    }
)

# Import rows and profile reads carry these keys themselves.
RESERVED_ATTRIBUTES = frozenset({"user_id", "group_id"})


class RecordError(Exception):
    """A record that cannot become an Appcues profile; `reason` is a short stable code."""

    def __init__(self, reason: str, message: str, field_name: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.field_name = field_name


def resolve_path(record: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    """Finds `path` ("Account.Product_Account_Id__c") as a flat key, nested dicts, or a mix.

    Returns (found, value). Longer flat keys win, so a property literally named
    "Account.Product_Account_Id__c" is used before descending into "Account".
    """
    if path in record:
        return True, record[path]
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:cut])
        if head in record:
            inner = record[head]
            if isinstance(inner, Mapping):
                found, value = resolve_path(inner, ".".join(parts[cut:]))
                if found:
                    return True, value
    return False, None


def profile_id(record: Mapping[str, Any], path: str) -> str:
    """The Appcues user or group id held in `path`; raises RecordError when it is unusable.

    Text is used as is; an integer becomes its decimal text (many products identify users
    by a numeric key). Anything else (floats, booleans, objects, arrays) is rejected
    because its text form is ambiguous.
    """
    found, value = resolve_path(record, path)
    if not found or value is None:
        raise RecordError("missing_id", f"id field '{path}' is missing or null", path)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise RecordError(
            "non_text_id",
            f"id field '{path}' holds a {type(value).__name__}, not text",
            path,
        )
    text = value if isinstance(value, str) else str(value)
    if not text.strip():
        raise RecordError("blank_id", f"id field '{path}' is blank", path)
    if text in (".", ".."):
        # In a URL path `users/../profile` names another route; Appcues cannot address it.
        raise RecordError(
            "unaddressable_id",
            f"id field '{path}' is {text!r}, which Appcues' URL paths cannot address",
            path,
        )
    _check_text(text, path)
    return text


def is_deleted(record: Mapping[str, Any]) -> bool:
    """Salesforce's IsDeleted flag (queryAll), or the Singer `_sdc_deleted_at` convention."""
    flag = record.get("IsDeleted")
    if flag is True or (isinstance(flag, str) and flag.lower() == "true"):
        return True
    return record.get("_sdc_deleted_at") not in (None, "")


def date_kinds_from_schema(schema: Mapping[str, Any]) -> dict[str, str]:
    """Dotted property path -> "date" | "date-time" | "time" for every date-like property."""
    kinds: dict[str, str] = {}

    def walk(properties: Mapping[str, Any], base: str) -> None:
        for name, prop in properties.items():
            if not isinstance(prop, Mapping):
                continue
            path = f"{base}{name}"
            fmt = _date_format_of(prop)
            if fmt:
                kinds[path] = fmt
            for sub in _subschemas(prop):
                if isinstance(sub.get("properties"), Mapping):
                    walk(sub["properties"], f"{path}.")

    walk(schema.get("properties") or {}, "")
    return kinds


def _subschemas(prop: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield prop
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in prop.get(key) or ():
            if isinstance(sub, Mapping):
                yield sub


def _date_format_of(prop: Mapping[str, Any]) -> str | None:
    for sub in _subschemas(prop):
        fmt = sub.get("format")
        if fmt in ("date", "date-time", "time"):
            return str(fmt)
    return None


@dataclass(frozen=True)
class ValueCoercer:
    """Coerces one Singer value into an Appcues value.

    Dates and date-times become ISO 8601 text by default (UTC, millisecond precision, like
    Salesforce writes them), or epoch milliseconds, the unit of Appcues' own timestamps.
    """

    date_format: DateFormat = "iso8601"

    def scalar(self, value: Any, kind: str | None = None, where: str = "") -> AppcuesValue:
        if value is None or isinstance(value, bool):
            return value
        if kind in ("date-time", "date") and isinstance(value, int | float | Decimal):
            return self._epoch(value, kind, where)
        if isinstance(value, int):
            return value if abs(value) <= _MAX_SAFE_INTEGER else str(value)
        if isinstance(value, float | Decimal):
            return _number(value)
        if isinstance(value, datetime):
            return self._datetime(value, where)
        if isinstance(value, date):
            return self._date(value)
        if isinstance(value, time):
            return value.isoformat()
        if isinstance(value, str):
            _check_text(value, where)
            return self._string(value, kind, where)
        if isinstance(value, list | tuple):
            return self._joined(value, where)
        # Anything else a reader might produce (bytes, sets, ...) is kept as its text.
        return str(value)

    def _string(self, value: str, kind: str | None, where: str) -> AppcuesValue:
        if kind is None:
            return value
        if not value.strip():
            return None  # an empty date is no date
        try:
            if kind == "date-time":
                return self._datetime(_parse_datetime(value), where, value)
            if kind == "date":
                return self._date(date.fromisoformat(value[:10]))
            return time.fromisoformat(value).isoformat()
        except ValueError as exc:
            raise RecordError(
                "invalid_date", f"field '{where}' holds {value!r}, not a valid {kind}", where
            ) from exc

    def _epoch(self, value: float | Decimal, kind: str, where: str) -> AppcuesValue:
        """A number in a date field: epoch seconds, or milliseconds when that large."""
        try:
            number = float(value)
            millis = number if abs(number) > _EPOCH_MS_ABOVE else number * 1000
            moment = _EPOCH + timedelta(milliseconds=millis)
        except (ValueError, OverflowError) as exc:
            raise RecordError(
                "invalid_date", f"field '{where}' holds {value!r}, not a valid {kind}", where
            ) from exc
        return (
            self._datetime(moment, where, value)
            if kind == "date-time"
            else self._date(moment.date())
        )

    def _datetime(self, value: datetime, where: str = "", given: Any = None) -> AppcuesValue:
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        try:
            utc = aware.astimezone(UTC)
        except OverflowError:
            # 9999-12-31T23:00:00-05:00 is in year 10000 in UTC, which no date-time holds.
            shown = given if given is not None else value.isoformat()
            raise RecordError(
                "invalid_date",
                f"field '{where}' holds {shown!r}, outside the years 1-9999 in UTC",
                where,
            ) from None
        if self.date_format == "epoch_ms":
            return int(utc.timestamp() * 1000)
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"

    def _date(self, value: date) -> AppcuesValue:
        if self.date_format == "epoch_ms":
            return int(datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp() * 1000)
        return value.isoformat()

    def _joined(self, values: list[Any] | tuple[Any, ...], where: str) -> AppcuesValue:
        """Arrays become `a;b`, the way Salesforce writes multipicklists."""
        parts = [
            _text(self.scalar(v, where=where) if not isinstance(v, Mapping) else v) for v in values
        ]
        kept = [p for p in parts if p is not None]
        return ";".join(kept) if kept else None


def _check_text(value: str, where: str) -> None:
    """Text Appcues can receive: JSON input can carry lone surrogates, which UTF-8 cannot."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise RecordError(
            "invalid_text",
            f"field '{where}' holds text with unpaired surrogates, which is not UTF-8",
            where,
        ) from None


def _number(value: float | Decimal) -> AppcuesValue:
    if isinstance(value, Decimal) and value.is_nan():
        return None  # float() refuses a signalling NaN
    number = float(value)
    if math.isfinite(number):
        return number
    # NaN and infinities are not JSON; a finite Decimal too large for a float keeps its text.
    if isinstance(value, Decimal) and value.is_finite():
        return str(value)
    return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return str(value)


def _parse_datetime(value: str) -> datetime:
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    return datetime.fromisoformat(text)


def is_salesforce_metadata(value: Any) -> bool:
    """The `attributes` object Salesforce REST adds to every record and relationship."""
    return isinstance(value, Mapping) and "type" in value and "url" in value


def flatten(name: str, value: Any, source: str) -> Iterator[tuple[str, str, Any]]:
    """(attribute name, source path, leaf value) for a value that may be an object.

    Compound fields become their Salesforce component names (MailingAddress.city ->
    MailingCity, Loc__c.latitude -> Loc__Latitude__s); other objects become dotted names
    (Account.Name), the same spelling a flat property for a relationship field uses.
    """
    if not isinstance(value, Mapping):
        yield name, source, value
        return
    for key, inner in value.items():
        if not isinstance(key, str) or not key or key.startswith("_"):
            continue
        if key == "attributes" and is_salesforce_metadata(inner):
            continue
        if name.endswith("Address"):
            child = f"{name[: -len('Address')]}{key[:1].upper()}{key[1:]}"
        elif name.endswith("__c"):  # custom geolocation: Loc__c.latitude -> Loc__Latitude__s
            child = f"{name[: -len('__c')]}__{key[:1].upper()}{key[1:]}__s"
        else:
            child = f"{name}.{key}"
        yield from flatten(child, inner, f"{source}.{key}")


@dataclass(frozen=True)
class AttributeMapper:
    """Selects, renames, prefixes and coerces a record's attributes for one stream.

    `fields` maps a source path to its Appcues name; None means every non-system field
    under its own name. `excluded` names source fields that are never attributes (the id
    fields, sent as the profile key or the membership).
    """

    fields: Mapping[str, str] | None = None
    prefix: str = ""
    excluded: frozenset[str] = frozenset()
    coercer: ValueCoercer = field(default_factory=ValueCoercer)
    date_kinds: Mapping[str, str] = field(default_factory=dict)

    def map(self, record: Mapping[str, Any]) -> dict[str, AppcuesValue]:
        attributes: dict[str, AppcuesValue] = {}
        for name, source, value in self._selected(record):
            attribute = f"{self.prefix}{name}"
            if attribute.startswith("_") or attribute in RESERVED_ATTRIBUTES:
                continue
            _check_text(attribute, source)
            attributes[attribute] = self.coercer.scalar(value, self.date_kinds.get(source), source)
        return attributes

    def _selected(self, record: Mapping[str, Any]) -> Iterator[tuple[str, str, Any]]:
        if self.fields is None:
            for key, value in record.items():
                if self._is_default_attribute(key, value):
                    yield from (
                        item for item in flatten(key, value, key) if item[1] not in self.excluded
                    )
            return
        for source, name in self.fields.items():
            found, value = resolve_path(record, source)
            if found:
                yield from flatten(name, value, source)

    def _is_default_attribute(self, key: str, value: Any) -> bool:
        if not key or key.startswith("_") or key in SYSTEM_FIELDS or key in self.excluded:
            return False
        return not is_salesforce_metadata(value)


def attributes_digest(attributes: Mapping[str, AppcuesValue]) -> str:
    """A stable hash of mapped attributes: equal attributes, equal digest."""
    canonical = json.dumps(attributes, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
