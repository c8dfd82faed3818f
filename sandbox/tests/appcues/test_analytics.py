"""The analytics query (raw and aggregate), its limits, the analytics delay, and exports."""

from __future__ import annotations

import time

import pytest

NPS_FLOW = "flow-nps-1"
NPS_NAMES = ["appcues:nps_score", "appcues:nps_feedback", "appcues:nps_score_and_feedback"]


def _nps_events():
    def ev(user, name, ts, **attrs):
        return {"user_id": user, "name": name, "timestamp": ts, "attributes": attrs}

    return [
        ev("u1", "appcues:nps_score", "2026-01-05T10:00:00Z", flowId=NPS_FLOW, score=9),
        ev("u1", "appcues:nps_feedback", "2026-01-05T10:01:00Z", flowId=NPS_FLOW, feedback="Great"),
        ev("u2", "appcues:nps_score", "2026-01-06T09:00:00Z", flowId=NPS_FLOW, score=3),
        ev(
            "u3",
            "appcues:nps_score_and_feedback",
            "2026-01-07T08:00:00Z",
            flowId=NPS_FLOW,
            score=10,
            feedback="Love it",
        ),
        ev("u4", "appcues:nps_score", "2026-01-07T09:00:00Z", flowId="another-survey", score=1),
        ev("u1", "appcues:flow_started", "2026-01-08T00:00:00Z", flowId=NPS_FLOW),
        ev("u5", "appcues:nps_score", "2025-12-01T00:00:00Z", flowId=NPS_FLOW, score=7),
    ]


def _query(ac, spec):
    return ac.api.post(ac.url("analytics/query"), json=spec)


def test_appcues_nps_query_example(ac):
    ac.import_events(_nps_events())
    spec = {
        "columns": ["timestamp", "user_id", "name", "score", "feedback"],
        "conditions": [["flow_id", "==", NPS_FLOW], ["name", "in", NPS_NAMES]],
        "order_by": [["timestamp", "desc"]],
        "start_time": "2026-01-01T00:00:00Z",
        "end_time": "2026-01-31T00:00:00Z",
        "timezone": "UTC",
    }
    response = _query(ac, spec)
    assert response.status_code == 200
    assert "X-Rows-Truncated" not in response.headers
    assert response.headers["X-RateLimit-Limit"]
    assert response.json() == [
        {
            "timestamp": "2026-01-07T08:00:00.000Z",
            "user_id": "u3",
            "name": "appcues:nps_score_and_feedback",
            "score": 10,
            "feedback": "Love it",
        },
        {
            "timestamp": "2026-01-06T09:00:00.000Z",
            "user_id": "u2",
            "name": "appcues:nps_score",
            "score": 3,
            "feedback": None,
        },
        {
            "timestamp": "2026-01-05T10:01:00.000Z",
            "user_id": "u1",
            "name": "appcues:nps_feedback",
            "score": None,
            "feedback": "Great",
        },
        {
            "timestamp": "2026-01-05T10:00:00.000Z",
            "user_id": "u1",
            "name": "appcues:nps_score",
            "score": 9,
            "feedback": None,
        },
    ]


def test_timezone_shapes_timestamps_and_date_windows(ac):
    ac.import_events(_nps_events())
    spec = {
        "columns": ["timestamp", "user_id"],
        "conditions": [["user_id", "==", "u2"]],
        "start_time": "2026-01-06",
        "end_time": "2026-01-06",  # a date-only end includes that whole day
        "timezone": "America/New_York",
    }
    assert _query(ac, spec).json() == [
        {"timestamp": "2026-01-06T04:00:00.000-05:00", "user_id": "u2"}
    ]
    bad = _query(ac, {**spec, "timezone": "Mars/Olympus"})
    assert bad.status_code == 400 and "Mars/Olympus" in bad.json()["detail"]


