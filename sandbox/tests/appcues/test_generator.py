"""The seed: deterministic, linked to the Salesforce ids, and a realistic event mix."""

from __future__ import annotations

from salesforce_appcues_sandbox.common import identities

SPEC = {
    "seed": 7,
    "Contact": 60,
    "Lead": 25,
    "Account": 6,
    "Workspace__c": 2,
    "unknown_users": 9,
    "events": 1800,
    "start": "2026-01-01T00:00:00Z",
    "end": "2026-02-15T00:00:00Z",
}
WINDOW = {"start_time": "2026-01-01", "end_time": "2026-02-15"}


def _all_events(ac, columns):
    rows = []
    for offset in (0, 1000):
        spec = {"columns": columns, "limit": 1000, "offset": offset, **WINDOW}
        # No order_by: raw rows come in (timestamp, arrival) order, a stable total order.
        response = ac.api.post(ac.url("analytics/query"), json=spec)
        assert response.status_code == 200, response.text
        rows += response.json()
    return rows


def test_seed_links_user_and_group_ids_to_the_salesforce_seed(ac):
    result = ac.control("POST", "seed", json=SPEC).json()
    expected_users = {
        identities.user_id(kind, i)
        for kind, count in (("contact", 60), ("lead", 25))
        for i in range(count)
        if identities.has_user_id(7, kind, i)
    } | {identities.unknown_user_id(i) for i in range(9)}
    assert 0 < len(expected_users) < 94  # some contacts and leads have no product id
    assert result["users"] == len(expected_users)
    for kind, count in (("contact", 60), ("lead", 25)):
        for i in range(count):
            status = ac.api.get(ac.url(f"users/{identities.user_id(kind, i)}/profile")).status_code
            assert status == (200 if identities.has_user_id(7, kind, i) else 404), (kind, i)
    groups = [identities.account_id(i) for i in range(6)] + [identities.workspace_id(0)]
    for group in groups:
        assert ac.api.get(ac.url(f"groups/{group}/profile")).status_code == 200
    assert ac.api.get(ac.url(f"groups/{identities.account_id(6)}/profile")).status_code == 404
    rows = _all_events(ac, ["id", "user_id", "group_id"])
    assert len(rows) == 1800
    assert {r["user_id"] for r in rows} <= expected_users
    assert {r["group_id"] for r in rows} <= {*groups, identities.workspace_id(1)}
    assert len({r["id"] for r in rows}) == 1800
    profile = ac.api.get(ac.url(f"users/{identities.unknown_user_id(0)}/profile")).json()
    assert profile["plan"] in ("free", "starter", "pro", "enterprise")
    members = ac.service.store.user_groups(identities.unknown_user_id(0))
    assert len(members) == 1 and members[0] in {*groups, identities.workspace_id(1)}


def test_seed_is_deterministic_and_idempotent(ac):
    ac.control("POST", "seed", json=SPEC)
    columns = ["id", "timestamp", "user_id", "name", "attributes"]
    first = _all_events(ac, columns)
    ac.control("POST", "seed", json=SPEC)  # the same spec again adds nothing
    assert _all_events(ac, columns) == first
    ac.control("POST", "reset")
    ac.control("POST", "seed", json=SPEC)
    assert _all_events(ac, columns) == first
    ac.control("POST", "reset")
    ac.control("POST", "seed", json={**SPEC, "seed": 8})
    assert [r["id"] for r in _all_events(ac, ["id"])] != [r["id"] for r in first]


def test_seeded_event_mix_carries_the_documented_attributes(ac):
    ac.control("POST", "seed", json=SPEC)
    rows = _all_events(ac, ["name", "attributes", "context", "flow_id", "score", "feedback"])
    by_name = {}
    for row in rows:
        by_name.setdefault(row["name"], []).append(row)
    for name in (
        "appcues:flow_started",
        "appcues:flow_completed",
        "appcues:flow_skipped",
        "appcues:nps_score",
        "appcues:nps_feedback",
        "appcues:nps_score_and_feedback",
        "appcues:checklist_item_completed",
        "appcues:goal_reached",
        "appcues:page_view",
    ):
        assert name in by_name, name
    click_to_track = [n for n in by_name if not n.startswith("appcues:")]
    assert len(click_to_track) >= 3
    for row in by_name["appcues:flow_completed"]:
        attrs = row["attributes"]
        assert {"flowId", "flowName", "flowVersion"} <= set(attrs)
        assert row["flow_id"] == attrs["flowId"]
    for row in by_name["appcues:nps_score"]:
        assert 0 <= row["score"] <= 10 and row["feedback"] is None
    for row in by_name["appcues:nps_feedback"]:
        assert row["feedback"] and row["score"] is None
    for row in by_name["appcues:checklist_item_completed"]:
        assert {"checklistId", "checklistName", "itemId", "itemIndex", "itemLabel"} <= set(
            row["attributes"]
        )
    for row in by_name["appcues:goal_reached"]:
        assert {"goalId", "goalName"} <= set(row["attributes"])
    for row in rows:
        assert row["context"]["url"].startswith("https://")
        assert row["context"]["title"]

    nps_flow = by_name["appcues:nps_score"][0]["flow_id"]
    nps = ac.api.post(
        ac.url("analytics/query"),
        json={
            "columns": ["timestamp", "user_id", "name", "score", "feedback"],
            "conditions": [
                ["flow_id", "==", nps_flow],
                ["name", "in", ["appcues:nps_score", "appcues:nps_feedback"]],
            ],
            "order_by": [["timestamp", "desc"]],
            **WINDOW,
        },
    ).json()
    expected = len(by_name["appcues:nps_score"]) + len(by_name["appcues:nps_feedback"])
    assert len(nps) == expected
    assert [r["timestamp"] for r in nps] == sorted((r["timestamp"] for r in nps), reverse=True)


def test_seed_counts_in_stats_and_bad_bodies(ac):
    ac.control("POST", "seed", json=SPEC)
    stats = ac.stats()
    assert stats["events_stored"] == 1800
    assert stats["stored"]["events"] == 1800
    assert stats["stored"]["groups"] == 8
    control = f"{ac.conn['control_url']}/seed"
    assert ac.anon.post(control, json={"Contact": -1}).status_code == 400
    assert (
        ac.anon.post(control, json={"start": "2026-02-01", "end": "2026-01-01"}).status_code == 400
    )


def test_demo_seed_uses_the_shared_sizes(ac):
    result = ac.service.seed_demo()
    assert result["events"] == identities.DEMO_SEED["events"]
    assert (
        result["groups"] == identities.DEMO_SEED["Account"] + identities.DEMO_SEED["Workspace__c"]
    )


def test_analytics_delay_hides_only_the_newest_seeded_events(ac):
    ac.control("POST", "clock", json={"now": "2026-02-15T00:00:00Z", "freeze": True})
    ac.control("POST", "seed", json=SPEC)
    ac.control("POST", "settings", json={"analytics_delay_seconds": 86400})
    spec = {"metrics": ["events"], **WINDOW}
    visible = ac.api.post(ac.url("analytics/query"), json=spec).json()[0]["events"]
    assert 1600 < visible < 1800  # the last day of 45 is still in the pipeline
    ac.control("POST", "clock", json={"advance_seconds": 86400})
    assert ac.api.post(ac.url("analytics/query"), json=spec).json()[0]["events"] == 1800
