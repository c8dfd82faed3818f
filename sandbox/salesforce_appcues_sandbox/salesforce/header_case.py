"""Response header names in the casing Salesforce sends over HTTP/1.1 (`Content-Type`,
`Sforce-Locator`, ...), where Starlette would send them lower-cased.

Header names are case-insensitive (RFC 9110), but clients that copy `response.headers` into a
plain dict and look a name up by one spelling are not: Airbyte's source-salesforce reads
`dict(headers).get("content-type")` on Bulk 2.0 results and fails on a lower-case
`content-type: text/csv` (see docs/sandbox.md, "Header casing").
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Names whose casing is not plain Title-Case, as Salesforce's documentation spells them.
_SPELLED = {
    b"sforce-numberofrecords": b"Sforce-NumberOfRecords",
    b"www-authenticate": b"WWW-Authenticate",
}


def canonical(name: bytes) -> bytes:
    """`content-type` -> `Content-Type`; names in _SPELLED as documented."""
    lower = name.lower()
    return _SPELLED.get(lower) or b"-".join(part.capitalize() for part in lower.split(b"-"))


class SalesforceHeaderCase:
    """ASGI middleware: re-spell every response header name of the wrapped app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def respelled(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": [(canonical(k), v) for k, v in message.get("headers", [])],
                }
            await send(message)

        await self.app(scope, receive, respelled)
