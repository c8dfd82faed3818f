"""OAuth grants, their errors, session expiry, revocation and userinfo."""

import base64
import time

import jwt
import pytest


def _post_token(org, data, **kwargs):
    return org.anon.post(f"{org.conn['login_url']}/services/oauth2/token", data=data, **kwargs)


def _assert_token_shape(body, org):
    assert set(body) >= {
        "access_token",
        "instance_url",
        "id",
        "token_type",
        "issued_at",
        "signature",
    }
    assert body["token_type"] == "Bearer"
    assert body["instance_url"] == org.conn["instance_url"]
    assert body["issued_at"].isdigit() and len(body["issued_at"]) == 13  # epoch milliseconds
    assert body["access_token"].startswith("00D")


def test_refresh_token_grant_gives_a_working_token(org):
    response = org.token()
    assert response.status_code == 200
    body = response.json()
    _assert_token_shape(body, org)
    assert "refresh_token" not in body  # no rotation by default
    api = org.anon.get(
        org.url("limits"), headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert api.status_code == 200


def test_password_grant(org):
    data = {
        "grant_type": "password",
        "client_id": org.conn["client_id"],
        "client_secret": org.conn["client_secret"],
        "username": org.conn["username"],
        "password": org.conn["password"],
    }
    assert _post_token(org, data).status_code == 200
    bad = _post_token(org, {**data, "password": "wrong"})
    assert bad.status_code == 400
    assert bad.json() == {"error": "invalid_grant", "error_description": "authentication failure"}


def test_client_credentials_with_basic_auth_and_form(org):
    basic = base64.b64encode(f"{org.conn['client_id']}:{org.conn['client_secret']}".encode())
    response = _post_token(
        org,
        {"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic.decode()}"},
    )
    assert response.status_code == 200
    _assert_token_shape(response.json(), org)
    form = {
        "grant_type": "client_credentials",
        "client_id": org.conn["client_id"],
        "client_secret": "nope",
    }
    bad = _post_token(org, form)
    assert bad.status_code == 400
    assert bad.json()["error"] == "invalid_client"


def _assertion(org, key=None, **overrides):
    claims = {
        "iss": org.conn["client_id"],
        "sub": org.conn["username"],
        "aud": "https://login.salesforce.com",
        "exp": int(time.time()) + 180,
        **overrides,
    }
    with open(org.conn["jwt_private_key_file"], "rb") as fh:
        pem = key or fh.read()
    return jwt.encode(claims, pem, algorithm="RS256")


def test_jwt_bearer_grant_checks_signature_and_claims(org):
    grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    ok = _post_token(org, {"grant_type": grant, "assertion": _assertion(org)})
    assert ok.status_code == 200, ok.text

    cases = {
        "aud": (_assertion(org, aud="https://evil.example.com"), "invalid_grant"),
        "exp": (_assertion(org, exp=int(time.time()) - 10), "invalid_grant"),
        "iss": (_assertion(org, iss="someone-else"), "invalid_client_id"),
        "sub": (_assertion(org, sub="nobody@example.com"), "invalid_grant"),
    }
    for claim, (assertion, code) in cases.items():
        response = _post_token(org, {"grant_type": grant, "assertion": assertion})
        assert response.status_code == 400, claim
        assert response.json()["error"] == code, claim

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    forged = _post_token(org, {"grant_type": grant, "assertion": _assertion(org, key=other)})
    assert forged.status_code == 400
    assert forged.json() == {"error": "invalid_grant", "error_description": "invalid assertion"}


def test_jwt_audience_is_login_salesforce_com_for_a_production_org(org):
    """Salesforce refuses the org's own (My Domain) host and test.salesforce.com as `aud` of a
    production org; only https://login.salesforce.com passes."""
    grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    for aud in (org.conn["login_url"], "https://test.salesforce.com", ["https://x.example"]):
        response = _post_token(org, {"grant_type": grant, "assertion": _assertion(org, aud=aud)})
        assert response.status_code == 400, aud
        assert response.json() == {
            "error": "invalid_grant",
            "error_description": "audience is invalid",
        }
    listed = _assertion(org, aud=["https://other.example", "https://login.salesforce.com"])
    assert _post_token(org, {"grant_type": grant, "assertion": listed}).status_code == 200


def test_grant_errors_use_the_real_codes(org):
    assert org.token(refresh_token="stale").json() == {
        "error": "invalid_grant",
        "error_description": "expired access/refresh token",
    }
    assert org.token(client_id="unknown").json() == {
        "error": "invalid_client_id",
        "error_description": "client identifier invalid",
    }
    assert org.token(client_secret="wrong").json()["error"] == "invalid_client"
    unsupported = _post_token(org, {"grant_type": "authorization_code", "code": "x"})
    assert unsupported.status_code == 400
    assert unsupported.json() == {
        "error": "unsupported_grant_type",
        "error_description": "grant type not supported",
    }


def test_expired_token_answers_401_invalid_session_id(org):
    assert org.http.get(org.url("limits")).status_code == 200
    org.anon.post(f"{org.control}/clock", json={"advance_seconds": 7201}).raise_for_status()
    response = org.http.get(org.url("limits"))
    assert response.status_code == 401
    assert response.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]
    org.login()  # a new token works again
    assert org.http.get(org.url("limits")).status_code == 200


def test_missing_or_garbage_token_is_invalid_session(org, errors_of):
    assert errors_of(org.anon.get(org.url("sobjects"))) == ["INVALID_SESSION_ID"]
    garbage = org.anon.get(org.url("sobjects"), headers={"Authorization": "Bearer 00Dxx!garbage"})
    assert garbage.status_code == 401


def test_revoke_and_userinfo(org):
    token = org.http.headers["Authorization"].split()[1]
    info = org.http.get(f"{org.conn['login_url']}/services/oauth2/userinfo")
    assert info.status_code == 200
    assert info.json()["organization_id"].startswith("00D")
    assert info.json()["preferred_username"] == org.conn["username"]
    revoked = org.anon.post(
        f"{org.conn['login_url']}/services/oauth2/revoke", data={"token": token}
    )
    assert revoked.status_code == 200
    assert org.http.get(org.url("limits")).status_code == 401
    again = org.anon.post(f"{org.conn['login_url']}/services/oauth2/revoke", data={"token": token})
    assert again.status_code == 400
    assert again.json()["error"] == "unsupported_token_type"


def test_soap_login_as_simple_salesforce_sends_it(org):
    from simple_salesforce import Salesforce, SalesforceLogin
    from simple_salesforce.exceptions import SalesforceAuthenticationFailed

    session_id, instance = SalesforceLogin(
        username=org.conn["username"],
        password=org.conn["password"],
        security_token=org.conn["security_token"],
        scratch_url=org.conn["login_url"],
        session=org.anon,
    )
    assert instance == org.conn["instance_url"].removeprefix("https://")
    sf = Salesforce(session_id=session_id, instance=instance, session=org.anon)
    assert sf.query("SELECT COUNT() FROM User")["totalSize"] == 1
    with pytest.raises(SalesforceAuthenticationFailed) as failed:
        SalesforceLogin(
            username=org.conn["username"],
            password="wrong",
            security_token=org.conn["security_token"],
            scratch_url=org.conn["login_url"],
            session=org.anon,
        )
    assert failed.value.code == "INVALID_LOGIN"
