"""What the builders' cluster tests share (issue 24): an authenticated registry pods reach,
mTLS certificates for a BuildKit daemon, a daemon outside the release's namespace, and the
repository whose RUN step tries to reach what a build must not.

The probe repository's Dockerfile runs ``probe.sh``, which prints one line per attempt,
``PROBE <what>=<found|not-found|readable|reached|unreached>``; BuildKit's plain progress
carries them into the build's log, where ``probe_results`` reads them back.
"""

from __future__ import annotations

import base64
import datetime
import re
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kubernetes import client

DOCKER = "/usr/bin/docker"
PROBE_LINE = re.compile(r"PROBE ([a-z-]+)=([a-z0-9-]+)")


@dataclass(frozen=True)
class Pem:
    """A certificate and its key, PEM."""

    cert: bytes
    key: bytes


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certificates(server_names: list[str]) -> tuple[Pem, Pem, Pem]:
    """A CA, a server certificate for ``server_names`` and a client certificate, as a
    BuildKit daemon with ``[grpc.tls]`` and its clients need them: (ca, server, client)."""
    now = datetime.datetime.now(datetime.UTC)
    later = now + datetime.timedelta(days=1)

    def key() -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    def pem_key(k: ec.EllipticCurvePrivateKey) -> bytes:
        return k.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    ca_key = key()
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("bhs-test-external-buildkit-ca"))
        .issuer_name(_name("bhs-test-external-buildkit-ca"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(later)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(common_name: str, usage: x509.ObjectIdentifier, names: list[str]) -> Pem:
        k = key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(ca.subject)
            .public_key(k.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(later)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
            )
        cert = builder.sign(ca_key, hashes.SHA256())
        return Pem(cert.public_bytes(serialization.Encoding.PEM), pem_key(k))

    server = leaf(server_names[0], ExtendedKeyUsageOID.SERVER_AUTH, server_names)
    client_pem = leaf("bhs-test-builds", ExtendedKeyUsageOID.CLIENT_AUTH, [])
    return Pem(ca.public_bytes(serialization.Encoding.PEM), pem_key(ca_key)), server, client_pem


def tls_secret(name: str, ca: Pem, leaf: Pem) -> client.V1Secret:
    """A Secret with ``ca.pem``, ``cert.pem`` and ``key.pem`` (the chart's layout)."""
    return client.V1Secret(
        metadata=client.V1ObjectMeta(name=name),
        data={
            "ca.pem": base64.b64encode(ca.cert).decode(),
            "cert.pem": base64.b64encode(leaf.cert).decode(),
            "key.pem": base64.b64encode(leaf.key).decode(),
        },
    )


DAEMON_TOML = """\
[grpc]
  address = ["tcp://0.0.0.0:1234", "unix:///run/buildkit/buildkitd.sock"]
  [grpc.tls]
    cert = "/etc/buildkit/tls/cert.pem"
    key = "/etc/buildkit/tls/key.pem"
    ca = "/etc/buildkit/tls/ca.pem"
[worker.oci]
  enabled = true
[worker.containerd]
  enabled = false
"""


def external_daemon_objects(
    namespace: str, image: str, insecure_registries: list[str]
) -> tuple[client.V1ConfigMap, client.V1Pod, client.V1Service]:
    """An operator's BuildKit daemon in a namespace of its own that allows privileged
    pods: a privileged buildkitd with the server certificate of the Secret ``buildkitd-tls``,
    its Service ``buildkitd:1234``. Nothing of the chart."""
    toml = DAEMON_TOML + "".join(
        f'[registry."{r}"]\n  http = true\n  insecure = true\n' for r in insecure_registries
    )
    labels = {"app": "buildkitd"}
    config_map = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="buildkitd"), data={"buildkitd.toml": toml}
    )
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="buildkitd", labels=labels),
        spec=client.V1PodSpec(
            automount_service_account_token=False,
            containers=[
                client.V1Container(
                    name="buildkitd",
                    image=image,
                    image_pull_policy="Never",
                    args=["--config=/etc/buildkit/buildkitd.toml"],
                    ports=[client.V1ContainerPort(container_port=1234)],
                    security_context=client.V1SecurityContext(privileged=True),
                    readiness_probe=client.V1Probe(
                        _exec=client.V1ExecAction(
                            command=[
                                "buildctl",
                                "--addr",
                                "unix:///run/buildkit/buildkitd.sock",
                                "debug",
                                "workers",
                            ]
                        ),
                        period_seconds=2,
                    ),
                    volume_mounts=[
                        client.V1VolumeMount(
                            name="config",
                            mount_path="/etc/buildkit/buildkitd.toml",
                            sub_path="buildkitd.toml",
                        ),
                        client.V1VolumeMount(name="tls", mount_path="/etc/buildkit/tls"),
                    ],
                )
            ],
            volumes=[
                client.V1Volume(
                    name="config",
                    config_map=client.V1ConfigMapVolumeSource(name="buildkitd"),
                ),
                client.V1Volume(
                    name="tls", secret=client.V1SecretVolumeSource(secret_name="buildkitd-tls")
                ),
            ],
        ),
    )
    service = client.V1Service(
        metadata=client.V1ObjectMeta(name="buildkitd"),
        spec=client.V1ServiceSpec(
            selector=labels, ports=[client.V1ServicePort(port=1234, target_port=1234)]
        ),
    )
    return config_map, pod, service


