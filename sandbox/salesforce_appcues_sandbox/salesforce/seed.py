"""Deterministic org data: accounts, workspaces, contacts and leads linked to product ids.

Linking contract (shared with the Appcues generator through common/identities.py):
contact i gets Product_User_Id__c = user_id("contact", i) iff has_user_id(seed, "contact", i),
leads likewise with "lead"; Account k gets Product_Account_Id__c = account_id(k); Workspace__c
w gets Workspace_Id__c = workspace_id(w). Values that link nothing come from a seeded RNG.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from ..common import identities
from .models import Org, SalesforceError, stamp
from .schema import ObjectDef

SPAN = timedelta(days=30)  # seeded SystemModstamps fall within the last 30 days
MAX_GROUP = 40  # records sharing one SystemModstamp: 1..MAX_GROUP
CONVERTED_SHARE = 0.1

_FIRST = [
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Barbara",
    "Ken",
    "Margaret",
    "Dennis",
    "Frances",
    "Edsger",
    "Radia",
    "Guido",
    "Anita",
    "Tim",
    "Sophie",
    "Niklaus",
    "Hedy",
    "John",
    "Katherine",
    "Donald",
    "Shafi",
    "Leslie",
    "Joan",
    "Brian",
    "Lynn",
    "Bjarne",
    "Mary",
    "Yukihiro",
]
_LAST = [
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Liskov",
    "Thompson",
    "Hamilton",
    "Ritchie",
    "Allen",
    "Dijkstra",
    "Perlman",
    "Rossum",
    "Borg",
    "Berners",
    "Wilson",
    "Wirth",
    "Lamarr",
    "McCarthy",
    "Johnson",
    "Knuth",
    "Goldwasser",
    "Lamport",
    "Clarke",
    "Kernighan",
    "Conway",
    "Stroustrup",
    "Jackson",
    "Matsumoto",
]
_COMPANY = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Vandelay",
    "Stark",
    "Wayne",
    "Wonka",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Gringotts",
    "Monarch",
    "Aperture",
    "Oscorp",
    "Massive",
    "Dynamic",
    "Pied",
    "Piper",
]
_SUFFIX = ("Inc", "LLC", "Ltd", "GmbH", "Corp", "Group")
_CITIES = (
    ("Berlin", "BE", "Germany"),
    ("Lyon", "ARA", "France"),
    ("Austin", "TX", "United States"),
    ("Toronto", "ON", "Canada"),
    ("Osaka", "27", "Japan"),
    ("Leeds", "ENG", "United Kingdom"),
)
_ORDER = ("Account", "Workspace__c", "Contact", "Lead")


def seed_org(org: Org, counts: dict[str, int], seed: int = 7) -> dict[str, int]:
    """Insert `counts` records per object (an empty org is expected); returns what was made."""
    for name in counts:
        obj = org.schema.get(name)
        if obj is None:
            raise SalesforceError(400, "INVALID_TYPE", f"sObject type '{name}' is not supported.")
        if counts[name] and org.count(obj.name):
            raise SalesforceError(
                409, "SEED_CONFLICT", f"{obj.name} already has records; reset the org first"
            )
    now = org.clock.now().replace(microsecond=0)
    made: dict[str, int] = {}
    account_ids: list[str] = []
    contact_ids: list[str] = []
    contact_accounts: list[str | None] = []
    wanted = {org.schema.get(k).name: v for k, v in counts.items()}  # type: ignore[union-attr]
    for name in _ORDER:
        n = wanted.get(name, 0)
        obj = org.schema.get(name)
        if not n or obj is None:
            continue
        rng = random.Random(f"{seed}:{name}")
        stamps = _stamps(rng, n, now)
        new_ids = org.allocate_ids(obj.key_prefix, n)
        if name == "Account":
            rows = [_account(k, rng) for k in range(n)]
            account_ids = new_ids
        elif name == "Workspace__c":
            rows = [_workspace(w, rng, account_ids) for w in range(n)]
        elif name == "Contact":
            rows = [_contact(i, seed, rng, account_ids) for i in range(n)]
            contact_ids = new_ids
            contact_accounts = [r.get("AccountId") for r in rows]
        else:
            rows = [_lead(j, seed, rng, contact_ids, contact_accounts, stamps[j]) for j in range(n)]
        _finish(org, obj, rows, new_ids, stamps, rng)
        made[name] = org.insert_rows(obj, rows)
    for name, n in wanted.items():
        if name not in _ORDER and n:
            raise SalesforceError(400, "INVALID_TYPE", f"the seed generator does not make {name}")
    return made


def _stamps(rng: random.Random, n: int, now: datetime) -> list[str]:
    """SystemModstamps in ascending groups of 1..MAX_GROUP records sharing one second."""
    groups: list[int] = []
    total = 0
    while total < n:
        groups.append(rng.randint(1, MAX_GROUP))
        total += groups[-1]
    start = now - SPAN
    step = SPAN / max(1, len(groups))
    out: list[str] = []
    for g, size in enumerate(groups):
        moment = min(start + step * g, now - timedelta(seconds=1))
        out.extend([stamp(moment)] * size)
    return out[:n]


def _finish(
    org: Org,
    obj: ObjectDef,
    rows: list[dict[str, Any]],
    new_ids: list[str],
    stamps: list[str],
    rng: random.Random,
) -> None:
    owner = org.user_id
    has_owner = obj.field("OwnerId") is not None
    for row, rid, modstamp in zip(rows, new_ids, stamps, strict=True):
        created = datetime.fromisoformat(modstamp.replace("Z", "+00:00")) - timedelta(
            days=rng.randint(0, 60)
        )
        row.update(
            Id=rid,
            IsDeleted=0,
            CreatedDate=stamp(created),
            CreatedById=owner,
            LastModifiedDate=modstamp,
            LastModifiedById=owner,
            SystemModstamp=modstamp,
        )
        if has_owner:
            row["OwnerId"] = owner


def _account(k: int, rng: random.Random) -> dict[str, Any]:
    city, state, country = rng.choice(_CITIES)
    name = f"{rng.choice(_COMPANY)} {rng.choice(_SUFFIX)} {k}"
    return {
        "Name": name,
        "Type": rng.choice(("Prospect", "Customer - Direct", "Customer - Channel", "Partner")),
        "Industry": rng.choice(("Banking", "Education", "Healthcare", "Retail", "Technology")),
        "Website": f"https://www.{name.split()[0].lower()}{k}.example.com",
        "NumberOfEmployees": rng.randint(1, 5000),
        "BillingStreet": f"{rng.randint(1, 999)} Main Street",
        "BillingCity": city,
        "BillingState": state,
        "BillingPostalCode": f"{rng.randint(10000, 99999)}",
        "BillingCountry": country,
        "Product_Account_Id__c": identities.account_id(k),
    }


def _workspace(w: int, rng: random.Random, account_ids: list[str]) -> dict[str, Any]:
    return {
        "Name": f"Workspace {w}",
        "Workspace_Id__c": identities.workspace_id(w),
        "Account__c": account_ids[w % len(account_ids)] if account_ids else None,
        "Plan__c": rng.choice(("Free", "Team", "Business")),
        "Seats__c": float(rng.randint(1, 200)),
    }


def _person(i: int, rng: random.Random) -> tuple[str, str, str]:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    return first, last, f"{first}.{last}.{i}@example.com".lower()


def _contact(i: int, seed: int, rng: random.Random, account_ids: list[str]) -> dict[str, Any]:
    first, last, email = _person(i, rng)
    linked = identities.has_user_id(seed, "contact", i)
    number = float(i + 1) if linked else None
    return {
        "AccountId": account_ids[rng.randrange(len(account_ids))] if account_ids else None,
        "FirstName": first,
        "LastName": last,
        "Name": f"{first} {last}",
        "Email": email,
        "Title": rng.choice(("CEO", "CTO", "Product Manager", "Engineer", "Designer", None)),
        "LeadSource": rng.choice(("Web", "Partner Referral", "Other")),
        "MailingCity": rng.choice(_CITIES)[0],
        "Product_User_Id__c": identities.user_id("contact", i) if linked else None,
        "Product_User_Number__c": number,
        "Product_User_Id_Text__c": str(int(number)) if number is not None else None,
    }


def _lead(
    j: int,
    seed: int,
    rng: random.Random,
    contact_ids: list[str],
    contact_accounts: list[str | None],
    modstamp: str,
) -> dict[str, Any]:
    first, last, email = _person(100_000_000 + j, rng)
    linked = identities.has_user_id(seed, "lead", j)
    number = float(j + 1) if linked else None
    row: dict[str, Any] = {
        "FirstName": first,
        "LastName": last,
        "Name": f"{first} {last}",
        "Company": f"{rng.choice(_COMPANY)} {rng.choice(_SUFFIX)}",
        "Email": email,
        "Status": rng.choice(("Open - Not Contacted", "Working - Contacted")),
        "LeadSource": rng.choice(("Web", "Phone Inquiry", "Purchased List")),
        "City": rng.choice(_CITIES)[0],
        "IsConverted": 0,
        "Product_User_Id__c": identities.user_id("lead", j) if linked else None,
        "Product_User_Number__c": number,
        "Product_User_Id_Text__c": str(int(number)) if number is not None else None,
    }
    if contact_ids and rng.random() < CONVERTED_SHARE:
        c = rng.randrange(len(contact_ids))
        row.update(
            IsConverted=1,
            Status="Closed - Converted",
            ConvertedDate=modstamp[:10],
            ConvertedContactId=contact_ids[c],
            ConvertedAccountId=contact_accounts[c],
        )
    return row