@pytest.mark.parametrize(
    ("condition", "users"),
    [
        (["user_id", "!=", "u1"], ["u2", "u3", "u4"]),
        (["user_id", "not in", ["u1", "u2"]], ["u3", "u4"]),
        (["name", "like", "appcues:nps_score%"], ["u1", "u2", "u3", "u4"]),
        (["name", "like", "APPCUES:NPS%"], []),  # like is case-sensitive
        (["name", "ilike", "APPCUES:NPS_SCORE"], ["u1", "u2", "u4"]),
        (["name", "not like", "appcues:nps%"], ["u1"]),
        (["name", "not ilike", "%NPS%"], ["u1"]),
        (["feedback", "==", None], ["u1", "u1", "u2", "u4"]),
        (["score", "in", [9, 10]], ["u1", "u3"]),
        (["name", "in", []], []),
    ],
)
def test_condition_operators(ac, condition, users):
    ac.import_events(_nps_events())
    spec = {
        "columns": ["user_id"],
        "conditions": [condition],
        "order_by": [["user_id", "asc"]],
        "start_time": "2026-01-01",
        "end_time": "2026-01-31",
    }
    response = _query(ac, spec)
    assert response.status_code == 200, response.text
    assert [r["user_id"] for r in response.json()] == users


@pytest.mark.parametrize(
    ("change", "status", "needle"),
    [
        ({"conditions": [["name", "=~", "x"]]}, 400, "operator"),
        ({"conditions": [["planet", "==", "x"]]}, 400, "planet"),
        ({"columns": ["timestamp", "colour"]}, 400, "colour"),
        ({"columns": ["nps_raw_score"]}, 500, "nps_raw_score"),
        ({"order_by": [["score", "desc"]]}, 400, "score"),
        ({"limit": -1}, 400, "limit"),
        ({"metrics": ["events"]}, 400, "columns"),
        ({"columns": None, "metrics": ["revenue"]}, 400, "revenue"),
        ({"start_time": "last week"}, 400, "start_time"),
        ({"end_time": "2025-12-01"}, 400, "end_time"),
    ],
)
def test_invalid_specs_are_named_in_the_problem(ac, change, status, needle):
    spec = {"columns": ["timestamp", "name"], "start_time": "2026-01-01", "end_time": "2026-01-31"}
    spec.update(change)
    spec = {k: v for k, v in spec.items() if v is not None}
    response = _query(ac, spec)
    assert response.status_code == status
    body = response.json()
    assert body["error"] is True and needle in body["detail"]


def test_windows_over_90_days_answer_400(ac):
    spec = {
        "columns": ["timestamp"],
        "start_time": "2026-01-01T00:00:00Z",
        "end_time": "2026-05-28T00:00:00Z",
    }
    response = _query(ac, spec)
    assert response.status_code == 400
    assert response.json() == {
        "error": True,
        "status": 400,
        "title": "Bad Request",
        "detail": "time range of 147 days exceeds the 90-day maximum for this query shape",
    }
    exactly_90 = {**spec, "end_time": "2026-04-01T00:00:00Z"}
    assert _query(ac, exactly_90).status_code == 200


def test_results_clamp_at_1000_rows(ac):
    events = [
        {"user_id": f"u{i % 37}", "name": "Clicked", "timestamp": 1767225600000 + i * 1000}
        for i in range(1200)
    ]
    ac.import_events(events)
    spec = {
        "columns": ["timestamp", "user_id"],
        "start_time": "2026-01-01",
        "end_time": "2026-01-02",
    }
    clamped = _query(ac, spec)
    assert len(clamped.json()) == 1000
    assert clamped.headers["X-Rows-Truncated"] == "true"
    asked_more = _query(ac, {**spec, "limit": 5000})
    assert len(asked_more.json()) == 1000 and asked_more.headers["X-Rows-Truncated"] == "true"
    page = _query(ac, {**spec, "limit": 100, "offset": 1150})
    assert len(page.json()) == 50 and "X-Rows-Truncated" not in page.headers
    assert page.json()[0]["timestamp"] == "2026-01-01T00:19:10.000Z"  # the 1151st second
    small = _query(ac, {**spec, "limit": 10})
    assert len(small.json()) == 10 and "X-Rows-Truncated" not in small.headers


