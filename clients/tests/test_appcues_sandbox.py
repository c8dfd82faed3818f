"""AppcuesClient against the Appcues sandbox: operations, imports, analytics, faults, limiter."""

from __future__ import annotations

import base64
import re
import threading
from datetime import UTC, datetime, timedelta

import pytest

from salesforce_appcues_clients.errors import (
    AppcuesError,
    ConfigurationError,
    RetriesExhaustedError,
    UncertainWriteError,
)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_profiles_groups_and_events_round_trip(ac, ac_control, tag):
    user, group = f"{tag}-u/1 é", f"{tag}-g"
    assert ac.get_user_profile(user) is None
    ac.patch_user_profile(user, {"plan": "pro", "seats": 5})
    ac.patch_user_profile(user, {"seats": 6})
    profile = ac.get_user_profile(user)
    assert profile is not None and profile["plan"] == "pro" and profile["seats"] == 6

    ac.patch_group_profile(group, {"company": "Acme"})
    assert ac.get_group_profile(group)["company"] == "Acme"
    ac.add_users_to_group(group, [user])

    ac.track_event(user, {"name": "signed_up", "timestamp": _now(), "attributes": {"a": 1}})
    events = ac.list_user_events(user, limit=10)
    assert [e["name"] for e in events] == ["signed_up"]

    ac.delete_user_profile(user)
    assert ac.get_user_profile(user) is None


def test_prefixed_config_for_the_tap(sandbox, ac_control, ac_config, new_ac):
    client = new_ac(ac_config("appcues_"), prefix="appcues_")
    assert client.get_user_profile("nobody-at-all") is None
    assert client.requests_made == 1


def test_problem_details_become_appcues_errors(ac, ac_control):
    start = (datetime.now(UTC) - timedelta(days=147)).date().isoformat()
    with pytest.raises(AppcuesError) as info:
        ac.analytics_query(
            {
                "columns": ["timestamp", "user_id", "name"],
                "start_time": start,
                "end_time": datetime.now(UTC).date().isoformat(),
            }
        )
    error = info.value
    assert error.status == 400 and error.title == "Bad Request"
    assert "90" in error.detail


def test_import_profiles_with_job_polling_and_row_errors(ac, ac_control, tag):
    rows = [{"user_id": f"{tag}-{i}", "plan": "team", "seats": i} for i in range(5)]
    rows.insert(2, {"plan": "no user id"})
    job = ac.wait_for_job(ac.import_profiles(rows), timeout=60)
    assert job.status == "complete"
    assert (job.total_rows, job.processed_rows, job.failed_rows) == (6, 6, 1)
    assert [e["row"] for e in job.errors] == [3]
    assert ac.get_user_profile(f"{tag}-4")["seats"] == 4


def test_import_groups_and_events(ac, ac_control, tag):
    job = ac.wait_for_job(ac.import_groups([{"group_id": f"{tag}-g", "tier": "gold"}]))
    assert job.status == "complete" and job.processed_rows == 1
    assert ac.get_group_profile(f"{tag}-g")["tier"] == "gold"
    events = [
        {"user_id": f"{tag}-u", "name": f"imported_{i}", "timestamp": _now(), "attributes": {}}
        for i in range(3)
    ]
    job = ac.wait_for_job(ac.import_events(events))
    assert job.status == "complete" and job.processed_rows == 3
    assert len(ac.list_user_events(f"{tag}-u")) == 3


def test_analytics_query_and_export_download_without_authorization(ac, ac_control, tag, debug_logs):
    user = f"{tag}-a"
    for i in range(3):
        ac.track_event(user, {"name": f"clicked_{i}", "timestamp": _now()})
    spec = {
        "columns": ["timestamp", "user_id", "name"],
        "conditions": [["user_id", "==", user]],
        "start_time": (datetime.now(UTC) - timedelta(days=1)).date().isoformat(),
        "end_time": (datetime.now(UTC) + timedelta(days=1)).date().isoformat(),
        "timezone": "UTC",
    }
    result = ac.analytics_query(spec)
    assert sorted(r["name"] for r in result.rows) == ["clicked_0", "clicked_1", "clicked_2"]
    assert result.truncated is False

    sent_headers = []
    ac._download_session.hooks["response"].append(
        lambda response, **kw: sent_headers.append(dict(response.request.headers))
    )
    rows = list(ac.analytics_export(spec, timeout=60))
    assert sorted(r["name"] for r in rows) == ["clicked_0", "clicked_1", "clicked_2"]
    assert len(sent_headers) == 1
    assert "Authorization" not in sent_headers[0]
    # the presigned URL's signature is a credential: it never reaches a log line
    assert "/downloads/exports/" in debug_logs.text
    assert "signature=***" in debug_logs.text
    assert re.search(r"signature=(?!\*\*\*)", debug_logs.text) is None


