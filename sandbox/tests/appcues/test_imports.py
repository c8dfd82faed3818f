"""Bulk imports: JSON arrays, NDJSON, CSV and multipart files; asynchronous jobs."""

from __future__ import annotations

import json
import time

import pytest

JOB_FIELDS = {
    "job_id",
    "status",
    "created_at",
    "updated_at",
    "total_rows",
    "processed_rows",
    "failed_rows",
    "errors",
}
NDJSON = {"Content-Type": "application/x-ndjson"}


def _ndjson(rows):
    return "\n".join(json.dumps(r) for r in rows) + "\n"


def _start(ac, kind, **kwargs):
    response = ac.api.post(ac.url(f"import/{kind}"), **kwargs)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == 202
    assert isinstance(body["title"], str)
    assert body["job_url"] == ac.url(f"jobs/{body['job_id']}")
    return body["job_id"]


def test_ndjson_profiles_with_partly_invalid_rows(ac):
    rows = [
        {"user_id": "u1", "plan": "pro", "seats": 3},
        {"user_id": "u2", "address": {"city": "Oslo"}},  # nested: refused
        {"plan": "free"},  # no user_id
        {"user_id": "u3", "_appcuesId": "x"},  # reserved name
        {"user_id": "u4", "active": True},
    ]
    body = _ndjson(rows[:2]) + "this is not json\n" + _ndjson(rows[2:])
    job = ac.wait_job(_start(ac, "profiles", data=body, headers=NDJSON))
    assert set(job) == JOB_FIELDS
    assert job["status"] == "complete"
    assert (job["total_rows"], job["processed_rows"], job["failed_rows"]) == (6, 6, 4)
    by_row = {e["row"]: e["message"] for e in job["errors"]}
    assert sorted(by_row) == [2, 3, 4, 5]  # 1-based line numbers of the file
    assert "'address'" in by_row[2]
    assert "JSON" in by_row[3]
    assert "user_id" in by_row[4]
    assert "'_appcuesId'" in by_row[5]
    assert ac.api.get(ac.url("users/u1/profile")).json()["seats"] == 3
    assert ac.api.get(ac.url("users/u4/profile")).json()["active"] is True
    assert ac.api.get(ac.url("users/u2/profile")).status_code == 404
    assert ac.stats()["profiles_written"] == 2


def _accept_json_arrays(ac):
    """JSON-array bodies are undocumented for imports: the sandbox takes them only on request."""
    ac.control("POST", "settings", json={"import_formats": ["json", "ndjson", "csv"]})


def test_json_array_groups_import_merges(ac):
    _accept_json_arrays(ac)
    ac.api.patch(ac.url("groups/g1/profile"), json={"tier": "gold"})
    rows = [{"group_id": "g1", "seats": 10}, {"group_id": "g2", "tier": "free"}]
    job = ac.wait_job(_start(ac, "groups", json=rows))
    assert job["status"] == "complete" and job["failed_rows"] == 0 and job["errors"] == []
    assert ac.api.get(ac.url("groups/g1/profile")).json() == {
        "group_id": "g1",
        "tier": "gold",
        "seats": 10,
    }
    assert ac.stats()["groups_written"] == 3


def test_csv_profiles_cast_values(ac):
    csv_text = (
        "user_id,plan,seats,ratio,trial,note,empty\n"
        "u1,pro,5,0.5,true,null,\n"
        "u2,free,0,1e3,false,hi,\n"
    )
    job = ac.wait_job(_start(ac, "profiles", data=csv_text, headers={"Content-Type": "text/csv"}))
    assert job["status"] == "complete" and job["processed_rows"] == 2
    assert ac.api.get(ac.url("users/u1/profile")).json() == {
        "user_id": "u1",
        "plan": "pro",
        "seats": 5,
        "ratio": 0.5,
        "trial": True,
        "note": None,
        "_updatedAt": ac.api.get(ac.url("users/u1/profile")).json()["_updatedAt"],
    }
    assert ac.api.get(ac.url("users/u2/profile")).json()["ratio"] == 1000.0


def test_csv_without_the_id_column_fails_the_job(ac):
    job = ac.wait_job(
        _start(
            ac, "profiles", data="email,plan\na@x.com,pro\n", headers={"Content-Type": "text/csv"}
        )
    )
    assert job["status"] == "failed"
    assert "user_id" in job["errors"][0]["message"]


def test_multipart_file_upload(ac):
    csv_text = "user_id,plan\nu1,pro\nu2,\n,free\n"
    files = {"file": ("users.csv", csv_text.encode(), "text/csv")}
    job = ac.wait_job(_start(ac, "profiles", files=files))
    assert job["status"] == "complete"
    assert (job["total_rows"], job["failed_rows"]) == (3, 1)
    assert job["errors"] == [{"row": 3, "message": "missing user_id"}]
    assert ac.api.get(ac.url("users/u1/profile")).json()["plan"] == "pro"


