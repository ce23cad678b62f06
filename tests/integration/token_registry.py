"""A real registry that uses token (Bearer) authentication, as Docker Hub, GHCR,
Quay and Harbor do, with a small token service of ours in front.

The registry is Debian's docker-registry with ``auth: token``; the token service
checks HTTP Basic credentials and issues RS256 JWTs signed by a key whose
self-signed certificate the registry trusts (``rootcertbundle``), carried in the
token's ``x5c`` header.

``hide_missing=True`` makes it answer as Docker Hub does: a token asked for only
``pull`` on a repository that does not exist yet grants nothing, so the registry
answers the manifest HEAD with 401 ``insufficient_scope`` rather than 404.
"""

from __future__ import annotations

import base64
import datetime
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from testkit.components import Registry, free_port, start_registry

SERVICE = "test-registry"
ISSUER = "test-token-issuer"


@dataclass
class TokenService:
    credentials: tuple[str, str]
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    port: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    repositories: Path | None = None  # the registry's storage; set: hide missing ones
    host: str = "127.0.0.1"  # where it listens, and the realm's host

    def _grants(self, name: str, actions: list[str]) -> list[str]:
        """The actions granted on repository ``name``: all asked for, except none when
        hiding, the repository does not exist yet and ``push`` was not asked for."""
        if self.repositories is None or "push" in actions:
            return actions
        return actions if (self.repositories / name).is_dir() else []

    @property
    def realm(self) -> str:
        return f"http://{self.host}:{self.port}/token"

    def issue(self, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            granted = self._grants(name, actions.split(","))
            access.append({"type": kind, "name": name, "actions": granted})
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": self.credentials[0],
            "aud": SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        chain = [
            base64.b64encode(self.certificate.public_bytes(serialization.Encoding.DER)).decode()
        ]
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"x5c": chain})

    def start(self) -> None:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                header = self.headers.get("Authorization", "")
                service.requests.append({"query": query, "authorization": header})
                expected = (
                    "Basic " + base64.b64encode(":".join(service.credentials).encode()).decode()
                )
                if header != expected:
                    self.send_response(401)
                    self.end_headers()
                    return
                body = json.dumps(
                    {"token": service.issue(query.get("scope", [])), "expires_in": 300}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                """The OAuth2 form of the token endpoint (``grant_type=password``), which
                Docker Hub offers and containerd tries first when it has credentials."""
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                given = (form.get("username", [""])[0], form.get("password", [""])[0])
                service.requests.append(
                    {"form": {k: v for k, v in form.items() if k != "password"}}
                )
                if form.get("grant_type") != ["password"] or given != service.credentials:
                    self.send_response(401)
                    self.end_headers()
                    return
                scopes = " ".join(form.get("scope", [])).split()
                body = json.dumps(
                    {"access_token": service.issue(scopes), "expires_in": 300}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((self.host, self.port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def _self_signed(key: rsa.RSAPrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def start_token_registry(
    directory: Path,
    credentials: tuple[str, str],
    *,
    hide_missing: bool = False,
    token_host: str = "127.0.0.1",
    listen: str = "127.0.0.1",
) -> tuple[Registry, TokenService]:
    """A token-authenticated registry in ``directory`` and its token service, which
    accepts ``credentials`` (HTTP Basic). ``hide_missing``: see the module docstring.
    ``token_host``: the token service's address (clients are sent there); ``listen``:
    the registry's (see ``start_registry``)."""
    directory.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    certificate = _self_signed(key)
    bundle = directory / "token-ca.pem"
    bundle.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    tokens = TokenService(credentials, key, certificate, port=free_port(), host=token_host)
    if hide_missing:
        tokens.repositories = directory / "data" / "docker" / "registry" / "v2" / "repositories"
    tokens.start()
    auth_block = (
        "auth:\n  token:\n"
        f"    realm: {tokens.realm}\n    service: {SERVICE}\n"
        f"    issuer: {ISSUER}\n    rootcertbundle: {bundle}\n"
    )
    registry = start_registry(directory, auth_block=auth_block, listen=listen)
    registry.auth = credentials
    return registry, tokens
