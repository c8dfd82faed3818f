"""A local certificate authority for the sandbox's HTTPS listeners (trustme)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme

_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class ServerCertificate:
    ca_bundle: Path  # what clients trust
    cert_chain: Path  # what the server presents
    private_key: Path


def ensure_certificate(directory: Path) -> ServerCertificate:
    """Load the CA kept in `directory`, or create it on first start; issue a loopback cert."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = directory / "ca.pem", directory / "ca.key"
    if ca_cert.exists() and ca_key.exists():
        ca = trustme.CA.from_pem(ca_cert.read_bytes(), ca_key.read_bytes())
    else:
        ca = trustme.CA(organization_name="salesforce-appcues-sandbox")
        ca.cert_pem.write_to_path(str(ca_cert))
        ca.private_key_pem.write_to_path(str(ca_key))
        ca_key.chmod(0o600)
    server = ca.issue_cert(*_HOSTS)
    chain, key = directory / "server.pem", directory / "server.key"
    server.private_key_and_cert_chain_pem.write_to_path(str(chain))
    server.private_key_pem.write_to_path(str(key))
    key.chmod(0o600)
    return ServerCertificate(ca_bundle=ca_cert, cert_chain=chain, private_key=key)
