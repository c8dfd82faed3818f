"""The org's state and semantics: SQLite storage, ids, validation, permissions, system fields.

No wire format here: `responses.py` turns these results and errors into Salesforce's JSON.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from ..common.clock import SandboxClock
from . import datetimes, ids
from .schema import TEXT_TYPES, FieldDef, ObjectDef, Schema
from .schema_file import field_defaults, load_schema, user_view

_NUMBER_TYPES = {"double", "currency", "percent"}
# Salesforce's check is looser than RFC 5322 but refuses the obvious: no @, spaces, no dot.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_FORMULA_TEXT = re.compile(r"^\s*TEXT\(\s*(\w+)\s*\)\s*$", re.IGNORECASE)
_FORMULA_FIELD = re.compile(r"^\s*(\w+)\s*$")
_INSERT_CHUNK = 20_000
_UNINDEXED_REFERENCES = ("CreatedById", "LastModifiedById", "OwnerId")
INTEGRATION_USERNAME = "integration@sandbox.example.com"


class SalesforceError(Exception):
    """A whole request fails: answered as a list body `[{"message","errorCode"[,"fields"]}]`."""

    def __init__(
        self, status: int, error_code: str, message: str, fields: list[str] | None = None
    ) -> None:
        super().__init__(f"{error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message
        self.fields = fields


@dataclass
class RecordError:
    """One record's failure, as sObject Collections report it (`statusCode`)."""

    status_code: str
    message: str
    fields: list[str] = field(default_factory=list)


