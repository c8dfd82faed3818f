"""Input records of the `appcues_events` shape, parsed and checked."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

# Namespace for ids derived from an event's content when the record carries none.
_DERIVED_ID_NAMESPACE = uuid.UUID("5b0d6f7e-1c55-4b8e-9a43-6a1f0c2d9e21")


_FIELD_OF_REASON = {
    "missing_name": "name",
    "missing_user_id": "user_id",
    "invalid_user_id": "user_id",
    "missing_timestamp": "timestamp",
    "invalid_timestamp": "timestamp",
    "invalid_event_id": "id",
}


class InvalidEventError(ValueError):
    """A record that cannot become an event; `reason` is the dead-letter reason code."""

    def __init__(self, reason: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.field = field or _FIELD_OF_REASON.get(reason)  # the record's field at fault


@dataclass(frozen=True)
class AppcuesEvent:
    event_id: str
    name: str
    timestamp: datetime  # aware, UTC
    user_id: str
    attributes: dict[str, Any]
    context: dict[str, Any]
    group_id: Any = None
    id_derived: bool = False
    record: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def timestamp_text(self) -> str:
        return salesforce_datetime(self.timestamp)

    @property
    def external_key(self) -> str:
        """The value written to `event_id_field` (see `salesforce_key`)."""
        return salesforce_key(self.event_id)

    @property
    def sort_key(self) -> tuple[datetime, str]:
        """Latest-wins order: timestamp, then event id so equal times resolve the same way."""
        return (self.timestamp, self.event_id)


# Kept as they are in `salesforce_key`: characters without a case and without a special role.
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyz0123456789 !\"#$%&'()*+,-./:;<=>?@[\\]_`{|}~")


def salesforce_key(event_id: str) -> str:
    """The event id as stored in Salesforce: a form two different ids never share, even
    compared without regard to case (Salesforce matches External ID and SOQL text values
    case-insensitively unless the field is unique and case-sensitive).

    Lowercase ASCII letters, digits and ASCII punctuation (Appcues' uuid event ids) stay as
    they are; an uppercase ASCII letter X becomes `^x`; `^` becomes `^^`; any other character
    (non-ASCII, control) becomes `^{<hex code point>}`. So `P9-CROSS` is `^p9-^c^r^o^s^s` and
    `p9-cross` stays `p9-cross`: two Events. The mapping is one-to-one and deterministic, so
    the same event always gets the same value.
    """
    if all(c in _PLAIN for c in event_id):
        return event_id
    out: list[str] = []
    for char in event_id:
        if char in _PLAIN:
            out.append(char)
        elif char == "^":
            out.append("^^")
        elif "A" <= char <= "Z":
            out.append("^" + char.lower())
        else:
            out.append(f"^{{{ord(char):x}}}")
    return "".join(out)


def salesforce_datetime(value: datetime) -> str:
    """`2024-01-01T00:00:00.000Z`: UTC with milliseconds, as Salesforce accepts."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_timestamp(value: Any) -> datetime:
    """ISO 8601 text (naive = UTC), epoch seconds or milliseconds, or a datetime."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        # singer-sdk reads JSON numbers with a fraction as Decimal
        number = float(value) if isinstance(value, Decimal) else value
        seconds = number / 1000 if abs(number) > 100_000_000_000 else number
        parsed = datetime.fromtimestamp(seconds, tz=UTC)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        elif len(text) > 5 and text[-5] in "+-" and text[-4:].isdigit() and ":" not in text[-5:]:
            text = text[:-2] + ":" + text[-2:]  # Salesforce style +0000
        parsed = datetime.fromisoformat(text)
    else:
        raise ValueError(f"not a timestamp: {value!r}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _quoted(value: Any, limit: int = 100) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _as_object(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            loaded = json.loads(value)
        except ValueError:
            return {}
        return _as_object(loaded)
    return {}


def _is_text(value: str) -> bool:
    """Encodable as UTF-8 (JSON input can carry lone surrogates, which are not)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def derive_event_id(user_id: str, name: str, timestamp: datetime, attributes: Any) -> str:
    """A deterministic id for a record without one: a replay derives the same id."""
    canonical = json.dumps(
        [user_id, name, salesforce_datetime(timestamp), attributes],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return str(uuid.uuid5(_DERIVED_ID_NAMESPACE, canonical))


def parse_event(record: Mapping[str, Any]) -> AppcuesEvent:
    """Parse one record; raises InvalidEventError naming the field at fault."""
    name = record.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidEventError(
            "missing_name",
            f"event {record.get('id')!r} of user {record.get('user_id')!r} has no event 'name'",
        )
    raw_user = record.get("user_id")
    if isinstance(raw_user, bool) or raw_user is None or str(raw_user).strip() == "":
        raise InvalidEventError("missing_user_id", f"event {name!r} has no 'user_id'")
    if not isinstance(raw_user, str | int | float):
        raise InvalidEventError("invalid_user_id", f"'user_id' is not text: {type(raw_user)}")
    user_id = str(raw_user)  # matched exactly, as given
    if not _is_text(user_id):
        raise InvalidEventError(
            "invalid_user_id", "'user_id' holds unpaired surrogates, which no record can store"
        )
    if record.get("timestamp") in (None, ""):
        raise InvalidEventError("missing_timestamp", f"event {name!r} has no 'timestamp'")
    try:
        timestamp = parse_timestamp(record.get("timestamp"))
    except (ValueError, OverflowError, OSError):
        raw_id = record.get("id")
        which = f"event {name!r} (id {raw_id!r})" if raw_id not in (None, "") else f"event {name!r}"
        raise InvalidEventError(
            "invalid_timestamp",
            f"{which} of user {user_id!r}: field 'timestamp' holds "
            f"{_quoted(record.get('timestamp'))}, not an ISO 8601 date-time or epoch "
            "seconds/milliseconds",
        ) from None
    attributes = _as_object(record.get("attributes"))
    raw_id = record.get("id")
    id_derived = raw_id in (None, "")
    event_id = (
        derive_event_id(user_id, name, timestamp, record.get("attributes"))
        if id_derived
        else str(raw_id).strip()
    )
    if not _is_text(event_id):
        raise InvalidEventError(
            "invalid_event_id", "'id' holds unpaired surrogates, which Salesforce cannot store"
        )
    return AppcuesEvent(
        event_id=event_id,
        name=name.strip(),
        timestamp=timestamp,
        user_id=user_id,
        attributes=attributes,
        context=_as_object(record.get("context")),
        group_id=record.get("group_id"),
        id_derived=id_derived,
        record=record,
    )