def test_analytics_truncation_flag(ac, ac_control, tag):
    user = f"{tag}-t"
    rows = [{"user_id": user, "name": "bulk_event", "timestamp": _now()} for _ in range(1005)]
    assert ac.wait_for_job(ac.import_events(rows)).processed_rows == 1005
    spec = {
        "columns": ["timestamp", "user_id", "name"],
        "conditions": [["user_id", "==", user]],
        "start_time": (datetime.now(UTC) - timedelta(days=1)).date().isoformat(),
        "end_time": (datetime.now(UTC) + timedelta(days=1)).date().isoformat(),
    }
    result = ac.analytics_query(spec)
    assert result.truncated is True and len(result.rows) == 1000


# --- faults ----------------------------------------------------------------------------
def test_429_with_retry_after_and_503_burst_are_retried(ac, ac_control, tag, debug_logs):
    ac_control.faults(
        {
            "match": {"path": "/profile$", "method": "PATCH"},
            "action": "error",
            "status": 429,
            "retry_after": 1,
            "times": 1,
        },
        {
            "match": {"path": "/profile$", "method": "PATCH"},
            "action": "error",
            "status": 503,
            "times": 2,
        },
    )
    before = ac.requests_made
    ac.patch_user_profile(f"{tag}-r", {"ok": True})
    assert ac_control.fired_by_rule() == [1, 2]
    assert ac.requests_made - before == 4
    assert "retrying in 1.0 s" in debug_logs.text
    assert ac.get_user_profile(f"{tag}-r")["ok"] is True


def test_retries_are_bounded(ac, ac_control):
    ac_control.faults({"match": {"path": "/profile$"}, "action": "error", "status": 500})
    with pytest.raises(AppcuesError) as info:
        ac.get_user_profile("someone")
    assert info.value.status == 500 and "gave up after 4 attempts" in str(info.value)
    assert ac_control.fired_by_rule() == [4]


def test_a_rejected_request_is_not_retried(ac, ac_control):
    ac_control.faults(
        {"match": {"path": "/profile$"}, "action": "error", "status": 400, "times": 5}
    )
    with pytest.raises(AppcuesError) as info:
        ac.patch_user_profile("someone", {"a": 1})
    assert info.value.status == 400
    assert ac_control.fired_by_rule() == [1]


def test_connection_resets(ac, ac_control, tag):
    ac_control.faults(
        {"match": {"method": "GET", "path": "/profile$"}, "action": "reset", "times": 2}
    )
    assert ac.get_user_profile(f"{tag}-none") is None
    assert ac_control.fired_by_rule() == [2]
    ac_control.faults(
        {"match": {"method": "POST", "path": "/events$"}, "action": "reset", "times": 1}
    )
    with pytest.raises(UncertainWriteError):
        ac.track_event(f"{tag}-e", {"name": "x", "timestamp": _now()})
    assert ac_control.fired_by_rule() == [1]
    assert ac.list_user_events(f"{tag}-e") == []


def test_a_5xx_answer_to_a_write_is_retried(ac, ac_control, tag):
    """Appcues' policy (transport.APPCUES_WRITES), unlike Salesforce's for an insert: a POST
    answered 500 is sent again, as Appcues' own client does."""
    ac_control.faults(
        {
            "match": {"method": "POST", "path": "/events$"},
            "action": "error",
            "status": 500,
            "times": 1,
        }
    )
    before = ac.requests_made
    ac.track_event(f"{tag}-5xx", {"name": "x", "timestamp": _now()})
    assert ac_control.fired_by_rule() == [1]
    assert ac.requests_made - before == 2
    assert [e["name"] for e in ac.list_user_events(f"{tag}-5xx")] == ["x"]


