"""REST handlers of Bulk API 2.0 ingest (`jobs/ingest/...`), in Salesforce's wire format.

A mixin of `RestApi`: the service sets `ingest`; `urls.py` maps the paths to these names.
"""

from __future__ import annotations

import gzip
import zlib
from typing import TYPE_CHECKING

from .ingest import IngestJobs
from .models import SalesforceError
from .wire import ApiResult

if TYPE_CHECKING:
    from .responses import ApiCall


class IngestHandlers:
    ingest: IngestJobs

    def ingest_create(self, call: ApiCall) -> ApiResult:
        return ApiResult(200, self.ingest.create(call.json(), call.version))

    def ingest_list(self, call: ApiCall) -> ApiResult:
        return ApiResult(200, self.ingest.all_jobs())

    def ingest_get(self, call: ApiCall) -> ApiResult:
        return ApiResult(200, self.ingest.get(call.params["job"]))

    def ingest_state(self, call: ApiCall) -> ApiResult:
        return ApiResult(200, self.ingest.set_state(call.params["job"], call.json()))

    def ingest_delete(self, call: ApiCall) -> ApiResult:
        self.ingest.delete(call.params["job"])
        return ApiResult(204)

    def ingest_upload(self, call: ApiCall) -> ApiResult:
        body = call.body
        encoding = call.headers.get("content-encoding", "").strip().lower()
        if encoding in ("gzip", "deflate"):  # REST accepts compressed request bodies
            try:
                body = gzip.decompress(body) if encoding == "gzip" else zlib.decompress(body)
            except (OSError, EOFError, zlib.error):
                raise SalesforceError(
                    400, "INVALID_REQUEST", f"The body is not valid {encoding} data"
                ) from None
        self.ingest.upload(call.params["job"], body)
        return ApiResult(201)

    def ingest_results(self, call: ApiCall) -> ApiResult:
        data = self.ingest.results(call.params["job"], call.params["kind"])
        headers = {}
        if "gzip" in call.headers.get("accept-encoding", "").lower():
            data = gzip.compress(data, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        return ApiResult(200, raw=data, media_type="text/csv; charset=UTF-8", headers=headers)
