"""The tap-events contract: which Appcues events the integration moves, and their identity.

The tap reads the default event names and the events target writes them, so both take them
from here. The tap (5-minute poll of the analytics API) and the webhook receiver (real time)
must give the same event the same id, so the Salesforce Event written by one path is found by
the other. Both payloads carry user, name, timestamp and attributes; the id is derived from
those, never from a path-specific id.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

# Appcues' own events carry this prefix; any other name is a custom (click-to-track or
# `Appcues.track()`) event.
APPCUES_EVENT_PREFIX = "appcues:"

NPS_SCORE = "appcues:nps_score"
NPS_FEEDBACK = "appcues:nps_feedback"
# NPS 2.0's combined event, which replaces the score/feedback pair on newer surveys (without
# it those users would get no Event and no NPS fields).
NPS_SCORE_AND_FEEDBACK = "appcues:nps_score_and_feedback"
NPS_EVENTS = frozenset({NPS_SCORE, NPS_FEEDBACK, NPS_SCORE_AND_FEEDBACK})

# The integration's (Salesforce-facing) events: the default of the tap's
# `appcues_event_names` and of the events target's `event_names`.
DEFAULT_EVENT_NAMES = (
    NPS_SCORE,
    NPS_FEEDBACK,
    NPS_SCORE_AND_FEEDBACK,
    "appcues:flow_completed",
    "appcues:checklist_item_completed",
    "appcues:checklist_completed",
    "appcues:goal_reached",
)

# The id namespace: uuid5(namespace, canonical event) is the same on every read of an event.
EVENT_ID_NAMESPACE = uuid.UUID("6f0f7a52-5d1e-4c8e-9a43-0b7c2f3d9e11")


def event_id(user_id: str | None, name: str, timestamp: str, attributes: Mapping[str, Any]) -> str:
    """uuid5 of the event's identity: user, name, canonical timestamp
    (`YYYY-MM-DDTHH:MM:SS.mmmZ`) and attributes."""
    canonical = json.dumps(
        [user_id, name, timestamp, attributes],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, canonical))


def record_fields(
    source: Mapping[str, Any], timestamp: Any, *, url_keys: tuple[str, ...] = ("url",)
) -> dict[str, Any]:
    """An `appcues_events` record without its id, read the same way from an analytics row
    (the tap) and a webhook payload (the receiver): name, the given timestamp, user and group
    ids as text, attributes, and context {url, title}. Attributes and context may come as
    objects or as JSON text (anything else is {}); the url falls back to the source's own
    `url_keys`, the title to the identity's `_currentPageTitle`."""
    attributes = as_object(source.get("attributes"))
    context = as_object(source.get("context"))
    identity = as_object(attributes.get("_identity"))
    fallback_url = (text_or_none(source.get(key)) for key in url_keys)
    return {
        "name": str(source.get("name") or ""),
        "timestamp": timestamp,
        "user_id": text_or_none(source.get("user_id")),
        "group_id": text_or_none(source.get("group_id")),
        "attributes": attributes,
        "context": {
            "url": text_or_none(context.get("url")) or next(filter(None, fallback_url), None),
            "title": (
                text_or_none(context.get("title"))
                or text_or_none(identity.get("_currentPageTitle"))
            ),
        },
    }


def as_object(value: Any) -> dict[str, Any]:
    """An object, or JSON text of one, as a dict; anything else -> {}."""
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return dict(value) if isinstance(value, Mapping) else {}


def text_or_none(value: Any) -> str | None:
    """Text as is, other values as their text; None and "" -> None."""
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)