def test_multipart_without_file_part_is_refused(ac):
    response = ac.api.post(ac.url("import/profiles"), files={"upload": ("a.csv", b"user_id\nu1\n")})
    assert response.status_code == 400
    assert "'file'" in response.json()["detail"]


def test_events_import_feeds_the_one_event_store(ac):
    rows = [
        {
            "user_id": "u1",
            "name": "Clicked Upgrade Button",
            "timestamp": "2026-01-02T10:00:00Z",
            "attributes": {"plan": "pro"},
        },
        {
            "user_id": "u1",
            "name": "appcues:page_view",
            "timestamp": 1767348060000,  # 10:01
            "context": {"url": "https://app.example.com/billing"},
            "group_id": "g1",
        },
        {"user_id": "u2", "timestamp": "2026-01-02T10:00:00Z"},  # no name
        {"user_id": "u2", "name": "x", "timestamp": "not a time"},
        {"user_id": "u2", "name": "x", "timestamp": "2026-01-02T10:00:00Z", "colour": "red"},
    ]
    job = ac.wait_job(_start(ac, "events", data=_ndjson(rows), headers=NDJSON))
    assert job["status"] == "complete"
    assert (job["total_rows"], job["failed_rows"]) == (5, 3)
    assert [e["row"] for e in job["errors"]] == [3, 4, 5]
    assert "unknown field 'colour'" in job["errors"][2]["message"]
    listed = ac.api.get(ac.url("users/u1/events")).json()
    assert [e["name"] for e in listed] == ["appcues:page_view", "Clicked Upgrade Button"]
    spec = {
        "columns": ["timestamp", "user_id", "name", "url"],
        "start_time": "2026-01-01",
        "end_time": "2026-01-03",
        "order_by": [["timestamp", "asc"]],
    }
    assert ac.api.post(ac.url("analytics/query"), json=spec).json() == [
        {
            "timestamp": "2026-01-02T10:00:00.000Z",
            "user_id": "u1",
            "name": "Clicked Upgrade Button",
            "url": None,
        },
        {
            "timestamp": "2026-01-02T10:01:00.000Z",
            "user_id": "u1",
            "name": "appcues:page_view",
            "url": "https://app.example.com/billing",
        },
    ]
    assert ac.stats()["events_stored"] == 2


def test_csv_events_import_puts_other_columns_in_attributes(ac):
    csv_text = "user_id,name,timestamp,score\nu1,appcues:nps_score,2026-01-01T00:00:00Z,9\n"
    job = ac.wait_job(_start(ac, "events", data=csv_text, headers={"Content-Type": "text/csv"}))
    assert job["status"] == "complete" and job["failed_rows"] == 0
    event = ac.api.get(ac.url("users/u1/events")).json()[0]
    assert event["attributes"] == {"score": 9}


def test_an_import_where_every_row_fails_is_failed(ac):
    rows = _ndjson([{"plan": "x"}, {"plan": "y"}])
    job = ac.wait_job(_start(ac, "profiles", data=rows, headers=NDJSON))
    assert job["status"] == "failed"
    assert job["failed_rows"] == 2 == job["processed_rows"]


@pytest.mark.parametrize(
    ("headers", "data", "status"),
    [
        ({"Content-Type": "application/xml"}, "<a/>", 415),
        ({"Content-Type": "application/json"}, "[{", 400),
        ({"Content-Type": "application/json"}, '{"user_id": "u1"}', 400),
        ({"Content-Type": "application/x-ndjson"}, "", 400),
    ],
)
def test_unacceptable_bodies_are_refused_synchronously(ac, headers, data, status):
    _accept_json_arrays(ac)
    response = ac.api.post(ac.url("import/profiles"), data=data, headers=headers)
    assert response.status_code == status
    assert response.json()["error"] is True
    assert ac.api.get(ac.url("jobs")).json() == []


def test_body_over_the_configured_maximum_is_413(ac):
    ac.control("POST", "settings", json={"max_import_bytes": 100})
    big = _ndjson([{"user_id": f"u{i}", "plan": "pro"} for i in range(20)])
    response = ac.api.post(ac.url("import/profiles"), data=big, headers=NDJSON)
    assert response.status_code == 413
    assert (
        response.json()["title"] == "Request Entity Too Large" or response.json()["status"] == 413
    )
    small = _ndjson([{"user_id": "u1"}])
    assert ac.api.post(ac.url("import/profiles"), data=small, headers=NDJSON).status_code == 202


def test_jobs_list_and_unknown_job(ac):
    first = _start(ac, "profiles", data=_ndjson([{"user_id": "u1"}]), headers=NDJSON)
    second = _start(ac, "groups", data=_ndjson([{"group_id": "g1"}]), headers=NDJSON)
    ac.wait_job(first)
    ac.wait_job(second)
    jobs = ac.api.get(ac.url("jobs")).json()
    assert {j["job_id"] for j in jobs} == {first, second}
    assert all(set(j) == JOB_FIELDS for j in jobs)
    assert all(j["status"] == "complete" for j in jobs)
    missing = ac.api.get(ac.url("jobs/00000000-0000-0000-0000-000000000000"))
    assert missing.status_code == 404 and missing.json()["detail"] == "job not found"
    assert ac.stats()["import_jobs"] == 2
    assert ac.api.post(ac.url("import/widgets"), json=[]).status_code == 404


