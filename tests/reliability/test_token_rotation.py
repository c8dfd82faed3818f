"""Refresh token rotation across runs (issue 16, item 5).

An org whose connected app rotates refresh tokens (and, strictest reading, revokes the whole
token family when a retired token is presented again). The tap and the events target are
configured with the same refresh token and the same `token_store_dir`, as the Meltano project
configures them, and log in separately: ten rounds in which both start at the same moment
must all succeed, and no token may appear in any output or file but the store's own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from salesforce_appcues_sandbox.server import Sandbox
from salesforce_appcues_sandbox.testing import SandboxControl, salesforce_config
from tap_salesforce_appcues.events import EVENT_SCHEMA  # what the tap sends

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
ROUNDS = 10
# The warning TokenSource logs when Salesforce refuses a refresh token and it falls back to an
# older one. Matched exactly: a bare "refused" also occurs in setting descriptions, which the
# SDK dumps at DEBUG level with the config schema.
FALLBACK = b"refresh token (invalid_grant); trying the"


@pytest.fixture(scope="module")
def rotating() -> Iterator[tuple[Sandbox, set[str]]]:
    """A sandbox that rotates refresh tokens; the set collects every token it issues."""
    options = {"rotate_refresh_tokens": True, "refresh_token_reuse_revokes_family": True}
    with Sandbox(options={"salesforce": options}) as running:
        issued: set[str] = set()
        oauth = running.salesforce.oauth
        original = oauth.token

        def token(form: dict[str, str], basic_auth: Any) -> dict[str, Any]:
            body: dict[str, Any] = original(form, basic_auth)
            issued.update(str(body[k]) for k in ("access_token", "refresh_token") if k in body)
            return body

        oauth.token = token  # records what it issues, answers unchanged
        with SandboxControl.of(running.connection, "salesforce", timeout=60) as control:
            control.seed({"seed": 3, "Account": 3, "Contact": 20})
        yield running, issued


def _salesforce_config(sb: Sandbox, store: Path) -> dict[str, Any]:
    return {
        **salesforce_config(sb.connection),
        "token_store_dir": str(store),
        "retry_base_delay": 0.05,
        "request_timeout": 30,
    }


def _catalog(tap_config: Path, workdir: Path) -> Path:
    found = subprocess.run(
        [BIN / "tap-salesforce-appcues", "--config", tap_config, "--discover"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=workdir,
        check=False,
    )
    assert found.returncode == 0, found.stderr[-3000:]
    catalog = json.loads(found.stdout)
    for stream in catalog["streams"]:
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == []:
                entry["metadata"]["selected"] = stream["tap_stream_id"] == "Contact"
    path = workdir / "catalog.json"
    path.write_text(json.dumps(catalog))
    return path


def _events(number: int) -> bytes:
    lines = [{"type": "SCHEMA", "stream": "appcues_events", "schema": EVENT_SCHEMA,
              "key_properties": ["id"]}]  # fmt: skip
    lines.append(
        {
            "type": "RECORD",
            "stream": "appcues_events",
            "record": {
                "id": str(uuid.uuid4()),
                "name": "appcues:goal_reached",
                "timestamp": f"2026-03-04T05:{number:02d}:07.123Z",
                "user_id": f"nobody-{number}",
                "attributes": {"goalName": "Activated"},
                "context": {},
            },
        }
    )
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def test_ten_rounds_of_tap_and_events_target_at_once_all_log_in(rotating, tmp_path, harness):
    sb, issued = rotating
    store = tmp_path / "salesforce-tokens"
    sf_config = _salesforce_config(sb, store)
    tap_config = tmp_path / "tap.json"
    tap_config.write_text(json.dumps({**sf_config, "user_objects": ["Contact"], "lag": 1}))
    target_config = tmp_path / "target.json"
    target_config.write_text(json.dumps({**sf_config, "state_dir": str(tmp_path / "state")}))
    catalog = _catalog(tap_config, tmp_path)  # the first login: spends the configured token
    env = {**os.environ, **harness.debug_env}
    outputs: list[str] = []
    for number in range(1, ROUNDS + 1):
        tap = subprocess.Popen(
            [BIN / "tap-salesforce-appcues", "--config", tap_config, "--catalog", catalog],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=tmp_path,
        )
        target = subprocess.Popen(
            [BIN / "target-salesforce-events", "--config", target_config],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=tmp_path,
        )
        target_out, target_err = target.communicate(_events(number), timeout=120)
        tap_out, tap_err = tap.communicate(timeout=120)
        text = b"".join((tap_out, tap_err, target_out, target_err)).decode("utf-8", "replace")
        outputs.append(text)
        harness.remember(f"token rotation round {number}", text)
        assert tap.returncode == 0, f"round {number}: tap\n{tap_err.decode()[-3000:]}"
        assert target.returncode == 0, f"round {number}: target\n{target_err.decode()[-3000:]}"
        assert b'"type":"RECORD"' in tap_out.replace(b" ", b""), f"round {number}: no records"
        assert FALLBACK not in tap_err + target_err, f"round {number}: needed a fallback"

    configured = sf_config["refresh_token"]
    refresh_tokens = {t for t in issued if t.startswith("5Aep861")}
    # The discovery, then two logins a round: each rotated the token once.
    assert len(refresh_tokens) == 1 + 2 * ROUNDS
    stored = [json.loads(p.read_text())["refresh_token"] for p in store.glob("*.json")]
    assert len(stored) == 1 and stored[0] in refresh_tokens
    files = "".join(
        p.read_text("utf-8", "replace") for p in (tmp_path / "state").rglob("*") if p.is_file()
    )
    for secret in {configured, sf_config["client_secret"], *issued}:
        assert not any(secret in text for text in outputs), "a token reached a log"
        assert secret not in files
