"""Fixtures for the Appcues sandbox tests: a running service and plain `requests` sessions.

The service comes from the shared `sandbox` fixture once the whole sandbox can be built;
until then (the Salesforce half still under construction) from a test-local uvicorn/TLS
server running only AppcuesService. Either way the tests talk HTTPS to a real listener.
"""

from __future__ import annotations

import importlib
import json
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn

from salesforce_appcues_sandbox.appcues.service import AppcuesService
from salesforce_appcues_sandbox.common.clock import SandboxClock
from salesforce_appcues_sandbox.common.tls import ensure_certificate


@dataclass
class Appcues:
    """One running Appcues emulator and sessions to talk to it."""

    service: AppcuesService
    conn: dict[str, Any]
    ca: str
    api: requests.Session  # authenticated with the published key:secret
    anon: requests.Session  # no credentials at all

    def url(self, path: str) -> str:
        return f"{self.conn['base_url']}/v2/accounts/{self.conn['account_id']}/{path.lstrip('/')}"

    def control(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        response = self.anon.request(method, f"{self.conn['control_url']}/{path}", **kwargs)
        assert response.status_code < 400, response.text
        return response

    def stats(self) -> dict[str, Any]:
        return self.control("GET", "stats").json()

    def import_events(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        """Loads events through the real bulk import route and waits for the job."""
        body = "".join(json.dumps(e) + "\n" for e in events)
        response = self.api.post(
            self.url("import/events"), data=body, headers={"Content-Type": "application/x-ndjson"}
        )
        assert response.status_code == 202, response.text
        job = self.wait_job(response.json()["job_id"])
        assert job["status"] == "complete" and job["failed_rows"] == 0, job
        return job

    def wait_job(self, job_id: str, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job = self.api.get(self.url(f"jobs/{job_id}")).json()
            if job["status"] in ("complete", "failed") or time.monotonic() > deadline:
                return job
            time.sleep(0.02)


def _session(ca: str, auth: tuple[str, str] | None = None) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE is preset on these machines
    session.verify = ca
    if auth:
        session.auth = auth
    return session


def _whole_sandbox_available() -> bool:
    try:
        importlib.import_module("salesforce_appcues_sandbox.salesforce.service")
    except Exception:  # the Salesforce half is still being built: serve Appcues alone
        return False
    return True


@pytest.fixture(scope="session")
def appcues_running(request: pytest.FixtureRequest):
    if _whole_sandbox_available():
        sandbox = request.getfixturevalue("sandbox")
        yield sandbox.appcues, sandbox.connection["appcues"], sandbox.connection["ca_bundle"]
        return
    with tempfile.TemporaryDirectory(prefix="appcues-test-") as tmp:
        cert = ensure_certificate(Path(tmp))
        service = AppcuesService(SandboxClock(), None)
        server = uvicorn.Server(
            uvicorn.Config(
                service.build_app(),
                host="127.0.0.1",
                port=0,
                ssl_certfile=str(cert.cert_chain),
                ssl_keyfile=str(cert.private_key),
                log_level="warning",
                access_log=False,
                lifespan="off",
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "appcues test server did not start"
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        service.base_url = f"https://127.0.0.1:{port}"
        conn = {**service.connection_info(), "control_url": service.control_url}
        try:
            yield service, conn, str(cert.ca_bundle)
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            service.close()


@pytest.fixture
def ac(appcues_running):
    """The emulator with a clean account: reset state, no faults, real clock."""
    service, conn, ca = appcues_running
    handle = Appcues(
        service=service,
        conn=conn,
        ca=ca,
        api=_session(ca, (conn["api_key"], conn["api_secret"])),
        anon=_session(ca),
    )
    handle.control("POST", "reset")
    handle.control("DELETE", "faults")
    handle.control("POST", "clock", json={"reset": True})
    # Tests poll and write quickly; the limit itself is tested with explicit settings.
    handle.control("POST", "settings", json={"rate_limit_per_second": 100_000})
    yield handle
    # Leave the shared sandbox as found: other packages' tests use the same session.
    handle.control("POST", "reset")
    handle.control("DELETE", "faults")
    handle.control("POST", "clock", json={"reset": True})
    handle.api.close()
    handle.anon.close()
