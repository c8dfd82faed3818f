"""OAuth 2.0 for the emulated org: the token grants, revocation and session validity."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from ..common.clock import SandboxClock

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# The JWT audience Salesforce wants: login.salesforce.com for a production org,
# test.salesforce.com for a sandbox org (an Experience Cloud site URL is not emulated). The
# org's own host (a My Domain) is refused like any other audience.
PRODUCTION_AUDIENCE = "https://login.salesforce.com"
SANDBOX_AUDIENCE = "https://test.salesforce.com"


@dataclass(frozen=True)
class Credentials:
    client_id: str
    client_secret: str = field(repr=False)
    username: str
    password: str = field(repr=False)
    refresh_token: str = field(repr=False)
    security_token: str = field(default="", repr=False)

    @classmethod
    def generate(cls, username: str) -> Credentials:
        return cls(
            client_id="3MVG9" + secrets.token_urlsafe(60).replace("-", "A").replace("_", "B"),
            client_secret=secrets.token_hex(32).upper(),
            username=username,
            password="sandbox-" + secrets.token_urlsafe(12),
            refresh_token="5Aep861" + secrets.token_urlsafe(60).replace("-", ".").replace("_", "."),
            security_token=secrets.token_hex(12),
        )


class OAuthError(Exception):
    """An OAuth failure: HTTP 400 (or 401) `{"error", "error_description"}`."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status


