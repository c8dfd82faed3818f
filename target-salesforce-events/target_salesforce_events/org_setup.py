"""Org set-up: what the run learns from the org before it writes, as an immutable plan.

One batched describe of the objects the run needs, the preflight's fit rules (a `[FAIL]`
stops the run naming the setting), the exactly-once strategy and the NPS fields of each
user object. A Lead's NPS answers that go to its converted Contact need Contact's fields
too when Contact is no user object: `plan_extra_object` adds them when first needed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from salesforce_appcues_clients.errors import SalesforceError
from salesforce_appcues_clients.salesforce import SalesforceClient

from .idempotency import StrategyChoice, choose_strategy
from .idempotency import find_field as find_field_spec
from .nps import NpsFields
from .preflight import FAIL, TEXT_TYPES, evaluate
from .settings import EventSettings

log = logging.getLogger(__name__)


class SetupError(RuntimeError):
    """The org does not fit the settings; the message says what to change."""


@dataclass(frozen=True)
class OrgPlan:
    """The describes, the exactly-once strategy (None without `sync_events`) and the NPS
    fields of each user object."""

    describes: MappingProxyType[str, Any]
    strategy: StrategyChoice | None
    nps_fields: MappingProxyType[str, NpsFields]


def plan_org(client: SalesforceClient, settings: EventSettings) -> OrgPlan:
    """One describe call (the client caches it); raises SetupError on a `[FAIL]`."""
    wanted = [*settings.user_objects, *(["Event"] if settings.sync_events else [])]
    describes = _describe(client, wanted, settings)
    failures = [f for f in evaluate(describes, settings) if f.level == FAIL]
    if failures:
        raise SetupError(
            "the Salesforce org does not fit the settings:\n"
            + "\n".join(f.line() for f in failures)
        )
    strategy = None
    if settings.sync_events:
        strategy = choose_strategy(describes["Event"], settings.event_id_field)
        log.info("Exactly-once strategy: %s (%s)", strategy.strategy.value, strategy.explanation)
    return OrgPlan(
        describes=MappingProxyType(describes),
        strategy=strategy,
        nps_fields=MappingProxyType(
            {obj: nps_fields_of(describes[obj], settings) for obj in settings.user_objects}
        ),
    )


def plan_extra_object(client: SalesforceClient, settings: EventSettings, sobject: str) -> NpsFields:
    """NPS fields of an object reached only through a converted Lead (e.g. Contact), under
    the same fit rules, except the user id field it is not searched by."""
    describe = client.describe([sobject])[sobject]
    only = replace(settings, user_objects=(sobject,), sync_events=False)
    failures = [
        f
        for f in evaluate({sobject: describe}, only)
        if f.level == FAIL and f.topic != sobject + "." + settings.user_id_field
    ]
    if failures:
        raise SetupError("\n".join(f.line() for f in failures))
    return nps_fields_of(describe, settings)


def nps_fields_of(describe: dict[str, Any], settings: EventSettings) -> NpsFields:
    """The NPS fields as the org spells them, with what their types ask of the values."""
    s = settings
    score = find_field_spec(describe, s.nps_score_field) or {}
    feedback = find_field_spec(describe, s.nps_feedback_field) or {}
    date = find_field_spec(describe, s.nps_date_field) if s.nps_date_field else None
    return NpsFields(
        score_field=str(score.get("name", s.nps_score_field)),
        feedback_field=str(feedback.get("name", s.nps_feedback_field)),
        date_field=str(date.get("name")) if date else None,
        score_as_text=score.get("type") in TEXT_TYPES,
        feedback_max=int(feedback.get("length") or 32_768),
        date_only=bool(date and date.get("type") == "date"),
    )


def _describe(
    client: SalesforceClient, wanted: list[str], settings: EventSettings
) -> dict[str, Any]:
    """One composite/batch for the objects the run needs. A converted Lead's NPS answers
    go to its Contact: when Contact is not a user object its describe rides along (the
    client caches it), unless the integration user cannot see Contact."""
    lowered = {name.lower() for name in wanted}
    converts = settings.sync_nps_fields and "lead" in lowered
    extra = ["Contact"] if converts and "contact" not in lowered else []
    try:
        try:
            return client.describe([*wanted, *extra])
        except SalesforceError:
            if not extra:
                raise
            # Contact hidden: fails later only if needed. The client cached the describes
            # that came before Contact's in the batch, so this costs no second call.
            return client.describe(wanted)
    except SalesforceError as exc:
        if exc.error_code == "NOT_FOUND":
            raise SetupError(
                f"{exc.message}: check the object names in setting user_objects"
            ) from None
        raise