# --- switches for the parts of the import contract Appcues does not publish -------------
ROWS = [{"user_id": "u1", "plan": "pro"}, {"plan": "no id"}, {"user_id": "u3", "seats": 2}]


def _profile(ac, user_id):
    response = ac.api.get(ac.url(f"users/{user_id}/profile"))
    return response.json() if response.status_code == 200 else None


def test_default_formats_refuse_json_arrays(ac):
    assert ac.control("GET", "settings").json()["import_formats"] == ["ndjson", "csv"]
    response = ac.api.post(ac.url("import/profiles"), json=[{"user_id": "u1"}])
    assert response.status_code == 415
    assert "application/x-ndjson" in response.json()["detail"]


def test_csv_only_account_refuses_ndjson_with_415(ac):
    ac.control("POST", "settings", json={"import_formats": ["csv"]})
    response = ac.api.post(ac.url("import/profiles"), data=_ndjson(ROWS), headers=NDJSON)
    assert response.status_code == 415
    assert ac.api.get(ac.url("jobs")).json() == []
    files = {"file": ("users.csv", b"user_id,plan\nu1,pro\n", "text/csv")}
    assert ac.wait_job(_start(ac, "profiles", files=files))["status"] == "complete"
    assert _profile(ac, "u1")["plan"] == "pro"
    ac.control("POST", "settings", json={"import_formats": []})
    response = ac.api.post(ac.url("import/profiles"), files=files)
    assert response.status_code == 415


def test_minimal_job_style_says_done_and_nothing_else(ac):
    ac.control("POST", "settings", json={"import_job_style": "minimal"})
    job_id = _start(ac, "profiles", data=_ndjson(ROWS), headers=NDJSON)
    deadline = time.monotonic() + 10
    job = ac.api.get(ac.url(f"jobs/{job_id}")).json()
    while job["status"] != "done" and time.monotonic() < deadline:
        time.sleep(0.02)
        job = ac.api.get(ac.url(f"jobs/{job_id}")).json()
    assert set(job) == {"job_id", "status", "created_at", "updated_at"}
    assert job["status"] == "done"
    # the good rows were applied, the bad one silently dropped
    assert _profile(ac, "u1")["plan"] == "pro" and _profile(ac, "u3")["seats"] == 2


def test_ignores_body_job_style_accepts_stores_nothing_and_says_done(ac):
    ac.control("POST", "settings", json={"import_job_style": "ignores_body"})
    job_id = _start(ac, "profiles", data=_ndjson(ROWS), headers=NDJSON)
    deadline = time.monotonic() + 10
    job = ac.api.get(ac.url(f"jobs/{job_id}")).json()
    while job["status"] != "done" and time.monotonic() < deadline:
        time.sleep(0.02)
        job = ac.api.get(ac.url(f"jobs/{job_id}")).json()
    assert set(job) == {"job_id", "status", "created_at", "updated_at"}
    assert job["status"] == "done"
    assert _profile(ac, "u1") is None and _profile(ac, "u3") is None
    assert ac.stats()["profiles_written"] == 0


def test_zero_based_error_rows(ac):
    ac.control("POST", "settings", json={"import_error_row_base": 0})
    job = ac.wait_job(_start(ac, "profiles", data=_ndjson(ROWS), headers=NDJSON))
    assert [e["row"] for e in job["errors"]] == [1]  # the second row, counted from 0
    ac.control("POST", "settings", json={"import_error_row_base": 1})
    job = ac.wait_job(_start(ac, "profiles", data=_ndjson(ROWS), headers=NDJSON))
    assert [e["row"] for e in job["errors"]] == [2]


def test_stalled_jobs_never_end_and_apply_nothing(ac):
    ac.control("POST", "settings", json={"import_job_stalls": True})
    job_id = _start(ac, "profiles", data=_ndjson(ROWS), headers=NDJSON)
    time.sleep(0.3)
    assert ac.api.get(ac.url(f"jobs/{job_id}")).json()["status"] == "running"
    assert _profile(ac, "u1") is None


@pytest.mark.parametrize(
    "setting",
    [
        {"import_job_style": "chatty"},
        {"import_formats": ["xml"]},
        {"import_formats": "csv"},
        {"import_error_row_base": 2},
        {"import_job_stalls": 1},
    ],
)
def test_bad_import_switches_are_refused(ac, setting):
    response = ac.anon.post(f"{ac.conn['control_url']}/settings", json=setting)
    assert response.status_code == 400
    assert next(iter(setting)) in response.json()["error"]


def test_reset_restores_the_import_switches(ac):
    ac.control("POST", "settings", json={"import_job_style": "minimal", "import_formats": []})
    ac.control("POST", "reset")
    settings = ac.control("GET", "settings").json()
    assert settings["import_job_style"] == "detailed"
    assert settings["import_formats"] == ["ndjson", "csv"]
