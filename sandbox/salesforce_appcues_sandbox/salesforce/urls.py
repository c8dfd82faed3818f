"""Routes of the REST API under /services/data/vXX.X/: (method, path regex) -> handler name.

Paths are matched on the raw (still percent-encoded) path so an encoded `/` inside an
external-id value stays part of the value; groups are decoded before they reach a handler.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

_ID = r"(?P<id>[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?)"
_OBJ = r"(?P<obj>\w+)"

# Order matters: the first matching pattern wins.
ROUTES: list[tuple[str, str, dict[str, str]]] = [
    ("", "", {"GET": "resources"}),
    ("sobjects", r"sobjects/?", {"GET": "describe_global"}),
    ("sobject", rf"sobjects/{_OBJ}/?", {"GET": "sobject_info", "POST": "create"}),
    ("describe", rf"sobjects/{_OBJ}/describe/?", {"GET": "describe"}),
    ("updated", rf"sobjects/{_OBJ}/updated/?", {"GET": "get_updated"}),
    ("deleted", rf"sobjects/{_OBJ}/deleted/?", {"GET": "get_deleted"}),
    (
        "record",
        rf"sobjects/{_OBJ}/{_ID}/?",
        {"GET": "get_record", "PATCH": "update", "DELETE": "delete"},
    ),
    (
        "external-id",
        rf"sobjects/{_OBJ}/(?P<field>\w+)/(?P<value>[^/]+)/?",
        {"GET": "get_by_external_id", "PATCH": "upsert"},
    ),
    ("limits", r"limits/?", {"GET": "limits_info"}),
    ("composite-batch", r"composite/batch/?", {"POST": "composite_batch"}),
    ("composite", r"composite/?", {"POST": "composite"}),
    (
        "collections",
        r"composite/sobjects/?",
        {"POST": "collection_create", "PATCH": "collection_update", "DELETE": "collection_delete"},
    ),
    (
        "collections-upsert",
        rf"composite/sobjects/{_OBJ}/(?P<field>\w+)/?",
        {"PATCH": "collection_upsert"},
    ),
    ("collections-retrieve", rf"composite/sobjects/{_OBJ}/?", {"GET": "collection_retrieve"}),
    ("query", r"query/?", {"GET": "query"}),
    ("queryAll", r"queryAll/?", {"GET": "query_all"}),
    ("query-more", r"(?:query|queryAll)/(?P<locator>[^/]+)/?", {"GET": "query_more"}),
    ("bulk-jobs", r"jobs/query/?", {"POST": "bulk_create", "GET": "bulk_list"}),
    (
        "bulk-job",
        r"jobs/query/(?P<job>\w+)/?",
        {"GET": "bulk_get", "PATCH": "bulk_abort", "DELETE": "bulk_delete"},
    ),
    ("bulk-results", r"jobs/query/(?P<job>\w+)/results/?", {"GET": "bulk_results"}),
    ("ingest-jobs", r"jobs/ingest/?", {"POST": "ingest_create", "GET": "ingest_list"}),
    (
        "ingest-job",
        r"jobs/ingest/(?P<job>\w+)/?",
        {"GET": "ingest_get", "PATCH": "ingest_state", "DELETE": "ingest_delete"},
    ),
    ("ingest-upload", r"jobs/ingest/(?P<job>\w+)/batches/?", {"PUT": "ingest_upload"}),
    (
        "ingest-results",
        # simple-salesforce asks for `unprocessedRecords`, the docs spell `unprocessedrecords`
        r"jobs/ingest/(?P<job>\w+)/(?P<kind>(?i:successfulResults|failedResults|unprocessedRecords))/?",
        {"GET": "ingest_results"},
    ),
]

# Bulk API 1.0 under /services/async/XX.X/ (no "v" before the version).
ASYNC_ROUTES: list[tuple[str, str, dict[str, str]]] = [
    ("job", r"job/?", {"POST": "create_job"}),
    ("job-info", r"job/(?P<job>\w+)/?", {"GET": "get_job", "POST": "set_job_state"}),
    ("batches", r"job/(?P<job>\w+)/batch/?", {"GET": "list_batches", "POST": "add_batch"}),
    ("batch", r"job/(?P<job>\w+)/batch/(?P<batch>\w+)/?", {"GET": "get_batch"}),
    ("batch-request", r"job/(?P<job>\w+)/batch/(?P<batch>\w+)/request/?", {"GET": "get_request"}),
    ("results", r"job/(?P<job>\w+)/batch/(?P<batch>\w+)/result/?", {"GET": "list_results"}),
    (
        "result",
        r"job/(?P<job>\w+)/batch/(?P<batch>\w+)/result/(?P<result>\w+)/?",
        {"GET": "get_result"},
    ),
]
ASYNC_PATH = re.compile(r"^/services/async/(?P<version>\d{1,3}\.\d)(?:/(?P<rest>.*))?$")

_COMPILED = [(name, re.compile(f"^{rx}$"), methods) for name, rx, methods in ROUTES]
_ASYNC_COMPILED = [(name, re.compile(f"^{rx}$"), methods) for name, rx, methods in ASYNC_ROUTES]
VERSION_PATH = re.compile(r"^/services/data/v(?P<version>\d{1,3}\.\d)(?:/(?P<rest>.*))?$")


class RouteMatch:
    def __init__(self, handler: str | None, params: dict[str, str], allowed: list[str]) -> None:
        self.handler = handler
        self.params = params
        self.allowed = allowed


def match(method: str, rest: str, *, bulk1: bool = False) -> RouteMatch | None:
    """The handler for `rest` (the path after vXX.X/, or after async/XX.X/ with `bulk1`);
    None if no route has that path."""
    for _name, rx, methods in _ASYNC_COMPILED if bulk1 else _COMPILED:
        m = rx.match(rest)
        if m is None:
            continue
        params = {k: unquote(v) for k, v in m.groupdict().items() if v is not None}
        return RouteMatch(methods.get(method), params, sorted(methods))
    return None
