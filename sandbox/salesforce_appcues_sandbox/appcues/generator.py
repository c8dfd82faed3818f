"""The deterministic seed: users and groups linked to the Salesforce seed, and an event mix.

User ids come from `common.identities` exactly as the Salesforce generator uses them: the
index-th contact (0-based) has `user_id("contact", i)` iff `has_user_id(seed, "contact", i)`,
likewise leads; `unknown_users` more users have no Salesforce record. Groups are
`account_id(i)` for each Account and `workspace_id(j)` for each Workspace__c.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..common import identities
from .models import AppcuesStore, Event, epoch_ms

_NAMESPACE = uuid.UUID("6f1d2c8e-4b1a-5e3f-9a57-0c2d3b4e5f60")

FLOWS = [  # (name, type, version)
    ("Welcome Tour", "journey", 3),
    ("New Dashboard Announcement", "journey", 1),
    ("Invite Your Team", "journey", 2),
    ("Reports Walkthrough", "journey", 4),
    ("Integrations Setup Guide", "journey", 1),
    ("Billing Page Tooltip", "journey", 2),
    ("Upgrade Prompt", "journey", 5),
    ("Mobile App Promo", "journey", 1),
]
NPS_FLOW = ("NPS Survey", "satisfaction-survey", 6)  # classic: separate score and feedback
NPS2_FLOW = ("NPS 2.0 Survey", "satisfaction-survey", 1)  # one score_and_feedback event
CHECKLISTS = {
    "Getting Started": ["Create a project", "Invite a teammate", "Connect an integration"],
    "Admin Setup": ["Configure SSO", "Set roles", "Add billing details", "Export a report"],
}
GOALS = ["Activated Account", "Invited Teammate", "Upgraded Plan"]
CLICK_TO_TRACK = [
    "Clicked Upgrade Button",
    "Opened Help Center",
    "Clicked Export CSV",
    "Started Free Trial",
    "Viewed Pricing",
]
PAGES = [
    ("/dashboard", "Dashboard"),
    ("/reports", "Reports"),
    ("/settings/team", "Team Settings"),
    ("/billing", "Billing"),
    ("/integrations", "Integrations"),
    ("/projects", "Projects"),
]
HOST = "https://app.example-product.com"
FEEDBACK = [
    "Love the new reports!",
    "Too slow when loading dashboards.",
    "Great support team, thanks.",
    "Hard to find the export button",
    "Pricing is confusing",
    "Works well for our team",
    "Please add a dark mode",
    "Solid product, a few bugs.",
]
PLANS = ["free", "starter", "pro", "enterprise"]
ROLES = ["admin", "member", "viewer", "owner"]
# Episode kinds and their weights (an episode emits one to three events).
EPISODES = [
    ("page_view", 34),
    ("click", 14),
    ("flow", 20),
    ("nps", 7),
    ("nps2", 3),
    ("checklist", 10),
    ("goal", 4),
    ("session", 8),
]


def _flow(name: str, flow_type: str, version: int) -> dict[str, Any]:
    return {
        "flowId": flow_id(name),
        "flowName": name,
        "flowType": flow_type,
        "flowVersion": version,
    }


@functools.cache
def stable_id(*parts: object) -> str:
    """A uuid5 for catalog items (flows, checklists, goals): the same in every seed."""
    return str(uuid.uuid5(_NAMESPACE, ":".join(map(str, parts))))


def flow_id(name: str) -> str:
    return stable_id("flow", name)


@dataclass
class SeedSpec:
    seed: int = 7
    contacts: int = 0
    leads: int = 0
    accounts: int = 0
    workspaces: int = 0
    unknown_users: int = 0
    events: int = 0
    start: datetime | None = None
    end: datetime | None = None

    @classmethod
    def from_json(cls, body: dict[str, Any], now: datetime) -> SeedSpec:
        def count(key: str) -> int:
            value = body.get(key, 0)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{key} must be a non-negative integer")
            return value

        def moment(key: str) -> datetime | None:
            if body.get(key) is None:
                return None
            parsed = datetime.fromisoformat(str(body[key]).replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=now.tzinfo)

        end = moment("end") or now
        start = moment("start") or end - timedelta(days=30)
        if end <= start:
            raise ValueError("end must be after start")
        return cls(
            seed=count("seed") if "seed" in body else 7,
            contacts=count("Contact"),
            leads=count("Lead"),
            accounts=count("Account"),
            workspaces=count("Workspace__c"),
            unknown_users=count("unknown_users"),
            events=count("events"),
            start=start,
            end=end,
        )


def user_ids(spec: SeedSpec) -> list[str]:
    ids = [
        identities.user_id(kind, i)
        for kind, n in (("contact", spec.contacts), ("lead", spec.leads))
        for i in range(n)
        if identities.has_user_id(spec.seed, kind, i)
    ]
    return ids + [identities.unknown_user_id(i) for i in range(spec.unknown_users)]


def group_ids(spec: SeedSpec) -> list[str]:
    return [identities.account_id(i) for i in range(spec.accounts)] + [
        identities.workspace_id(j) for j in range(spec.workspaces)
    ]


def generate(spec: SeedSpec, store: AppcuesStore, now_ms: int) -> dict[str, int]:
    """Writes the seed; running it twice with the same spec changes nothing."""
    rng = random.Random(spec.seed * 1_000_003 + 101)
    users = user_ids(spec)
    groups = group_ids(spec)
    assert spec.start is not None and spec.end is not None
    start_ms, end_ms = epoch_ms(spec.start), epoch_ms(spec.end)

    draw = rng.random  # index arithmetic on one draw: several times faster than choice()
    home = {u: groups[int(draw() * len(groups))] if groups else None for u in users}
    languages = ["en", "en", "en", "fr", "de", "es"]
    hostname = HOST.removeprefix("https://")
    profiles = [
        (
            u,
            {
                "plan": PLANS[int(draw() * len(PLANS))],
                "role": ROLES[int(draw() * len(ROLES))],
                "language": languages[int(draw() * len(languages))],
                "signed_up_at": start_ms - int(draw() * 400) * 86_400_000,
                "_lastSeenAt": end_ms - int(draw() * 30 * 86_400) * 1000,
                "_lastBrowserLanguage": "en-US",
                "_hostname": hostname,
            },
        )
        for u in users
    ]
    group_profiles = [
        (
            g,
            {
                "plan": rng.choice(PLANS),
                "seats": rng.randrange(1, 500),
                "industry": rng.choice(["SaaS", "Retail", "Finance", "Health", "Education"]),
            },
        )
        for g in groups
    ]
    store.bulk_merge_profiles("user", profiles, now_ms)
    store.bulk_merge_profiles("group", group_profiles, now_ms)
    store.add_memberships((g, u) for u, g in home.items() if g is not None)

    events = list(_events(spec, rng, users, home, start_ms, end_ms)) if users else []
    # Seeded history arrived when it happened (arrival 0 -> arrival = timestamp), so the
    # analytics delay hides only the seed's most recent events, not the whole seed.
    stored = store.add_events(events, 0)
    return {"users": len(users), "groups": len(groups), "events": stored}


def _events(
    spec: SeedSpec,
    rng: random.Random,
    users: list[str],
    home: dict[str, str | None],
    start_ms: int,
    end_ms: int,
) -> Any:
    # Event ids: uuid4-shaped, drawn from a generator keyed by the whole spec, so the same
    # spec always yields the same ids and a different spec never collides with them.
    ids = random.Random(f"{spec.seed}:{start_ms}:{end_ms}:{len(users)}:{spec.events}")
    kinds = [k for k, _ in EPISODES]
    cumulative = list(itertools.accumulate(w for _, w in EPISODES))
    span = end_ms - start_ms
    made = 0
    while made < spec.events:
        user = users[rng.randrange(len(users))]
        ts = start_ms + rng.randrange(span)
        session = f"{ts // 3_600_000:x}-{user}"  # one session per user and hour
        page, title = PAGES[rng.randrange(len(PAGES))]
        context = {"url": f"{HOST}{page}", "title": title}
        common = {"sessionId": session, "_currentPageUrl": context["url"]}
        kind = kinds[bisect.bisect(cumulative, rng.random() * cumulative[-1])]
        emitted: list[tuple[str, dict[str, Any], int]] = []  # (name, attributes, offset ms)
        if kind == "page_view":
            emitted.append(("appcues:page_view", {}, 0))
        elif kind == "session":
            emitted.append(("appcues:session_started", {}, 0))
        elif kind == "click":
            emitted.append((rng.choice(CLICK_TO_TRACK), {"element": "button"}, 0))
        elif kind == "flow":
            name, ftype, version = FLOWS[rng.randrange(len(FLOWS))]
            flow = _flow(name, ftype, version)
            emitted.append(("appcues:flow_started", flow, 0))
            ending = rng.random()
            if ending < 0.6:
                emitted.append(("appcues:flow_completed", flow, rng.randrange(5, 300) * 1000))
            elif ending < 0.9:
                emitted.append(("appcues:flow_skipped", flow, rng.randrange(2, 60) * 1000))
        elif kind in ("nps", "nps2"):
            name, ftype, version = NPS_FLOW if kind == "nps" else NPS2_FLOW
            flow = _flow(name, ftype, version)
            score = min(10, max(0, int(rng.triangular(0, 10.99, 9))))
            feedback = rng.choice(FEEDBACK) if rng.random() < 0.55 else None
            if kind == "nps":
                emitted.append(("appcues:nps_score", {**flow, "score": score}, 0))
                if feedback:
                    delay = rng.randrange(5, 120) * 1000
                    emitted.append(("appcues:nps_feedback", {**flow, "feedback": feedback}, delay))
            else:
                attrs = {**flow, "score": score, "feedback": feedback or ""}
                emitted.append(("appcues:nps_score_and_feedback", attrs, 0))
        elif kind == "checklist":
            checklist = rng.choice(sorted(CHECKLISTS))
            items = CHECKLISTS[checklist]
            index = rng.randrange(len(items))
            base = {
                "checklistId": stable_id("checklist", checklist),
                "checklistName": checklist,
                "flowType": "checklist",
            }
            item = {
                **base,
                "itemId": stable_id("checklist-item", checklist, index),
                "itemIndex": index,
                "itemLabel": items[index],
            }
            emitted.append(("appcues:checklist_item_completed", item, 0))
            if index == len(items) - 1 and rng.random() < 0.7:
                emitted.append(("appcues:checklist_completed", base, 1000))
        else:
            goal = GOALS[rng.randrange(len(GOALS))]
            attrs = {"goalId": stable_id("goal", goal), "goalName": goal, "goalVersion": 1}
            emitted.append(("appcues:goal_reached", attrs, 0))
        for name, attrs, offset in emitted:
            if made >= spec.events:
                return
            yield Event(
                user_id=user,
                name=name,
                timestamp_ms=min(ts + offset, end_ms - 1),
                attributes={**common, **attrs},
                context=context,
                group_id=home[user],
                event_id=str(uuid.UUID(int=ids.getrandbits(128), version=4)),
                source="generator",
            )
            made += 1