PRIVATE = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"]


def external_daemon_policy(release_namespace: str, node_ip: str, registry_port: int) -> Any:
    """The NetworkPolicy an operator gives the daemon of ``external_daemon_objects`` (the
    example of docs/kubernetes.md, ``buildkit-external``): its port admits the release's
    namespace only; it reaches DNS, the addresses outside the private and link-local ranges
    and the registry on the node, as the chart's own daemon does."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "buildkitd"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "buildkitd"}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": release_namespace}
                            }
                        }
                    ],
                    "ports": [{"port": 1234, "protocol": "TCP"}],
                }
            ],
            "egress": [
                {
                    "to": [{"ipBlock": {"cidr": c}} for c in PRIVATE],
                    "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
                },
                {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": PRIVATE}}]},
                {
                    "to": [{"ipBlock": {"cidr": f"{node_ip}/32"}}],
                    "ports": [{"port": registry_port, "protocol": "TCP"}],
                },
            ],
        },
    }


def push_base(base_image: str, registry: str, credentials: tuple[str, str]) -> None:
    """Put the Debian base into ``registry`` (127.0.0.1:port, authenticated) as
    ``debian:bookworm``, with a docker config of its own (no login left behind)."""
    with tempfile.TemporaryDirectory() as config:
        env = {"DOCKER_CONFIG": config, "PATH": "/usr/bin:/bin"}
        subprocess.run(
            [DOCKER, "login", "-u", credentials[0], "--password-stdin", registry],
            input=credentials[1], text=True, check=True, capture_output=True, env=env,
        )  # fmt: skip
        local = f"{registry}/debian:bookworm"
        subprocess.run([DOCKER, "tag", base_image, local], check=True)
        subprocess.run(
            [DOCKER, "push", local], check=True, capture_output=True, timeout=600, env=env
        )


PROBE_SH = r"""#!/bin/sh
# What a RUN step of an untrusted repository tries to reach (tests/cluster/builders.py).
# $1: canaries "name:reversed-value ..." (reversed, so that no command line holds one);
# $2: the name of another build's file; $3: the addresses to connect to, "name=ip:port ...".
say() { echo "PROBE $1=$2"; }
marker="$2"; targets="$3"
# every root this step can see: its own, and those of the processes it can see
roots="/"
for p in /proc/[0-9]*; do
    [ "$p" = "/proc/$$" ] || [ ! -r "$p/root/" ] || roots="$roots $p/root/"