def test_metrics_and_dimensions(ac):
    ac.import_events(_nps_events())
    spec = {
        "metrics": ["events", "users"],
        "dimensions": ["name"],
        "conditions": [["name", "like", "appcues:nps%"]],
        "order_by": [["events", "desc"], ["name", "asc"]],
        "start_time": "2026-01-01",
        "end_time": "2026-01-31",
    }
    assert _query(ac, spec).json() == [
        {"name": "appcues:nps_score", "events": 3, "users": 3},
        {"name": "appcues:nps_feedback", "events": 1, "users": 1},
        {"name": "appcues:nps_score_and_feedback", "events": 1, "users": 1},
    ]
    by_day = {
        "metrics": ["events"],
        "dimensions": ["day"],
        "start_time": "2026-01-05",
        "end_time": "2026-01-07",
        "timezone": "Asia/Tokyo",  # u2's 09:00Z is 18:00 in Tokyo; u3's 08:00Z is 17:00
    }
    assert _query(ac, by_day).json() == [
        {"day": "2026-01-05", "events": 2},
        {"day": "2026-01-06", "events": 1},
        {"day": "2026-01-07", "events": 2},
    ]
    total = _query(
        ac, {"metrics": ["events", "groups"], "start_time": "2026-01-01", "end_time": "2026-01-31"}
    ).json()
    assert total == [{"events": 6, "groups": 0}]


def test_analytics_delay_hides_recent_events_until_the_clock_passes(ac):
    ac.control("POST", "clock", json={"now": "2026-03-01T12:00:00Z", "freeze": True})
    ac.control("POST", "settings", json={"analytics_delay_seconds": 300})
    ac.api.post(
        ac.url("users/u1/events"), json={"name": "Clicked", "timestamp": "2026-03-01T12:00:00Z"}
    )
    ac.api.post(
        ac.url("users/u1/events"), json={"name": "Old", "timestamp": "2026-03-01T11:00:00Z"}
    )
    spec = {"columns": ["name"], "start_time": "2026-03-01", "end_time": "2026-03-01"}
    # Both arrived now: even the old-timestamped one waits for the pipeline.
    assert _query(ac, spec).json() == []
    # The per-user list is not delayed (events are immediately available for targeting).
    assert len(ac.api.get(ac.url("users/u1/events")).json()) == 2
    ac.control("POST", "clock", json={"advance_seconds": 301})
    assert sorted(r["name"] for r in _query(ac, spec).json()) == ["Clicked", "Old"]


def _poll_export(ac, job_id):
    seen = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        state = ac.api.get(ac.url(f"analytics/exports/{job_id}"))
        assert state.status_code == 200
        body = state.json()
        if not seen or seen[-1] != body["status"]:
            seen.append(body["status"])
        if body["status"] in ("done", "failed"):
            return seen, body, state
        time.sleep(0.02)
    raise AssertionError(f"export stuck: {seen}")


def test_export_lifecycle_and_unauthenticated_download(ac):
    ac.import_events(_nps_events())
    spec = {
        "columns": ["timestamp", "user_id", "name", "score"],
        "conditions": [["flow_id", "==", NPS_FLOW]],
        "order_by": [["timestamp", "asc"]],
        "start_time": "2025-06-01",
        "end_time": "2026-01-31",  # longer than 90 days: exports are for backfills
    }
    started = ac.api.post(ac.url("analytics/exports"), json=spec)
    assert started.status_code == 202
    assert set(started.json()) == {"job_id", "status"}
    assert started.json()["status"] == "queued"
    assert started.headers["X-Concurrency-Limit"] == "5"
    seen, done, _ = _poll_export(ac, started.json()["job_id"])
    assert seen[-1] == "done"
    order = ["queued", "running", "done"]
    assert [order.index(s) for s in seen] == sorted(order.index(s) for s in seen)
    assert done["expires_at"].endswith("Z")
    download = ac.anon.get(done["download_url"])  # no Authorization header at all
    assert download.status_code == 200
    rows = download.json()
    assert [r["user_id"] for r in rows] == ["u5", "u1", "u1", "u2", "u3", "u1"]
    assert rows[0] == {
        "timestamp": "2025-12-01T00:00:00.000Z",
        "user_id": "u5",
        "name": "appcues:nps_score",
        "score": 7,
    }
    tampered = done["download_url"].replace("signature=", "signature=0")
    assert ac.anon.get(tampered).status_code == 403
    ac.control("POST", "clock", json={"advance_seconds": 3601})
    expired = ac.anon.get(done["download_url"])
    assert expired.status_code == 403 and b"expired" in expired.content
    _, fresh, _ = _poll_export(ac, started.json()["job_id"])  # each poll presigns anew
    assert ac.anon.get(fresh["download_url"]).status_code == 200