class _RecordFailedError(Exception):
    def __init__(self, error: RecordError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass
class WriteResult:
    id: str | None
    success: bool
    errors: list[RecordError] = field(default_factory=list)
    created: bool | None = None
    matches: list[str] = field(default_factory=list)  # upsert: several records matched


@dataclass
class WriteOp:
    """create (obj, body) | update (obj, id, body) | upsert (obj, ext_field, value, body) |
    delete (id)."""

    kind: str
    obj: str = ""
    body: dict[str, Any] = field(default_factory=dict)
    record_id: str | None = None
    ext_field: str | None = None
    ext_value: Any = None
    error: RecordError | None = None  # refused before reaching storage


def stamp(moment: datetime) -> str:
    """Storage form of a system timestamp: whole seconds, as Salesforce keeps them."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


NULL_BOOLEAN_CHOICES = ("refuse", "false")
DATETIME_FRACTION_CHOICES = ("truncate", "round")


class Org:
    """One emulated org in SQLite (in memory, or a file under the data directory)."""

    def __init__(
        self,
        clock: SandboxClock,
        data_dir: Path | None = None,
        schema_file: str | Path | None = None,
        null_boolean: str = "refuse",
        datetime_fraction: str = "truncate",
    ) -> None:
        self.clock = clock
        if null_boolean not in NULL_BOOLEAN_CHOICES:
            raise ValueError(f"null_boolean must be one of {', '.join(NULL_BOOLEAN_CHOICES)}")
        # A checkbox is never null: `refuse` answers INVALID_TYPE_ON_FIELD_IN_RECORD (what
        # Salesforce answers Apex DML; fieldsToNull refuses non-nillable fields), `false`
        # stores false (the other plausible REST behaviour). docs/sandbox.md.
        self.null_boolean = null_boolean
        if datetime_fraction not in DATETIME_FRACTION_CHOICES:
            choices = ", ".join(DATETIME_FRACTION_CHOICES)
            raise ValueError(f"datetime_fraction must be one of {choices}")
        # Datetimes keep whole seconds: the fraction is dropped (`truncate`, the choice) or
        # rounded half up (`round`), the other plausible way. docs/sandbox.md.
        self.datetime_fraction = datetime_fraction
        # Option upsert_nonunique_external_id_exact: see matches_exactly.
        self.nonunique_external_id_exact = False
        self.schema: Schema = load_schema(schema_file)
        self.user_schema: Schema = user_view(self.schema)
        self.defaults = field_defaults(schema_file)
        self.lock = threading.RLock()
        path = str(data_dir / "salesforce.sqlite3") if data_dir else ":memory:"
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        if data_dir:
            self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=OFF")
        self.written: Counter[str] = Counter()
        self._create_tables()
        self.org_id = ids.make_id("00D", 1)
        self.user_id = self._ensure_integration_user()
        self.written.clear()  # the integration user is not a write anyone made

    # --- storage --------------------------------------------------------------------
    def _create_tables(self) -> None:
        with self.lock:
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS _sandbox_counters (prefix TEXT PRIMARY KEY, "
                "next INTEGER NOT NULL)"
            )
            for obj in self.schema.objects.values():
                cols = []
                for f in obj.stored_fields():
                    col = f"{quote(f.name)} {f.sql_type}"
                    if f.name == "Id":
                        col += " PRIMARY KEY"
                    elif f.type in TEXT_TYPES and not f.case_sensitive:
                        col += " COLLATE NOCASE"  # SOQL and unique checks ignore case
                    cols.append(col)
                self.conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {quote(obj.name)} ({', '.join(cols)})"
                )
                have = {r[1] for r in self.conn.execute(f"PRAGMA table_info({quote(obj.name)})")}
                for f, col in zip(obj.stored_fields(), cols, strict=True):
                    if f.name not in have:
                        self.conn.execute(f"ALTER TABLE {quote(obj.name)} ADD COLUMN {col}")
                table = quote(obj.name)
                self.conn.execute(
                    f"CREATE INDEX IF NOT EXISTS {quote(obj.name + '_modstamp')} "
                    f'ON {table} ("SystemModstamp", "Id")'
                )
                for f in obj.stored_fields():
                    # idLookup-only fields (Name, Email) stay unindexed: cheaper bulk seeding
                    lookup = f.external_id or f.unique
                    parent = f.type == "reference" and f.name not in _UNINDEXED_REFERENCES
                    if f.name != "Id" and (lookup or parent):
                        self.conn.execute(
                            f"CREATE INDEX IF NOT EXISTS {quote(obj.name + '_' + f.name)} "
                            f"ON {table} ({quote(f.name)})"
                        )

    def _ensure_integration_user(self) -> str:
        user = self.schema.get("User")
        if user is None:
            return ids.make_id("005", 1)
        with self.lock:
            row = self.conn.execute(
                'SELECT "Id" FROM "User" WHERE "Username" = ?', (INTEGRATION_USERNAME,)
            ).fetchone()
            if row:
                return str(row[0])
            uid = self.allocate_ids("005", 1)[0]
            now = stamp(self.clock.now())
            values = {
                "Id": uid,
                "Username": INTEGRATION_USERNAME,
                "FirstName": "Integration",
                "LastName": "User",
                "Name": "Integration User",
                "Email": INTEGRATION_USERNAME,
                "IsActive": 1,
                "Alias": "integ",
                "IsDeleted": 0,
                "CreatedDate": now,
                "CreatedById": uid,
                "LastModifiedDate": now,
                "LastModifiedById": uid,
                "SystemModstamp": now,
            }
            self.insert_rows(user, [values])
            return uid

    def allocate_ids(self, prefix: str, count: int) -> list[str]:
        """`count` new ids with this key prefix, monotonically increasing."""
        with self.lock:
            row = self.conn.execute(
                "SELECT next FROM _sandbox_counters WHERE prefix = ?", (prefix,)
            ).fetchone()
            start = int(row[0]) if row else 1
            self.conn.execute(
                "INSERT OR REPLACE INTO _sandbox_counters (prefix, next) VALUES (?, ?)",
                (prefix, start + count),
            )
        return [ids.make_id(prefix, n) for n in range(start, start + count)]

    def insert_rows(self, obj: ObjectDef, rows: Iterable[dict[str, Any]]) -> int:
        """Raw insert of complete rows (seeding); no validation. Returns the row count."""
        cols = [f.name for f in obj.stored_fields()]
        sql = (
            f"INSERT INTO {quote(obj.name)} ({', '.join(map(quote, cols))}) "
            f"VALUES ({', '.join('?' for _ in cols)})"
        )
        tuples = [tuple(r.get(c) for c in cols) for r in rows]
        # One transaction per chunk (the connection autocommits), releasing the lock between
        # chunks so API calls keep being served while a large seed loads.
        for start in range(0, len(tuples), _INSERT_CHUNK):
            with self.transaction():
                self.conn.executemany(sql, tuples[start : start + _INSERT_CHUNK])
        self.written[obj.name] += len(tuples)
        return len(tuples)

    def reset(self) -> None:
        """Empty the org (the integration user stays); ids start again from 1."""
        with self.lock:
            for obj in self.schema.objects.values():
                self.conn.execute(f"DELETE FROM {quote(obj.name)}")
            self.conn.execute("DELETE FROM _sandbox_counters")
            self.written.clear()
            self.user_id = self._ensure_integration_user()
            self.written.clear()

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.lock:
            self.conn.execute("SAVEPOINT write_batch")
            try:
                yield
            except BaseException:
                self.conn.execute("ROLLBACK TO write_batch")
                self.conn.execute("RELEASE write_batch")
                raise
            self.conn.execute("RELEASE write_batch")

    # --- reads ----------------------------------------------------------------------
    def object(self, name: str) -> ObjectDef:
        """The object as the integration user sees it; unknown or unreadable -> NOT_FOUND."""
        obj = self.user_schema.get(name)
        if obj is None:
            raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")
        return obj

    def object_for_id(self, record_id: str) -> ObjectDef | None:
        full = self.schema.by_key_prefix(record_id[:3])
        return self.user_schema.get(full.name) if full else None

    def get_row(self, obj: ObjectDef, record_id: str) -> dict[str, Any] | None:
        if not ids.is_well_formed(record_id):
            return None
        with self.lock:
            cur = self.conn.execute(
                f'SELECT * FROM {quote(obj.name)} WHERE "Id" = ?', (ids.to18(record_id),)
            )
            row = cur.fetchone()
            if row is None:
                return None
            return dict(zip([d[0] for d in cur.description], row, strict=True))

    def matches_exactly(self, fdef: FieldDef) -> bool:
        """Whether an external-id lookup of this field compares values exactly.

        A unique case-sensitive field does. Any other field ignores case (the common reading);
        the upsert docs can also be read as "case-insensitive only for a unique field created
        case-insensitive", which the option upsert_nonunique_external_id_exact switches on
        for non-unique External ID fields."""
        if fdef.case_sensitive:
            return True
        return self.nonunique_external_id_exact and fdef.external_id and not fdef.unique

    def find_by_field(self, obj: ObjectDef, fdef: FieldDef, value: Any) -> list[str]:
        if fdef.name == "Id":
            row = self.get_row(obj, str(value))
            return [str(row["Id"])] if row and not row["IsDeleted"] else []
        collate = " COLLATE BINARY" if self.matches_exactly(fdef) else ""
        with self.lock:
            rows = self.conn.execute(
                f'SELECT "Id" FROM {quote(obj.name)} WHERE {quote(fdef.name)} = ?{collate} '
                'AND "IsDeleted" = 0 ORDER BY "Id" LIMIT 10',
                (value,),
            ).fetchall()
        return [str(r[0]) for r in rows]

    def count(self, obj_name: str, *, include_deleted: bool = True) -> int:
        where = "" if include_deleted else ' WHERE "IsDeleted" = 0'
        with self.lock:
            return int(
                self.conn.execute(f"SELECT COUNT(*) FROM {quote(obj_name)}{where}").fetchone()[0]
            )

    def changed_between(self, obj: ObjectDef, start: str, end: str, *, deleted: bool) -> list[Any]:
        """(Id, SystemModstamp) of live (or deleted) records stamped in [start, end)."""
        sql = (
            f'SELECT "Id", "SystemModstamp" FROM {quote(obj.name)} WHERE "SystemModstamp" >= ? '
            'AND "SystemModstamp" < ? AND "IsDeleted" = ? ORDER BY "SystemModstamp", "Id"'
        )
        with self.lock:
            return self.conn.execute(sql, (start, end, int(deleted))).fetchall()

    # --- writes ---------------------------------------------------------------------
    def write(
        self,
        ops: list[WriteOp],
        *,
        all_or_none: bool,
        modstamp: datetime | None = None,
    ) -> list[WriteResult]:
        """Apply ops in order in one transaction; each op gets a result.

        With all_or_none, one failure rolls every op back and the others report
        ALL_OR_NONE_OPERATION_ROLLED_BACK. A SalesforceError fails the whole request.
        """
        now = stamp(modstamp or self.clock.now())
        ext_counts: Counter[tuple[str, str, str]] = Counter(
            self._ext_key(op)
            for op in ops
            if op.kind == "upsert" and op.ext_value not in (None, "")
        )
        results: list[WriteResult] = []
        written: Counter[str] = Counter()
        try:
            with self.transaction():
                for op in ops:
                    if op.error is not None:
                        results.append(WriteResult(None, False, [op.error]))
                        continue
                    if op.kind == "upsert" and ext_counts.get(self._ext_key(op), 0) > 1:
                        error = RecordError(
                            "DUPLICATE_EXTERNAL_ID",
                            f"Duplicate external id specified: {op.ext_value}",
                            [str(op.ext_field)],
                        )
                        results.append(WriteResult(None, False, [error]))
                        continue
                    self.conn.execute("SAVEPOINT one_record")
                    try:
                        result, obj_name = self._apply(op, now)
                    except _RecordFailedError as failed:
                        self.conn.execute("ROLLBACK TO one_record")
                        self.conn.execute("RELEASE one_record")
                        results.append(WriteResult(op.record_id, False, [failed.error]))
                        continue
                    self.conn.execute("RELEASE one_record")
                    results.append(result)
                    written[obj_name] += 1
                if all_or_none and not all(r.success for r in results):
                    raise _RollBackError(_rolled_back(ops, results))
        except _RollBackError as rolled:
            return rolled.results
        self.written.update(written)
        return results

    def _apply(self, op: WriteOp, now: str) -> tuple[WriteResult, str]:
        if op.kind == "delete":
            return self._delete(str(op.record_id or ""), now)
        obj = self.object(op.obj) if op.kind != "update" or op.obj else None
        if op.kind == "create":
            assert obj is not None
            return self._create(obj, op.body, now), obj.name
        if op.kind == "update":
            rid = str(op.record_id or "")
            if obj is None:
                found = self.object_for_id(rid) if ids.is_well_formed(rid) else None
                if found is None:
                    raise _RecordFailedError(
                        RecordError("MALFORMED_ID", f"malformed id {rid}", ["Id"])
                    )
                obj = found
            return self._update(obj, rid, op.body, now), obj.name
        assert obj is not None and op.ext_field is not None
        return self._upsert(obj, op.ext_field, op.ext_value, op.body, now), obj.name

    def _create(self, obj: ObjectDef, body: dict[str, Any], now: str) -> WriteResult:
        if not obj.createable:
            raise _RecordFailedError(
                RecordError(
                    "INSUFFICIENT_ACCESS_OR_READONLY",
                    f"insufficient access rights on entity: {obj.name}",
                )
            )
        values = self._check_body(obj, body, creating=True)
        row: dict[str, Any] = {f.name: None for f in obj.stored_fields()}
        for fname, default in self.defaults.get(obj.name, {}).items():
            row[fname] = self._coerce(obj.fields[fname], default)
        for f in obj.stored_fields():
            if f.type == "boolean" and row[f.name] is None:
                row[f.name] = 0
        row.update(values)
        if "OwnerId" in row and row["OwnerId"] is None:
            row["OwnerId"] = self.user_id
        row.update(
            IsDeleted=0,
            CreatedDate=now,
            CreatedById=self.user_id,
            LastModifiedDate=now,
            LastModifiedById=self.user_id,
            SystemModstamp=now,
        )
        self._derive(obj, row, values, None)
        self._check_row(obj, row, values, None)
        row["Id"] = self.allocate_ids(obj.key_prefix, 1)[0]
        cols = list(row)
        with self.lock:
            self.conn.execute(
                f"INSERT INTO {quote(obj.name)} ({', '.join(map(quote, cols))}) "
                f"VALUES ({', '.join('?' for _ in cols)})",
                [row[c] for c in cols],
            )
        return WriteResult(row["Id"], True, created=True)

    def _existing(self, obj: ObjectDef, record_id: str) -> dict[str, Any]:
        if not ids.is_well_formed(record_id):
            raise _RecordFailedError(
                RecordError(
                    "MALFORMED_ID",
                    f"{obj.label} ID: id value of incorrect type: {record_id}",
                    ["Id"],
                )
            )
        if record_id[:3] != obj.key_prefix:
            raise _RecordFailedError(
                RecordError(
                    "MALFORMED_ID",
                    f"{obj.label} ID: id value of incorrect type: {record_id}",
                    ["Id"],
                )
            )
        row = self.get_row(obj, record_id)
        if row is None:
            raise _RecordFailedError(
                RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [])
            )
        if row["IsDeleted"]:
            raise _RecordFailedError(RecordError("ENTITY_IS_DELETED", "entity is deleted", []))
        return row

    def _update(
        self, obj: ObjectDef, record_id: str, body: dict[str, Any], now: str
    ) -> WriteResult:
        existing = self._existing(obj, record_id)
        if not obj.updateable:
            raise _RecordFailedError(
                RecordError(
                    "INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id"
                )
            )
        if obj.name == "Lead" and existing.get("IsConverted"):
            raise _RecordFailedError(
                RecordError("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")
            )
        body = {k: v for k, v in body.items() if k.lower() != "id"}
        values = self._check_body(obj, body, creating=False)
        row = dict(existing)
        row.update(values)
        row.update(LastModifiedDate=now, LastModifiedById=self.user_id, SystemModstamp=now)
        self._derive(obj, row, values, existing)
        self._check_row(obj, row, values, existing)
        changed = {k: v for k, v in row.items() if k != "Id"}
        with self.lock:
            self.conn.execute(
                f"UPDATE {quote(obj.name)} SET {', '.join(quote(k) + ' = ?' for k in changed)} "
                'WHERE "Id" = ?',
                [*changed.values(), existing["Id"]],
            )
        return WriteResult(str(existing["Id"]), True, created=False)

    def _upsert(
        self, obj: ObjectDef, ext_name: str, ext_value: Any, body: dict[str, Any], now: str
    ) -> WriteResult:
        fdef = self.external_id_field(obj, ext_name)
        if ext_value in (None, ""):
            raise _RecordFailedError(
                RecordError("MISSING_ARGUMENT", f"{fdef.name} not specified", [fdef.name])
            )
        matches = self.find_by_field(obj, fdef, self._coerce(fdef, ext_value))
        if len(matches) > 1:
            raise _RecordFailedError(
                RecordError(
                    "DUPLICATE_EXTERNAL_ID",
                    f"{fdef.label}: more than one record found for external id field: "
                    f"[{', '.join(matches)}]",
                    [fdef.name],
                )
            )
        body = {k: v for k, v in body.items() if k.lower() != fdef.name.lower()}
        if matches:
            return self._update(obj, matches[0], body, now)
        if fdef.name == "Id":
            raise _RecordFailedError(RecordError("NOT_FOUND", "Provided id does not exist", ["Id"]))
        return self._create(obj, {**body, fdef.name: ext_value}, now)

    def _ext_key(self, op: WriteOp) -> tuple[str, str, str]:
        """An upsert's (object, field, value), compared the way the field matches values."""
        obj = self.schema.get(op.obj)
        fdef = obj.field(str(op.ext_field)) if obj is not None else None
        return _ext_key(op, bool(fdef and self.matches_exactly(fdef)))

    def external_id_field(self, obj: ObjectDef, name: str) -> FieldDef:
        fdef = obj.field(name)
        if fdef is None or not (fdef.external_id or fdef.id_lookup):
            raise SalesforceError(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {name}",
            )
        return fdef

    def _delete(self, record_id: str, now: str) -> tuple[WriteResult, str]:
        obj = self.object_for_id(record_id) if ids.is_well_formed(record_id) else None
        if obj is None:
            raise _RecordFailedError(RecordError("MALFORMED_ID", f"malformed id {record_id}"))
        existing = self._existing(obj, record_id)
        if not obj.deletable:
            raise _RecordFailedError(
                RecordError(
                    "INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id"
                )
            )
        with self.lock:
            self.conn.execute(
                f'UPDATE {quote(obj.name)} SET "IsDeleted" = 1, "SystemModstamp" = ?, '
                '"LastModifiedDate" = ?, "LastModifiedById" = ? WHERE "Id" = ?',
                (now, now, self.user_id, existing["Id"]),
            )
        return WriteResult(str(existing["Id"]), True), obj.name

    # --- lead conversion (control API only: convertLead is a SOAP call) --------------
    def convert_lead(
        self, lead_id: str, contact_id: str | None = None, account_id: str | None = None
    ) -> dict[str, str]:
        """Convert a lead as Salesforce's convertLead does: into an existing or new contact and
        account; the lead becomes read-only. Returns the ids involved."""
        lead_obj, contact_obj = self.schema.get("Lead"), self.schema.get("Contact")
        if lead_obj is None or contact_obj is None:
            raise SalesforceError(400, "INVALID_TYPE", "the schema has no Lead or Contact")
        now = stamp(self.clock.now())
        with self.transaction():
            try:
                lead = self._existing(lead_obj, lead_id)
            except _RecordFailedError as failed:
                raise SalesforceError(400, failed.error.status_code, failed.error.message) from None
            if lead.get("IsConverted"):
                raise SalesforceError(
                    400, "CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead"
                )
            if account_id is None and contact_id is None:
                account = self._create(self.object("Account"), {"Name": lead["Company"]}, now)
                account_id = account.id
            if contact_id is None:
                carried = {
                    k: lead.get(k)
                    for k in (
                        "FirstName",
                        "LastName",
                        "Email",
                        "Phone",
                        "Title",
                        "Product_User_Id__c",
                        "Product_User_Number__c",
                    )
                    if contact_obj.field(k) is not None and lead.get(k) is not None
                }
                contact = self._create(contact_obj, {**carried, "AccountId": account_id}, now)
                contact_id = str(contact.id)
            elif account_id is None:
                found = self.get_row(contact_obj, contact_id)
                if found is None:
                    raise SalesforceError(
                        400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id"
                    )
                account_id = found.get("AccountId")
            self.conn.execute(
                'UPDATE "Lead" SET "IsConverted" = 1, "ConvertedDate" = ?, '
                '"ConvertedContactId" = ?, "ConvertedAccountId" = ?, "Status" = ?, '
                '"LastModifiedDate" = ?, "SystemModstamp" = ? WHERE "Id" = ?',
                (now[:10], contact_id, account_id, "Closed - Converted", now, now, lead["Id"]),
            )
        self.written["Lead"] += 1
        return {"leadId": str(lead["Id"]), "contactId": contact_id, "accountId": str(account_id)}

    # --- validation -----------------------------------------------------------------
    def _check_body(
        self, obj: ObjectDef, body: dict[str, Any], *, creating: bool
    ) -> dict[str, Any]:
        """Field names, writability, types and lengths of the fields a request sends."""
        fields: list[tuple[FieldDef, Any]] = []
        for key, value in body.items():
            if key == "attributes":
                continue
            fdef = obj.field(key)
            if fdef is None:
                raise SalesforceError(
                    400,
                    "INVALID_FIELD",
                    f"No such column '{key}' on sobject of type {obj.name}",
                )
            fields.append((fdef, value))
        readonly = [
            f.name
            for f, _ in fields
            if not (f.createable if creating else f.updateable) or not f.editable_by_user
        ]
        if readonly:
            raise _RecordFailedError(
                RecordError(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {', '.join(readonly)}. Please check the "
                    "security settings of this field and verify that it is read/write for "
                    "your profile or permission set.",
                    readonly,
                )
            )
        return {f.name: self._coerce(f, v) for f, v in fields}

    def _coerce(self, f: FieldDef, value: Any) -> Any:
        def bad() -> _RecordFailedError:
            return _RecordFailedError(
                RecordError(
                    "INVALID_TYPE_ON_FIELD_IN_RECORD",
                    f"{f.label}: value not of required type: {value}",
                    [f.name],
                )
            )

        if value is None and f.type == "boolean":
            if self.null_boolean == "false":
                return 0
            raise _RecordFailedError(
                RecordError(
                    "INVALID_TYPE_ON_FIELD_IN_RECORD",
                    f"{f.label}: value not of required type: ",
                    [f.name],
                )
            )
        if value is None or (value == "" and f.type != "boolean"):
            return None
        t = f.type
        if t in TEXT_TYPES:
            if isinstance(value, list) and t == "multipicklist":
                value = ";".join(map(str, value))
            if isinstance(value, bool):
                value = "true" if value else "false"
            if isinstance(value, int | float):
                value = str(value)
            if not isinstance(value, str):
                raise bad()
            if f.length and len(value) > f.length:
                shown = value if len(value) <= 100 else value[:100] + "..."
                raise _RecordFailedError(
                    RecordError(
                        "STRING_TOO_LONG",
                        f"{f.label}: data value too large: {shown} (max length={f.length})",
                        [f.name],
                    )
                )
            if t == "email" and not _EMAIL.match(value):
                raise _RecordFailedError(
                    RecordError(
                        "INVALID_EMAIL_ADDRESS",
                        f"{f.label}: invalid email address: {value}",
                        [f.name],
                    )
                )
            return value
        if t == "boolean":
            if isinstance(value, bool):
                return int(value)
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return int(value.lower() == "true")
            if value == "":
                return 0
            raise bad()
        if t == "int":
            if isinstance(value, bool):
                raise bad()
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, int):
                return value
            if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
                return int(value)
            raise bad()
        if t in _NUMBER_TYPES:
            if isinstance(value, bool):
                raise bad()
            try:
                number = float(value) if isinstance(value, int | float) else float(str(value))
            except ValueError:
                raise bad() from None
            return _in_range(f, number)
        if t == "date":
            if not isinstance(value, str):
                raise bad()
            try:
                return date.fromisoformat(value[:10]).isoformat()
            except ValueError:
                raise bad() from None
        if t == "datetime":
            moment = datetimes.parse_value(value) if isinstance(value, str) else None
            if moment is None:
                raise bad()
            if self.datetime_fraction == "round" and moment.microsecond >= 500_000:
                moment += timedelta(seconds=1)
            return stamp(moment)  # Salesforce keeps whole seconds
        if t in ("reference", "id"):
            if not isinstance(value, str):
                raise bad()
            if not ids.is_well_formed(value):
                raise _RecordFailedError(
                    RecordError(
                        "MALFORMED_ID", f"{f.label}: id value of incorrect type: {value}", [f.name]
                    )
                )
            return ids.to18(value)
        if t == "time":
            if not isinstance(value, str):
                raise bad()
            return value
        raise bad()  # compound fields are never written directly

    def _derive(
        self,
        obj: ObjectDef,
        row: dict[str, Any],
        values: dict[str, Any],
        existing: dict[str, Any] | None,
    ) -> None:
        """Read-only fields the server computes: names, formulas, Event dates and AccountId."""
        name = obj.field("Name")
        if name and not name.createable and "LastName" in row:
            parts = [row.get("FirstName"), row.get("LastName")]
            row["Name"] = " ".join(p for p in parts if p) or None
        for f in obj.stored_fields():
            if f.calculated and f.calculated_formula:
                row[f.name] = _evaluate(f.calculated_formula, row)
        if obj.name == "Event":
            _derive_event(row, values, existing)
            row["AccountId"] = self._event_account(row)

    def _event_account(self, row: dict[str, Any]) -> str | None:
        what, who = row.get("WhatId"), row.get("WhoId")
        if what and what.startswith("001"):
            return str(what)
        if who and who.startswith("003"):
            contact = self.schema.get("Contact")
            found = self.get_row(contact, who) if contact else None
            return found.get("AccountId") if found else None
        return None

    def _check_row(
        self,
        obj: ObjectDef,
        row: dict[str, Any],
        values: dict[str, Any],
        existing: dict[str, Any] | None,
    ) -> None:
        """Rules on the record as it would be stored: required fields, references, uniqueness."""
        missing = [
            f.name
            for f in obj.stored_fields()
            if not f.nillable and f.createable and row.get(f.name) is None
        ]
        if obj.name == "Event":
            missing += _event_missing(row)
        if missing:
            raise _RecordFailedError(
                RecordError(
                    "REQUIRED_FIELD_MISSING",
                    f"Required fields are missing: [{', '.join(missing)}]",
                    missing,
                )
            )
        for fname, value in values.items():
            f = obj.fields[fname]
            if f.type == "reference" and value is not None:
                self._check_reference(f, value)
        if obj.name == "Event":
            _check_event(row)
            who = row.get("WhoId")
            if who and who.startswith("00Q") and row.get("WhatId"):
                raise _RecordFailedError(
                    RecordError(
                        "FIELD_INTEGRITY_EXCEPTION",
                        "Related To ID: You can't associate a lead with a related record. "
                        "WhatId must be empty when WhoId refers to a lead.",
                        ["WhatId"],
                    )
                )
        for fname, value in values.items():
            f = obj.fields[fname]
            if f.unique and value is not None:
                with self.lock:
                    clash = self.conn.execute(
                        f'SELECT "Id" FROM {quote(obj.name)} WHERE {quote(f.name)} = ? '
                        'AND "IsDeleted" = 0 AND "Id" IS NOT ? LIMIT 1',
                        (value, existing["Id"] if existing else None),
                    ).fetchone()
                if clash:
                    raise _RecordFailedError(
                        RecordError(
                            "DUPLICATE_VALUE",
                            f"duplicate value found: {f.name} duplicates value on record with "
                            f"id: {clash[0]}",
                            [f.name],
                        )
                    )

    def _check_reference(self, f: FieldDef, value: str) -> None:
        target = self.schema.by_key_prefix(value[:3])
        if target is None or target.name not in f.reference_to:
            raise _RecordFailedError(
                RecordError(
                    "FIELD_INTEGRITY_EXCEPTION",
                    f"{f.label}: id value of incorrect type: {value}",
                    [f.name],
                )
            )
        found = self.get_row(target, value)
        if found is None:
            raise _RecordFailedError(
                RecordError(
                    "INVALID_CROSS_REFERENCE_KEY",
                    f"{f.label}: invalid cross reference id",
                    [f.name],
                )
            )
        if found.get("IsDeleted"):
            raise _RecordFailedError(
                RecordError("ENTITY_IS_DELETED", "entity is deleted", [f.name])
            )
        if target.name == "Lead" and found.get("IsConverted"):
            raise _RecordFailedError(
                RecordError(
                    "CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead", [f.name]
                )
            )