class OAuthServer:
    """Issues access tokens for the integration user and checks them on every API call."""

    def __init__(
        self,
        clock: SandboxClock,
        key_dir: Path,
        *,
        org_id: str,
        user_id: str,
        username: str,
        token_ttl_seconds: float = 7200,
        rotate_refresh_tokens: bool = False,
        sandbox_org: bool = False,
        reuse_revokes_family: bool = False,
        instance_url: str | None = None,
    ) -> None:
        self.clock = clock
        # The `instance_url` a login answers: the sandbox's own base URL unless an option names
        # another (a real org answers its My Domain host whatever host the login went to).
        self.instance_url = instance_url
        self.org_id = org_id
        self.user_id = user_id
        self.ttl = timedelta(seconds=token_ttl_seconds)
        self.rotate = rotate_refresh_tokens
        self.audience = SANDBOX_AUDIENCE if sandbox_org else PRODUCTION_AUDIENCE
        self.base_url = ""
        self._lock = threading.Lock()
        self._tokens: dict[str, datetime] = {}
        key_dir.mkdir(parents=True, exist_ok=True)
        self.credentials = self._load_credentials(key_dir / "salesforce_credentials.json", username)
        # Live refresh tokens -> their family (the approval they descend from by rotation), and
        # the retired ones. Rotation retires only the token presented; presenting a retired one
        # again revokes its whole family when `reuse_revokes_family` is on (undocumented for
        # Salesforce: docs/sandbox.md).
        self.reuse_revokes_family = reuse_revokes_family
        self._refresh_tokens: dict[str, str] = {self.credentials.refresh_token: "initial"}
        self._retired: dict[str, str] = {}
        self.private_key_file, self.certificate_file = _ensure_jwt_key(key_dir)
        cert = x509.load_pem_x509_certificate(self.certificate_file.read_bytes())
        self._jwt_public_key = cert.public_key()

    @staticmethod
    def _load_credentials(path: Path, username: str) -> Credentials:
        if path.exists():
            stored = json.loads(path.read_text())
            stored.setdefault("security_token", "")
            return Credentials(**stored)
        creds = Credentials.generate(username)
        path.write_text(json.dumps(asdict(creds)))
        path.chmod(0o600)
        return creds

    # --- sessions -------------------------------------------------------------------
    def is_valid(self, token: str) -> bool:
        now = self.clock.now()
        with self._lock:
            expires = self._tokens.get(token)
        return expires is not None and now < expires

    def expire_all(self) -> None:
        with self._lock:
            self._tokens.clear()

    def revoke(self, token: str) -> None:
        with self._lock:
            if token in self._tokens:
                del self._tokens[token]
                return
            if token in self._refresh_tokens:
                del self._refresh_tokens[token]
                return
        raise OAuthError("unsupported_token_type", "this token type is not supported")

    # --- grants ---------------------------------------------------------------------
    def token(self, form: dict[str, str], basic_auth: tuple[str, str] | None) -> dict[str, Any]:
        grant = form.get("grant_type", "")
        if grant == "refresh_token":
            self._check_client(form, basic_auth, secret_required=False)
            presented = form.get("refresh_token", "")
            with self._lock:
                live = presented in self._refresh_tokens
                family = self._retired.get(presented)
                if not live and family is not None and self.reuse_revokes_family:
                    for token in [t for t, f in self._refresh_tokens.items() if f == family]:
                        del self._refresh_tokens[token]
            if not live:
                raise OAuthError("invalid_grant", "expired access/refresh token")
            return self._issue(rotate_from=presented)
        if grant == "password":
            self._check_client(form, basic_auth, secret_required=True)
            if (
                form.get("username") != self.credentials.username
                or form.get("password") != self.credentials.password
            ):
                raise OAuthError("invalid_grant", "authentication failure")
            return self._issue()
        if grant == "client_credentials":
            self._check_client(form, basic_auth, secret_required=True)
            return self._issue()
        if grant == JWT_GRANT:
            self._check_assertion(form.get("assertion", ""))
            return self._issue()
        if not grant:
            raise OAuthError("invalid_request", "grant type not supported")
        raise OAuthError("unsupported_grant_type", "grant type not supported")

    def _check_client(
        self,
        form: dict[str, str],
        basic_auth: tuple[str, str] | None,
        *,
        secret_required: bool,
    ) -> None:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if basic_auth is not None:
            client_id, secret = basic_auth
        if client_id != self.credentials.client_id:
            raise OAuthError("invalid_client_id", "client identifier invalid")
        if (secret_required or secret is not None) and not hmac.compare_digest(
            str(secret or ""), self.credentials.client_secret
        ):
            raise OAuthError("invalid_client", "invalid client credentials")

    def _check_assertion(self, assertion: str) -> None:
        try:
            claims = jwt.decode(
                assertion,
                self._jwt_public_key,  # type: ignore[arg-type]
                algorithms=["RS256"],
                options={"verify_aud": False, "verify_exp": False, "require": ["exp"]},
            )
        except jwt.PyJWTError:
            raise OAuthError("invalid_grant", "invalid assertion") from None
        if claims.get("iss") != self.credentials.client_id:
            raise OAuthError("invalid_client_id", "client identifier invalid")
        aud = claims.get("aud")
        aud_list = aud if isinstance(aud, list) else [aud]
        if self.audience not in aud_list:
            raise OAuthError("invalid_grant", "audience is invalid")
        if claims.get("sub") != self.credentials.username:
            raise OAuthError("invalid_grant", "user hasn't approved this consumer")
        if float(claims["exp"]) <= self.clock.now().timestamp():
            raise OAuthError("invalid_grant", "expired authorization code")

    def new_session(self) -> str:
        """A fresh access token (also what SOAP login hands out as its sessionId)."""
        token = f"{self.org_id[:15]}!AQ" + secrets.token_urlsafe(72).replace("-", ".")
        with self._lock:
            self._tokens[token] = self.clock.now() + self.ttl
        return token

    def check_soap_login(self, username: str, password: str, organization_id: str | None) -> None:
        """SOAP login(): password + security token, or password alone with the org id."""
        creds = self.credentials
        if username == creds.username and (
            password == creds.password + creds.security_token
            or (organization_id == self.org_id and password == creds.password)
        ):
            return
        raise OAuthError(
            "INVALID_LOGIN",
            "INVALID_LOGIN: Invalid username, password, security token; or user locked out.",
        )

    def _issue(self, rotate_from: str | None = None) -> dict[str, Any]:
        fresh = None
        if rotate_from is not None and self.rotate:
            fresh = "5Aep861" + secrets.token_urlsafe(60).replace("-", ".").replace("_", ".")
            with self._lock:
                family = self._refresh_tokens.pop(rotate_from, None)
                if family is None:  # spent by a concurrent request meanwhile
                    raise OAuthError("invalid_grant", "expired access/refresh token")
                self._retired[rotate_from] = family
                self._refresh_tokens[fresh] = family
        now = self.clock.now()
        token = self.new_session()
        issued_at = str(int(now.timestamp() * 1000))
        identity = f"{self.base_url}/id/{self.org_id}/{self.user_id}"
        signature = base64.b64encode(
            hmac.new(
                self.credentials.client_secret.encode(),
                (identity + issued_at).encode(),
                hashlib.sha256,
            ).digest()
        ).decode()
        body: dict[str, Any] = {
            "access_token": token,
            "signature": signature,
            "scope": "api refresh_token",
            "instance_url": self.instance_url or self.base_url,
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
        }
        if fresh is not None:
            body["refresh_token"] = fresh
        return body

    def userinfo(self) -> dict[str, Any]:
        return {
            "sub": f"{self.base_url}/id/{self.org_id}/{self.user_id}",
            "user_id": self.user_id,
            "organization_id": self.org_id,
            "preferred_username": self.credentials.username,
            "nickname": "integration",
            "name": "Integration User",
            "email": self.credentials.username,
            "email_verified": True,
            "user_type": "STANDARD",
            "active": True,
            "utcOffset": 0,
            "language": "en_US",
            "locale": "en_US",
            "zoneinfo": "GMT",
            "urls": {
                "rest": f"{self.base_url}/services/data/v{{version}}/",
                "sobjects": f"{self.base_url}/services/data/v{{version}}/sobjects/",
                "query": f"{self.base_url}/services/data/v{{version}}/query/",
            },
        }


def _ensure_jwt_key(directory: Path) -> tuple[Path, Path]:
    """The connected app's certificate and the private key a JWT client signs with."""
    key_file, cert_file = directory / "jwt_private_key.pem", directory / "jwt_certificate.pem"
    if key_file.exists() and cert_file.exists():
        return key_file, cert_file
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sandbox connected app")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_file, cert_file
