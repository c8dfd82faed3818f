"""sObject Collections writes: insert, update, update_mixed and upsert, 200 records a call.

One `RecordResult` per input record, in input order. A chunk rejected as a whole (400)
fails each of its records and the other chunks still go; an insert that may or may not have
been applied raises `UncertainWriteError` carrying the outcomes of the chunks before it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import QuotaExceededError, SalesforceError, UncertainWriteError
from .salesforce_api import SOBJECT_NAME, SalesforceApi

COLLECTION_SIZE = 200  # sObject Collections maximum per call
COLLECTION_TYPES = 10  # Salesforce processes at most 10 same-type chunks per call


@dataclass
class RecordResult:
    """Outcome of one record of a collections call; `index` is its position in the input."""

    index: int
    id: str | None
    success: bool
    created: bool | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)


class Collections:
    """The collections calls of one org, over a `SalesforceApi`."""

    def __init__(self, api: SalesforceApi) -> None:
        self.api = api

    def insert(
        self, sobject: str, records: list[dict[str, Any]], all_or_none: bool = False
    ) -> list[RecordResult]:
        typed = _typed(sobject, records)
        return self._collections("POST", "composite/sobjects", typed, all_or_none)

    def update(
        self, sobject: str, records: list[dict[str, Any]], all_or_none: bool = False
    ) -> list[RecordResult]:
        return self._update(_typed(sobject, records), all_or_none)

    def update_mixed(
        self, records: list[dict[str, Any]], all_or_none: bool = False
    ) -> list[RecordResult]:
        """Update records of several object types together, 200 a call whatever their types.

        Each record names its type as Salesforce does, `"attributes": {"type": "Lead"}`, and
        carries its `Id`. The input is grouped by type before it is cut into calls
        (Salesforce processes a call in chunks of consecutive same-type records, at most 10
        chunks), and a call never holds more than 10 types; results keep the input positions
        (`RecordResult.index`) and come back in input order.
        """
        return self._update(grouped_by_type(records), all_or_none)

    def _update(
        self, typed: list[tuple[int, str, dict[str, Any]]], all_or_none: bool
    ) -> list[RecordResult]:
        for i, _, record in typed:
            if not (record.get("Id") or record.get("id")):
                raise ValueError(f"update: record {i} has no Id")
        return self._collections("PATCH", "composite/sobjects", typed, all_or_none)

    def upsert(
        self,
        sobject: str,
        external_id_field: str,
        records: list[dict[str, Any]],
        all_or_none: bool = False,
    ) -> list[RecordResult]:
        if not SOBJECT_NAME.match(external_id_field):
            raise ValueError(f"not a field name: {external_id_field!r}")
        if not SOBJECT_NAME.match(sobject):  # both are URL path segments
            raise ValueError(f"not an sObject name: {sobject!r}")
        path = f"composite/sobjects/{sobject}/{external_id_field}"
        return self._collections("PATCH", path, _typed(sobject, records), all_or_none)

    def send(
        self, method: str, path: str, typed: list[tuple[int, str, dict[str, Any]]]
    ) -> list[RecordResult]:
        """A prepared operation (`salesforce_composite.CollectionOp`), allOrNone false."""
        return self._collections(method, path, typed, False)

    def _collections(
        self,
        method: str,
        path: str,
        typed: list[tuple[int, str, dict[str, Any]]],
        all_or_none: bool,
    ) -> list[RecordResult]:
        """Send (input index, type, record) entries in calls of 200 and at most 10 types."""
        for _, sobject, _ in typed:
            if not SOBJECT_NAME.match(sobject):
                raise ValueError(f"not an sObject name: {sobject!r}")
        results: list[RecordResult] = []
        for chunk in collection_chunks(typed):
            first, last = chunk[0][0], chunk[-1][0]
            types = ", ".join(dict.fromkeys(t for _, t, _ in chunk))
            payload = {
                "allOrNone": all_or_none,
                "records": [
                    {**{k: v for k, v in r.items() if k != "attributes"}, "attributes": {"type": t}}
                    for _, t, r in chunk
                ],
            }
            try:
                answer = self.api.json(method, path, json=payload)
            except UncertainWriteError as exc:
                raise UncertainWriteError(
                    f"{exc.message} ({len(chunk)} {types} records, input positions "
                    f"{first}-{last}; {len(results)} earlier records have outcomes)",
                    sorted(results, key=lambda r: r.index),
                    unanswered=exc.unanswered,
                ) from None
            except QuotaExceededError:
                raise
            except SalesforceError as exc:
                if exc.status != 400:
                    raise
                # The whole chunk was rejected on its merits: every record in it failed.
                error = {"statusCode": exc.error_code, "message": exc.message, "fields": exc.fields}
                results.extend(RecordResult(i, None, False, None, [error]) for i, _, _ in chunk)
                continue
            if not isinstance(answer, list) or len(answer) != len(chunk):
                raise SalesforceError(
                    200,
                    "UNEXPECTED_RESPONSE",
                    f"{method} {path} returned {len(answer) if isinstance(answer, list) else 0} "
                    f"results for {len(chunk)} records",
                )
            for (index, _, _), item in zip(chunk, answer, strict=True):
                results.append(
                    RecordResult(
                        index=index,
                        id=item.get("id"),
                        success=bool(item.get("success")),
                        created=item.get("created") if "created" in item else None,
                        errors=list(item.get("errors") or []),
                    )
                )
        results.sort(key=lambda r: r.index)
        return results


def _typed(sobject: str, records: list[dict[str, Any]]) -> list[tuple[int, str, dict[str, Any]]]:
    return [(i, sobject, r) for i, r in enumerate(records)]


def collection_chunks(
    typed: list[tuple[int, str, dict[str, Any]]],
) -> Iterator[list[tuple[int, str, dict[str, Any]]]]:
    """Consecutive calls of at most 200 records and at most 10 runs of one type."""
    chunk: list[tuple[int, str, dict[str, Any]]] = []
    runs = 0
    for entry in typed:
        new_run = not chunk or chunk[-1][1] != entry[1]
        if chunk and (len(chunk) == COLLECTION_SIZE or (new_run and runs == COLLECTION_TYPES)):
            yield chunk
            chunk, runs, new_run = [], 0, True
        chunk.append(entry)
        runs += 1 if new_run else 0
    if chunk:
        yield chunk


def grouped_by_type(records: list[dict[str, Any]]) -> list[tuple[int, str, dict[str, Any]]]:
    """(input position, sObject, record) of mixed-type records, each naming its type in
    `attributes.type`, grouped by type in first-seen order (stable): one chunk per type in
    each collections call."""
    typed: list[tuple[int, str, dict[str, Any]]] = []
    for i, record in enumerate(records):
        attributes = record.get("attributes")
        sobject = attributes.get("type") if isinstance(attributes, Mapping) else None
        if not isinstance(sobject, str) or not SOBJECT_NAME.match(sobject):
            raise ValueError(f"update_mixed: record {i} has no attributes.type sObject name")
        typed.append((i, sobject, record))
    order = {t: n for n, t in enumerate(dict.fromkeys(t for _, t, _ in typed))}
    typed.sort(key=lambda entry: order[entry[1]])
    return typed