class _RollBackError(Exception):
    """Raised inside the transaction to undo an allOrNone batch; carries its results."""

    def __init__(self, results: list[WriteResult]) -> None:
        super().__init__("all or none rolled back")
        self.results = results


def _in_range(f: FieldDef, number: float) -> float:
    """Round to the field's scale; refuse more integer digits than precision - scale allows."""
    if number != number or number in (float("inf"), float("-inf")):  # NaN / infinity
        raise _RecordFailedError(
            RecordError(
                "INVALID_TYPE_ON_FIELD_IN_RECORD",
                f"{f.label}: value not of required type: {number}",
                [f.name],
            )
        )
    if f.precision:
        rounded = float(Decimal(repr(number)).quantize(Decimal(1).scaleb(-f.scale), ROUND_HALF_UP))
        if abs(rounded) >= 10 ** (f.precision - f.scale):
            raise _RecordFailedError(
                RecordError(
                    "NUMBER_OUTSIDE_VALID_RANGE",
                    f"{f.label}: value outside of valid range on numeric field: {number:g}",
                    [f.name],
                )
            )
        return rounded
    return number


def _ext_key(op: WriteOp, case_sensitive: bool) -> tuple[str, str, str]:
    value = str(op.ext_value)
    return (op.obj.lower(), str(op.ext_field).lower(), value if case_sensitive else value.lower())


