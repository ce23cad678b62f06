"""A build pod's ``hg`` trusts ``kubernetes.ca_bundle`` (issue 25): the ``ca-bundle`` init
container's own script, run here by a real ``sh`` with the pod's paths moved into a
temporary folder, then a real ``hg identify`` (installed with the service, with certifi
beside it, as in the builder image) against a real ``hg serve`` over HTTPS whose
certificate only that bundle's CA signs, in the environment the builder gets.

Mercurial takes certifi's authorities when certifi is installed and reads no
``SSL_CERT_FILE``: without the ``.hgrc`` the init container writes, the clone of a
repository behind a private CA (or a TLS-inspecting egress proxy) fails in the pod.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from jobs.executors.kubernetes import trust
from testkit.certs import make_ca, server_for_names
from testkit.components import free_port, wait_until
from tests.integration.provider_records import HG, HG_ENV, hg
from tests.unit.test_kube_manifests_buildkit import env_of, pod_spec
from tests.unit.test_managed_cluster_builds import job_of


def moved(text: str, root: Path) -> str:
    """``text`` with each absolute path under ``/etc`` or ``/tmp`` moved under ``root``."""
    return re.sub(r"(?<![\w/.-])/(etc|tmp)(?=/|$|\s)", lambda m: f"{root}{m.group(0)}", text)


def test_hg_in_a_build_pod_trusts_the_ca_bundle(tmp_path: Path) -> None:
    make_ca(tmp_path / "ca", "private CA")
    chain = server_for_names(tmp_path / "server", tmp_path / "ca", ["localhost"], "hg")
    served = tmp_path / "served.pem"  # hg serve's web.certificate: key and chain
    served.write_bytes((tmp_path / "server" / "hg-key.pem").read_bytes() + chain.read_bytes())
    repo = tmp_path / "repo"
    repo.mkdir()
    hg("init", cwd=repo)
    (repo / "README").write_text("served\n")
    hg("commit", "-q", "-A", "-m", "served", cwd=repo)
    port = free_port()
    server = subprocess.Popen(
        [HG, "serve", "--address", "127.0.0.1", "--port", str(port), "--certificate",
         str(served)],
        cwd=repo, env=HG_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"https://localhost:{port}/"

    # the pod's file system, under tmp_path: the image's bundle, the ConfigMap, /tmp
    root = tmp_path / "pod"
    (root / "etc/ssl/certs").mkdir(parents=True)
    (root / "etc/ssl/certs/ca-certificates.crt").write_text("")
    config_map = root / trust.CA_DIR.lstrip("/")
    config_map.mkdir(parents=True)
    (config_map / "ca.crt").write_bytes((tmp_path / "ca" / "ca.pem").read_bytes())
    (root / "tmp").mkdir()
    job = job_of(ca_bundle={"name": "corp-ca", "key": "ca.crt"})
    (init,) = pod_spec(job)["initContainers"]
    script = init["command"][-1]
    subprocess.run(["sh", "-c", moved(script, root)], check=True, timeout=30)

    env = {
        name: moved(value, root)
        for name, value in env_of(job).items()
        if name in ("HOME", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "GIT_SSL_CAINFO")
    }
    assert env["HOME"] == f"{root}/tmp"
    env.update(PATH=os.environ["PATH"], HGPLAIN="1")
    try:
        wait_until(
            lambda: (
                subprocess.run(
                    [HG, "identify", "--insecure", url], env=env, capture_output=True
                ).returncode
                == 0
            ),
            30,
        )
        identify = subprocess.run(
            [HG, "identify", "-r", "tip", url], env=env, capture_output=True, text=True
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert identify.returncode == 0, identify.stderr
    assert identify.stdout.strip() == hg("identify", "-r", "tip", "-i", cwd=repo)
