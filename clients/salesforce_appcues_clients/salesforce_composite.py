"""Several sObject Collections operations in one Composite call (`POST composite`).

Salesforce counts a composite request as ONE API call whatever it holds, up to 25
subrequests of which at most 5 may be sObject Collections (or queries). `Composite.send`
cuts each `CollectionOp` into collections of 200 records (at most 10 same-type runs), packs
them 5 to a call (top-level `allOrNone: false`, so the subrequests are independent; a lone
collection goes as the plain collections call, which costs the same one call) and
returns each operation's `RecordResult`s in input order, as `Collections` does.

Retry safety is decided by the transport from the body (`is_replay_safe`): a composite made
only of PATCH subrequests (upserts by external id, updates of absolute values) is resent after
a 5xx like any PATCH; one carrying an insert (POST) is resent only after 429/503, and an
uncertain failure raises `CompositeUncertainError` naming the operations whose outcome is
unknown, with the results of the calls before it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .errors import SalesforceError, UncertainWriteError
from .salesforce_api import SOBJECT_NAME, SalesforceApi
from .salesforce_collections import Collections, RecordResult, collection_chunks, grouped_by_type
from .termination import STOP

COMPOSITE_COLLECTIONS = 5  # sObject Collections (or query) subrequests per composite call


@dataclass(frozen=True)
class CollectionOp:
    """One collections operation: `typed` holds (input index, sObject type, record)."""

    method: str  # POST (insert) or PATCH (update, upsert)
    path: str  # composite/sobjects or composite/sobjects/{Obj}/{Field}
    typed: tuple[tuple[int, str, dict[str, Any]], ...]

    @classmethod
    def insert(cls, sobject: str, records: list[dict[str, Any]]) -> CollectionOp:
        _check_name(sobject)
        return cls(
            "POST", "composite/sobjects", tuple((i, sobject, r) for i, r in enumerate(records))
        )

    @classmethod
    def upsert(
        cls, sobject: str, external_id_field: str, records: list[dict[str, Any]]
    ) -> CollectionOp:
        _check_name(sobject)
        _check_name(external_id_field)
        path = f"composite/sobjects/{sobject}/{external_id_field}"
        return cls("PATCH", path, tuple((i, sobject, r) for i, r in enumerate(records)))

    @classmethod
    def update_mixed(cls, records: list[dict[str, Any]]) -> CollectionOp:
        """Updates of several types (each record names it in `attributes.type` and carries
        its Id), grouped by type in first-seen order as `Collections.update_mixed` does."""
        typed = grouped_by_type(records)
        for i, _, record in typed:
            if not (record.get("Id") or record.get("id")):
                raise ValueError(f"update: record {i} has no Id")
        return cls("PATCH", "composite/sobjects", tuple(typed))

    @property
    def idempotent(self) -> bool:
        return self.method != "POST"


@dataclass(frozen=True)
class _Sub:
    op: int  # position of the operation in `send`'s input
    chunk: list[tuple[int, str, dict[str, Any]]]


class CompositeUncertainError(UncertainWriteError):
    """A composite call carrying an insert failed after it may have been applied.

    `results[k]` holds operation k's outcomes known so far (earlier calls); `uncertain` the
    operations with a subrequest in the failed call (their other records may be in results).
    """

    def __init__(
        self,
        message: str,
        results: list[list[RecordResult]],
        uncertain: set[int],
        unanswered: bool = False,
    ) -> None:
        super().__init__(message, [], unanswered)
        self.results = results
        self.uncertain = uncertain


class Composite:
    """Composite calls of one org, over a `SalesforceApi`."""

    def __init__(self, api: SalesforceApi) -> None:
        self.api = api

    @staticmethod
    def calls_needed(ops: list[CollectionOp]) -> int:
        subs = sum(sum(1 for _ in collection_chunks(list(op.typed))) for op in ops)
        return -(-subs // COMPOSITE_COLLECTIONS)

    def send(self, ops: list[CollectionOp]) -> list[list[RecordResult]]:
        results: list[list[RecordResult]] = [[] for _ in ops]
        calls = list(_calls(ops))
        if len(calls) == 1 and len(calls[0]) == 1:
            # One collection: the plain collections call costs the same one API call.
            k = calls[0][0].op
            op = ops[k]
            try:
                results[k] = Collections(self.api).send(op.method, op.path, list(op.typed))
            except UncertainWriteError as exc:
                raise CompositeUncertainError(exc.message, results, {k}, exc.unanswered) from None
            return results
        for call in calls:
            STOP.checkpoint()  # stopped: nothing of this call was sent
            body = {
                "allOrNone": False,
                "compositeRequest": [
                    {
                        "method": ops[sub.op].method,
                        "url": f"/services/data/v{self.api.api_version}/{ops[sub.op].path}",
                        "referenceId": f"op{sub.op}_{n}",
                        "body": {"allOrNone": False, "records": _records(sub.chunk)},
                    }
                    for n, sub in enumerate(call)
                ],
            }
            touched = {sub.op for sub in call}
            try:
                answer = self.api.json("POST", "composite", json=body)
            except UncertainWriteError as exc:
                raise CompositeUncertainError(
                    f"{exc.message} (composite of {len(call)} collections)",
                    [sorted(r, key=lambda x: x.index) for r in results],
                    touched,
                    exc.unanswered,
                ) from None
            answers = answer.get("compositeResponse") if isinstance(answer, dict) else None
            if not isinstance(answers, list) or len(answers) != len(call):
                raise SalesforceError(
                    200, "UNEXPECTED_RESPONSE", "composite returned the wrong number of results"
                )
            insert_in_call = any(not ops[sub.op].idempotent for sub in call)
            for sub, item in zip(call, answers, strict=True):
                results[sub.op].extend(_sub_results(sub, item, insert_in_call, touched, results))
        return [sorted(r, key=lambda x: x.index) for r in results]


def _check_name(name: str) -> None:
    if not SOBJECT_NAME.match(name):  # URL path segments
        raise ValueError(f"not an sObject or field name: {name!r}")


def _records(chunk: list[tuple[int, str, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [
        {**{k: v for k, v in r.items() if k != "attributes"}, "attributes": {"type": t}}
        for _, t, r in chunk
    ]


def _calls(ops: list[CollectionOp]) -> Iterator[list[_Sub]]:
    call: list[_Sub] = []
    for k, op in enumerate(ops):
        for chunk in collection_chunks(list(op.typed)):
            call.append(_Sub(k, chunk))
            if len(call) == COMPOSITE_COLLECTIONS:
                yield call
                call = []
    if call:
        yield call


def _sub_results(
    sub: _Sub,
    item: Any,
    insert_in_call: bool,
    touched: set[int],
    results: list[list[RecordResult]],
) -> list[RecordResult]:
    status = int(item.get("httpStatusCode", 0)) if isinstance(item, dict) else 0
    body = item.get("body") if isinstance(item, dict) else None
    if status == 200 and isinstance(body, list) and len(body) == len(sub.chunk):
        return [
            RecordResult(
                index=index,
                id=r.get("id"),
                success=bool(r.get("success")),
                created=r.get("created") if "created" in r else None,
                errors=list(r.get("errors") or []),
            )
            for (index, _, _), r in zip(sub.chunk, body, strict=True)
        ]
    first = body[0] if isinstance(body, list) and body and isinstance(body[0], dict) else {}
    code, message = str(first.get("errorCode", "")), str(first.get("message", ""))
    if status == 400:
        # The collection was rejected on its merits, as a direct 400 would be: each record fails.
        error = {"statusCode": code, "message": message, "fields": list(first.get("fields") or [])}
        return [RecordResult(i, None, False, None, [error]) for i, _, _ in sub.chunk]
    what = f"composite subrequest answered {status} {code}: {message}".strip()
    if insert_in_call:
        raise CompositeUncertainError(
            what, [sorted(r, key=lambda x: x.index) for r in results], touched
        )
    raise SalesforceError(status or 200, code or "UNEXPECTED_RESPONSE", what)