def test_export_order_setting_writes_the_file_in_reverse(ac):
    ac.import_events(_nps_events())
    spec = {
        "columns": ["timestamp", "user_id", "name"],
        "conditions": [["flow_id", "==", NPS_FLOW]],
        "order_by": [["timestamp", "asc"]],
        "start_time": "2025-06-01",
        "end_time": "2026-01-31",
    }
    files = []
    for order in ("spec", "reverse"):
        ac.control("POST", "settings", json={"analytics_export_order": order})
        started = ac.api.post(ac.url("analytics/exports"), json=spec)
        _, done, _ = _poll_export(ac, started.json()["job_id"])
        files.append(ac.anon.get(done["download_url"]).json())
    ac.control("POST", "settings", json={"analytics_export_order": "spec"})
    assert files[1] == files[0][::-1] and len(files[0]) == 6
    refused = ac.anon.post(
        f"{ac.conn['control_url']}/settings", json={"analytics_export_order": "random"}
    )
    assert refused.status_code == 400 and "analytics_export_order" in refused.text


def test_failed_export_reports_a_reason(ac):
    spec = {
        "columns": ["timestamp", "nps_raw_score"],
        "start_time": "2026-01-01",
        "end_time": "2026-01-31",
    }
    started = ac.api.post(ac.url("analytics/exports"), json=spec)
    assert started.status_code == 202
    seen, failed, _ = _poll_export(ac, started.json()["job_id"])
    assert seen[-1] == "failed"
    assert "nps_raw_score" in failed["failure_reason"]
    assert "download_url" not in failed
    bad = ac.api.post(ac.url("analytics/exports"), json={"columns": ["colour"]})
    assert bad.status_code == 400
    assert ac.api.get(ac.url("analytics/exports/nope")).status_code == 404


def test_email_column_resolves_the_users_profile(ac):
    ac.api.patch(ac.url("users/u1/profile"), json={"email": "jane@example.com"})
    ac.import_events(_nps_events()[:3])
    spec = {"columns": ["user_id", "email"], "start_time": "2026-01-01", "end_time": "2026-01-31"}
    rows = _query(ac, spec).json()
    assert rows == [
        {"user_id": "u1", "email": "jane@example.com"},
        {"user_id": "u1", "email": "jane@example.com"},
        {"user_id": "u2", "email": None},
    ]


def test_timestamp_conditions_compare_instants(ac):
    ac.import_events(_nps_events())
    spec = {
        "columns": ["user_id"],
        "conditions": [["timestamp", "in", ["2026-01-06T10:00:00+01:00", 1767772800000]]],
        "start_time": "2026-01-01",
        "end_time": "2026-01-31",
    }
    assert [r["user_id"] for r in _query(ac, spec).json()] == ["u2", "u3"]
    bad = {**spec, "conditions": [["timestamp", "==", "soon"]]}
    assert _query(ac, bad).status_code == 400


@pytest.mark.parametrize(
    ("end", "precision", "expected"),
    [
        ("exclusive", "ms", ["b"]),
        ("inclusive", "ms", ["b", "c"]),
        ("exclusive", "s", ["a", "b"]),
        ("inclusive", "s", ["a", "b", "c"]),
    ],
)
def test_window_bound_switches(ac, end, precision, expected):
    """How the window's bounds compare is undocumented: each plausible way, by a setting."""
    ac.control("POST", "clock", json={"now": "2026-03-01T13:00:00Z", "freeze": True})
    for name, ts in (("a", "00.000"), ("b", "00.500"), ("c", "01.000")):
        ac.api.post(
            ac.url("users/u1/events"), json={"name": name, "timestamp": f"2026-03-01T12:00:{ts}Z"}
        )
    ac.control(
        "POST",
        "settings",
        json={"analytics_window_end": end, "analytics_window_precision": precision},
    )
    spec = {
        "columns": ["name"],
        "start_time": "2026-03-01T12:00:00.500Z",
        "end_time": "2026-03-01T12:00:01.000Z",
    }
    assert sorted(r["name"] for r in _query(ac, spec).json()) == expected


def test_window_bound_switches_refuse_unknown_values(ac):
    url = f"{ac.conn['control_url']}/settings"
    refused = ac.anon.post(url, json={"analytics_window_end": "both"})
    assert refused.status_code == 400 and "analytics_window_end" in refused.text
