"""The analytics query spec -> one SQL statement over the event store.

Raw mode (`columns`) returns one row per event; aggregate mode (`metrics` + `dimensions`)
returns one row per dimension combination. Events are visible to analytics only once
`max(timestamp, arrival) + analytics delay` has passed on the sandbox clock.
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .models import AppcuesStore, ValidationError, epoch_ms, iso_ms, parse_timestamp

SYNC_ROW_CAP = 1000
SYNC_MAX_DAYS = 90
DEFAULT_WINDOW = timedelta(days=30)

# Event fields usable as columns, dimensions and condition fields -> SQL over `events`.
FIELDS: dict[str, str] = {
    "id": "event_id",
    "event_id": "event_id",
    "timestamp": "timestamp_ms",
    "user_id": "user_id",
    "group_id": "group_id",
    "name": "name",
    "event": "name",
    "flow_id": "flow_id",
    "flow_version": "flow_version",
    "flow_type": "flow_type",
    "step_id": "step_id",
    "checklist_id": "checklist_id",
    "checklist_item_id": "checklist_item_id",
    "item_id": "checklist_item_id",
    "goal_id": "goal_id",
    "goal_version": "goal_version",
    "score": "score",
    "feedback": "feedback",
    "url": "url",
    "context_url": "url",
    "current_page_url": "current_page_url",
    "hostname": "ap_hostname(url)",
    "path": "ap_path(url)",
    "session_id": "session_id",
    # The user's current profile email (a join, as the engine resolves identity fields).
    "email": (
        "(SELECT json_extract(u.attrs, '$.email') FROM users u WHERE u.user_id = events.user_id)"
    ),
    "attributes": "attributes",
    "context": "context",
}
TIME_BUCKETS = ("day", "week", "month")
METRICS: dict[str, str] = {
    "events": "COUNT(*)",
    "users": "COUNT(DISTINCT user_id)",
    "sessions": "COUNT(DISTINCT session_id)",
    "groups": "COUNT(DISTINCT group_id)",
}
# Raw columns the real engine lists but fails on with a 500.
BROKEN_COLUMNS = ("nps_raw_score", "nps_feedback")
OPERATORS = ("==", "!=", "in", "not in", "like", "ilike", "not like", "not ilike")
SPEC_KEYS = {
    "columns",
    "metrics",
    "dimensions",
    "conditions",
    "order_by",
    "limit",
    "offset",
    "start_time",
    "end_time",
    "timezone",
    "account_id",  # ignored, as Appcues does
}


class SpecError(Exception):
    """An invalid spec; `status` is 400 (or 500 where the real engine fails that way)."""

    def __init__(self, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


@dataclass
class CompiledQuery:
    sql: str
    params: list[Any]
    outputs: list[tuple[str, str]]  # (output key, kind: timestamp|json|bucket|plain)
    tz: tzinfo
    limit: int | None
    offset: int


@dataclass
class QueryResult:
    rows: list[dict[str, Any]]
    truncated: bool


def _zone(name: Any) -> tzinfo:
    if name is None or name == "UTC":
        return UTC
    if not isinstance(name, str):
        raise SpecError("timezone must be an IANA time zone name")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SpecError(f"unknown timezone {name!r}") from None


def _moment(value: Any, tz: tzinfo, key: str, *, end: bool) -> datetime:
    if not isinstance(value, str):
        raise SpecError(f"{key} must be a YYYY-MM-DD date or an RFC 3339 datetime")
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, tzinfo=tz)
            # A date-only end_time includes that whole day.
            return moment + timedelta(days=1) if end else moment
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SpecError(
            f"{key} {value!r} is not a YYYY-MM-DD date or an RFC 3339 datetime"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


def window(spec: dict[str, Any], now: datetime, tz: tzinfo) -> tuple[datetime, datetime]:
    end = _moment(spec["end_time"], tz, "end_time", end=True) if "end_time" in spec else now
    if "start_time" in spec:
        start = _moment(spec["start_time"], tz, "start_time", end=False)
    else:
        start = end - DEFAULT_WINDOW
    if end <= start:
        raise SpecError("end_time must be after start_time")
    return start, end


def _names(spec: dict[str, Any], key: str) -> list[str]:
    value = spec.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SpecError(f"{key} must be an array of strings")
    return value


def _field(name: str, where: str) -> str:
    if name in BROKEN_COLUMNS:
        raise SpecError(f"internal error evaluating {name}", status=500)
    if name not in FIELDS:
        raise SpecError(f"unknown field {name!r} in {where}")
    return FIELDS[name]


def _glob(pattern: str) -> str:
    """A case-sensitive LIKE pattern as a GLOB pattern."""
    out = []
    for ch in pattern:
        if ch == "%":
            out.append("*")
        elif ch == "_":
            out.append("?")
        elif ch in "*?[":
            out.append(f"[{ch}]")
        else:
            out.append(ch)
    return "".join(out)


def _condition(raw: Any, params: list[Any]) -> str:
    if not isinstance(raw, list) or len(raw) != 3 or not isinstance(raw[0], str):
        raise SpecError("each condition must be [field, operator, value]")
    name, op, value = raw
    expr = _field(name, "conditions")
    if op not in OPERATORS:
        raise SpecError(f"unknown operator {op!r}; expected one of {', '.join(OPERATORS)}")
    if expr == "timestamp_ms" and op in ("==", "!=", "in", "not in"):
        value = _timestamp_values(value)
    if op in ("in", "not in"):
        if not isinstance(value, list):
            raise SpecError(f"operator {op!r} needs a list value")
        if not value:
            return "0" if op == "in" else "1"
        params.extend(value)
        marks = ",".join("?" * len(value))
        return (
            f"{expr} IN ({marks})" if op == "in" else f"({expr} IS NULL OR {expr} NOT IN ({marks}))"
        )
    if isinstance(value, dict | list):
        raise SpecError(f"operator {op!r} needs a single value")
    if op in ("==", "!="):
        params.append(value)
        return f"{expr} IS ?" if op == "==" else f"{expr} IS NOT ?"
    if not isinstance(value, str):
        raise SpecError(f"operator {op!r} needs a string pattern")
    if op in ("like", "not like"):
        params.append(_glob(value))
        test = f"{expr} GLOB ?"
    else:
        params.append(value.lower())
        test = f"lower({expr}) LIKE ?"
    return test if not op.startswith("not") else f"({expr} IS NULL OR NOT {test})"


def _timestamp_values(value: Any) -> Any:
    """Timestamps compare as instants: RFC 3339 strings or epoch ms."""
    try:
        if isinstance(value, list):
            return [parse_timestamp(v) for v in value]
        return None if value is None else parse_timestamp(value)
    except ValidationError as exc:
        raise SpecError(f"conditions: {exc}") from None


def _int_param(spec: dict[str, Any], key: str) -> int | None:
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SpecError(f"{key} must be a non-negative integer")
    return value


def compile_spec(
    spec: Any,
    *,
    now: datetime,
    delay_seconds: float,
    max_days: int | None,
    end_inclusive: bool = False,
    precision: str = "ms",
) -> CompiledQuery:
    """The spec as SQL. `end_inclusive` / `precision` ("ms" or "s") say how the time
    window's bounds compare (undocumented; the default is `[start, end)` in ms)."""
    if not isinstance(spec, dict):
        raise SpecError("the query spec must be a JSON object")
    unknown = sorted(set(spec) - SPEC_KEYS)
    if unknown:
        raise SpecError(f"unknown field {unknown[0]!r} in query spec")
    tz = _zone(spec.get("timezone"))
    start, end = window(spec, now, tz)
    if max_days is not None and end - start > timedelta(days=max_days):
        days = math.ceil((end - start).total_seconds() / 86400)
        raise SpecError(
            f"time range of {days} days exceeds the {max_days}-day maximum for this query shape"
        )
    columns, metrics, dimensions = (_names(spec, k) for k in ("columns", "metrics", "dimensions"))
    if columns and (metrics or dimensions):
        raise SpecError("columns cannot be combined with metrics or dimensions")
    if not columns and not metrics:
        raise SpecError("the spec needs columns (raw events) or metrics")

    selects: list[str] = []
    outputs: list[tuple[str, str]] = []
    group_by: list[str] = []
    for name in columns or dimensions:
        if name in TIME_BUCKETS and not columns:
            expr, kind = f"ap_bucket(timestamp_ms, '{name}')", "plain"
        else:
            expr = _field(name, "columns" if columns else "dimensions")
            kind = {"timestamp_ms": "timestamp", "attributes": "json", "context": "json"}.get(
                expr, "plain"
            )
        selects.append(f"{expr} AS c{len(selects)}")
        outputs.append((name, kind))
        if dimensions:
            group_by.append(f"c{len(selects) - 1}")
    for name in metrics:
        if name not in METRICS:
            raise SpecError(f"unknown metric {name!r}")
        selects.append(f"{METRICS[name]} AS c{len(selects)}")
        outputs.append((name, "plain"))

    visible_until = epoch_ms(now) - int(delay_seconds * 1000)
    start_ms, end_ms, stamp = epoch_ms(start), epoch_ms(end), "timestamp_ms"
    if precision == "s":  # bounds and events compared in whole seconds
        start_ms, end_ms = start_ms // 1000 * 1000, end_ms // 1000 * 1000
        stamp = "(timestamp_ms / 1000 * 1000)"
    params: list[Any] = [start_ms, end_ms, visible_until]
    upper = "<=" if end_inclusive else "<"
    where = [f"{stamp} >= ?", f"{stamp} {upper} ?", "arrival_ms <= ?"]
    raw_conditions = spec.get("conditions") or []
    if not isinstance(raw_conditions, list):
        raise SpecError("conditions must be an array of [field, operator, value]")
    where += [_condition(c, params) for c in raw_conditions]

    order: list[str] = []
    raw_order = spec.get("order_by") or []
    if not isinstance(raw_order, list):
        raise SpecError("order_by must be an array of [field, direction]")
    keys = [o[0] for o in outputs]
    for item in raw_order:
        if not (isinstance(item, list) and len(item) in (1, 2) and isinstance(item[0], str)):
            raise SpecError("each order_by entry must be [field, 'asc' | 'desc']")
        direction = str(item[1]).lower() if len(item) == 2 else "asc"
        if direction not in ("asc", "desc"):
            raise SpecError(f"order_by direction must be asc or desc, not {item[1]!r}")
        if item[0] not in keys:
            raise SpecError(f"order_by field {item[0]!r} is not among the selected fields")
        order.append(f"c{keys.index(item[0])} {direction.upper()}")
    if columns:  # raw rows: a total order, so offset paging is stable
        first_desc = bool(order) and order[0].endswith("DESC")
        order.append("timestamp_ms DESC, seq DESC" if first_desc else "timestamp_ms, seq")
    elif not order:
        order = [f"c{i}" for i in range(len(group_by))]

    sql = f"SELECT {', '.join(selects)} FROM events WHERE {' AND '.join(where)}"
    if group_by:
        sql += f" GROUP BY {', '.join(group_by)}"
    if order:
        sql += f" ORDER BY {', '.join(order)}"
    return CompiledQuery(
        sql=sql,
        params=params,
        outputs=outputs,
        tz=tz,
        limit=_int_param(spec, "limit"),
        offset=_int_param(spec, "offset") or 0,
    )


