"""The retry loop both clients share (`transport.send_with_retries`), and its one parameter
that differs between them: what a write (a request not safe to replay) is retried after.

No network: each attempt hands back the next of a list of answers or connection failures.
The clients' own behaviour over the wire is tested against the sandbox
(test_salesforce_sandbox.py, test_appcues_sandbox.py).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable

import pytest
import requests

from salesforce_appcues_clients.errors import (
    ConfigurationError,
    RetriesExhaustedError,
    UncertainWriteError,
)
from salesforce_appcues_clients.transport import (
    APPCUES_WRITES,
    SALESFORCE_WRITES,
    Backoff,
    RetryPolicy,
    WriteRetry,
    send_with_retries,
)

log = logging.getLogger(__name__)
RESET = requests.ConnectionError("Connection reset by peer")  # after the request left
REFUSED = requests.exceptions.ConnectTimeout("connect timeout")  # nothing left this host


def answer(status: int, body: bytes = b"", **headers: str) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body
    response.raw = io.BytesIO(b"")  # closed by the loop before a retry
    response.headers.update(headers)
    return response


class Script:
    """The attempts of one request: each call takes the next answer or raises the failure."""

    def __init__(self, *steps: int | requests.Response | Exception) -> None:
        self.steps = list(steps)
        self.attempts = 0

    def __call__(self) -> requests.Response:
        step = self.steps[self.attempts]
        self.attempts += 1
        if isinstance(step, Exception):
            raise step
        return step if isinstance(step, requests.Response) else answer(step)


def run(
    script: Script,
    writes: WriteRetry,
    replay_safe: bool,
    max_retries: int = 3,
    on_failure: Callable[[bool], None] | None = None,
    on_answer: Callable[[requests.Response], bool] | None = None,
) -> requests.Response:
    policy = RetryPolicy(max_retries=max_retries, max_seconds=10, base_delay=0, jitter=False)
    return send_with_retries(
        script,
        service="Service",
        what="POST /things",
        replay_safe=replay_safe,
        writes=writes,
        backoff=Backoff(policy, log),
        tls_setting="ca_bundle",
        exhausted=lambda response, attempts: RetriesExhaustedError(
            f"{response.status_code} after {attempts} attempts"
        ),
        on_failure=on_failure,
        on_answer=on_answer,
    )


def test_the_two_policies_differ_only_on_5xx_other_than_503():
    for status in (429, 503):
        assert SALESFORCE_WRITES.allows(status) and APPCUES_WRITES.allows(status)
    for status in (408, 500, 502, 504):
        assert not SALESFORCE_WRITES.allows(status)
        assert APPCUES_WRITES.allows(status)


SALESFORCE_ERROR = b'[{"message": "An unexpected error occurred.", "errorCode": "UNKNOWN"}]'


@pytest.mark.parametrize(
    ("status", "body", "unanswered"),
    [
        (500, SALESFORCE_ERROR, False),  # Salesforce's own error: it is done with the request
        (502, SALESFORCE_ERROR, True),  # a gateway stopped waiting; Salesforce may still apply it
        (504, SALESFORCE_ERROR, True),
        (504, b"<html><body>Gateway Timeout</body></html>", True),
        (500, b"<html><body>Internal Server Error</body></html>", True),  # written by a proxy
        (500, b"", True),
        (500, b'{"errorCode": "UNKNOWN_EXCEPTION"}', True),  # not Salesforce's list
    ],
)
def test_salesforce_policy_does_not_resend_a_write_after_a_5xx(status, body, unanswered):
    script = Script(answer(status, body), 200)
    with pytest.raises(UncertainWriteError, match=f"answered {status} to POST /things") as err:
        run(script, SALESFORCE_WRITES, replay_safe=False)
    assert script.attempts == 1
    assert err.value.unanswered is unanswered


@pytest.mark.parametrize("status", [429, 503])
def test_salesforce_policy_resends_a_write_salesforce_did_not_process(status):
    script = Script(status, 200)
    assert run(script, SALESFORCE_WRITES, replay_safe=False).status_code == 200
    assert script.attempts == 2


def test_salesforce_policy_resends_a_replay_safe_request_after_a_5xx():
    script = Script(500, 502, 200)
    assert run(script, SALESFORCE_WRITES, replay_safe=True).status_code == 200
    assert script.attempts == 3


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_appcues_policy_resends_a_write_after_any_transient_answer(status):
    script = Script(status, 200)
    assert run(script, APPCUES_WRITES, replay_safe=False).status_code == 200
    assert script.attempts == 2


@pytest.mark.parametrize("writes", [SALESFORCE_WRITES, APPCUES_WRITES])
def test_a_write_cut_after_sending_is_never_resent_under_either_policy(writes):
    script = Script(RESET, 200)
    with pytest.raises(UncertainWriteError, match="ConnectionError on POST /things") as err:
        run(script, writes, replay_safe=False)
    assert script.attempts == 1
    assert err.value.unanswered  # no answer: the server may still be applying it


@pytest.mark.parametrize("writes", [SALESFORCE_WRITES, APPCUES_WRITES])
def test_a_write_that_never_left_is_resent_under_either_policy(writes):
    seen: list[bool] = []
    script = Script(REFUSED, 200)
    assert run(script, writes, replay_safe=False, on_failure=seen.append).status_code == 200
    assert script.attempts == 2 and seen == [True]


def test_a_read_is_resent_after_a_reset_and_the_failure_is_reported():
    seen: list[bool] = []
    script = Script(RESET, 200)
    assert run(script, SALESFORCE_WRITES, replay_safe=True, on_failure=seen.append).ok
    assert seen == [False]  # it may have reached the server (Salesforce counts the call)


def test_the_retry_budget_bounds_answers_and_failures():
    answers = Script(503, 503, 503)
    with pytest.raises(RetriesExhaustedError, match="503 after 3 attempts"):
        run(answers, APPCUES_WRITES, replay_safe=True, max_retries=2)
    failures = Script(RESET, RESET, RESET)
    with pytest.raises(RetriesExhaustedError, match="gave up after 3 attempts"):
        run(failures, APPCUES_WRITES, replay_safe=True, max_retries=2)
    assert (answers.attempts, failures.attempts) == (3, 3)


def test_an_error_answer_that_is_not_transient_is_returned_for_the_caller():
    script = Script(400, 200)
    assert run(script, APPCUES_WRITES, replay_safe=False).status_code == 400
    assert script.attempts == 1


def test_on_answer_sees_every_answer_and_may_replay_at_once():
    seen: list[int] = []

    def refresh_once(response: requests.Response) -> bool:
        seen.append(response.status_code)
        return response.status_code == 401 and seen.count(401) == 1

    script = Script(401, 503, 200)
    assert run(script, SALESFORCE_WRITES, replay_safe=False, on_answer=refresh_once).ok
    assert seen == [401, 503, 200]


def test_a_failed_certificate_check_is_a_configuration_error_not_retried():
    script = Script(
        requests.exceptions.SSLError("certificate verify failed: CERTIFICATE_VERIFY_FAILED")
    )
    with pytest.raises(ConfigurationError, match="ca_bundle"):
        run(script, APPCUES_WRITES, replay_safe=True)
    assert script.attempts == 1
