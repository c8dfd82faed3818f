"""No secret leaks (issue 11): every plugin output of this session (all at LOGLEVEL=DEBUG:
the fault matrix, bad input, wrong configs, the `meltano run` logs) and every file the targets
wrote (dead letters, ledgers) is scanned for every secret: the Salesforce client secret and
refresh token, every access token the sandbox issued, the private key, the Appcues API secret
and the Basic credentials built from it. This module also runs its own faulted pipelines
(with session expiry, so tokens are refreshed mid-run), so it is meaningful when run alone.
"""

from __future__ import annotations

import base64
from types import SimpleNamespace

import pytest

pytestmark = pytest.mark.slow

H = SimpleNamespace()
SF_QUERY = r"/services/data/v[\d.]+/query"
SF_WRITE = r"/services/data/v[\d.]+/composite(?:/sobjects|/?$)"  # collections or Composite
SF_INGEST_JOB = r"/services/data/v[\d.]+/jobs/ingest/\w+$"
SF_INGEST_UPLOAD = r"/services/data/v[\d.]+/jobs/ingest/\w+/batches$"


@pytest.fixture(autouse=True)
def _bind(harness):
    H.__dict__.update({k: getattr(harness, k) for k in dir(harness) if not k.startswith("__")})


def fault(action, path, **fields):
    method = fields.pop("method", None)
    return {"action": action, "times": 1, "match": {"path": path, "method": method}, **fields}


@pytest.fixture(scope="module")
def faulted_runs(world, harness, tmp_path_factory):
    """One faulted run of each pipeline at debug level; their outputs join the session's."""
    world.reset(events=True)
    profiles = harness.profiles_pipeline(world, tmp_path_factory.mktemp("secrets-profiles"))
    world.salesforce.faults(
        fault("expire_session", SF_QUERY),
        fault("error", SF_QUERY, status=500),
        fault("reset", SF_QUERY),
    )
    world.appcues.faults(
        fault("error", r"/profile$", status=503, retry_after=1),
        fault("error", r"/groups/.*/profile$", status=401),
    )
    first = profiles.run()
    world.clear_faults()
    second = profiles.run()
    events = harness.events_pipeline(world, tmp_path_factory.mktemp("secrets-events"))
    world.salesforce.faults(
        fault("expire_session", SF_WRITE),
        fault("error", SF_WRITE, status=503),
        fault("reset", SF_QUERY),
    )
    third = events.run()
    world.clear_faults()
    # Bulk API 2.0 ingest (issue 20): sessions expire during an upload and a poll, the first
    # job fails partway; the ingest journal (the ledger's SQLite) and the logs are scanned.
    bulk = harness.events_pipeline(world, tmp_path_factory.mktemp("secrets-bulk"), api_type="BULK2")
    world.salesforce.faults(
        fault("expire_session", SF_INGEST_JOB, method="GET"),
        fault("expire_session", SF_INGEST_UPLOAD, method="PUT"),
    )
    world.salesforce.call("POST", "bulk", {"fail_ingest_jobs": 1, "ingest_fail_after_records": 2})
    try:
        fourth = bulk.run()
    finally:
        world.salesforce.call(
            "POST", "bulk", {"fail_ingest_jobs": 0, "ingest_fail_after_records": 0}
        )
    fifth = bulk.run()
    world.clear_faults()
    return [first, second, third, fourth, fifth]


def test_no_secret_in_any_output_or_file(world, faulted_runs):
    assert not faulted_runs[0].ok, "the Appcues 401 should end the first profiles run"
    assert faulted_runs[1].ok and faulted_runs[2].ok
    assert not faulted_runs[3].ok, "the Failed ingest job should end the first Bulk run"
    assert faulted_runs[4].ok
    secrets = dict(world.secrets())
    ac = world.connection["appcues"]
    basic = base64.b64encode(f"{ac['api_key']}:{ac['api_secret']}".encode()).decode()
    secrets["appcues Basic credentials"] = basic
    tokens = [label for label in secrets if label.startswith("access token")]
    assert len(tokens) >= 2, "session expiry should have made the plugins fetch new tokens"
    outputs = list(H.outputs)
    scanned = sum(len(text) for _, text in outputs)
    hits = [
        f"{label} in {where}"
        for where, text in outputs
        for label, secret in secrets.items()
        if secret and secret in text
    ]
    H.figures.secret_scan = {
        "outputs": len(outputs),
        "characters": scanned,
        "secrets": len(secrets),
        "hits": len(hits),
    }
    assert scanned > 0
    assert not hits, hits
