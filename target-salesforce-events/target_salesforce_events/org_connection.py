"""The run's connection to the org: its client, logged in and planned (`org_setup`), with
what writes through it: the user matcher, the exactly-once Event writer and Bulk 2.0 ingest.

Made on the first batch that needs Salesforce, never before: an idle run costs no call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from salesforce_appcues_clients.bulk_ingest import BulkIngest
from salesforce_appcues_clients.salesforce import SalesforceClient

from .confirmations import RunLedger
from .idempotency import EventWriter, Strategy
from .matching import DEFAULT_MAX_AGE_SECONDS, UserMatcher
from .org_setup import OrgPlan, plan_org
from .settings import EventSettings
from .summary import RunSummary

ClientFactory = Callable[[Mapping[str, Any]], SalesforceClient]


@dataclass(frozen=True)
class OrgConnection:
    client: SalesforceClient
    plan: OrgPlan
    matcher: UserMatcher
    bulk: BulkIngest  # no call until a job is needed
    writer: EventWriter | None  # None without `sync_events`


def connect(
    config: Mapping[str, Any],
    settings: EventSettings,
    client_factory: ClientFactory,
    ledger: RunLedger,
    summary: RunSummary,
    match_max_age_seconds: float | None = DEFAULT_MAX_AGE_SECONDS,
) -> OrgConnection:
    """Logs in and sets up; a set-up that fails closes its client (its calls counted), so
    the next batch starts afresh."""
    client = client_factory(config)
    try:
        plan = plan_org(client, settings)
        bulk = BulkIngest(client)
        writer = None
        if plan.strategy is not None:
            # The journal is read whatever api_type is now: a job an earlier run left open
            # is settled before anything is sent, even if the setting changed since.
            writer = EventWriter(
                client,
                plan.strategy,
                ledger.open() if plan.strategy.strategy is Strategy.LEDGER else None,
                bulk=bulk,
                journal=ledger.open(),
                use_bulk=settings.uses_bulk,
            )
        matcher = UserMatcher(
            client,
            settings.user_objects,
            settings.user_id_field,
            dict(plan.describes),
            max_age_seconds=match_max_age_seconds,
        )
    except BaseException:
        summary.api_calls = client.calls_made
        client.close()
        raise
    return OrgConnection(client, plan, matcher, bulk, writer)
