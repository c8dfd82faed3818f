"""Which Lead or Contact each event goes to (`matching.UserMatcher`); an event whose user
matches no record is dead-lettered with the matcher's reason. `StaleMatches`: writes refused
because a matched record is gone get one fresh match in the same batch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .dead_lettering import DeadLettering
from .events import AppcuesEvent
from .matching import STALE_REFERENCE_CODES, MatchedRecord, UserMatcher
from .summary import RunSummary


def match_recipients(
    matcher: UserMatcher,
    events: list[AppcuesEvent],
    stream: str,
    letters: DeadLettering,
    summary: RunSummary,
) -> list[tuple[AppcuesEvent, MatchedRecord]]:
    """The events with their records, in input order."""
    matched, unmatched = matcher.match(e.user_id for e in events)
    deliverable: list[tuple[AppcuesEvent, MatchedRecord]] = []
    for event in events:
        target = matched.get(event.user_id)
        if target is None:
            miss = unmatched[event.user_id]
            summary.skipped_unmatched += 1
            letters.add(miss.reason, miss.message, event, stream=stream)
        else:
            deliverable.append((event, target))
    return deliverable


class StaleMatches:
    """A batch's writes refused because the matched record was deleted or converted since it
    was matched (and cached): the users get one fresh match after the batch's writes, and
    the refused parts are written again to the record found now. Refusals of that second
    write are dead-lettered (a stale-match step of its own is never given to it)."""

    def __init__(self) -> None:
        self._held: list[tuple[str, AppcuesEvent, MatchedRecord, dict[str, Any]]] = []

    def hold(
        self, part: str, event: AppcuesEvent, target: MatchedRecord, error: Mapping[str, Any]
    ) -> bool:
        """Keeps a refusal that names the record as gone; False: dead-letter it now."""
        if str(error.get("statusCode")) not in STALE_REFERENCE_CODES:
            return False
        self._held.append((part, event, target, dict(error)))
        return True

    def rematch(
        self, matcher: UserMatcher, stream: str, letters: DeadLettering, summary: RunSummary
    ) -> dict[str, list[tuple[AppcuesEvent, MatchedRecord]]]:
        """Part -> events to write again, with the record their user is matched to now. The
        others are dead-lettered: with the fresh lookup's reason when no record is left, with
        Salesforce's refusal when the same record is found again."""
        held, self._held = self._held, []
        retry: dict[str, list[tuple[AppcuesEvent, MatchedRecord]]] = {}
        if not held:
            return retry
        moved, gone = matcher.rematch({event.user_id: target for _, event, target, _ in held})
        seen: set[tuple[str, str]] = set()
        unmatched: set[str] = set()
        for part, event, target, error in held:
            if (part, event.event_id) in seen:
                continue  # one NPS event may carry two refused answers
            seen.add((part, event.event_id))
            if event.user_id in moved:
                retry.setdefault(part, []).append((event, moved[event.user_id]))
            elif event.user_id in gone:
                miss = gone[event.user_id]
                if event.event_id not in unmatched:
                    unmatched.add(event.event_id)
                    summary.skipped_unmatched += 1
                letters.add(miss.reason, miss.message, event, part=part, stream=stream)
            else:
                letters.add(
                    "salesforce_rejected",
                    f"{error.get('message', '')} ({target.sobject} {target.record_id}, "
                    "found again by a fresh lookup)",
                    event,
                    part=part,
                    status=str(error.get("statusCode")),
                    fields=[str(f) for f in error.get("fields") or []],
                    stream=stream,
                )
        return retry
