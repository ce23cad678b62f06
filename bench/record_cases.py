"""The records of the ``record_cache_hit`` benchmark (issue 25), one or two per provider:
where each is published, what a POST and a BinderHub stream path ask for it, and the
image its version is named (``RecordCase``). Imported by bench/record_cache_hit.py.

Where each provider is (``Providers``), reusing the integration tests' stand-ins and
publishing helpers (tests/integration/provider_standins.py, provider_records.py):

- Zenodo, Figshare, Dataverse, HydroShare, CKAN and Software Heritage: one
  ``ProviderStandIn`` under the real host names, behind its ``ConnectProxy`` and test CA
  (``providers.proxy`` and ``ca_bundle`` of the server);
- Mercurial: a real ``hg serve`` of a repository on a free port, with an access log
  (every request it answered is a line), asked by the service's ``hg identify``;
- a gist: the bench's ``git daemon`` serves a repository named after the gist's id, and
  the server's ``mirrors`` fetch ``https://gist.github.com/...`` from it, so the gist is
  asked for as BinderHub spells it (``https://gist.github.com/<user>/<id>``,
  ``/build/gist/<user>/<id>/HEAD``) and its ``HEAD`` resolved with ``git ls-remote``
  against a real git server (the daemon's ``--verbose`` log names every connection).

``Providers.contacts`` counts what each was asked so far; the benchmark fails a run
during which any count moved.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jobs.naming import image_name_for, image_name_for_record
from jobs.sources.records import RecordProvider, RecordVersion
from testkit.components import BASE_IMAGE, GitServer, dockerfile, free_port, git, wait_until
from tests.integration.provider_records import (
    A1,
    CKAN_PAGE,
    CONCEPT,
    DOI,
    DV_DOI,
    DV_PAGE,
    DV_PID,
    FIGSHARE,
    HG,
    HG_ENV,
    HOSTS,
    HS_ID,
    HS_PAGE,
    archive,
    hg,
    hg_commit,
    modify_resource,
    publish,
    publish_dataset,
    publish_dataverse,
)
from tests.integration.provider_standins import ConnectProxy, ProviderStandIn, recorded

GIST_USER = "bench-user"
GIST_ID = "0123456789abcdef0123456789abcdef"
GIST_HOST = "https://gist.github.com"


@dataclass(frozen=True)
class RecordCase:
    """One record asked again and again: ``body`` the POST's, ``stream_path`` the
    stream's (``/build/<provider>/<spec>?build_only=true``), both answered a cache hit
    of ``image`` once resolved; ``asks`` says what the first request resolves it with
    (kept in the results' JSON)."""

    name: str
    body: dict[str, str]
    stream_path: str
    image: str
    asks: str


def record_image(
    prefix: str, provider: RecordProvider, host: str, record: str, version: str
) -> str:
    """The image the service names ``version`` of ``record`` (what ``content`` and
    ``total_size`` say does not enter the name)."""
    return image_name_for_record(
        prefix, RecordVersion(provider, host, record, version, "", None, False)
    )


class HgServer:
    """``hg serve`` of a new repository under ``directory`` at
    ``http://127.0.0.1:<port>/repo``, every request it answers a line of its access log."""

    def __init__(self, directory: Path) -> None:
        self.repo = directory / "hg-repo"
        self.repo.mkdir(parents=True)
        hg("init", cwd=self.repo)
        self.access_log = directory / "hg-access.log"
        port = free_port()
        self.process = subprocess.Popen(
            [
                *(HG, "serve", "--address", "127.0.0.1", "--port", str(port)),
                *("--prefix", "repo", "--accesslog", str(self.access_log)),
            ],
            cwd=self.repo,
            env=HG_ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{port}/repo"
        self.host = f"127.0.0.1:{port}"

        def answers() -> bool:
            probe = [HG, "identify", self.url]
            return subprocess.run(probe, env=HG_ENV, capture_output=True).returncode == 0

        wait_until(answers, 30)

    def requests(self) -> int:
        """How many requests it has answered so far."""
        if not self.access_log.exists():
            return 0
        return len(self.access_log.read_bytes().splitlines())

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def git_connections(git_server: GitServer) -> int:
    """How many connections the (``--verbose``) git daemon has logged so far."""
    return sum(
        1 for line in git_server.log_path.read_text().splitlines() if "Connection from" in line
    )


@dataclass
class Providers:
    """Where every case's provider is: the stand-in and its proxy, ``hg serve``, the
    git daemon."""

    standin: ProviderStandIn
    proxy: ConnectProxy
    hg: HgServer
    git_server: GitServer

    def contacts(self) -> dict[str, int]:
        """Requests each provider has seen so far."""
        return {
            "stand-in": len(self.standin.asked),
            "hg serve": self.hg.requests(),
            "git daemon": git_connections(self.git_server),
        }

    def server_settings(self) -> dict[str, Any]:
        """What the service needs to reach them: the proxy, the test CA, the mirror of
        gist.github.com."""
        return {
            "providers": {"proxy": self.proxy.url},
            "ca_bundle": str(self.standin.ca),
            "mirrors": [{"prefix": GIST_HOST, "url": f"git://127.0.0.1:{self.git_server.port}"}],
        }


@contextmanager
def providers(workdir: Path, git_server: GitServer) -> Iterator[Providers]:
    """The stand-in (every host of the integration tests), its proxy and ``hg serve``,
    started in ``workdir`` and stopped at the end."""
    standin = ProviderStandIn(workdir / "standin", HOSTS)
    try:
        proxy = ConnectProxy(standin.hosts, standin.port)
        try:
            hg_server = HgServer(workdir)
            try:
                yield Providers(standin, proxy, hg_server, git_server)
            finally:
                hg_server.stop()
        finally:
            proxy.stop()
    finally:
        standin.stop()


def stream(provider: str, spec: str) -> str:
    return f"/build/{provider}/{spec}?build_only=true"


def record_cases(where: Providers, prefix: str, workdir: Path) -> list[RecordCase]:
    """Publish every case's record where its provider is and return the cases, their
    images named under ``prefix``."""
    standin = where.standin
    publish(standin, "3242081")  # Zenodo's concept record, its latest version 3242081
    standin.json(FIGSHARE, recorded("figshare_article"))  # version 3
    publish_dataverse(standin, "1.0")
    standin.json(f"https://doi.org/api/handles/{DV_DOI.lower()}", recorded("doi_handle"))
    hydroshare = modify_resource(standin, 1700000000, BASE_IMAGE)
    ckan = publish_dataset(standin, 1700000000, A1, BASE_IMAGE)
    ckan_dataset = recorded("ckan_package")["result"]["id"]
    revision, _ = archive(standin, workdir, "bench")
    changeset = hg_commit(where.hg.repo, "bench-first")  # asked by its id
    branch = hg_commit(where.hg.repo, "bench-second")  # the head of default
    gist = where.git_server.create_repo(GIST_ID, {"Dockerfile": dockerfile()})
    gist_head = git("rev-parse", "HEAD", cwd=gist.path)
    hg_url = f"hg+{where.hg.url}"
    escaped_hg = quote(hg_url, safe="")
    swh = "archive.softwareheritage.org"
    return [
        RecordCase(
            "zenodo",
            {"repo": DOI},
            stream("zenodo", DOI),
            record_image(prefix, "zenodo", "zenodo.org", CONCEPT, "3242081"),
            "concept DOI: doi.org skipped (Zenodo's DOI form), concept record → latest version",
        ),
        RecordCase(
            "figshare",
            {"repo": "10.6084/m9.figshare.9782777"},
            stream("figshare", "10.6084/m9.figshare.9782777"),
            record_image(prefix, "figshare", "figshare.com", "9782777", "3"),
            "article DOI → the article's current version",
        ),
        RecordCase(
            "dataverse",
            {"repo": DV_PAGE},
            stream("dataverse", DV_DOI),
            record_image(prefix, "dataverse", "dataverse.harvard.edu", DV_PID, "1.0"),
            "POST: dataset page → latest version; stream: DOI → doi.org → the dataset",
        ),
        RecordCase(
            "hydroshare",
            {"repo": HS_PAGE},
            stream("hydroshare", HS_ID),
            record_image(prefix, "hydroshare", "www.hydroshare.org", HS_ID, hydroshare),
            "resource page / id → its modification time (science metadata)",
        ),
        RecordCase(
            "ckan",
            {"repo": f"ckan:{CKAN_PAGE}"},
            stream("ckan", quote(CKAN_PAGE, safe="")),
            record_image(prefix, "ckan", "demo.ckan.org", ckan_dataset, ckan),
            "dataset URL → package_show and its newest activity",
        ),
        RecordCase(
            "swh",
            {"repo": revision},
            stream("swh", revision),
            record_image(prefix, "swh", swh, revision, revision),
            "SWHID (immutable): the archive asked once whether it holds the revision",
        ),
        RecordCase(
            "hg-branch",
            {"repo": hg_url},
            stream("git", f"{escaped_hg}/default"),
            record_image(prefix, "hg", where.hg.host, where.hg.url, branch),
            "hg+URL, branch default → hg identify against hg serve",
        ),
        RecordCase(
            "hg-changeset",
            {"repo": f"{hg_url}@{changeset}"},
            stream("git", f"{escaped_hg}/{changeset}"),
            record_image(prefix, "hg", where.hg.host, where.hg.url, changeset),
            "hg+URL@<full changeset id> → hg identify once (the repository has it)",
        ),
        RecordCase(
            "gist",
            {"repo": f"{GIST_HOST}/{GIST_USER}/{GIST_ID}"},
            stream("gist", f"{GIST_USER}/{GIST_ID}/HEAD"),
            image_name_for(prefix, f"{GIST_HOST}/{GIST_ID}", gist_head),
            "gist page, HEAD → git ls-remote of the mirror (git daemon)",
        ),
    ]
