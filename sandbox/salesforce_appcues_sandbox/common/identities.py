"""Product ids shared by both generators, so one seed links Salesforce records to Appcues users.

The Salesforce generator writes these into Product_User_Id__c / Product_Account_Id__c /
the custom account object's id field; the Appcues generator derives the same ids from the
same counts and seed, plus a share of users Salesforce does not know.
"""

from __future__ import annotations

import hashlib

USER_KINDS = ("contact", "lead")


def _unit(seed: int, *parts: object) -> float:
    """A deterministic number in [0, 1) for (seed, parts): cheap and stable across runs."""
    digest = hashlib.blake2b(f"{seed}:{':'.join(map(str, parts))}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big") / 2**64


def user_id(kind: str, index: int) -> str:
    """The id the product passes to Appcues.identify() for the index-th contact or lead."""
    if kind not in USER_KINDS:
        raise ValueError(f"kind must be one of {USER_KINDS}")
    return f"usr_{kind[0]}{index:07d}"


def has_user_id(seed: int, kind: str, index: int, *, missing_share: float = 0.08) -> bool:
    """Whether that record carries a product user id (a share of CRM records never signed up)."""
    return _unit(seed, "has-id", kind, index) >= missing_share


def unknown_user_id(index: int) -> str:
    """Appcues users with no Salesforce record (anonymous trials, deleted contacts, ...)."""
    return f"usr_x{index:07d}"


def account_id(index: int) -> str:
    """The id the product passes to Appcues.group() for the index-th Account."""
    return f"acct_{index:06d}"


def workspace_id(index: int) -> str:
    """The group id of the index-th record of the custom account object Workspace__c."""
    return f"ws_{index:06d}"


def unit(seed: int, *parts: object) -> float:
    """Public form of the deterministic draw, for generators that need more choices."""
    return _unit(seed, *parts)


# What `--seed demo` loads into both services (kept here so the two stay linked).
DEMO_SEED: dict[str, int] = {
    "seed": 7,
    "Account": 400,
    "Workspace__c": 100,
    "Contact": 3000,
    "Lead": 1000,
    "unknown_users": 200,
    "events": 20000,
}