def _rolled_back(ops: list[WriteOp], results: list[WriteResult]) -> list[WriteResult]:
    rolled = RecordError(
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "Record rolled back because not all records were valid and the request was using "
        "AllOrNone header",
    )
    out = []
    for op, r in zip(ops, results, strict=True):
        if not r.success:
            out.append(r)
        else:
            keep_id = op.kind in ("update", "delete") or (op.kind == "upsert" and not r.created)
            out.append(WriteResult(r.id if keep_id else None, False, [rolled]))
    return out


def _evaluate(formula: str, row: dict[str, Any]) -> Any:
    """The formula subset the schema file may use: `TEXT(Field)` and `Field`."""
    m = _FORMULA_TEXT.match(formula)
    if m:
        value = row.get(m.group(1))
        if value is None:
            return None
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)
    m = _FORMULA_FIELD.match(formula)
    if m:
        return row.get(m.group(1))
    return None


def _fmt(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _derive_event(
    row: dict[str, Any], values: dict[str, Any], existing: dict[str, Any] | None
) -> None:
    """Keep ActivityDateTime/StartDateTime, EndDateTime and DurationInMinutes consistent."""
    if row.get("IsAllDayEvent"):
        if row.get("ActivityDate") is None and row.get("ActivityDateTime"):
            row["ActivityDate"] = str(row["ActivityDateTime"])[:10]
        if row.get("ActivityDate"):
            day = datetime.fromisoformat(str(row["ActivityDate"])).replace(tzinfo=UTC)
            row["ActivityDateTime"] = row["StartDateTime"] = _fmt(day)
            if row.get("DurationInMinutes") is None or "DurationInMinutes" not in values:
                row["DurationInMinutes"] = row.get("DurationInMinutes") or 1440
            last = day + timedelta(minutes=int(row["DurationInMinutes"])) - timedelta(days=1)
            row["EndDateTime"] = _fmt(last)
        return
    if "StartDateTime" in values and "ActivityDateTime" not in values:
        row["ActivityDateTime"] = values["StartDateTime"]
    start_text = row.get("ActivityDateTime")
    if not start_text:
        return
    begin = datetimes.parse_value(str(start_text))
    assert begin is not None
    row["StartDateTime"] = start_text
    row["ActivityDate"] = begin.date().isoformat()
    duration_sent = "DurationInMinutes" in values and values["DurationInMinutes"] is not None
    end_sent = "EndDateTime" in values and values["EndDateTime"] is not None
    if end_sent and not duration_sent:
        finish = datetimes.parse_value(str(row["EndDateTime"]))
        assert finish is not None
        row["DurationInMinutes"] = int((finish - begin).total_seconds() // 60)
    elif row.get("DurationInMinutes") is not None and not end_sent:
        row["EndDateTime"] = _fmt(begin + timedelta(minutes=int(row["DurationInMinutes"])))


def _event_missing(row: dict[str, Any]) -> list[str]:
    if row.get("IsAllDayEvent"):
        return [] if row.get("ActivityDate") else ["ActivityDate"]
    if not row.get("ActivityDateTime"):
        return ["ActivityDateTime"]
    if row.get("DurationInMinutes") is None and not row.get("EndDateTime"):
        return ["DurationInMinutes"]
    return []


def _check_event(row: dict[str, Any]) -> None:
    if row.get("IsAllDayEvent"):
        return
    duration = row.get("DurationInMinutes")
    if duration is not None and int(duration) < 0:
        raise _RecordFailedError(
            RecordError(
                "FIELD_INTEGRITY_EXCEPTION",
                "Duration: value must not be negative",
                ["DurationInMinutes"],
            )
        )
    start = datetimes.parse_value(str(row["ActivityDateTime"]))
    end = datetimes.parse_value(str(row["EndDateTime"])) if row.get("EndDateTime") else None
    if start and end and duration is not None and end != start + timedelta(minutes=int(duration)):
        raise _RecordFailedError(
            RecordError(
                "FIELD_INTEGRITY_EXCEPTION",
                "End Date Time: EndDateTime must equal ActivityDateTime plus DurationInMinutes",
                ["EndDateTime", "DurationInMinutes"],
            )
        )
    if duration is not None and int(duration) > 14 * 24 * 60:
        raise _RecordFailedError(
            RecordError(
                "FIELD_INTEGRITY_EXCEPTION",
                "Duration: an event cannot last longer than 14 days",
                ["DurationInMinutes"],
            )
        )
