"""Appcues user id -> the Lead or Contact it belongs to (never creates one).

One SOQL query per user object per batch (IN lists split to fit the URI limit, every
literal escaped by `soql.quote` inside `soql.in_chunks`), objects asked in priority order
and only for the ids still unmatched. A converted Lead resolves to its Contact.

Answers are cached, found and not found alike, so a user seen again (a repeat user, or one
Salesforce does not know) costs no further query. The matcher lives as long as its pipeline (a
target run; a receiver "run" of `webhook_run_seconds`), and its entries are bounded:
- by age: an answer older than `DEFAULT_MAX_AGE_SECONDS` (5 minutes) is asked again, so a
  Lead converted or deleted, a new Contact of higher priority, or a user who newly appears
  in Salesforce is seen within 5 minutes by a long-lived process (the receiver). A target
  run passes `max_age_seconds=None`: its answers hold for the run, as a poll-job run is a
  5-minute snapshot and a backfill should not ask again for every user every 5 minutes;
- by number: at most `DEFAULT_MAX_ENTRIES`, least recently used dropped first;
- by evidence: a write Salesforce refuses because the record is gone or converted
  (`STALE_REFERENCE_CODES`) makes the pipeline call `rematch`, which drops the entry, asks
  Salesforce again and says which events can be written again to the record found now.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cachetools import TTLCache

from salesforce_appcues_clients import soql

log = logging.getLogger(__name__)

# Long enough that a steady stream of the same users costs a lookup per user per 5 minutes
# at most, short enough that Salesforce-side changes reach a long-lived receiver soon.
DEFAULT_MAX_AGE_SECONDS = 300.0
# Up to about 450 bytes an entry (measured with converted-Lead entries): the cache stays
# under ~45 MB whatever the number of users (before, found users were kept without bound).
DEFAULT_MAX_ENTRIES = 100_000
# What Salesforce answers to a write on, or a WhoId pointing at, a record deleted (or merged
# away: the losing record is deleted), purged from the recycle bin, or a converted Lead.
STALE_REFERENCE_CODES = frozenset(
    {"ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY", "CANNOT_UPDATE_CONVERTED_LEAD"}
)

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
    """Finds the record of each user id; answers are cached (see the module's docstring)."""

    def __init__(
        self,
        client: QueryClient,
        user_objects: Sequence[str],
        user_id_field: str,
        describes: dict[str, dict[str, Any]],
        max_age_seconds: float | None = DEFAULT_MAX_AGE_SECONDS,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._objects = list(user_objects)
        self._field = soql.field_name(user_id_field)
        self._describes = describes
        # user id -> the answer Salesforce gave: an LRU cache whose entries expire.
        ttl = math.inf if max_age_seconds is None else max_age_seconds
        self._cache: TTLCache[str, MatchedRecord | NoMatch] = TTLCache(
            maxsize=max_entries, ttl=ttl, timer=clock
        )
        self.queries_made = 0
        self.cache_hits = 0

    def _select(self, sobject: str) -> str:
        columns = ["Id", self._field]
        names = _field_names(self._describes.get(sobject, {}))
        tracks_conversion = {"isconverted", "convertedcontactid"} <= names
        if tracks_conversion:
            columns += ["IsConverted", "ConvertedContactId"]
        return f"SELECT {', '.join(columns)} FROM {sobject} WHERE"

    def match(self, user_ids: Iterable[str]) -> tuple[dict[str, MatchedRecord], dict[str, NoMatch]]:
        wanted = sorted(set(user_ids))
        found: dict[str, MatchedRecord] = {}
        failed: dict[str, NoMatch] = {
            uid: NoMatch(
                "unmatched_user",
                f"user id of {len(uid)} characters is longer than any Text field "
                f"({MAX_MATCHABLE_LENGTH}), so no record can hold it",
            )
            for uid in wanted
            if len(uid) > MAX_MATCHABLE_LENGTH
        }
        for uid in wanted:
            known = self._cache.get(uid)
            if isinstance(known, MatchedRecord):
                found[uid] = known
            elif isinstance(known, NoMatch):
                failed[uid] = known
            else:
                continue
            self.cache_hits += 1
        asked: list[str] = []
        for sobject in self._objects:
            remaining = [uid for uid in wanted if uid not in found and uid not in failed]
            if not remaining:
                break
            remaining_set = set(remaining)
            asked.extend(remaining)
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
                else:
                    failed[uid] = outcome
        for uid in wanted:
            if uid not in found and uid not in failed:
                failed[uid] = NoMatch(
                    "unmatched_user",
                    f"no {' or '.join(self._objects)} has {self._field} = {uid!r}",
                )
        for uid in dict.fromkeys(asked):  # what Salesforce answered now, found or not
            self._cache[uid] = found.get(uid) or failed[uid]
        return found, failed

    def forget(self, user_ids: Iterable[str]) -> None:
        for uid in user_ids:
            self._cache.pop(uid, None)

    def rematch(
        self, refused: Mapping[str, MatchedRecord]
    ) -> tuple[dict[str, MatchedRecord], dict[str, NoMatch]]:
        """Users whose matched record Salesforce refused as gone or converted: their entries
        are dropped and the users looked up afresh. Returns the users now matched to another
        record (write to it) and those with none now (the NoMatch names the refused record);
        a user found on the same record again is in neither (the refusal stands)."""
        self.forget(refused)
        found, failed = self.match(refused)
        moved: dict[str, MatchedRecord] = {}
        for uid, old in refused.items():
            new = found.get(uid)
            if new is None:
                miss = failed[uid]
                failed[uid] = NoMatch(
                    miss.reason,
                    f"{miss.message} (Salesforce refused the record matched before, "
                    f"{old.sobject} {old.record_id}, as deleted or converted)",
                )
            elif new.record_id != old.record_id:
                log.info(
                    "User %r: %s %s was refused as deleted or converted; now %s %s (%s)",
                    uid,
                    old.sobject,
                    old.record_id,
                    new.sobject,
                    new.record_id,
                    new.via,
                )
                moved[uid] = new
        return moved, failed

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
