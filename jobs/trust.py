"""Which certificate authorities the service's own connections trust: the public ones, and
those of ``ca_bundle`` (an institution's CA that signs a registry, a git server, a forge or
an intercepting proxy; issue 23).

Each client takes trust its own way, and most take a file that replaces its defaults
rather than adding to them (git's ``GIT_SSL_CAINFO``, requests' ``verify``, which the
forge clients use). So ``Trust`` writes one file with the public authorities and the
bundle's, and hands that file to git and the forge clients, and an SSL context made from
it to httpx (the registry client). Without ``ca_bundle`` nothing changes: every client
keeps its own defaults.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from functools import cached_property
from pathlib import Path

import certifi

BEGIN = "-----BEGIN CERTIFICATE-----"


def read_ca_bundle(path: Path) -> str:
    """The text of the PEM file ``path``, when it holds at least one certificate and
    nothing but certificates that parse. Raises ValueError saying what is wrong (the
    settings name the key)."""
    try:
        text = path.read_text(encoding="ascii")
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a PEM file (it is not ASCII text)") from None
    if BEGIN not in text:
        raise ValueError(f"{path} holds no PEM certificate ({BEGIN} ... blocks)")
    stray = [line for line in text.splitlines() if line.startswith("-----BEGIN ") and line != BEGIN]
    if stray:
        raise ValueError(f"{path} holds something other than certificates: {stray[0]}")
    try:
        ssl.create_default_context().load_verify_locations(cadata=text)
    except (ssl.SSLError, ValueError) as e:
        raise ValueError(f"{path} holds a certificate that does not parse: {e}") from None
    return text


def public_authorities() -> str:
    """The public certificate authorities the clients trust by default: certifi's (httpx,
    requests) and the system's (git, OpenSSL), one after the other."""
    parts = [Path(certifi.where()).read_text(encoding="ascii", errors="replace")]
    system = ssl.get_default_verify_paths().cafile
    if system and os.path.exists(system) and os.path.realpath(system) != certifi.where():
        parts.append(Path(system).read_text(encoding="ascii", errors="replace"))
    return "\n".join(part.strip() for part in parts) + "\n"


class Trust:
    """The service's trust: the public authorities, plus ``ca_bundle``'s when given."""

    def __init__(self, ca_bundle: Path | None, directory: Path | None = None) -> None:
        self.ca_bundle = ca_bundle
        self._directory = directory

    @cached_property
    def bundle_file(self) -> Path | None:
        """A file with the public authorities and the bundle's (None without a bundle),
        written once, in ``directory`` (the system's temporary one by default)."""
        if self.ca_bundle is None:
            return None
        text = public_authorities() + read_ca_bundle(self.ca_bundle).strip() + "\n"
        handle, name = tempfile.mkstemp(
            prefix="binderhub-service-ca-", suffix=".crt", dir=self._directory
        )
        with os.fdopen(handle, "w", encoding="ascii") as out:
            out.write(text)
        return Path(name)

    def ssl_context(self) -> ssl.SSLContext | bool:
        """What httpx's ``verify`` takes: a context trusting ``bundle_file``, or True (its
        defaults) without a bundle."""
        if self.bundle_file is None:
            return True
        return ssl.create_default_context(cafile=str(self.bundle_file))

    def requests_verify(self) -> str | bool:
        """What requests' ``verify`` takes (the forge clients): the file, or True."""
        return True if self.bundle_file is None else str(self.bundle_file)

    def git_env(self) -> dict[str, str]:
        """The environment that makes git (and curl, OpenSSL, Python under it) trust
        the file; nothing without a bundle."""
        if self.bundle_file is None:
            return {}
        path = str(self.bundle_file)
        return {"GIT_SSL_CAINFO": path, "SSL_CERT_FILE": path, "REQUESTS_CA_BUNDLE": path}
