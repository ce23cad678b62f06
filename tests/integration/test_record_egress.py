"""The egress of record resolution (issue 25): what the service itself asks goes out the
way the deployment says, ``providers.proxy`` and ``ca_bundle``, for every provider.

Mercurial is resolved by ``hg identify`` (``jobs/sources/hg_identify.py``), not by the
providers' HTTP client, so it gets the proxy and the authorities on its own command
line. The repository here is served by a real ``hg serve`` speaking TLS with a
certificate of a test CA for ``hg.example.org``, a name that resolves nowhere: the only
way to it is the test's CONNECT proxy (``provider_standins.ConnectProxy``), as in a
deployment whose only egress is ``providers.proxy`` and whose hg host has a private CA.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from jobs.errors import ProviderUnavailable
from jobs.sources.hg import hg_source
from jobs.sources.hg_identify import HgEgress, identify
from testkit.certs import make_ca, server_for_names
from testkit.components import Registry, ServiceProcess, free_port, in_registry, wait_until

from .provider_records import HG, HG_ENV, build_log, hg, hg_commit
from .provider_standins import ConnectProxy
from .test_binderhub_stream import records
from .test_http_api import wait_for_state

StartServer = Callable[..., ServiceProcess]
HG_HOST = "hg.example.org"
HG_URL = f"https://{HG_HOST}/repo"


class HttpsHg:
    """A Mercurial repository served over TLS by a real ``hg serve`` (``--certificate``)
    on a free port of 127.0.0.1, with a certificate for ``HG_HOST`` signed by a test CA
    (``ca``), and the CONNECT proxy that is the only way to it (``proxy``)."""

    def __init__(self, directory: Path) -> None:
        make_ca(directory / "ca", "hg test CA")
        self.ca = directory / "ca" / "ca.pem"
        chain = server_for_names(directory / "server", directory / "ca", [HG_HOST], "hg")
        pem = directory / "hg-serve.pem"  # hg serve takes the key and the chain in one file
        pem.write_text((directory / "server" / "hg-key.pem").read_text() + chain.read_text())
        self.repo = directory / "hg-repo"
        self.repo.mkdir()
        hg("init", cwd=self.repo)
        port = free_port()
        serve = ["serve", "--address", "127.0.0.1", "--port", str(port), "--prefix", "repo"]
        self.server = subprocess.Popen(
            [HG, *serve, "--certificate", str(pem)],
            cwd=self.repo,
            env=HG_ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        direct = f"https://127.0.0.1:{port}/repo"
        answers = [HG, "identify", "--insecure", direct]
        wait_until(
            lambda: subprocess.run(answers, env=HG_ENV, capture_output=True).returncode == 0, 30
        )
        self.proxy = ConnectProxy(frozenset({HG_HOST}), port)

    def stop(self) -> None:
        self.proxy.stop()
        self.server.terminate()
        self.server.wait(timeout=30)


@pytest.fixture
def https_hg(tmp_path: Path) -> Iterator[HttpsHg]:
    served = HttpsHg(tmp_path / "https-hg")
    yield served
    served.stop()


@pytest.mark.anyio
async def test_hg_identify_goes_through_the_proxy_and_trusts_the_ca(https_hg: HttpsHg) -> None:
    """``identify`` reaches the repository only with both: the name resolves nowhere
    without the proxy, and the certificate is refused without the CA."""
    changeset = hg_commit(https_hg.repo, "identified")
    source = hg_source(f"hg+{HG_URL}")
    with pytest.raises(ProviderUnavailable, match="could not be asked"):
        await identify(source)  # no proxy: hg.example.org resolves nowhere
    with pytest.raises(ProviderUnavailable, match="could not be asked"):
        await identify(source, egress=HgEgress(proxy=https_hg.proxy.url))  # no CA
    tunnels = len(https_hg.proxy.tunnelled)
    assert tunnels >= 1
    version = await identify(source, egress=HgEgress(https_hg.proxy.url, https_hg.ca))
    assert (version.version, version.record) == (changeset, HG_URL)
    assert len(https_hg.proxy.tunnelled) > tunnels
    assert https_hg.proxy.refused == []


def test_a_mercurial_repository_behind_the_providers_proxy_resolves_and_builds(
    start_server: StartServer, registry: Registry, https_hg: HttpsHg
) -> None:
    """A service whose only way to the hg host is ``providers.proxy``, and which trusts
    the host's CA through ``ca_bundle``, resolves the ref (``hg identify``) and builds
    the changeset (repo2docker's Mercurial provider in the build, which gets the same
    proxy and CA); an unknown ref is 422 through the same proxy."""
    changeset = hg_commit(https_hg.repo, "behind-the-proxy")
    server = start_server(providers={"proxy": https_hg.proxy.url}, ca_bundle=str(https_hg.ca))
    with server.client() as client:
        response = client.post("/api/v1/builds", json={"repo": f"hg+{HG_URL}"})
        assert response.status_code == 202, response.text
        body = response.json()
        assert (body["repo"], body["ref"], body["sha"]) == (HG_URL, "default", changeset)
        done = wait_for_state(client, body["id"], {"built", "failed"}, timeout=300)
        assert done["state"] == "built", build_log(client, body["id"])
        assert "built-hg-behind-the-proxy" in build_log(client, body["id"])
        missing = client.post("/api/v1/builds", json={"repo": f"hg+{HG_URL}@nosuch"})
        assert missing.status_code == 422, missing.text
        assert f"Mercurial repository {HG_URL} has no ref 'nosuch'" in missing.json()["error"]
    assert in_registry(registry.url, body["image"])
    assert https_hg.proxy.refused == []
    assert [(b.provider, b.sha) for b in records(server)] == [("hg", changeset)]
