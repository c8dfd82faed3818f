"""Appcues user id -> the Lead or Contact it belongs to (never creates one).

One SOQL query per user object per batch (IN lists split to fit the URI limit, every
literal escaped by `soql.quote` inside `soql.in_chunks`), objects asked in priority order
and only for the ids still unmatched. A converted Lead resolves to its Contact.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from salesforce_appcues_clients import soql

log = logging.getLogger(__name__)

# Salesforce Text fields hold at most 255 characters: a longer id cannot match, and must not
# reach a query (one literal that does not fit a URI would fail the whole batch).
MAX_MATCHABLE_LENGTH = 255


class QueryClient(Protocol):
    def query(
        self, soql: str, include_deleted: bool = False, batch_size: int | None = None
    ) -> Iterable[dict[str, Any]]: ...


@dataclass(frozen=True)
class MatchedRecord:
    sobject: str  # the object written to (Contact for a converted Lead)
    record_id: str
    via: str  # how it was found, e.g. "Contact", "Lead", "Lead 00Q… (converted)"


@dataclass(frozen=True)
class NoMatch:
    reason: str  # dead-letter reason code
    message: str


def _field_names(describe: dict[str, Any]) -> set[str]:
    return {str(f.get("name", "")).lower() for f in describe.get("fields", [])}


class UserMatcher:
    """Finds the record of each user id; positive matches are cached for the run."""

    def __init__(
        self,
        client: QueryClient,
        user_objects: Sequence[str],
        user_id_field: str,
        describes: dict[str, dict[str, Any]],
    ) -> None:
        self._client = client
        self._objects = list(user_objects)
        self._field = soql.field_name(user_id_field)
        self._describes = describes
        self._cache: dict[str, MatchedRecord] = {}
        self.queries_made = 0

    def _select(self, sobject: str) -> str:
        columns = ["Id", self._field]
        names = _field_names(self._describes.get(sobject, {}))
        tracks_conversion = {"isconverted", "convertedcontactid"} <= names
        if tracks_conversion:
            columns += ["IsConverted", "ConvertedContactId"]
        return f"SELECT {', '.join(columns)} FROM {sobject} WHERE"

    def match(self, user_ids: Iterable[str]) -> tuple[dict[str, MatchedRecord], dict[str, NoMatch]]:
        wanted = sorted(set(user_ids))
        found = {uid: self._cache[uid] for uid in wanted if uid in self._cache}
        failed: dict[str, NoMatch] = {
            uid: NoMatch(
                "unmatched_user",
                f"user id of {len(uid)} characters is longer than any Text field "
                f"({MAX_MATCHABLE_LENGTH}), so no record can hold it",
            )
            for uid in wanted
            if len(uid) > MAX_MATCHABLE_LENGTH
        }
        for sobject in self._objects:
            remaining = [uid for uid in wanted if uid not in found and uid not in failed]
            if not remaining:
                break
            remaining_set = set(remaining)
            rows_by_user: dict[str, list[dict[str, Any]]] = {}
            for query in soql.in_chunks(self._select(sobject), self._field, remaining):
                self.queries_made += 1
                for row in self._client.query(query):
                    value = row.get(self._field)
                    # SOQL compares text case-insensitively; Appcues ids are case-sensitive.
                    if isinstance(value, str) and value in remaining_set:
                        rows_by_user.setdefault(value, []).append(row)
            for uid, rows in rows_by_user.items():
                outcome = self._resolve(sobject, uid, rows)
                if isinstance(outcome, MatchedRecord):
                    found[uid] = outcome
                    self._cache[uid] = outcome
                else:
                    failed[uid] = outcome
        for uid in wanted:
            if uid not in found and uid not in failed:
                failed[uid] = NoMatch(
                    "unmatched_user",
                    f"no {' or '.join(self._objects)} has {self._field} = {uid!r}",
                )
        return found, failed

    def _resolve(
        self, sobject: str, uid: str, rows: list[dict[str, Any]]
    ) -> MatchedRecord | NoMatch:
        # Several records with one user id: prefer a live (unconverted) one, then the oldest
        # (ids are allocated in creation order), so every run picks the same record.
        rows = sorted(rows, key=lambda r: (bool(r.get("IsConverted")), str(r.get("Id"))))
        if len(rows) > 1:
            log.warning(
                "%d %s records have %s = %r; using %s",
                len(rows),
                sobject,
                self._field,
                uid,
                rows[0].get("Id"),
            )
        row = rows[0]
        if not row.get("IsConverted"):
            return MatchedRecord(sobject, str(row["Id"]), sobject)
        contact_id = row.get("ConvertedContactId")
        if contact_id:
            return MatchedRecord("Contact", str(contact_id), f"{sobject} {row['Id']} (converted)")
        return NoMatch(
            "converted_lead_without_contact",
            f"{sobject} {row['Id']} with {self._field} = {uid!r} is converted and has no Contact",
        )