def test_analytics_query_is_retried_after_a_reset(ac, ac_control, tag):
    """The analytics query is a read sent as POST: a reset is retried, unlike a write."""
    user = f"{tag}-r"
    ac.track_event(user, {"name": "clicked", "timestamp": _now()})
    ac_control.faults(
        {"match": {"method": "POST", "path": "/analytics/query$"}, "action": "reset", "times": 1}
    )
    spec = {
        "columns": ["timestamp", "user_id", "name"],
        "conditions": [["user_id", "==", user]],
        "start_time": (datetime.now(UTC) - timedelta(days=1)).date().isoformat(),
        "end_time": (datetime.now(UTC) + timedelta(days=1)).date().isoformat(),
    }
    assert [r["name"] for r in ac.analytics_query(spec).rows] == ["clicked"]
    assert ac_control.fired_by_rule() == [1]


def test_unreachable_appcues_exhausts_retries(ac_config, new_ac):
    client = new_ac(ac_config(base_url="https://127.0.0.1:9", max_retries=1))
    with pytest.raises(RetriesExhaustedError, match="gave up after 2 attempts"):
        client.get_user_profile("x")


# --- the limiter -----------------------------------------------------------------------
def test_limiter_holds_the_rate_below_the_sandbox_limit(
    sandbox, ac_control, ac_config, tag, new_ac
):
    saved = ac_control.call("GET", "settings")["rate_limit_per_second"]
    ac_control.call("POST", "settings", {"rate_limit_per_second": 40})
    try:
        before = ac_control.stats()["rate_limited"]
        config = ac_config(
            account_id=sandbox.connection["appcues"]["account_id"], max_requests_per_second=20
        )
        clients = [new_ac(config) for _ in range(4)]
        limiter = clients[0].limiter
        assert all(c.limiter is limiter for c in clients)
        granted_before = limiter.granted

        def work(client):
            for i in range(15):
                client.get_user_profile(f"{tag}-{i}")

        threads = [threading.Thread(target=work, args=(c,)) for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert limiter.granted - granted_before == 60
        assert limiter.max_in_window(1.0) <= 21
        assert ac_control.stats()["rate_limited"] == before  # the sandbox never said 429
    finally:
        ac_control.call("POST", "settings", {"rate_limit_per_second": saved})


def test_clients_of_one_account_share_one_limiter(ac_config, new_ac):
    a = new_ac(ac_config())
    b = new_ac(ac_config())
    assert a.limiter is b.limiter


# --- safety ----------------------------------------------------------------------------
def test_no_secret_in_logs_errors_or_reprs(sandbox, ac, ac_control, debug_logs, capsys, new_ac):
    conn = sandbox.connection["appcues"]
    ac_control.faults(
        {"match": {"path": "/profile$"}, "action": "error", "status": 503, "times": 1}
    )
    ac.get_user_profile("someone")
    bad = new_ac({**ac.settings.__dict__, "api_secret": "wrong-secret-123"})
    with pytest.raises(AppcuesError) as info:
        bad.get_user_profile("someone")
    assert info.value.status in (401, 403)
    out = capsys.readouterr()
    basic = base64.b64encode(f"{conn['api_key']}:{conn['api_secret']}".encode()).decode()
    texts = [
        debug_logs.text,
        out.out,
        out.err,
        str(info.value),
        repr(info.value),
        repr(ac),
        repr(ac.settings),
        repr(bad),
    ]
    for secret in [conn["api_secret"], basic, "wrong-secret-123"]:
        for text in texts:
            assert secret not in text


def test_an_untrusted_certificate_names_the_prefixed_setting(ac_config, new_ac, monkeypatch):
    import certifi

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    config = ac_config("appcues_")
    del config["appcues_ca_bundle"]
    client = new_ac(config, "appcues_")
    with pytest.raises(ConfigurationError, match="appcues_ca_bundle"):
        client.get_user_profile("x")


def test_server_time_is_the_date_of_the_last_response(ac, ac_control, tag):
    assert ac.server_time() is None  # nothing asked yet, and no call is made to find out
    assert ac.requests_made == 0
    saved = ac_control.call("GET", "clock")["now"]
    ac_control.call("POST", "clock", {"now": "2031-05-06T07:08:09Z", "freeze": True})
    try:
        assert ac.get_user_profile(f"{tag}-nobody") is None  # a 404 carries a Date too
        assert ac.server_time() == datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
        ac_control.call("POST", "clock", {"advance_seconds": 90})
        ac.list_user_events(f"{tag}-nobody")
        assert ac.server_time() == datetime(2031, 5, 6, 7, 9, 39, tzinfo=UTC)
        assert ac.requests_made == 2
    finally:
        was_real = abs(datetime.fromisoformat(saved) - datetime.now(UTC)).total_seconds() < 1
        ac_control.call("POST", "clock", {"reset": True} if was_real else {"now": saved})
