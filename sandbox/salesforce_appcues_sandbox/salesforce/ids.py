"""Salesforce record ids: 15 case-sensitive characters plus the 3-character checksum suffix."""

from __future__ import annotations

import re

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID_RE = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")
# Between the key prefix and the counter: a fixed "pod" marker, as real ids carry one.
_POD = "5g"
_COUNTER_WIDTH = 10


def checksum(id15: str) -> str:
    """The suffix that makes a 15-char id case-insensitively unique."""
    out = ""
    for chunk in range(3):
        bits = 0
        for i, ch in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << i
        out += _SUFFIX[bits]
    return out


def make_id(prefix: str, counter: int) -> str:
    """The 18-char id of the counter-th record with this key prefix; sorts by counter."""
    digits = ""
    n = counter
    while n:
        n, r = divmod(n, 62)
        digits = _BASE62[r] + digits
    body = prefix + _POD + digits.rjust(_COUNTER_WIDTH, "0")
    return body + checksum(body)


def is_well_formed(value: str) -> bool:
    if not _ID_RE.match(value):
        return False
    return len(value) == 15 or checksum(value[:15]) == value[15:].upper()


def to18(value: str) -> str:
    """The 18-char form of a well-formed 15- or 18-char id."""
    return value[:15] + checksum(value[:15])
