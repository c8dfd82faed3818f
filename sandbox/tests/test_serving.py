"""`salesforce-appcues-sandbox serve` as a child process: connection file, HTTPS, SIGTERM."""

import json

import requests

from salesforce_appcues_sandbox.server import SandboxProcess


def _session(ca):
    session = requests.Session()
    session.trust_env = False
    session.verify = ca
    return session


def test_serve_writes_the_connection_file_and_stops_on_sigterm(tmp_path):
    data_dir = tmp_path / "data"
    proc = SandboxProcess("--seed", "demo", data_dir=data_dir)
    with proc:
        conn = json.loads(proc.connection_file.read_text())
        assert (proc.connection_file.stat().st_mode & 0o777) == 0o600
        sf = conn["salesforce"]
        assert {
            "login_url",
            "instance_url",
            "client_id",
            "client_secret",
            "refresh_token",
            "username",
            "control_url",
        } <= set(sf)
        assert sf["login_url"] == sf["instance_url"] and sf["instance_url"].startswith(
            "https://127.0.0.1:"
        )
        assert {"base_url", "account_id", "api_key", "api_secret", "control_url"} <= set(
            conn["appcues"]
        )
        http = _session(conn["ca_bundle"])
        token = http.post(
            f"{sf['login_url']}/services/oauth2/token",
            data={
                "grant_type": "refresh_token",
                "client_id": sf["client_id"],
                "client_secret": sf["client_secret"],
                "refresh_token": sf["refresh_token"],
            },
        ).json()["access_token"]
        count = http.get(
            f"{sf['instance_url']}/services/data/v61.0/query",
            params={"q": "SELECT COUNT() FROM Contact"},
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        assert count["totalSize"] == 3000  # DEMO_SEED
        http.close()
        process = proc.process
    assert process.returncode == 0  # SIGTERM from stop() ends it cleanly
    assert not proc.connection_file.exists()
    assert (data_dir / "salesforce.sqlite3").exists() and (data_dir / "tls" / "ca.pem").exists()
