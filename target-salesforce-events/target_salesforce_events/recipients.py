"""Which Lead or Contact each event goes to (`matching.UserMatcher`); an event whose user
matches no record is dead-lettered with the matcher's reason."""

from __future__ import annotations

from .dead_lettering import DeadLettering
from .events import AppcuesEvent
from .matching import MatchedRecord, UserMatcher
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
