"""Retry timing, failure triage and the process-wide rate limiter (no network)."""

import logging
import threading

import requests

from salesforce_appcues_clients.appcues import RateLimiter
from salesforce_appcues_clients.transport import (
    Backoff,
    RetryPolicy,
    retry_after_seconds,
    sent_nothing,
)

log = logging.getLogger(__name__)


def test_backoff_grows_with_jitter_and_is_bounded():
    policy = RetryPolicy(max_retries=4, max_seconds=10, base_delay=1, max_delay=3)
    for retry, ceiling in [(0, 1), (1, 2), (2, 3), (3, 3)]:
        wait = policy.delay(retry, None, 0)
        assert wait is not None and ceiling / 2 <= wait <= ceiling
    assert policy.delay(4, None, 0) is None  # attempts bound
    assert policy.delay(0, None, 9.9) is None or policy.delay(0, None, 9.9) <= 0.1
    assert policy.delay(1, 7, 0) == 7  # Retry-After honoured
    assert policy.delay(1, 11, 0) is None  # ... unless it breaks the time budget


def test_appcues_style_backoff_without_jitter():
    policy = RetryPolicy(max_retries=10, max_seconds=1000, base_delay=1, max_delay=60, jitter=False)
    assert [policy.delay(r, None, 0) for r in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]


def test_backoff_counts_retries_and_time_waited(caplog):
    backoff = Backoff(RetryPolicy(max_retries=2, max_seconds=1, base_delay=0.01), log)
    with caplog.at_level(logging.WARNING):
        for why in ("first", "second"):
            delay = backoff.next_delay()
            assert delay is not None
            backoff.pause(delay, why)
    assert backoff.retries == 2 and backoff.attempts == 3
    assert 0.01 <= backoff.waited <= 0.03
    assert backoff.next_delay() is None  # max_retries reached
    assert [r.getMessage().split(";")[0] for r in caplog.records] == ["first", "second"]
    # Retry-After is honoured, but not beyond the time budget.
    fresh = Backoff(RetryPolicy(max_seconds=1), log)
    assert fresh.next_delay(0.5) == 0.5
    assert fresh.next_delay(5) is None


def test_retry_after_forms():
    assert retry_after_seconds("2") == 2
    assert retry_after_seconds("1.5") == 1.5
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0
    assert retry_after_seconds("garbage") is None


def test_refused_connection_counts_as_nothing_sent():
    with requests.Session() as session:
        try:
            session.get("http://127.0.0.1:9/", timeout=2)
        except requests.ConnectionError as exc:
            assert sent_nothing(exc)
        else:
            raise AssertionError("port 9 answered")


def test_limiter_never_exceeds_its_rate_across_threads():
    limiter = RateLimiter(rate=200, capacity=1)

    def work():
        for _ in range(25):
            limiter.acquire()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert limiter.granted == 100
    # a token bucket grants at most capacity + rate * window in any window
    assert limiter.max_in_window(0.1) <= 1 + 200 * 0.1


def test_shared_limiter_is_one_per_account_and_rate():
    a = RateLimiter.shared("https://x.test", "acct-shared-1", 50)
    b = RateLimiter.shared("https://x.test", "acct-shared-1", 50)
    c = RateLimiter.shared("https://x.test", "acct-shared-2", 50)
    d = RateLimiter.shared("https://x.test", "acct-shared-1", 20)
    assert a is b and a is not c and a is not d
    assert (a.rate, d.rate) == (50, 20)
