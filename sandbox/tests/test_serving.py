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
    proc = SandboxProcess(
        "--seed", "demo", "--option", "salesforce.daily_api_limit=5000", data_dir=data_dir
    )
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
        )
        assert count.json()["totalSize"] == 3000  # DEMO_SEED
        assert count.headers["Sforce-Limit-Info"] == "api-usage=1/5000"  # --option reached it
        http.close()
        process = proc.process
    assert process.returncode == 0  # SIGTERM from stop() ends it cleanly
    assert not proc.connection_file.exists()
    assert (data_dir / "salesforce.sqlite3").exists() and (data_dir / "tls" / "ca.pem").exists()


def test_data_dir_keeps_records_credentials_and_ca_across_restarts(tmp_path):
    from salesforce_appcues_sandbox.server import Sandbox

    def login_and_count(sb):
        sf = sb.connection["salesforce"]
        http = _session(sb.connection["ca_bundle"])
        form = {
            "grant_type": "refresh_token",
            "client_id": sf["client_id"],
            "refresh_token": sf["refresh_token"],
        }
        token = http.post(f"{sf['login_url']}/services/oauth2/token", data=form).json()
        http.headers["Authorization"] = f"Bearer {token['access_token']}"
        return http, f"{sf['instance_url']}/services/data/v61.0"

    with Sandbox(data_dir=tmp_path) as first:
        http, base = login_and_count(first)
        created = http.post(f"{base}/sobjects/Account/", json={"Name": "Kept"}).json()["id"]
        conn = first.connection
        http.close()
    with Sandbox(data_dir=tmp_path, seed="demo") as second:
        assert (
            second.connection["salesforce"]["refresh_token"] == conn["salesforce"]["refresh_token"]
        )
        assert second.connection["ca_bundle"] == conn["ca_bundle"]
        http, base = login_and_count(second)
        assert http.get(f"{base}/sobjects/Account/{created}").json()["Name"] == "Kept"
        # --seed demo leaves an org that already holds data alone
        count = http.get(f"{base}/query", params={"q": "SELECT COUNT() FROM Account"}).json()
        assert count["totalSize"] == 1
        following = http.post(f"{base}/sobjects/Account/", json={"Name": "Next"}).json()["id"]
        assert following > created  # id counters persist too
        http.close()


def test_clean_sandbox_fixture_empties_both_services(clean_sandbox):
    sf = clean_sandbox.connection["salesforce"]
    http = _session(clean_sandbox.connection["ca_bundle"])
    stats = http.get(f"{sf['control_url']}/stats").json()
    assert stats["records_written"] == {} and stats["total_calls"] == 0
    assert http.get(f"{sf['control_url']}/faults").json()["rules"] == []
    http.close()
