"""Auth, problem-details errors, rate limit headers and 429s, faults, stats."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import requests


def _problem(response, status):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] is True
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body


def test_missing_credentials_answer_401(ac):
    response = ac.anon.get(ac.url("users/u1/profile"))
    body = _problem(response, 401)
    assert body["title"] == "Unauthorized"
    assert "X-RateLimit-Limit" not in response.headers


def test_wrong_secret_answers_401(ac):
    response = ac.anon.get(ac.url("users/u1/profile"), auth=(ac.conn["api_key"], "wrong"))
    _problem(response, 401)
    bearer = {"Authorization": f"Bearer {ac.conn['api_secret']}"}
    _problem(ac.anon.get(ac.url("users/u1/profile"), headers=bearer), 401)


def test_unknown_account_and_route_answer_404(ac):
    other = ac.conn["base_url"] + "/v2/accounts/000000/users/u1/profile"
    body = _problem(ac.api.get(other), 404)
    assert "account" in body["detail"]
    body = _problem(ac.api.get(ac.url("no/such/thing")), 404)
    assert body["title"] == "Not Found"
    _problem(ac.api.put(ac.url("jobs")), 405)


def test_every_api_answer_carries_rate_limit_headers(ac):
    ac.control("POST", "reset")  # back to the default limit
    response = ac.api.get(ac.url("jobs"))
    assert response.status_code == 200
    assert response.headers["X-RateLimit-Limit"] == "60"
    remaining = int(response.headers["X-RateLimit-Remaining"])
    assert 0 <= remaining < 60
    assert int(response.headers["X-RateLimit-Reset"]) > 1_700_000_000
    missing = ac.api.get(ac.url("users/nobody/profile"))
    assert missing.status_code == 404
    assert "X-RateLimit-Remaining" in missing.headers


def test_burst_above_the_limit_gets_429_with_retry_after(ac):
    ac.control("POST", "settings", json={"rate_limit_per_second": 3})
    local = threading.local()
    sessions = []

    def call(_):
        if not hasattr(local, "session"):
            local.session = requests.Session()
            local.session.trust_env = False
            local.session.verify = ac.ca
            local.session.auth = (ac.conn["api_key"], ac.conn["api_secret"])
            sessions.append(local.session)
        return local.session.get(ac.url("jobs"))

    # A parallel burst lands many calls in the same one-second window, however slow the box.
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(call, range(30)))
    for session in sessions:
        session.close()
    limited = [r for r in answers if r.status_code == 429]
    assert limited, "a burst of 30 calls against a limit of 3/s must see 429s"
    assert all(r.status_code in (200, 429) for r in answers)
    assert len(limited) <= 27
    for response in limited:
        body = _problem(response, 429)
        assert body["title"] == "Too Many Requests"
        assert int(response.headers["Retry-After"]) >= 1
        assert response.headers["X-RateLimit-Remaining"] == "0"
        assert response.headers["X-RateLimit-Limit"] == "3"
    stats = ac.stats()
    assert stats["rate_limited"] == len(limited)
    assert stats["calls"]["GET /v2/accounts/{account_id}/jobs"] == 30


def test_rate_limit_is_a_service_option_and_reset_restores_it(ac):
    ac.control("POST", "reset")
    assert ac.control("GET", "settings").json()["rate_limit_per_second"] == 60
    ac.control("POST", "settings", json={"rate_limit_per_second": 100})
    assert ac.api.get(ac.url("jobs")).headers["X-RateLimit-Limit"] == "100"
    bad = ac.anon.post(f"{ac.conn['control_url']}/settings", json={"rate_limit_per_second": 0})
    assert bad.status_code == 400
    ac.control("POST", "reset")
    assert ac.api.get(ac.url("jobs")).headers["X-RateLimit-Limit"] == "60"


def test_injected_error_fault_answers_in_problem_details(ac):
    rule = {"match": {"method": "GET", "path": "/profile$"}, "action": "error", "status": 503}
    ac.control("POST", "faults", json={"rules": [{**rule, "retry_after": 2, "times": 1}]})
    first = ac.api.get(ac.url("users/u1/profile"))
    body = _problem(first, 503)
    assert body["title"] == "Service Unavailable"
    assert first.headers["Retry-After"] == "2"
    assert ac.api.get(ac.url("users/u1/profile")).status_code == 404  # fault spent


def test_stats_group_calls_by_endpoint_pattern(ac):
    for user in ("a", "b", "c@example.com", "with/slash"):
        quoted = requests.utils.quote(user, safe="")
        assert ac.api.patch(ac.url(f"users/{quoted}/profile"), json={"x": 1}).status_code == 200
    stats = ac.stats()
    assert stats["calls"] == {"PATCH /v2/accounts/{account_id}/users/{user_id}/profile": 4}
    assert stats["profiles_written"] == 4
    assert stats["stored"]["users"] == 4


def test_a_read_only_key_reads_but_every_write_answers_403(ac):
    """`read_only_key`: a key below the Publisher level (the refusal's form is a guess)."""
    ac.control("POST", "settings", json={"read_only_key": 1})
    assert ac.api.get(ac.url("jobs")).status_code == 200
    assert ac.api.get(ac.url("users/u1/profile")).status_code == 404
    body = _problem(ac.api.patch(ac.url("users/u1/profile"), json={"plan": "x"}), 403)
    assert "permission" in body["detail"]
    # Refused before the body is read: an invalid body gets the same 403, not a 400.
    _problem(ac.api.patch(ac.url("users/u1/profile"), data=b"[]"), 403)
    _problem(ac.api.post(ac.url("import/profiles"), json=[{"user_id": "u1"}]), 403)
    spec = {"columns": ["name"], "start_time": "2026-01-01", "end_time": "2026-01-02"}
    assert ac.api.post(ac.url("analytics/query"), json=spec).status_code == 200  # a read
    ac.control("POST", "settings", json={"read_only_key": 0})
    assert ac.api.get(ac.url("users/u1/profile")).status_code == 404
    _problem(ac.api.patch(ac.url("users/u1/profile"), data=b"[]", headers=JSON), 400)


JSON = {"Content-Type": "application/json"}
