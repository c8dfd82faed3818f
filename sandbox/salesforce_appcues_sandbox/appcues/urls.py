"""Routes of the emulated Appcues API v2 (all under /v2/accounts/{account_id})."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route

from .responses import AppcuesResponses

ACCOUNT = "/v2/accounts/{account_id}"


def api_routes(r: AppcuesResponses) -> list[BaseRoute]:
    gate = r.api
    routes: list[BaseRoute] = [
        Route(f"{ACCOUNT}/users/{{user_id:path}}/profile", gate(r.get_profile), methods=["GET"]),
        Route(
            f"{ACCOUNT}/users/{{user_id:path}}/profile", gate(r.patch_profile), methods=["PATCH"]
        ),
        Route(
            f"{ACCOUNT}/users/{{user_id:path}}/profile",
            gate(r.delete_user_profile),
            methods=["DELETE"],
        ),
        Route(f"{ACCOUNT}/users/{{user_id:path}}/events", gate(r.post_event), methods=["POST"]),
        Route(f"{ACCOUNT}/users/{{user_id:path}}/events", gate(r.list_events), methods=["GET"]),
        Route(f"{ACCOUNT}/groups/{{group_id:path}}/profile", gate(r.get_profile), methods=["GET"]),
        Route(
            f"{ACCOUNT}/groups/{{group_id:path}}/profile", gate(r.patch_profile), methods=["PATCH"]
        ),
        Route(
            f"{ACCOUNT}/groups/{{group_id:path}}/users",
            gate(r.add_group_users),
            methods=["POST", "PATCH"],
        ),
        Route(f"{ACCOUNT}/import/{{kind}}", gate(r.start_import), methods=["POST"]),
        Route(f"{ACCOUNT}/jobs", gate(r.list_jobs), methods=["GET"]),
        Route(f"{ACCOUNT}/jobs/{{job_id}}", gate(r.get_job), methods=["GET"]),
        Route(f"{ACCOUNT}/analytics/query", gate(r.analytics_query), methods=["POST"]),
        Route(f"{ACCOUNT}/analytics/exports", gate(r.create_export), methods=["POST"]),
        Route(f"{ACCOUNT}/analytics/exports/{{job_id}}", gate(r.get_export), methods=["GET"]),
        # The presigned download: deliberately outside the gate (no Authorization).
        Route("/downloads/exports/{job_id}.json", r.download_export, methods=["GET"]),
    ]
    known = list(routes)

    async def fallback(request: Request) -> Response:
        # A known path with another method is a 405; anything else a 404 (after auth).
        if any(route.matches(request.scope)[0] == Match.PARTIAL for route in known):
            return await gate(r.method_not_allowed)(request)
        return await gate(r.not_found)(request)

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    routes.append(Route("/{rest:path}", fallback, methods=methods))
    return routes
