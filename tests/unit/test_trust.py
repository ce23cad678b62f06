"""``ca_bundle`` (issue 23): what the service refuses at start, and the trust it hands
its clients."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import certifi
import pytest

from jobs.settings import ConfigError, load_settings
from jobs.trust import Trust, read_ca_bundle
from testkit.certs import make_ca


@pytest.fixture
def ca(tmp_path: Path) -> Path:
    make_ca(tmp_path / "ca", "test institution")
    return tmp_path / "ca"


def test_a_bundle_of_certificates_is_read(ca: Path) -> None:
    text = read_ca_bundle(ca / "ca.pem")
    assert "BEGIN CERTIFICATE" in text


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("hello", "no PEM certificate"),
        ("-----BEGIN CERTIFICATE-----\nnot base64 !\n-----END CERTIFICATE-----\n", "parse"),
        (None, "something other than certificates"),  # the CA's private key
        (b"\xff\xfe", "not ASCII"),
    ],
)
def test_what_is_not_a_bundle_is_named(
    tmp_path: Path, ca: Path, content: str | bytes | None, problem: str
) -> None:
    path = tmp_path / "bundle.pem"
    if content is None:
        path.write_bytes((ca / "ca.pem").read_bytes() + (ca / "ca-key.pem").read_bytes())
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(ValueError, match=problem):
        read_ca_bundle(path)
    config = tmp_path / "config.yaml"
    config.write_text(f"ca_bundle: {path}\n")
    with pytest.raises(ConfigError, match=r"ca_bundle"):
        load_settings(config)


def test_a_missing_bundle_stops_the_service_naming_it(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"ca_bundle: {tmp_path / 'absent.pem'}\n")
    with pytest.raises(ConfigError, match=r"ca_bundle: .*cannot read"):
        load_settings(config)


def test_without_a_bundle_every_client_keeps_its_defaults() -> None:
    trust = Trust(None)
    assert trust.bundle_file is None
    assert trust.ssl_context() is True
    assert trust.requests_verify() is True
    assert trust.git_env() == {}


def test_the_bundle_is_added_to_the_public_authorities(tmp_path: Path, ca: Path) -> None:
    trust = Trust(ca / "ca.pem", tmp_path)
    bundle = trust.bundle_file
    assert bundle is not None
    assert bundle.parent == tmp_path
    text = bundle.read_text()
    assert (ca / "ca.pem").read_text().strip() in text
    # the public ones stay: certifi's first certificate is there too
    first = Path(certifi.where()).read_text().split("-----END CERTIFICATE-----")[0]
    assert first.strip().split("\n")[-1] in text
    context = trust.ssl_context()
    assert isinstance(context, ssl.SSLContext)
    assert len(context.get_ca_certs()) > 1
    assert trust.requests_verify() == str(bundle)
    env = trust.git_env()
    assert env["GIT_SSL_CAINFO"] == env["SSL_CERT_FILE"] == str(bundle)
    # openssl agrees that the server certificate chains to the bundle
    verified = subprocess.run(
        ["openssl", "verify", "-CAfile", str(bundle), str(ca / "server.pem")],
        capture_output=True,
        text=True,
    )
    assert verified.returncode == 0, verified.stderr