def _register(db: sqlite3.Connection, tz: tzinfo) -> None:
    def bucket(ms: int, unit: str) -> str:
        moment = datetime.fromtimestamp(ms / 1000, tz)
        day = moment.date()
        if unit == "week":  # weeks start on Monday
            day -= timedelta(days=day.weekday())
        elif unit == "month":
            day = day.replace(day=1)
        return day.isoformat()

    def hostname(url: str | None) -> str | None:
        return urlsplit(url).hostname if url else None

    def path(url: str | None) -> str | None:
        return urlsplit(url).path if url else None

    db.create_function("ap_bucket", 2, bucket, deterministic=True)
    db.create_function("ap_hostname", 1, hostname, deterministic=True)
    db.create_function("ap_path", 1, path, deterministic=True)


def run(store: AppcuesStore, query: CompiledQuery, cap: int | None) -> QueryResult:
    """Runs the query; with a cap, at most `cap` rows and `truncated` if more existed."""
    want = query.limit
    effective = want if cap is None else (cap if want is None else min(want, cap))
    sql = query.sql
    params = list(query.params)
    if effective is not None:
        sql += " LIMIT ? OFFSET ?"
        params += [effective + 1, query.offset]  # one more row tells whether any were cut
    elif query.offset:
        sql += " LIMIT -1 OFFSET ?"
        params.append(query.offset)
    with store.locked() as db:
        _register(db, query.tz)
        raw = db.execute(sql, params).fetchall()
    truncated = False
    if effective is not None and len(raw) > effective:
        truncated = cap is not None and (want is None or want > cap)
        raw = raw[:effective]
    rows = []
    for record in raw:
        row: dict[str, Any] = {}
        for i, (key, kind) in enumerate(query.outputs):
            value = record[i]
            if kind == "timestamp" and value is not None:
                value = iso_ms(value, query.tz)
            elif kind == "json" and value is not None:
                value = json.loads(value)
            row[key] = value
        rows.append(row)
    return QueryResult(rows=rows, truncated=truncated)
