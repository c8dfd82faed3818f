"""User and group profiles, group membership, the track and list event routes."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest


def test_patch_creates_then_merges_a_user_profile(ac):
    assert ac.api.get(ac.url("users/u1/profile")).status_code == 404
    first = ac.api.patch(ac.url("users/u1/profile"), json={"plan": "pro", "seats": 5})
    assert first.status_code == 200
    assert first.json() == {"status": 200, "title": "OK"}
    ac.api.patch(ac.url("users/u1/profile"), json={"seats": 7, "trial": False, "ended": None})
    profile = ac.api.get(ac.url("users/u1/profile")).json()
    assert profile["user_id"] == "u1"
    assert profile["plan"] == "pro"  # untouched attributes survive a merge
    assert profile["seats"] == 7
    assert profile["trial"] is False
    assert "ended" in profile and profile["ended"] is None
    assert isinstance(profile["_updatedAt"], int)  # Appcues' own bookkeeping


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"address": {"city": "Paris"}}, "'address'"),
        ({"tags": ["a", "b"]}, "'tags'"),
        ({"_lastSeenAt": 1}, "'_lastSeenAt'"),
        (["not", "an", "object"], "object"),
    ],
)
def test_profile_values_are_checked(ac, body, needle):
    response = ac.api.patch(ac.url("users/u1/profile"), json=body)
    assert response.status_code == 400
    problem = response.json()
    assert problem["error"] is True and problem["title"] == "Bad Request"
    assert needle in problem["detail"]
    assert ac.api.get(ac.url("users/u1/profile")).status_code == 404  # nothing written


def test_profile_patch_needs_json(ac):
    response = ac.api.patch(
        ac.url("users/u1/profile"), data="plan=pro", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415
    broken = ac.api.patch(
        ac.url("users/u1/profile"), data="{", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 400


def test_delete_user_profile(ac):
    ac.api.patch(ac.url("users/u1/profile"), json={"plan": "pro"})
    ac.api.post(ac.url("users/u1/events"), json={"name": "x", "timestamp": "2026-01-01T00:00:00Z"})
    deleted = ac.api.delete(ac.url("users/u1/profile"))
    assert deleted.status_code == 204 and deleted.content == b""
    assert ac.api.get(ac.url("users/u1/profile")).status_code == 404
    assert ac.api.delete(ac.url("users/u1/profile")).status_code == 404
    # Events stay: deleting a profile does not remove analytics data.
    assert len(ac.api.get(ac.url("users/u1/events")).json()) == 1


def test_group_profiles_and_membership(ac):
    assert ac.api.get(ac.url("groups/acct_000001/profile")).status_code == 404
    assert ac.api.patch(ac.url("groups/acct_000001/profile"), json={"tier": "gold"}).ok
    ac.api.patch(ac.url("groups/acct_000001/profile"), json={"seats": 40})
    group = ac.api.get(ac.url("groups/acct_000001/profile")).json()
    assert group == {"group_id": "acct_000001", "tier": "gold", "seats": 40}
    bad = ac.api.patch(ac.url("groups/acct_000001/profile"), json={"_x": 1})
    assert bad.status_code == 400

    posted = ac.api.post(ac.url("groups/acct_000001/users"), json={"user_ids": ["u1", "u2"]})
    assert posted.status_code == 204
    patched = ac.api.patch(ac.url("groups/acct_000001/users"), json={"user_ids": ["u3", "u1"]})
    assert patched.status_code == 204
    assert ac.service.store.group_members("acct_000001") == ["u1", "u2", "u3"]
    wrong = ac.api.post(ac.url("groups/acct_000001/users"), json={"users": ["u1"]})
    assert wrong.status_code == 400
    stats = ac.stats()
    assert stats["groups_written"] == 2


def test_ids_with_reserved_characters_round_trip(ac):
    for user in ("jane@example.com", "a/b", "with space", "é"):
        quoted = quote(user, safe="")
        assert ac.api.patch(ac.url(f"users/{quoted}/profile"), json={"k": "v"}).ok
        assert ac.api.get(ac.url(f"users/{quoted}/profile")).json()["user_id"] == user


def test_track_event_requires_name_and_timestamp(ac):
    for body, needle in (
        ({"timestamp": "2026-01-01T00:00:00Z"}, "name"),
        ({"name": "Clicked"}, "timestamp"),
        ({"name": "Clicked", "timestamp": "yesterday"}, "timestamp"),
        ({"name": "Clicked", "timestamp": "2026-01-01T00:00:00Z", "attributes": [1]}, "attributes"),
    ):
        response = ac.api.post(ac.url("users/u1/events"), json=body)
        assert response.status_code == 400, body
        assert needle in response.json()["detail"]
    assert ac.stats()["stored"]["events"] == 0


def test_tracked_events_are_listed_newest_first_with_stable_ids(ac):
    for minute in range(5):
        response = ac.api.post(
            ac.url("users/u1/events"),
            json={
                "name": f"Step {minute}",
                "timestamp": f"2026-01-01T00:0{minute}:00Z",
                "attributes": {"n": minute, "nested": {"ok": True}},
                "group_id": "acct_000001",
                "context": {"url": "https://app.example.com/x"},
            },
        )
        assert response.status_code == 200
    listed = ac.api.get(ac.url("users/u1/events"), params={"limit": 3}).json()
    assert [e["name"] for e in listed] == ["Step 4", "Step 3", "Step 2"]
    assert listed[0]["timestamp"] == "2026-01-01T00:04:00.000Z"
    assert listed[0]["attributes"] == {"n": 4, "nested": {"ok": True}}
    assert listed[0]["group_id"] == "acct_000001"
    assert listed[0]["context"] == {"url": "https://app.example.com/x"}
    again = ac.api.get(ac.url("users/u1/events"), params={"limit": 3}).json()
    assert [e["id"] for e in again] == [e["id"] for e in listed]
    assert len({e["id"] for e in listed}) == 3
    paris = ac.api.get(ac.url("users/u1/events"), params={"limit": 1, "time_zone": "Europe/Paris"})
    assert paris.json()[0]["timestamp"] == "2026-01-01T01:04:00.000+01:00"
    assert ac.api.get(ac.url("users/u1/events"), params={"limit": 0}).status_code == 400
    assert ac.api.get(ac.url("users/nobody/events")).json() == []
    assert ac.stats()["events_stored"] == 5


def test_epoch_millisecond_timestamps_are_accepted(ac):
    body = {"name": "Clicked", "timestamp": 1767225600000}
    assert ac.api.post(ac.url("users/u1/events"), json=body).status_code == 200
    assert ac.api.get(ac.url("users/u1/events")).json()[0]["timestamp"] == (
        "2026-01-01T00:00:00.000Z"
    )


@pytest.mark.parametrize("stamp", [1704067200, "1704067200", 1704067200.5, 0, -5])
def test_epoch_second_timestamps_are_refused_not_stored_in_1970(ac, stamp):
    body = {"name": "Clicked", "timestamp": stamp}
    response = ac.api.post(ac.url("users/u1/events"), json=body)
    assert response.status_code == 400
    assert "epoch seconds" in response.json()["detail"]
    assert ac.stats()["stored"]["events"] == 0
    row = json.dumps({"user_id": "u1", **body}) + "\n"
    started = ac.api.post(
        ac.url("import/events"), data=row, headers={"Content-Type": "application/x-ndjson"}
    )
    job = ac.wait_job(started.json()["job_id"])
    assert job["status"] == "failed"
    assert job["errors"][0]["row"] == 1 and "epoch seconds" in job["errors"][0]["message"]
    assert ac.stats()["stored"]["events"] == 0
