"""The identity of an Appcues event, shared by every path an event takes to Salesforce.

The tap (5-minute poll of the analytics API) and the webhook receiver (real time) must give
the same event the same id, so the Salesforce Event written by one path is found by the
other. Both payloads carry user, name, timestamp and attributes; the id is derived from
those, never from a path-specific id.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

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
