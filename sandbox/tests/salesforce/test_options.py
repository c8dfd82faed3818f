"""Service options: refresh-token rotation, token lifetime, extended limit header, allocation,
a sandbox org's JWT audience."""

import time

import jwt
import pytest

from salesforce_appcues_sandbox.server import Sandbox


@pytest.fixture(scope="module")
def configured():
    options = {
        "rotate_refresh_tokens": True,
        "token_ttl_seconds": 60,
        "limit_info_format": "extended",
        "daily_api_limit": 5000,
        "sandbox_org": True,
    }
    with Sandbox(options={"salesforce": options}) as running:
        yield running


@pytest.fixture
def org(configured, org_factory):
    org = org_factory(
        configured.connection["salesforce"], configured.connection["ca_bundle"], login=False
    )
    org.login_with_password()
    return org


def test_refresh_token_rotation(org):
    first = org.token()
    assert first.status_code == 200
    rotated = first.json()["refresh_token"]
    assert rotated != org.conn["refresh_token"]
    reused = org.token()
    assert reused.status_code == 400
    assert reused.json() == {
        "error": "invalid_grant",
        "error_description": "expired access/refresh token",
    }
    assert org.token(refresh_token=rotated).status_code == 200


def test_extended_limit_header_and_allocation(org):
    header = org.http.get(org.url("limits")).headers["Sforce-Limit-Info"]
    assert header.startswith("api-usage=1/5000; per-app-api-usage=")


def test_short_token_lifetime(org):
    assert org.http.get(org.url("limits")).status_code == 200
    org.anon.post(f"{org.control}/clock", json={"advance_seconds": 61}).raise_for_status()
    assert org.http.get(org.url("limits")).status_code == 401


def test_a_sandbox_org_wants_test_salesforce_com_as_jwt_audience(org):
    def login(aud):
        claims = {
            "iss": org.conn["client_id"],
            "sub": org.conn["username"],
            "aud": aud,
            "exp": int(time.time()) + 180,
        }
        with open(org.conn["jwt_private_key_file"], "rb") as fh:
            assertion = jwt.encode(claims, fh.read(), algorithm="RS256")
        form = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
        return org.anon.post(f"{org.conn['login_url']}/services/oauth2/token", data=form)

    assert login("https://test.salesforce.com").status_code == 200
    for refused in ("https://login.salesforce.com", org.conn["login_url"]):
        response = login(refused)
        assert response.status_code == 400
        assert response.json()["error_description"] == "audience is invalid"


@pytest.mark.parametrize("revokes_family", [False, True])
def test_rotation_retires_the_token_presented_and_optionally_its_family_on_reuse(
    tmp_path, revokes_family
):
    from salesforce_appcues_sandbox.common.clock import SandboxClock
    from salesforce_appcues_sandbox.salesforce.oauth import OAuthError, OAuthServer

    server = OAuthServer(
        SandboxClock(),
        tmp_path,
        org_id="00D000000000001AAA",
        user_id="005000000000001AAA",
        username="u@example.com",
        rotate_refresh_tokens=True,
        reuse_revokes_family=revokes_family,
    )
    creds = server.credentials

    def refresh(token):
        form = {"grant_type": "refresh_token", "client_id": creds.client_id}
        return server.token({**form, "refresh_token": token}, None)

    first = refresh(creds.refresh_token)["refresh_token"]
    second = refresh(first)["refresh_token"]
    for spent in (creds.refresh_token, first):
        with pytest.raises(OAuthError, match="invalid_grant"):
            refresh(spent)
    if revokes_family:  # the reuse above revoked the live descendant too
        with pytest.raises(OAuthError, match="invalid_grant"):
            refresh(second)
    else:
        assert refresh(second)["refresh_token"] not in (first, second)
