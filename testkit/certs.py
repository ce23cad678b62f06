"""Certificates for tests: a CA, a server certificate (for 127.0.0.1, or the addresses
given: a registry or git server of an institution's CA, issue 23) and a client
certificate (mTLS between buildx and a BuildKit daemon), written as PEM files."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_DAY = dt.timedelta(days=1)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write(
    directory: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> None:
    (directory / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / f"{name}-key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    server: bool = False,
    addresses: tuple[str, ...] = ("127.0.0.1",),
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, signer = issuer if issuer is not None else (name, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _DAY)
        .not_valid_after(now + _DAY)
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is not None:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if server:
        names = [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(signer, hashes.SHA256())


def make_ca(directory: Path, name: str, addresses: tuple[str, ...] = ("127.0.0.1",)) -> None:
    """``directory/ca.pem``, ``ca-key.pem`` and, signed by that CA, ``server.pem`` (for
    ``addresses``), ``server-key.pem``, ``client.pem``, ``client-key.pem``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca = _certificate(name, ca_key, None)
    _write(directory, "ca", ca, ca_key)
    for role in ("server", "client"):
        key = _key()
        cert = _certificate(
            f"{name} {role}",
            key,
            (ca.subject, ca_key),
            server=role == "server",
            addresses=addresses,
        )
        _write(directory, role, cert, key)


def client_dir(directory: Path, ca_from: Path, client_from: Path) -> Path:
    """A ``BUILDKIT_TLS_DIR``: ``ca.pem`` of ``ca_from``, the client pair of
    ``client_from``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca.pem").write_bytes((ca_from / "ca.pem").read_bytes())
    (directory / "cert.pem").write_bytes((client_from / "client.pem").read_bytes())
    (directory / "key.pem").write_bytes((client_from / "client-key.pem").read_bytes())
    return directory


def server_for_names(directory: Path, ca_from: Path, names: list[str], name: str) -> Path:
    """``directory/<name>.pem`` (the certificate, then the CA's: a chain) and
    ``<name>-key.pem``: a server certificate for the DNS ``names`` signed by the CA of
    ``ca_from`` (``make_ca``'s ``ca.pem``, ``ca-key.pem``). Authority and subject key
    identifiers and key usage are set: Python 3.13's default TLS context verifies
    strictly (``VERIFY_X509_STRICT``) and refuses certificates without them."""
    ca = x509.load_pem_x509_certificate((ca_from / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((ca_from / "ca-key.pem").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = _key()
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _DAY)
        .not_valid_after(now + _DAY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    _write(directory, name, cert, key)
    chain = directory / f"{name}.pem"
    chain.write_bytes(chain.read_bytes() + (ca_from / "ca.pem").read_bytes())
    return chain