done
# the canaries go into a file that the search skips (not on grep's command line, which
# /proc/<pid>/cmdline would show it)
patterns=/tmp/.probe-patterns
: > "$patterns"
for word in $1; do
    echo "${word#*:}" | rev >> "$patterns"
done
echo "$marker-content" >> "$patterns"
hits=$(grep -rhoasF --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev \
    --exclude=.probe-patterns -f "$patterns" \
    $roots /proc/[0-9]*/environ /proc/[0-9]*/cmdline 2>/dev/null | sort -u)
for word in $1; do
    value=$(echo "${word#*:}" | rev)
    if echo "$hits" | grep -qxF -e "$value"; then say "secret-${word%%:*}" found
    else say "secret-${word%%:*}" not-found; fi
done
files=$(for r in $roots; do find "$r" -path "${r%/}/proc" -prune -o -path "${r%/}/sys" -prune \
    -o -name "$marker-file" -print 2>/dev/null; done | head -1)
if [ -n "$files" ] || echo "$hits" | grep -qxF -e "$marker-content"; then say other-build found
else say other-build not-found; fi
if ls /var/run/secrets/kubernetes.io/serviceaccount/token >/dev/null 2>&1; then
    say service-account-token found; else say service-account-token not-found; fi
say roots "$(echo $roots | wc -w)"
# a BuildKit daemon's process among those the step sees (the pattern from pieces, so that no
# command line holds it), and whether the step may read its memory's kin, /proc/<pid>/environ
printf 'build%s\n' kitd > /tmp/.daemon-pattern
daemon=not-found
for p in /proc/[0-9]*; do
    [ "$p" = "/proc/$$" ] || ! grep -qaf /tmp/.daemon-pattern "$p/cmdline" 2>/dev/null || {
        daemon=found
        if cat "$p/environ" >/dev/null 2>&1; then daemon=readable; break; fi
    }
done
say daemon-process "$daemon"
reach() {  # name host port: whether a TCP connection is made (bash's /dev/tcp)
    if timeout 3 bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null; then say "$1" reached
    else say "$1" unreached; fi
}
for target in $targets; do  # name=host:port
    address="${target#*=}"
    reach "${target%%=*}" "${address%:*}" "${address##*:}"
done
"""


def probe_files(
    secrets: dict[str, str], marker: str, targets: dict[str, str], base: str
) -> dict[str, str]:
    """The probe repository: its Dockerfile runs probe.sh with the canaries (``secrets``:
    name -> value, handed over reversed), the name of another build's file and the
    addresses it tries to connect to (``targets``: name -> ``ip:port``; its results
    ``reached`` or ``unreached`` under each name)."""
    own = f"own-canary-{marker}"  # in the step's own files: the search must find it
    words = " ".join(f"{name}:{value[::-1]}" for name, value in {**secrets, "own": own}.items())
    addresses = " ".join(f"{name}={address}" for name, address in targets.items())
    return {
        "Dockerfile": f"FROM {base}\nARG NB_USER\nARG NB_UID\nCOPY probe.sh own.txt /\n"
        f'RUN sh /probe.sh "{words}" "{marker}" "{addresses}"\n',
        "probe.sh": PROBE_SH,
        "own.txt": f"{own}\n",
    }


def marker_files(marker: str, base: str) -> dict[str, str]:
    """A repository whose build leaves a file ``/<marker>-file`` (content
    ``<marker>-content``) in its image and the builder's cache: "another build's files"."""
    return {
        "Dockerfile": f"FROM {base}\nARG NB_USER\nARG NB_UID\n"
        f"RUN echo {marker}-content > /{marker}-file && sleep 1\n",
    }


def probe_results(log: str) -> dict[str, str]:
    """The ``PROBE`` lines of a build's log, ``{what: result}`` (the last of each)."""
    return {m.group(1): m.group(2) for m in PROBE_LINE.finditer(log)}
