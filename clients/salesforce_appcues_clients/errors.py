"""Exceptions raised by the clients. None of them ever carries a secret or an access token."""

from __future__ import annotations

import re
from typing import Any

# Bearer tokens, Basic credentials and OAuth form values that could hide in library messages.
_SECRET_PATTERNS = [
    re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(bearer|basic)\s+[^\s'\",}]+"),
    # a credential after Bearer/Basic; needing a digit spares prose ("basic information")
    re.compile(
        r"(?i)\b(bearer|basic)\s+(?:(?=[\w.~+/=!-]*[\d=+/!])[\w.~+/=!-]{8,}|[\w.~+/=!-]{20,})"
    ),
    re.compile(
        r"(?i)((?:access_token|refresh_token|client_secret|api_secret|assertion|password|"
        r"session_id|sessionid|private_key)['\"]?\s*[:=]\s*['\"]?)[^&\s'\",}]+"
    ),
    re.compile(r"00D[A-Za-z0-9]{12,15}![A-Za-z0-9._-]+"),  # Salesforce session ids
    # presigned download URLs are bearer credentials while they live
    re.compile(r"(?i)((?:x-amz-)?(?:signature|credential|security-token)=)[^&\s'\"]+"),
]


def scrub(text: str, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """Remove known secret values and anything shaped like a token or credential from text."""
    for value in secrets:
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.lastindex else "") + "***", text)
    return text


class ClientError(Exception):
    """Base class of every error raised by salesforce_appcues_clients."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class AuthenticationError(ClientError):
    """The configured credentials were refused, or no usable flow is configured."""


class ConfigurationError(ClientError):
    """A setting is missing or invalid; the message names the setting."""


class RetriesExhaustedError(ClientError):
    """A transient failure (connection error, timeout, 5xx, 429) outlived the retry budget."""


class UncertainWriteError(ClientError):
    """A non-idempotent write (an insert) failed after it may have reached the server.

    It is not retried, because a replay could duplicate records. `results` holds the outcome of
    the chunks that completed before it; the chunk in flight must be checked by the caller.
    `unanswered`: no answer came (a timeout, a connection lost after sending), so the server
    may still be applying it and a check made at once can miss what it commits later.
    """

    def __init__(
        self, message: str, results: list[Any] | None = None, unanswered: bool = False
    ) -> None:
        super().__init__(message)
        self.results = results or []
        self.unanswered = unanswered


class SalesforceError(ClientError):
    """Salesforce rejected a request; carries its `errorCode`, message and fields."""

    def __init__(
        self,
        status: int,
        error_code: str,
        message: str,
        fields: list[str] | None = None,
    ) -> None:
        self.status = status
        self.error_code = error_code
        self.fields = list(fields or [])
        suffix = f" (fields: {', '.join(self.fields)})" if self.fields else ""
        # Status 0: stopped on our side (the quota guard) before Salesforce was asked.
        source = f"Salesforce {status}" if status else "Salesforce API quota guard:"
        super().__init__(f"{source} {error_code}: {scrub(message)}{suffix}")

    @classmethod
    def from_body(cls, status: int, body: Any, context: str = "") -> SalesforceError:
        """Build from a REST error list, an OAuth error object or plain text."""
        code, text, fields = "UNKNOWN_ERROR", "", []
        if isinstance(body, list) and body and isinstance(body[0], dict):
            first = body[0]
            code = str(first.get("errorCode") or first.get("statusCode") or code)
            text = str(first.get("message", ""))
            fields = [str(f) for f in first.get("fields") or []]
        elif isinstance(body, dict):
            code = str(
                body.get("errorCode") or body.get("error") or body.get("exceptionCode") or code
            )
            text = str(
                body.get("message")
                or body.get("error_description")
                or body.get("exceptionMessage")
                or ""
            )
        elif body:
            text = str(body)[:500]
        if context:
            text = f"{context}: {text}" if text else context
        error_cls = QuotaExceededError if code == "REQUEST_LIMIT_EXCEEDED" else cls
        if error_cls is QuotaExceededError:
            text += (
                " Salesforce refused the call because the org's API limit is used up; wait for"
                " the rolling 24-hour usage to fall, or raise the org's limit."
            )
        return error_cls(status, code, text, fields)


class QuotaExceededError(SalesforceError):
    """The quota guard stopped the run, or Salesforce answered REQUEST_LIMIT_EXCEEDED."""


class AppcuesError(ClientError):
    """Appcues answered with an error (problem-details `status`, `title`, `detail`)."""

    def __init__(self, status: int, title: str, detail: str = "") -> None:
        self.status = status
        self.title = title
        self.detail = scrub(detail)
        text = f"Appcues {status} {title}"
        if self.detail:
            text += f": {self.detail}"
        super().__init__(text)
